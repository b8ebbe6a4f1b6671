"""ORM reads counted in the Django process's instructions (valgrind's callgrind): a count the
machine's load does not move, for the per-row and per-statement costs that wall and CPU times
on a shared machine cannot show (issue 18, docs/statement-path.md).

    .venv/bin/python benches/orm/instructions.py --python .venv/bin/python \\
        --backends sqlite,djongo,in-process --ops get_pk,filter_indexed [--calls 200]

For each backend: the 5,000 entries of benches/orm loaded once (outside valgrind), then per
operation a fresh copy opened by a worker under callgrind with instrumentation off; the
worker makes 50 untimed calls, then ``--calls`` calls with instrumentation on
(``callgrind_control -i on``). Printed per call: the main thread's instructions in all, and the
inclusive instructions of the functions named with ``--function`` (substrings of callgrind's
symbol names; the defaults are the store client's parts).

Through the socket the store's server is another process, not under valgrind: only the Django
process is counted. djongo's re-reads of its ``__schema__`` facts once they are a second old
(``records.FACTS_MAX_AGE``) are turned off in the worker: under valgrind's ~50x slower clock
they would come ~50x as often as at full speed.
"""

from __future__ import annotations

import argparse
import random
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench import IN_PROCESS, copy_data, load_template, orm_operations, setup_django  # noqa: E402

BACKENDS = {"sqlite": "sqlite", "djongo": "djongo", "in-process": IN_PROCESS}
ROWS = 5000
WARM_UP = 50
FUNCTIONS = [
    "_core::store::StoreClient::find",
    "_core::store::StoreClient::aggregate",
    "_core::store::rows::batch",
    "_core::values::to_python",
    "_core::values::datetime_to_python",
    "_core::store::run_here",
    "djongo_server::in_process::InProcessServer::run",
]
# "  1,234 (12.3%)  file.rs:symbol [object]" in `callgrind_annotate --inclusive=yes`
LINE = re.compile(r"^\s*([\d,]+) \([^)]*\)\s+(?:\S*?:)?(.+?)(?: \[.*\])?$")
TOTAL = re.compile(r"^\s*([\d,]+) \([^)]*\)\s+PROGRAM TOTALS")


def worker(argv: list[str]) -> None:
    """Under valgrind: `instructions.py worker BACKEND DIR OP CALLS`; says READY on stdout
    after the warm-up, runs the calls on a line from stdin, says DONE, exits on the next."""
    backend, data_dir, op, calls = argv[0], argv[1], argv[2], int(argv[3])
    setup_django(backend, data_dir)
    if backend != "sqlite":
        from djongo import records

        records.FACTS_MAX_AGE = float("inf")
    fn, _ = orm_operations(ROWS, random.Random(18))[op]
    for _ in range(WARM_UP):
        fn()
    print("READY", flush=True)
    sys.stdin.readline()
    for _ in range(calls):
        fn()
    print("DONE", flush=True)
    sys.stdin.readline()


def measure(python: str, backend: str, template: Path, op: str, calls: int,
            functions: list[str], save: Path | None = None) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="orm-instr-") as tmp:
        data = Path(tmp) / "data"
        copy_data(template, data)
        out_file = Path(tmp) / "callgrind.out"
        proc = subprocess.Popen(
            ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--separate-threads=yes",
             f"--callgrind-out-file={out_file}", python, str(Path(__file__).resolve()),
             "worker", BACKENDS[backend], str(data), op, str(calls)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            cwd=HERE)

        def step(expected: str) -> None:
            line = proc.stdout.readline().strip()
            if line != expected:
                proc.kill()
                raise RuntimeError(f"{backend} {op}: {line!r}\n{proc.stderr.read()[-3000:]}")

        def instrument(state: str) -> None:
            subprocess.run(["callgrind_control", "-i", state, str(proc.pid)], check=True,
                           capture_output=True)

        step("READY")
        instrument("on")
        proc.stdin.write("go\n")
        proc.stdin.flush()
        step("DONE")
        instrument("off")
        proc.stdin.write("exit\n")
        proc.stdin.flush()
        proc.wait(timeout=600)
        # The main thread's file (thread 1).
        main_thread = next(p for p in Path(tmp).iterdir() if p.name.endswith("-01"))
        if save is not None:
            save.mkdir(parents=True, exist_ok=True)
            (save / f"callgrind.{op}.{backend}").write_bytes(main_thread.read_bytes())
        annotated = subprocess.run(
            ["callgrind_annotate", "--inclusive=yes", "--threshold=100", str(main_thread)],
            capture_output=True, text=True, check=True).stdout
    out = {"total": 0.0}
    for line in annotated.splitlines():
        if m := TOTAL.match(line):
            out["total"] = int(m.group(1).replace(",", "")) / calls
        elif (m := LINE.match(line)) and (name := next(
                (f for f in functions if m.group(2).startswith(f)), None)):
            out.setdefault(name, int(m.group(1).replace(",", "")) / calls)
    return out


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        worker(sys.argv[2:])
        return
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--python", default=sys.executable)
    p.add_argument("--backends", default="sqlite,djongo,in-process")
    p.add_argument("--ops", default="get_pk,filter_indexed")
    p.add_argument("--calls", type=int, default=200)
    p.add_argument("--function", action="append", help="symbol prefixes to report")
    p.add_argument("--save", type=Path, help="a directory to keep the callgrind files in")
    args = p.parse_args()
    functions = args.function or FUNCTIONS
    backends = args.backends.split(",")
    with tempfile.TemporaryDirectory(prefix="orm-instr-templates-") as tmp:
        templates = {}
        for kind in sorted({"sqlite" if b == "sqlite" else "djongo" for b in backends}):
            templates[kind] = Path(tmp) / kind
            load_template(templates[kind], kind, args.python, ROWS, keep=False)
        for op in args.ops.split(","):
            for backend in backends:
                template = templates["sqlite" if backend == "sqlite" else "djongo"]
                counts = measure(args.python, backend, template, op, args.calls, functions,
                                 args.save)
                print(f"{op} {backend}: {counts['total'] / 1e3:,.1f} K instructions per call",
                      flush=True)
                for name in functions:
                    if name in counts:
                        print(f"    {name}: {counts[name] / 1e3:,.1f} K", flush=True)


if __name__ == "__main__":
    main()
