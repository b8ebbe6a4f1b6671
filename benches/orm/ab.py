"""A/B of single ORM operations, alternating: Django + SQLite and one or more djongo
interpreters (e.g. this tree's .venv and another checkout's), each a long-lived worker
process on its own copy of the same loaded data, asked in turn for a block of calls, so
that load on a shared machine hits every column alike. For quick comparisons of the
statement path (docs/statement-path.md); benches/orm/run.sh is the full benchmark.

    python benches/orm/ab.py --djongo branch=.venv/bin/python \\
        --djongo main=/work/main/.venv/bin/python [--ops get_pk,filter_indexed] \\
        [--rounds 15] [--calls 200]
    python benches/orm/ab.py --djongo socket=.venv/bin/python \\
        --in-process in-process=.venv/bin/python --ops get_pk,filter_indexed,create

``--in-process`` columns run djongo with ``STORE_SERVER: "in-process"`` (the worker serves
its store itself).

Prints the median over rounds of each block's mean time per call, wall and CPU (the
worker's own and, through the socket, its store server's), and each djongo column's ratio
to SQLite and to the first djongo column; then the context switches per call of the worker
and of its server (Linux), which the machine's load moves far less than times. Writes
(`update`, `create`, `bulk_create`, `delete`) are measured too: every copy gets the same
writes in the same order, so the copies grow alike (a `delete`'s 50 rows are inserted
before each call, untimed). Their wall time includes the wait for fsync, which on a shared
disk moves with other processes' writes: alternate enough rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench import (  # noqa: E402
    IN_PROCESS,
    Meter,
    copy_data,
    orm_operations,
    run_worker,
    server_pid,
    setup_django,
)
from machine import process_switches  # noqa: E402  (benches/, which bench put on the path)

READS = ["get_pk", "filter_indexed", "range_sort", "count", "select_related", "annotate"]
WRITES = ["update", "create", "bulk_create", "delete"]


def serve(argv: list[str]) -> None:
    """The worker: `ab.py serve BACKEND DIR ROWS`, then one `OP CALLS` per stdin line,
    answered with the seconds the calls took: wall, and CPU (this process's and, when
    another process serves the store, that server's)."""
    import random

    backend, data_dir, rows = argv[0], argv[1], int(argv[2])
    setup_django(backend, data_dir)
    ops = orm_operations(rows, random.Random(18))
    for name in ops:
        if name in READS or name in WRITES:
            ops[name][0]()  # warm-up: compiled plans, connections
    meter = Meter(server_pid(backend))
    pids = [os.getpid(), meter.server_pid or 0]
    print("ready", flush=True)
    for line in sys.stdin:
        name, calls = line.split()
        fn, setup = ops[name]
        wall = own_cpu = server_cpu = 0.0
        switches = [0, 0, 0, 0]
        for group in [int(calls)] if setup is None else [1] * int(calls):
            if setup is not None:
                setup()
            _, own0, server0 = meter.read()
            switches0 = switches_of(pids)
            t0 = time.perf_counter()
            for _ in range(group):
                fn()
            wall += time.perf_counter() - t0
            _, own1, server1 = meter.read()
            own_cpu += own1 - own0
            server_cpu += server1 - server0
            switches = [s + b - a for s, a, b in zip(switches, switches0, switches_of(pids),
                                                       strict=True)]
        print(json.dumps([wall, own_cpu, server_cpu, switches]), flush=True)


def switches_of(pids: list[int]) -> list[int]:
    """Voluntary and involuntary context switches of the worker, then of its server."""
    return [n for pid in pids for n in process_switches(pid)]


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        serve(sys.argv[2:])
        return
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--djongo", action="append", required=True, metavar="LABEL=PYTHON")
    p.add_argument("--in-process", action="append", default=[], metavar="LABEL=PYTHON",
                   help="djongo with STORE_SERVER 'in-process'")
    p.add_argument("--sqlite-python", default=sys.executable)
    p.add_argument("--ops", default="get_pk,filter_indexed")
    p.add_argument("--rows", type=int, default=5000)
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--calls", type=int, default=200)
    args = p.parse_args()
    ops = args.ops.split(",")
    unknown = set(ops) - set(READS) - set(WRITES)
    if unknown:
        raise SystemExit(f"not an operation: {', '.join(sorted(unknown))}")
    columns = [("Django + SQLite", "sqlite", args.sqlite_python)]
    columns += [(f"djongo {label}", "djongo", python)
                for label, _, python in (spec.partition("=") for spec in args.djongo)]
    columns += [(f"djongo {label}", IN_PROCESS, python)
                for label, _, python in (spec.partition("=") for spec in args.in_process)]
    with tempfile.TemporaryDirectory(prefix="djongo-orm-ab-") as tmp:
        tmp = Path(tmp)
        templates = {}
        for kind, python in (("sqlite", args.sqlite_python), ("djongo", columns[1][2])):
            templates[kind] = tmp / f"load-{kind}"
            templates[kind].mkdir()
            run_worker(python, ["load", "--backend", kind, "--dir", str(templates[kind]),
                                "--rows", str(args.rows)], timeout=3600)
        workers = []
        for i, (_, kind, python) in enumerate(columns):
            data = tmp / f"data-{i}"
            copy_data(templates["sqlite" if kind == "sqlite" else "djongo"], data)
            worker = subprocess.Popen(
                [python, str(Path(__file__).resolve()), "serve", kind, str(data), str(args.rows)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            if worker.stdout.readline().strip() != "ready":
                raise SystemExit(f"worker {columns[i][0]} failed to start")
            workers.append(worker)
        times: dict[tuple[str, str], list[float]] = {}
        cpu: dict[tuple[str, str], list[float]] = {}
        # Per call: the worker's voluntary, involuntary, the server's voluntary, involuntary.
        switched: list[dict[tuple[str, str], list[float]]] = [{}, {}, {}, {}]
        try:
            for _ in range(args.rounds):
                for op in ops:
                    for (label, _, _), worker in zip(columns, workers, strict=True):
                        worker.stdin.write(f"{op} {args.calls}\n")
                        worker.stdin.flush()
                        wall, own_cpu, server_cpu, switches = json.loads(worker.stdout.readline())
                        times.setdefault((op, label), []).append(wall / args.calls)
                        cpu.setdefault((op, label), []).append((own_cpu + server_cpu) / args.calls)
                        for counts, n in zip(switched, switches, strict=True):
                            counts.setdefault((op, label), []).append(n / args.calls)
        finally:
            for worker in workers:
                worker.stdin.close()
                worker.wait()
        for i in range(len(columns)):
            shutil.rmtree(tmp / f"data-{i}", ignore_errors=True)
    labels = [label for label, _, _ in columns]
    for title, series in (("wall", times), ("CPU time of the worker and its store's server", cpu)):
        print(f"{title}: {args.rounds} rounds of {args.calls} calls, {args.rows} entries; "
              "median of the rounds' mean µs per call")
        table(series, ops, labels)
        print()
    print("context switches per call (median of the rounds), voluntary + involuntary: "
          "the worker; its store's server")
    print("| operation | " + " | ".join(labels) + " |")
    print("| --- |" + " ---: |" * len(labels))
    for op in ops:
        cells = []
        for label in labels:
            v, i, sv, si = (statistics.median(counts[(op, label)]) for counts in switched)
            cells.append(f"{v:.2f} + {i:.2f}; {sv:.2f} + {si:.2f}")
        print(f"| {op} | " + " | ".join(cells) + " |")


def table(series: dict[tuple[str, str], list[float]], ops: list[str], labels: list[str]) -> None:
    header = ["operation", *labels, *(f"{label} ÷ SQLite" for label in labels[1:]),
              *(f"{label} ÷ {labels[1]}" for label in labels[2:])]
    print("| " + " | ".join(header) + " |")
    print("| --- |" + " ---: |" * (len(header) - 1))
    for op in ops:
        med = {label: statistics.median(series[(op, label)]) * 1e6 for label in labels}
        cells = [f"{med[label]:.1f}" for label in labels]
        cells += [f"{med[label] / med[labels[0]]:.2f}" for label in labels[1:]]
        cells += [f"{med[label] / med[labels[1]]:.2f}" for label in labels[2:]]
        print(f"| {op} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
