"""Where one ORM write's CPU goes: Django's own work, the backend's statement path, and the
store's server, for Django + SQLite, djongo through the socket and djongo in-process.

    python benches/orm/split.py [--op bulk_create] [--calls 10] [--us] \\
        [--backends sqlite,djongo,...]

Each backend runs in a process of its own on freshly loaded data (5,000 entries). Printed per
backend, best of five rounds of ``--calls`` calls (the round with the least CPU in all); an
operation with a setup (``delete``: its 50 rows inserted first) runs it before each call,
outside what is counted:

- ``process``: the Django process's CPU (every thread, /proc/<pid>/task/*/schedstat);
- ``in execute``: the calling thread's CPU inside ``cursor.execute`` (the backend: for
  SQLite its C library, for djongo our Python and Rust, and in-process the engine too);
- ``Django``: ``process`` less ``in execute``;
- ``server``: the store's server process's CPU (djongo through the socket only).

A transaction's ``commitTransaction`` is sent by the store's client outside
``cursor.execute`` (``Connection.commit``): its client side counts in ``Django``, and
in-process, where it runs in the calling thread, the engine's commit too.

Run it with each interpreter to compare trees (``/path/to/.venv/bin/python benches/orm/split.py``).
CPU time rather than wall time: writes wait for fsync, which on a shared disk moves with
other processes' writes. Linux only (reads /proc).
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


def measure(backend: str, op: str, calls: int, scale: float = 1e3) -> None:
    """Prints one backend's row; ``scale``: 1e3 for milliseconds, 1e6 for µs."""
    sys.path.insert(0, str(HERE))
    from bench import load, orm_operations, setup_django

    data = tempfile.mkdtemp(prefix="djongo-split-")
    try:
        setup_django(backend, data)
        load(5000)
        from django.db import connection
        from django.db.backends import utils

        server = None
        if backend != "sqlite":
            connection.ensure_connection()
            pid = connection.connection.database.client.admin.command("hello")["djongo"]["pid"]
            server = pid if pid != os.getpid() else None
        inside = [0.0]
        execute = utils.CursorWrapper._execute

        def timed(self, *args, **kwargs):
            start = time.thread_time()
            try:
                return execute(self, *args, **kwargs)
            finally:
                inside[0] += time.thread_time() - start

        utils.CursorWrapper._execute = timed
        fn, setup = orm_operations(5000, random.Random(1))[op]

        def cpu() -> tuple[float, float]:
            return cpu_seconds(os.getpid()), cpu_seconds(server) if server else 0.0

        def round_of(n: int) -> tuple[float, float]:
            """The process's and the server's CPU seconds in ``n`` calls; a
            call's setup (a delete's rows) runs before it, not counted."""
            if setup is None:
                before = cpu()
                for _ in range(n):
                    fn()
                after = cpu()
                return after[0] - before[0], after[1] - before[1]
            spent = [0.0, 0.0]
            for _ in range(n):
                mark = inside[0]
                setup()
                inside[0] = mark  # the setup's statements are not counted
                before = cpu()
                fn()
                after = cpu()
                spent[0] += after[0] - before[0]
                spent[1] += after[1] - before[1]
            return spent[0], spent[1]

        round_of(3)
        best = None
        for _ in range(5):
            inside[0] = 0.0
            process, served = (t / calls * scale for t in round_of(calls))
            row = (process, inside[0] / calls * scale, served)
            if best is None or row[0] + row[2] < best[0] + best[2]:
                best = row
        process, in_execute, served = best
        print(f"| {backend} | {process:.1f} | {in_execute:.1f} | {process - in_execute:.1f} | "
              f"{served:.1f} | {process + served:.1f} |", flush=True)
    finally:
        shutil.rmtree(data, ignore_errors=True)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "measure":
        measure(sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5]))
        return
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--op", default="bulk_create")
    p.add_argument("--calls", type=int, default=10)
    p.add_argument("--backends", default="sqlite,djongo,djongo-inprocess")
    p.add_argument("--us", action="store_true",
                   help="print µs rather than ms (a point read is a few hundred µs)")
    args = p.parse_args()
    unit, scale = ("µs", 1e6) if args.us else ("ms", 1e3)
    print(f"{args.op}: {unit} of CPU per call, best of 5 rounds of {args.calls}")
    print("| backend | process | in execute | Django | server | total |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for backend in args.backends.split(","):
        subprocess.run([sys.executable, __file__, "measure", backend, args.op, str(args.calls),
                        str(scale)], check=True)


if __name__ == "__main__":
    main()
