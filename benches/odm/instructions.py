"""The ODM benchmark's tasks measured in the server's instructions (valgrind's callgrind), per
backend, on the same djongo-server binary: a count that the machine's load does not move, for
the small differences that wall and CPU times on a shared machine cannot show (issue 18).

    .venv/bin/python benches/odm/instructions.py --server target/release/djongo-server \\
        --data .cache/odm-data --backend djongo=.venv/bin/python \\
        --backend official=.cache/odm-official-venv/bin/python \\
        --task LargeFlatDocUpdate --docs 10 --iterations 2

For each task and backend: a fresh server under callgrind with instrumentation off; a probe
process (`instructions.py probe`, the task classes of bench.py) runs the task's setup and one
untimed iteration, then --iterations iterations with instrumentation on (`callgrind_control
-i on`) around each one's timed phase only. Printed per operation: the server's instructions
in all, and per command name (the inclusive cost of each command's handler, with its number of
calls).

Under valgrind the server runs ~50x slower, so anything a backend does on a clock would show
up ~50x more often than at full speed: djongo's re-reads of its `__schema__` facts once they
are a second old (records.FACTS_MAX_AGE, two `find`s of ~3M instructions each on these
models) are turned off in the probe; at full speed they cost about 0.2% of the server's time.
Only user-space instructions are counted: the kernel's work (page faults, pwrite, fsync) is not.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench  # noqa: E402  (the task classes and the server's start-up)

# A handler's row in `callgrind_annotate --tree=calling` under commands::dispatch:
# "  1,234 (12.3%)  >   src/commands/write.rs:djongo_server::commands::write::update (400x) [...]"
CALLEE = re.compile(r"^\s*([\d,]+) \([^)]*\)\s+>\s+\S*?:(\S+) \((\d+)x\)")
TOTAL = re.compile(r"^\s*([\d,]+) \([^)]*\)\s+PROGRAM TOTALS")


def probe(args) -> None:
    """Runs in the backend's interpreter: the task, instrumented around its iterations."""
    bench.setup_django(args.backend, args.dbpath, args.socket)
    if args.backend.startswith("djongo"):
        # djongo re-reads its __schema__ facts once they are a second old; under valgrind a
        # second of the server's work takes ~50, so they would be re-read ~50x as often as at
        # full speed. Kept for the run instead: none of these tasks changes a schema.
        from djongo import records

        records.FACTS_MAX_AGE = float("inf")
    task = getattr(bench, args.task)(Path(args.data), args.docs)
    task.setup()
    task.before()
    task.do()
    task.after()
    def instrument(state: str) -> None:
        subprocess.run(["callgrind_control", "-i", state, str(args.server_pid)], check=True,
                       capture_output=True)

    for _ in range(args.iterations):
        task.before()
        # Only "do", as bench.py times it: not the creation tasks' deletes in "after".
        instrument("on")
        task.do()
        instrument("off")
        task.after()
    # No teardown: the server is stopped next, and its work would not be the task's.
    print(f"OPS {task.ops * args.iterations}", flush=True)


def handlers(annotated: str) -> dict[str, tuple[int, int]]:
    """command handler → (inclusive instructions, calls), from the tree under dispatch."""
    out: dict[str, tuple[int, int]] = {}
    inside = False
    for line in annotated.splitlines():
        if "*  " in line:
            inside = ":djongo_server::commands::dispatch [" in line
            continue
        if inside:
            m = CALLEE.match(line)
            if not m:
                if not line.strip():
                    inside = False
                continue
            cost, calls = int(m.group(1).replace(",", "")), int(m.group(3))
            key = "::".join(m.group(2).split("::")[-2:])
            prev = out.get(key, (0, 0))
            out[key] = (prev[0] + cost, prev[1] + calls)
    return out


