"""ORM benchmark: the same Django workload on Django + SQLite, on djongo with the
embedded engine, and as raw pymongo calls on that same engine (issue 18).

Started by benches/orm/run.sh. For each data size, the driver loads the data once per
database (through the ORM: Django's bulk_create), then measures each operation in its own
process on a fresh copy of that data, so an operation's writes never change another's data
and a pathologically slow one can be stopped by a timeout without losing the rest. Each
operation and column is measured at every size in turn, so that the growth from one size to
the next is measured under the same load of the machine.

    python bench.py --rows 5000 [--rows 500000] --out benches/orm/results \\
        [--python-under-test .venv/bin/python] [--compare LABEL=PYTHON ...]

`--compare` adds columns measured with another interpreter, e.g. a virtualenv of an older
checkout (its djongo); SQLite is measured with the first interpreter.

Internal: `bench.py worker load|op ...` is what the driver runs in each process.
"""

from __future__ import annotations

import argparse
import datetime as dt
import fcntl
import json
import math
import os
import platform
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from machine import cpu_model, process_cpu_seconds  # noqa: E402

HERE = Path(__file__).resolve().parent
AUTHORS = 50
BATCH = 1000

# name, what it does (the ORM call; the pymongo column runs its equivalent)
OPERATIONS = [
    ("get_pk", "Entry.objects.get(pk=k)"),
    ("filter_indexed", "list(Entry.objects.filter(headline=h)[:20])"),
    ("range_sort", "list(Entry.objects.filter(n__gte=N/2).order_by('-at')[:20])"),
    ("count", "Entry.objects.filter(rating__lt=5.0).count()"),
    ("select_related", "list(Entry.objects.select_related('author')[:20])"),
    ("annotate", "list(Author.objects.annotate(Count('entry'), Avg('entry__n')))"),
    ("update", "Entry.objects.filter(n__lt=50).update(rating=1.5)  # 50 rows"),
    ("create", "Entry.objects.create(...)"),
    ("bulk_create", "Entry.objects.bulk_create([1000 entries])"),
    ("delete", "Entry.objects.filter(headline='gone').delete()  # 50 rows"),
]
# Operations an index makes independent of the table's size (a count reads the keys of every
# matching row, so it grows with them, on SQLite too).
INDEXED = {"get_pk", "filter_indexed", "range_sort", "select_related", "update", "delete"}
BASE_TIME = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
#: get(pk) reads rows drawn from this many, spread evenly over the table, at every size: the
#: warm-up reads them all, so a larger table costs what its deeper index costs, not the first
#: read of pages a short run never reads twice (at 500,000 rows, 1,000 random keys a second
#: would be cold reads for the whole run; filter_indexed's 250 headlines are a pool already).
PK_POOL = 1000


