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

Prints the median over rounds of each block's mean time per call, wall and CPU, and each
djongo column's ratio to SQLite and to the first djongo column. CPU is that of the worker's
every thread plus, through the socket, the store's server process (Linux: its
/proc schedstat), so that a column serving its store in-process and one whose server runs
apart count the same work. Writes (`update`, `create`,
`bulk_create`, `delete`) are measured too: every copy gets the same writes in the same
order, so the copies grow alike (a `delete`'s 50 rows are inserted before each call,
untimed). Their wall time includes the wait for fsync, which on a shared disk moves with
other processes' writes: alternate enough rounds.
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
from bench import IN_PROCESS, copy_data, orm_operations, run_worker, setup_django  # noqa: E402

sys.path.insert(0, str(HERE.parent))
from machine import process_cpu_seconds  # noqa: E402

READS = ["get_pk", "filter_indexed", "range_sort", "count", "select_related", "annotate"]
WRITES = ["update", "create", "bulk_create", "delete"]


def _server_pid(backend: str) -> int | None:
    """The pid of the process serving the worker's store, when it is another
    process (djongo through the socket): its CPU is part of each call's."""
    if backend == "sqlite":
        return None
    from django.db import connection

    connection.ensure_connection()
    pid = connection.connection.database.client.admin.command("hello")["djongo"]["pid"]
    return pid if pid != os.getpid() else None


def serve(argv: list[str]) -> None:
    """The worker: `ab.py serve BACKEND DIR ROWS`, then one `OP CALLS` per stdin line,
    answered with the wall seconds and the CPU seconds (this process's every
    thread, plus the store's server process, if another) the calls took."""
    import random

    backend, data_dir, rows = argv[0], argv[1], int(argv[2])
    setup_django(backend, data_dir)
    ops = orm_operations(rows, random.Random(18))
    for name in ops:
        if name in READS or name in WRITES:
            ops[name][0]()  # warm-up: compiled plans, connections
    server = _server_pid(backend)

    def cpu() -> float:
        return time.process_time() + (process_cpu_seconds(server) if server else 0.0)

    print("ready", flush=True)
    for line in sys.stdin:
        name, calls = line.split()
        fn, setup = ops[name]
        seconds = spent = 0.0
        if setup is None:
            c0, t0 = cpu(), time.perf_counter()
            for _ in range(int(calls)):
                fn()
            seconds, spent = time.perf_counter() - t0, cpu() - c0
        else:
            for _ in range(int(calls)):
                setup()
                c0, t0 = cpu(), time.perf_counter()
                fn()
                seconds += time.perf_counter() - t0
                spent += cpu() - c0
        print(json.dumps([seconds, spent]), flush=True)


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
        cpus: dict[tuple[str, str], list[float]] = {}
        try:
            for _ in range(args.rounds):
                for op in ops:
                    for (label, _, _), worker in zip(columns, workers, strict=True):
                        worker.stdin.write(f"{op} {args.calls}\n")
                        worker.stdin.flush()
                        seconds, spent = json.loads(worker.stdout.readline())
                        times.setdefault((op, label), []).append(seconds / args.calls)
                        cpus.setdefault((op, label), []).append(spent / args.calls)
        finally:
            for worker in workers:
                worker.stdin.close()
                worker.wait()
        for i in range(len(columns)):
            shutil.rmtree(tmp / f"data-{i}", ignore_errors=True)
    labels = [label for label, _, _ in columns]
    for what, measured in (("wall", times), ("CPU (every process involved)", cpus)):
        print(f"{what}: {args.rounds} rounds of {args.calls} calls, {args.rows} entries; "
              "median of the rounds' mean µs per call")
        _table(ops, labels, measured)
        print()


def _table(ops: list[str], labels: list[str], measured: dict[tuple[str, str], list[float]]):
    header = ["operation", *labels, *(f"{label} ÷ SQLite" for label in labels[1:]),
              *(f"{label} ÷ {labels[1]}" for label in labels[2:])]
    print("| " + " | ".join(header) + " |")
    print("| --- |" + " ---: |" * (len(header) - 1))
    for op in ops:
        med = {label: statistics.median(measured[(op, label)]) * 1e6 for label in labels}
        cells = [f"{med[label]:.1f}" for label in labels]
        cells += [f"{med[label] / med[labels[0]]:.2f}" for label in labels[1:]]
        cells += [f"{med[label] / med[labels[1]]:.2f}" for label in labels[2:]]
        print(f"| {op} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