def measure(args, backend: str, python: str, task: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="odm-instr-") as tmp:
        # (tempfile's names are lower-case, as a socket path in a URI must be: pymongo
        # lower-cases the host part.)
        dbpath = Path(tmp) / "db"
        dbpath.mkdir()
        out_file = Path(tmp) / "callgrind.out"
        server = subprocess.Popen(
            ["valgrind", "--tool=callgrind", "--instr-atstart=no",
             f"--callgrind-out-file={out_file}", args.server, "--dbpath", str(dbpath), "--no-tcp"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        sock = dbpath / "djongo.sock"
        deadline = time.monotonic() + 120
        while not sock.exists():
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                raise RuntimeError("djongo-server under valgrind did not open its socket")
            time.sleep(0.1)
        try:
            done = subprocess.run(
                [python, str(Path(__file__).resolve()), "probe", "--backend", backend,
                 "--task", task, "--data", str(args.data), "--docs", str(args.docs),
                 "--iterations", str(args.iterations), "--dbpath", str(dbpath),
                 "--socket", str(sock), "--server-pid", str(server.pid)],
                capture_output=True, text=True, cwd=HERE, timeout=args.timeout)
        finally:
            server.terminate()
            server.wait(timeout=120)
        ops = next((int(line.split()[1]) for line in done.stdout.splitlines()
                    if line.startswith("OPS ")), None)
        if ops is None:
            raise RuntimeError(f"{backend} {task}: {done.stderr.strip()[-2000:]}")
        annotated = subprocess.run(["callgrind_annotate", "--tree=calling", "--inclusive=yes",
                                    str(out_file)], capture_output=True, text=True,
                                   check=True).stdout
    total = next(int(m.group(1).replace(",", "")) for m in map(TOTAL.match, annotated.splitlines())
                 if m)
    return {"ops": ops, "total": total, "handlers": handlers(annotated)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data", required=True, type=lambda p: Path(p).resolve())
    common.add_argument("--docs", type=int, default=50,
                        help="N: the documents of a task's setup and an iteration's operations")
    common.add_argument("--iterations", type=int, default=2)
    run = sub.add_parser("run", parents=[common])
    run.add_argument("--server", required=True, type=lambda p: str(Path(p).resolve()))
    run.add_argument("--backend", action="append", required=True, metavar="NAME=PYTHON")
    run.add_argument("--task", action="append", required=True, choices=bench.TASK_NAMES)
    run.add_argument("--timeout", type=float, default=1800)
    p = sub.add_parser("probe", parents=[common])
    p.add_argument("--backend", required=True)
    p.add_argument("--task", required=True, choices=bench.TASK_NAMES)
    p.add_argument("--dbpath", required=True)
    p.add_argument("--socket", required=True)
    p.add_argument("--server-pid", type=int, required=True)
    args = parser.parse_args()
    if args.mode == "probe":
        probe(args)
        return
    if not shutil.which("valgrind") or not shutil.which("callgrind_control"):
        sys.exit("instructions.py needs valgrind (apt-get install valgrind)")
    backends = [(name, str(Path(python).absolute()))
                for name, python in (b.split("=", 1) for b in args.backend)]
    for task in args.task:
        results = {name: measure(args, name, python, task) for name, python in backends}
        print(f"\n{task} (N = {args.docs}, {args.iterations} iterations): server instructions "
              "per operation (per call for a command)")
        # The handlers that cost at least 1% of some backend's total.
        names = sorted({h for r in results.values() for h, (cost, _) in r["handlers"].items()
                        if cost >= r["total"] / 100},
                       key=lambda h: -max(r["handlers"].get(h, (0, 0))[0]
                                          for r in results.values()))
        print(f"  {'':28s}" + "".join(f"{name:>24s}" for name, _ in backends))
        print(f"  {'all, per operation':28s}" + "".join(
            f"{results[name]['total'] / results[name]['ops']:>24,.0f}" for name, _ in backends))
        for h in names:
            cells = []
            for name, _ in backends:
                cost, calls = results[name]["handlers"].get(h, (0, 0))
                cells.append(f"{cost / calls:>14,.0f} ({calls:>5d}x)" if calls else f"{'-':>24s}")
            print(f"  {h:28s}" + "".join(f"{c:>24s}" for c in cells))
        if len(backends) >= 2:
            a, b = backends[0][0], backends[-1][0]
            per_op = {n: results[n]["total"] / results[n]["ops"] for n in (a, b)}
            print(f"  {a} ÷ {b}, all: {per_op[a] / per_op[b]:.2f}")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