def pk_pool(rows: int) -> list[int]:
    return sorted({1 + j * rows // PK_POOL for j in range(PK_POOL)})


# ---- the worker (one process per load or operation) -------------------------------------


#: djongo with STORE_SERVER "in-process": the benchmark's process serves the store itself
#: and its statements run in the calling thread (docs/statement-path.md).
IN_PROCESS = "djongo-inprocess"
#: The columns `--backends` selects from, by the worker's backend.
BACKEND_NAMES = {"sqlite": "sqlite", "djongo": "djongo", IN_PROCESS: "in-process",
                 "pymongo": "pymongo"}
BACKENDS = list(BACKEND_NAMES.values())


def setup_django(backend: str, data_dir: str) -> None:
    os.environ["BENCH_BACKEND"] = "sqlite" if backend == "sqlite" else "djongo"
    os.environ["BENCH_STORE_SERVER"] = "in-process" if backend == IN_PROCESS else "separate"
    os.environ["BENCH_DIR"] = data_dir
    os.environ["DJANGO_SETTINGS_MODULE"] = "settings"
    sys.path.insert(0, str(HERE))
    import django

    django.setup()


def entry_fields(i: int, rows: int) -> dict:
    """Row i of the data: independent orders on n (i), at (a permutation) and rating."""
    return {
        "author_id": i % AUTHORS + 1,
        "headline": f"h{i % 250}",
        "n": i,
        "rating": (i * 7919) % 1000 / 100,
        "at": BASE_TIME + dt.timedelta(seconds=(i * 104729) % rows),
        "body": "lorem ipsum " * 8,
    }


def load(rows: int) -> None:
    from benchapp.models import Author, Entry
    from django.core.management import call_command

    call_command("migrate", run_syncdb=True, verbosity=0)
    Author.objects.bulk_create([Author(name=f"author {i}") for i in range(AUTHORS)])
    for start in range(0, rows, BATCH):
        Entry.objects.bulk_create(
            [Entry(**entry_fields(i, rows)) for i in range(start, min(rows, start + BATCH))]
        )


def orm_operations(rows: int, rng: random.Random) -> dict:
    from benchapp.models import Author, Entry
    from django.db.models import Avg, Count

    counter = iter(range(10**9))
    pks = pk_pool(rows)

    def create():
        Entry.objects.create(**entry_fields(rows + next(counter), rows))

    def bulk_create():
        base = rows + 10**6 + next(counter) * BATCH
        Entry.objects.bulk_create([Entry(**entry_fields(base + j, rows)) for j in range(BATCH)])

    def doomed():
        Entry.objects.bulk_create(
            [Entry(**{**entry_fields(j, rows), "headline": "gone"}) for j in range(50)]
        )

    return {
        "get_pk": (lambda: Entry.objects.get(pk=rng.choice(pks)), None),
        "filter_indexed": (
            lambda: list(Entry.objects.filter(headline=f"h{rng.randrange(250)}")[:20]),
            None,
        ),
        "range_sort": (
            lambda: list(Entry.objects.filter(n__gte=rows // 2).order_by("-at")[:20]),
            None,
        ),
        "count": (lambda: Entry.objects.filter(rating__lt=5.0).count(), None),
        "select_related": (lambda: list(Entry.objects.select_related("author")[:20]), None),
        "annotate": (lambda: list(Author.objects.annotate(Count("entry"), Avg("entry__n"))), None),
        "update": (lambda: Entry.objects.filter(n__lt=50).update(rating=1.5), None),
        "create": (create, None),
        "bulk_create": (bulk_create, None),
        "delete": (lambda: Entry.objects.filter(headline="gone").delete(), doomed),
    }


def pymongo_operations(rows: int, rng: random.Random) -> dict:
    """The same work as raw pymongo calls on the engine djongo started."""
    from django.db import connection

    db = connection.mongo_database
    entries, authors = db["benchapp_entry"], db["benchapp_author"]
    counter = iter(range(10**9))
    pks = pk_pool(rows)

    def document(i: int) -> dict:
        return {**entry_fields(i, rows), "id": i + 1}

    def doomed():
        entries.insert_many(
            [{**document(10**8 + next(counter) * 100 + j), "headline": "gone"} for j in range(50)]
        )

    join = [
        {
            "$lookup": {
                "from": "benchapp_author",
                "localField": "author_id",
                "foreignField": "id",
                "as": "a",
            }
        },
        {"$unwind": "$a"},
        {"$limit": 20},
    ]
    annotate = [
        {
            "$lookup": {
                "from": "benchapp_entry",
                "localField": "id",
                "foreignField": "author_id",
                "as": "e",
            }
        },
        {"$unwind": {"path": "$e", "preserveNullAndEmptyArrays": True}},
        {
            "$group": {
                "_id": "$id",
                "name": {"$first": "$name"},
                "count": {"$sum": {"$cond": [{"$ifNull": ["$e.id", False]}, 1, 0]}},
                "avg": {"$avg": "$e.n"},
            }
        },
    ]
    return {
        "get_pk": (lambda: entries.find_one({"id": rng.choice(pks)}), None),
        "filter_indexed": (
            lambda: list(entries.find({"headline": f"h{rng.randrange(250)}"}).limit(20)),
            None,
        ),
        "range_sort": (
            lambda: list(entries.find({"n": {"$gte": rows // 2}}).sort("at", -1).limit(20)),
            None,
        ),
        "count": (lambda: entries.count_documents({"rating": {"$lt": 5.0}}), None),
        "select_related": (lambda: list(entries.aggregate(join)), None),
        "annotate": (lambda: list(authors.aggregate(annotate)), None),
        "update": (
            lambda: entries.update_many({"n": {"$lt": 50}}, {"$set": {"rating": 1.5}}),
            None,
        ),
        "create": (lambda: entries.insert_one(document(rows + next(counter))), None),
        "bulk_create": (
            lambda: entries.insert_many(
                [document(rows + 10**6 + next(counter) * BATCH + j) for j in range(BATCH)]
            ),
            None,
        ),
        "delete": (lambda: entries.delete_many({"headline": "gone"}), doomed),
    }


class Meter:
    """Wall time and CPU time: this process's (every thread, getrusage) and, when the store
    is served by another process, that server's (every thread, /proc/<pid>/task/*/schedstat:
    Linux only; 0 elsewhere). On a shared machine the wall clock also measures the
    scheduler; CPU time measures the work."""

    def __init__(self, server_pid: int | None) -> None:
        self.server_pid = server_pid

    def read(self) -> tuple[float, float, float]:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return time.perf_counter(), usage.ru_utime + usage.ru_stime, self.server_cpu()

    def server_cpu(self) -> float:
        if self.server_pid is None:
            return 0.0
        return process_cpu_seconds(self.server_pid)


def measure(fn, setup, meter: Meter, round_seconds: float, rounds: int, max_calls: int) -> dict:
    """Best of `rounds` rounds, each of as many calls as fill `round_seconds` (at least
    one); `setup` runs before each call, untimed. Wall and CPU time per call are each the
    best round's."""

    def one() -> float:
        if setup:
            setup()
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0

    def round_(calls: int) -> tuple[float, float, float]:
        totals = [0.0, 0.0, 0.0]
        # Without a setup a round is read once; with one, around each call only.
        for group in ([calls] if setup is None else [1] * calls):
            if setup:
                setup()
            before = meter.read()
            for _ in range(group):
                fn()
            after = meter.read()
            totals = [t + b - a for t, a, b in zip(totals, before, after, strict=True)]
        return totals[0] / calls, totals[1] / calls, totals[2] / calls

    # Warm-up (caches, compiled plans, the first reads of the pages the calls read): as long
    # as a round, or `max_calls` calls; its mean call sets the rounds' number of calls.
    started = time.perf_counter()
    warm = [one()]
    while len(warm) < max_calls and time.perf_counter() - started < round_seconds:
        warm.append(one())
    estimate = sum(warm) / len(warm)
    calls = max(1, min(max_calls, int(round_seconds / max(estimate, 1e-6))))
    measured = [round_(calls) for _ in range(rounds)]
    worker_cpu, server_cpu = min((m[1:] for m in measured), key=sum)
    return {
        "seconds": min(m[0] for m in measured),
        "cpu_seconds": worker_cpu + server_cpu,
        "worker_cpu_seconds": worker_cpu,
        "server_cpu_seconds": server_cpu,
        "calls": calls,
        "rounds": rounds,
    }


def server_pid(backend: str) -> int | None:
    """The pid of the process serving djongo's store, if it is not this one."""
    if backend == "sqlite":
        return None
    from django.db import connection

    connection.ensure_connection()
    pid = connection.connection.database.client.admin.command("hello")["djongo"]["pid"]
    return None if pid == os.getpid() else pid


def worker(argv: list[str]) -> None:
    p = argparse.ArgumentParser(prog="bench.py worker")
    p.add_argument("mode", choices=["load", "op"])
    p.add_argument("--backend", choices=["sqlite", "djongo", IN_PROCESS, "pymongo"],
                   required=True)
    p.add_argument("--dir", required=True)
    p.add_argument("--rows", type=int, required=True)
    p.add_argument("--op")
    p.add_argument("--round-seconds", type=float, default=0.3)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args(argv)
    setup_django(args.backend, args.dir)
    if args.mode == "load":
        t0 = time.perf_counter()
        load(args.rows)
        print(json.dumps({"seconds": time.perf_counter() - t0}))
        return
    rng = random.Random(18)
    ops = (pymongo_operations if args.backend == "pymongo" else orm_operations)(args.rows, rng)
    fn, setup = ops[args.op]
    # Writes that grow the data are kept to a few calls at large sizes.
    max_calls = 20 if args.op == "bulk_create" else 5000
    meter = Meter(server_pid(args.backend))
    print(json.dumps(measure(fn, setup, meter, args.round_seconds, args.rounds, max_calls)))


# ---- the driver -------------------------------------------------------------------------


def run_worker(python: str, args: list[str], timeout: float) -> dict | None:
    cmd = [python, str(Path(__file__).resolve()), "worker", *args]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return None
    if done.returncode != 0:
        raise SystemExit(f"worker failed: {' '.join(cmd)}\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def wait_until_unserved(data_dir: Path, timeout: float = 120.0) -> None:
    """Waits for the server of the embedded store in ``data_dir`` to exit (it does a few
    seconds after its last client): a store is copied closed, never while a server has it
    open. The server holds ``djongo.lock`` while it runs."""
    lock = data_dir / "djongo.lock"
    if not lock.exists():
        return
    deadline = time.monotonic() + timeout
    with open(lock, "rb") as f:
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise SystemExit(f"the store server in {data_dir} did not exit") from None
                time.sleep(0.2)
                continue
            fcntl.flock(f, fcntl.LOCK_UN)
            return


def load_template(template: Path, kind: str, python: str, rows: int, keep: bool) -> dict | None:
    """Loads `rows` entries into `template` through Django (`kind`: sqlite or djongo); with
    `keep`, a template an earlier run loaded completely is reused."""
    marker = template / "loaded.json"
    if keep and marker.exists():
        print(f"reusing {rows} rows: {kind} ({template})", flush=True)
        return json.loads(marker.read_text())
    if template.exists():
        shutil.rmtree(template)  # a load that did not finish
    template.mkdir(parents=True)
    print(f"loading {rows} rows: {kind} ({python})", flush=True)
    loaded = run_worker(
        python,
        ["load", "--backend", kind, "--dir", str(template), "--rows", str(rows)],
        timeout=24 * 3600,
    )
    if keep:
        marker.write_text(json.dumps(loaded))
    return loaded


def best(a: dict | None, b: dict | None) -> dict | None:
    """Two measurements of one operation as one: each time the better of the two (a
    timeout only when both timed out)."""
    if a is None or b is None:
        return a or b
    if a is b:
        return a
    out = dict(min(a, b, key=lambda r: r["seconds"]))
    if "cpu_seconds" in a and "cpu_seconds" in b:
        cpu = min(a, b, key=lambda r: r["cpu_seconds"])
        for key in ("cpu_seconds", "worker_cpu_seconds", "server_cpu_seconds"):
            out[key] = cpu[key]
    return out


def copy_data(template: Path, scratch: Path) -> None:
    if scratch.exists():
        # The last operation's server must not outlive its store: exiting, it would remove
        # the socket of the next one's.
        wait_until_unserved(scratch)
        shutil.rmtree(scratch)
    wait_until_unserved(template)
    shutil.copytree(template, scratch)
    sync_tree(scratch)


def sync_tree(root: Path) -> None:
    """Writes a copied store back to the disk before the operation runs, not while it
    runs: otherwise an operation on a large store shares the disk with the writeback of
    its own copy (hundreds of MB at 500,000 entries), and its commits' fsyncs wait for it."""
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        worker(sys.argv[2:])
        return
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--rows", type=int, action="append", required=True)
    p.add_argument("--out", type=Path, required=True, help="directory for results.json/.md/.png")
    p.add_argument("--python-under-test", default=sys.executable)
    p.add_argument("--label", default="this tree")
    p.add_argument(
        "--compare",
        action="append",
        default=[],
        help="LABEL=PYTHON: also measure that interpreter's djongo",
    )
    p.add_argument(
        "--op-timeout",
        type=float,
        default=600.0,
        help="seconds before an operation counts as timed out",
    )
    p.add_argument("--command", default="", help="the command line to record in the report")
    p.add_argument("--in-process", action="store_true",
                   help="also measure djongo with STORE_SERVER 'in-process'")
    p.add_argument("--repeat", type=int, default=1,
                   help="measure each operation this many times at each size, in turn, and "
                   "keep the best (default 1)")
    p.add_argument("--round-seconds", type=float, default=1.0,
                   help="length of a round of calls, and of the warm-up, at every size")
    p.add_argument("--loaded", type=Path,
                   help="keep the loaded stores in this directory and reuse those already "
                   "there (same sizes, same interpreters in the same order): for repeated runs "
                   "while working; the caller removes it")
    p.add_argument("--ops", default=",".join(n for n, _ in OPERATIONS),
                   help="comma-separated operations to measure (default: all)")
    p.add_argument("--backends", default=",".join(BACKENDS),
                   help=f"comma-separated columns to measure, of {', '.join(BACKENDS)} "
                   "(default: all; in-process only with --in-process)")
    args = p.parse_args()
    ops = [n for n in args.ops.split(",") if n]
    backends = [b for b in args.backends.split(",") if b]
    unknown = sorted({*ops} - {n for n, _ in OPERATIONS}) + sorted({*backends} - {*BACKENDS})
    if unknown:
        p.error(f"unknown operations or backends: {', '.join(unknown)}")
    targets = [(args.label, args.python_under_test)]
    for spec in args.compare:
        label, _, python = spec.partition("=")
        targets.append((label, python))
    args.out.mkdir(parents=True, exist_ok=True)
    results_path = args.out / "results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {"runs": {}}
    load_before = os.getloadavg()
    columns = [("Django + SQLite", "sqlite", args.python_under_test)]
    for label, python in targets:
        columns.append((f"djongo {label}", "djongo", python))
        if args.in_process:
            columns.append((f"djongo {label} in-process", IN_PROCESS, python))
        columns.append((f"pymongo {label}", "pymongo", python))
    columns = [c for c in columns if BACKEND_NAMES[c[1]] in backends]
    runs = {rows: {"rows": rows, "columns": {}, "loads": {}} for rows in args.rows}
    with tempfile.TemporaryDirectory(prefix="djongo-orm-bench-") as tmp:
        tmp = Path(tmp)
        templates: dict[tuple[int, str, str], Path] = {}
        kinds = [("sqlite" if backend == "sqlite" else "djongo", python)
                 for _, backend, python in columns]
        stores = list(dict.fromkeys(kinds))
        for rows in args.rows:
            for _, backend, python in columns:
                kind = "sqlite" if backend == "sqlite" else "djongo"
                if (rows, kind, python) in templates:
                    continue
                number = stores.index((kind, python))
                template = (args.loaded or tmp) / f"load-{kind}-{number}-{rows}"
                runs[rows]["loads"][f"{kind} {python}"] = load_template(
                    template, kind, python, rows, keep=args.loaded is not None)
                templates[(rows, kind, python)] = template
        # Each operation and column at every size in turn, `--repeat` times: the sizes are
        # measured minutes apart at most, under the same load of a shared machine, so their
        # ratio (the growth table) compares like with like.
        for name in ops:
            for column, backend, python in columns:
                kind = "sqlite" if backend == "sqlite" else "djongo"
                for _ in range(args.repeat):
                    for rows in args.rows:
                        scratch = tmp / "scratch"
                        copy_data(templates[(rows, kind, python)], scratch)
                        result = run_worker(
                            python,
                            ["op", "--backend", backend, "--dir", str(scratch),
                             "--rows", str(rows), "--op", name,
                             "--round-seconds", str(args.round_seconds)],
                            timeout=args.op_timeout,
                        )
                        shown = (
                            "timeout"
                            if result is None
                            else f"{result['seconds'] * 1e3:.3f} ms, CPU "
                            f"{result['cpu_seconds'] * 1e3:.3f} ms ({result['calls']} calls)"
                        )
                        print(f"{rows:>8} {name:<15} {column:<28} {shown}", flush=True)
                        measured = runs[rows]["columns"].setdefault(column, {})
                        measured[name] = best(measured.get(name, result), result)
    for rows, run in runs.items():
        results["runs"][str(rows)] = run
    results["machine"] = machine(load_before)
    results["command"] = args.command
    results_path.write_text(json.dumps(results, indent=1))
    report(results, args.out)


def machine(load_before) -> dict:
    cpu = cpu_model()
    import django

    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "django": django.get_version(),
        "load_before": [round(x, 1) for x in load_before],
        "load_after": [round(x, 1) for x in os.getloadavg()],
    }


# ---- the report -------------------------------------------------------------------------


#: What a table shows of each result: its key, and how the table's text names it.
WALL = ("seconds", "wall time")
CPU = ("cpu_seconds", "CPU time")


def fmt_ms(r: dict | None, key: str = "seconds") -> str:
    if r is None:
        return "timeout"
    if key not in r:
        return "–"  # a result recorded before CPU time was measured
    ms = r[key] * 1e3
    return f"{ms:.3f}" if ms < 10 else f"{ms:.1f}"


def ratio(a: dict | None, b: dict | None, key: str = "seconds") -> str:
    if a is None or b is None or key not in a or key not in b or not b[key]:
        return "–"
    return f"{a[key] / b[key]:.2f}"


def geomean(values: list[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else float("nan")


def report(results: dict, out: Path) -> None:
    lines = ["# ORM benchmark: Django + SQLite, djongo (embedded engine), raw pymongo", ""]
    lines.append(
        "Generated by `benches/orm/run.sh` (`benches/orm/bench.py`). Times are per call, in "
        "milliseconds, best of three rounds after a warm-up as long as a round; every operation "
        "runs in its own process on a fresh copy of the loaded data, written back to the disk "
        "before it starts, at each size in turn (so that the sizes it is compared at see the "
        "same load of the machine). get(pk) reads keys drawn from 1,000 spread over the table "
        "at every size (see `PK_POOL` in bench.py). Each size has two "
        "tables: wall time, and CPU time — the benchmark process's (every thread, getrusage) "
        "plus, for djongo through its socket and pymongo, the store server's (every thread, "
        "/proc): on a shared machine the wall clock also measures the scheduler, CPU time the "
        "work (but not a write's wait for the disk). **÷ SQLite** is djongo's time divided by "
        "Django + SQLite's (below 1: djongo is faster). The pymongo columns are the same work "
        "written as raw pymongo calls against the engine djongo started, so the difference "
        "between them and djongo is the ORM layer's cost, and between them and SQLite the "
        "engine's. Columns are named by the commit measured; the first is the tree under test, "
        "and **A ÷ B** compares it with another (below 1: it is faster). An **in-process** "
        "column is djongo with `STORE_SERVER: \"in-process\"`: the benchmark's process serves "
        "the store itself and its statements skip the socket (docs/statement-path.md). A "
        "timeout is an operation whose warm-up call alone did not finish in the time allowed."
    )
    lines.append("")
    for rows_key in sorted(results["runs"], key=int):
        run = results["runs"][rows_key]
        lines.append(f"## {int(rows_key):,} entries, {AUTHORS} authors")
        lines.append("")
        for key, what in (WALL, CPU):
            lines.append(f"### {what[0].upper()}{what[1:]}")
            lines.append("")
            lines += size_table(run, key)
    if len(results["runs"]) > 1:
        lines += growth_table(results)
    m = results.get("machine", {})
    lines += [
        "## Machine",
        "",
        f"- date: {m.get('date')}",
        f"- nproc: {m.get('nproc')}; CPU: {m.get('cpu')}",
        f"- OS: {m.get('os')}",
        f"- Python {m.get('python')}, Django {m.get('django')}",
        f"- load average before/after: {m.get('load_before')} / {m.get('load_after')} "
        "(a shared machine: absolute times move with other work; ratios within one run are "
        "steadier)",
        "",
        "## Command",
        "",
        f"    {results.get('command') or 'benches/orm/run.sh'}",
        "",
    ]
    (out / "results.md").write_text("\n".join(lines))
    plot(results, out / "results.png")


def size_table(run: dict, key: str) -> list[str]:
    """One size's table of `key` (wall or CPU time per call)."""
    lines = []
    columns = list(run["columns"])
    sqlite = run["columns"].get("Django + SQLite", {})
    djongo_cols = [c for c in columns if c.startswith("djongo")]
    # Before/after: the tree under test (first) against each other one.
    pairs = [
        (kind, djongo_cols[0].split(" ", 1)[1], other.split(" ", 1)[1])
        for other in djongo_cols[1:]
        if not other.endswith(" in-process")
        for kind in ("djongo", "pymongo")
    ]
    # In-process against the same tree through the socket.
    pairs += [
        ("djongo", c.split(" ", 1)[1], c.split(" ", 1)[1].removesuffix(" in-process"))
        for c in djongo_cols
        if c.endswith(" in-process")
    ]
    if sqlite:
        ratios = [f"{c} ÷ SQLite" for c in djongo_cols]
    else:
        ratios = []
    header = ["operation", *columns, *ratios, *[f"{kind} {a} ÷ {kind} {b}" for kind, a, b in pairs]]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("| --- |" + " ---: |" * (len(header) - 1))
    measured = [(n, what) for n, what in OPERATIONS
                if any(n in run["columns"][c] for c in columns)]
    for name, what in measured:
        cells = [f"`{what}`"]
        cells += [fmt_ms(run["columns"][c].get(name), key) for c in columns]
        if sqlite:
            cells += [ratio(run["columns"][c].get(name), sqlite.get(name), key)
                      for c in djongo_cols]
        cells += [
            ratio(
                run["columns"].get(f"{kind} {a}", {}).get(name),
                run["columns"].get(f"{kind} {b}", {}).get(name),
                key,
            )
            for kind, a, b in pairs
        ]
        lines.append("| " + " | ".join(cells) + " |")
    for c in djongo_cols if sqlite else []:
        rs = [
            run["columns"][c][n][key] / sqlite[n][key]
            for n, _ in OPERATIONS
            if (run["columns"][c].get(n) or {}).get(key) and (sqlite.get(n) or {}).get(key)
        ]
        if rs:
            lines.append("")
            lines.append(
                f"Geometric mean of {c} ÷ SQLite: **{geomean(rs):.2f}** over {len(rs)} "
                "operations."
            )
    lines.append("")
    return lines


def growth_table(results: dict) -> list[str]:
    sizes = sorted(results["runs"], key=int)
    small, large = sizes[0], sizes[-1]
    lines = [
        f"## Growth: time at {int(large):,} ÷ time at {int(small):,} entries",
        "",
        "Operations an index serves with a bounded read (*bounded*) should barely grow; the "
        "others read a share of the rows by nature (a count of half the table, a join of all of "
        "it) or write to a larger store. Each column's growth is given in wall time, then in "
        "CPU time.",
        "",
    ]
    pairs = growth_pairs(list(results["runs"][large]["columns"]),
                         list(results["runs"][small]["columns"]))
    header = [a if a == b else f"{a} ÷ {b}" for a, b in pairs]
    header = [f"{h}, {what}" for h in header for what in ("wall", "CPU")]
    lines.append("| operation | bounded | " + " | ".join(header) + " |")
    lines.append("| --- | --- |" + " ---: |" * len(header))
    for name, _ in OPERATIONS:
        cells = [name, "yes" if name in INDEXED else "no"]
        for c_large, c_small in pairs:
            a = results["runs"][large]["columns"].get(c_large, {}).get(name)
            b = results["runs"][small]["columns"].get(c_small, {}).get(name)
            cells += [ratio(a, b, WALL[0]), ratio(a, b, CPU[0])]
        if any(c != "–" for c in cells[2:]):
            lines.append("| " + " | ".join(cells) + " |")
    if any(a != b for a, b in pairs):
        lines += ["", "A column named *A ÷ B* compares two commits (the sizes were measured in "
                  "different runs): its growth includes what changed between them."]
    lines.append("")
    return lines


def growth_pairs(large: list[str], small: list[str]) -> list[tuple[str, str]]:
    """Each column of the large run with its counterpart in the small one: the column of
    the same name, else the one in the same place among its kind (the tree under test of
    each run, then the compared ones), when the sizes were measured at different commits."""
    def kind(column: str) -> str:
        return column.split(" ", 1)[0]

    pairs = []
    for column in large:
        if column in small:
            pairs.append((column, column))
            continue
        same_kind = [c for c in large if kind(c) == kind(column)]
        candidates = [c for c in small if kind(c) == kind(column) and c not in large]
        place = same_kind.index(column)
        if place < len(candidates):
            pairs.append((column, candidates[place]))
    return pairs


def plot(results: dict, path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no plot", file=sys.stderr)
        return
    sizes = sorted(results["runs"], key=int)
    fig, axes = plt.subplots(1, len(sizes), figsize=(7 * len(sizes), 5.5), squeeze=False)
    for ax, rows_key in zip(axes[0], sizes, strict=True):
        run = results["runs"][rows_key]
        columns = list(run["columns"])
        names = [n for n, _ in OPERATIONS]
        width = 0.8 / len(columns)
        for j, c in enumerate(columns):
            values = [
                (run["columns"][c].get(n) or {}).get("seconds", float("nan")) * 1e3 for n in names
            ]
            ax.bar([i + j * width for i in range(len(names))], values, width, label=c)
        ax.set_yscale("log")
        ax.set_xticks(
            [i + 0.4 - width / 2 for i in range(len(names))], names, rotation=45, ha="right"
        )
        ax.set_ylabel("ms per call (log scale)")
        ax.set_title(f"{int(rows_key):,} entries")
        ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
