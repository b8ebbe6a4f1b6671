"""CPU time per ORM call, the store's server included: Django + SQLite, djongo through the
socket, djongo with ``STORE_SERVER: "in-process"``. Wall time on a loaded shared machine
mostly measures the scheduler; CPU time (every thread of the process, and of the server
process when there is one, from /proc/<pid>/task/*/schedstat) measures the work.

    python benches/orm/cpu.py [--repeat 2] [--calls 200]

Each mode runs in a process of its own on a copy of the same loaded data, the modes in
turn, ``--repeat`` times; printed: best of five rounds of ``--calls`` calls, µs per call.
Linux only (reads /proc).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from machine import process_cpu_seconds as cpu_seconds  # noqa: E402

HERE = Path(__file__).resolve().parent
OPS = ["get_pk", "filter_indexed", "range_sort", "select_related", "count"]
MODES = {"sqlite": "sqlite", "socket": "djongo", "in-process": "djongo-inprocess"}


def measure(backend: str, data: str, calls: int) -> None:
    sys.path.insert(0, str(HERE))
    from bench import orm_operations, setup_django

    setup_django(backend, data)
    from django.db import connection

    ops = orm_operations(5000, random.Random(1))
    server = os.getpid()
    if backend != "sqlite":
        connection.ensure_connection()
        server = connection.connection.database.client.admin.command("hello")["djongo"]["pid"]
    others = [server] if server != os.getpid() else []
    for name in OPS:
        fn = ops[name][0]
        for _ in range(20):
            fn()
        best = None
        for _ in range(5):
            before = [cpu_seconds(os.getpid()), *map(cpu_seconds, others)]
            t0 = time.perf_counter()
            for _ in range(calls):
                fn()
            wall = time.perf_counter() - t0
            after = [cpu_seconds(os.getpid()), *map(cpu_seconds, others)]
            used = [(b - a) / calls * 1e6 for a, b in zip(before, after, strict=True)]
            if best is None or sum(used) < sum(best[1]):
                best = (wall / calls * 1e6, used)
        wall, used = best
        server_cpu = used[1] if len(used) > 1 else 0.0
        print(f"| {name} | {wall:.0f} | {used[0]:.0f} | {server_cpu:.0f} | {sum(used):.0f} |",
              flush=True)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "measure":
        measure(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--calls", type=int, default=200)
    args = p.parse_args()
    sys.path.insert(0, str(HERE))
    from bench import run_worker, wait_until_unserved

    with tempfile.TemporaryDirectory(prefix="djongo-orm-cpu-") as tmp:
        tmp = Path(tmp)
        templates = {}
        for kind in ("sqlite", "djongo"):
            templates[kind] = tmp / f"load-{kind}"
            templates[kind].mkdir()
            run_worker(sys.executable, ["load", "--backend", kind, "--dir",
                                        str(templates[kind]), "--rows", "5000"], timeout=3600)
        for kind in ("sqlite", "djongo"):
            wait_until_unserved(templates[kind])
        for round_ in range(args.repeat):
            for mode, backend in MODES.items():
                data = tmp / "scratch"
                if data.exists():
                    wait_until_unserved(data)
                    shutil.rmtree(data)
                shutil.copytree(templates["sqlite" if backend == "sqlite" else "djongo"], data)
                print(f"\n{mode}, round {round_ + 1}, load average {os.getloadavg()[0]:.1f}\n")
                print("| operation | wall µs | process CPU µs | server process CPU µs "
                      "| total CPU µs |")
                print("| --- | ---: | ---: | ---: | ---: |", flush=True)
                subprocess.run([sys.executable, __file__, "measure", backend, str(data),
                                str(args.calls)], check=True, stderr=subprocess.DEVNULL)


if __name__ == "__main__":
    main()
