"""MongoDB's ODM Performance Benchmark (specifications/source/benchmarking/odm-benchmarking.md)
as django-mongodb-backend implements it in its performance_tests/, run for djongo and for
django-mongodb-backend on ONE djongo-rs engine server (issue 18).

Started by benches/odm/run.sh, which builds the server, makes the official backend's virtualenv
and finds the datasets. The driver starts one `djongo-server` on a fresh data directory and
runs every task of every backend in a process of its own (a worker), against that server:

    python bench.py --server target/release/djongo-server --data DIR --out benches/odm \\
        --backend djongo=.venv/bin/python --backend official=/path/venv/bin/python ...

Internal: `bench.py worker ...` is what the driver runs in each process; it prints one JSON
line with the task's iteration times.

Timing follows the specification: each task has setup / before / do / after / teardown
phases, only "do" is timed (wall clock, a monotonic high-resolution timer); iterations run
until --min-time seconds have passed, then stop once --min-iterations are done or --max-time
has passed; the score is the median, and the 10th..99th percentiles are recorded by the
spec's nearest-rank rule.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from machine import cpu_model  # noqa: E402

HERE = Path(__file__).resolve().parent
PERCENTILES = (10, 25, 50, 75, 90, 95, 98, 99)
UPDATED_VALUE = "updated_value"  # the spec's 13-byte update payload

# name, group, what is timed (the ORM code of one iteration), in the spec or the official
# backend's own addition
TASKS = [
    ("SmallFlatDocCreation", "flat", "`SmallFlatModel.objects.create(**doc)` × N", "spec"),
    ("SmallFlatDocUpdate", "flat", "`m.field1 = v; m.save()` × N", "spec"),
    ("SmallFlatDocFilterById", "flat", "`list(SmallFlatModel.objects.filter(id=i))` × N", "spec"),
    (
        "SmallFlatDocFilterByForeignKey",
        "flat",
        "`list(SmallFlatModelFk.objects.filter(field_fk=k))` × N",
        "spec",
    ),
    (
        "SmallFlatDocFilterPkByIn",
        "flat",
        "`list(SmallFlatModel.objects.filter(id__in=ids))`, 100 ids",
        "official",
    ),
    ("LargeFlatDocCreation", "flat", "`LargeFlatModel.objects.create(**doc)` × N", "spec"),
    ("LargeFlatDocUpdate", "flat", "`m.field1 = v; m.save()` × N", "spec"),
    (
        "LargeFlatDocFilterPkByIn",
        "flat",
        "`list(LargeFlatModel.objects.filter(id__in=ids))`, 100 ids",
        "official",
    ),
    ("LargeNestedDocCreation", "nested", "build the nested model, `save()` × N", "spec"),
    (
        "LargeNestedDocUpdate",
        "nested",
        "`m.embedded_str_doc_1.field1 = v; m.save()` × N",
        "spec",
    ),
    (
        "LargeNestedDocFilterByUniqueField",
        "nested",
        "`list(LargeNestedModel.objects.filter(embedded_str_doc_1__unique_field=u))` × N",
        "spec",
    ),
    (
        "LargeNestedDocFilterArrayByUniqueField",
        "nested",
        "`list(LargeNestedModel.objects.filter(embedded_str_doc_array__unique_field=u))` × N",
        "spec",
    ),
]
TASK_NAMES = [t[0] for t in TASKS]


# ---- the worker: one task, one backend, one process ------------------------------------


def setup_django(backend: str, dbpath: str, sock: str) -> None:
    os.environ["ODM_BACKEND"] = backend
    os.environ["ODM_DBPATH"] = dbpath
    os.environ["ODM_SOCKET"] = sock
    os.environ["DJANGO_SETTINGS_MODULE"] = "settings"
    sys.path.insert(0, str(HERE))
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", run_syncdb=True, verbosity=0)


def load_json(path: Path):
    from bson import json_util

    return json_util.loads(path.read_text())


class Task:
    """The phases of one benchmark task; `do` is what is timed."""

    dataset: str  # path under the data directory
    size_per_op: int  # bytes counted per operation (the spec's "dataset size")

    def __init__(self, data: Path, n: int):
        self.n = n
        self.path = data / self.dataset
        self.document = load_json(self.path)
        self.size_per_op = self.path.stat().st_size
        self.ops = n

    @property
    def data_size(self) -> int:
        return self.size_per_op * self.ops

    def setup(self) -> None:
        pass

    def before(self) -> None:
        pass

    def do(self) -> None:
        raise NotImplementedError

    def after(self) -> None:
        pass

    def teardown(self) -> None:
        pass


class SmallFlat(Task):
    dataset = "flat-models/small_doc.json"

    def model(self):
        from odmapp.models import SmallFlatModel

        return SmallFlatModel

    def setup(self) -> None:
        # Inserted one by one, keeping each id, as the spec's setup says.
        self.ids = [self.model().objects.create(**self.document).pk for _ in range(self.n)]

    def teardown(self) -> None:
        self.model().objects.all().delete()


class SmallFlatDocCreation(SmallFlat):
    def setup(self) -> None:
        pass

    def do(self) -> None:
        create = self.model().objects.create
        for _ in range(self.n):
            create(**self.document)

    def after(self) -> None:
        self.model().objects.all().delete()


class UpdateMixin:
    """The spec counts the 13-byte `updated_value` per operation; each iteration writes a
    new value ("updated_value0", "updated_value1", ...) so every save changes the field."""

    def setup(self) -> None:
        super().setup()
        self.size_per_op = len(UPDATED_VALUE)
        self.models = list(self.model().objects.all())
        self.iteration = 0

    def do(self) -> None:
        value = UPDATED_VALUE + str(self.iteration)
        for m in self.models:
            m.field1 = value
            m.save()
        self.iteration += 1


class SmallFlatDocUpdate(UpdateMixin, SmallFlat):
    pass


class SmallFlatDocFilterById(SmallFlat):
    def do(self) -> None:
        objects = self.model().objects
        for pk in self.ids:
            list(objects.filter(id=pk))


class SmallFlatDocFilterByForeignKey(SmallFlat):
    def setup(self) -> None:
        from odmapp.models import ForeignKeyModel, SmallFlatModelFk

        self.fks = []
        for _ in range(self.n):
            fk = ForeignKeyModel.objects.create(name="foreign_key_name")
            self.fks.append(fk.pk)
            SmallFlatModelFk.objects.create(field_fk=fk, **self.document)

    def do(self) -> None:
        from odmapp.models import SmallFlatModelFk

        objects = SmallFlatModelFk.objects
        for fk in self.fks:
            list(objects.filter(field_fk=fk))

    def teardown(self) -> None:
        from odmapp.models import ForeignKeyModel, SmallFlatModelFk

        SmallFlatModelFk.objects.all().delete()
        ForeignKeyModel.objects.all().delete()


class PkByInMixin:
    """The official backend's extra task: one query for 100 primary keys. Its own code passes
    a lazy `values_list(...)[:100]` queryset (a subquery); here the 100 ids are a list, which
    is what the task's name says it measures."""

    def setup(self) -> None:
        self.model().objects.bulk_create(self.model()(**self.document) for _ in range(self.n))
        self.ids = list(self.model().objects.values_list("id", flat=True)[:100])
        self.ops = len(self.ids)

    def do(self) -> None:
        rows = list(self.model().objects.filter(id__in=self.ids))
        if len(rows) != len(self.ids):
            raise AssertionError(f"expected {len(self.ids)} rows, got {len(rows)}")


class SmallFlatDocFilterPkByIn(PkByInMixin, SmallFlat):
    pass


class LargeFlat(Task):
    dataset = "flat-models/large_doc.json"

    def model(self):
        from odmapp.models import LargeFlatModel

        return LargeFlatModel

    def setup(self) -> None:
        self.model().objects.bulk_create(self.model()(**self.document) for _ in range(self.n))

    def teardown(self) -> None:
        self.model().objects.all().delete()


class LargeFlatDocCreation(LargeFlat):
    def setup(self) -> None:
        pass

    def do(self) -> None:
        create = self.model().objects.create
        for _ in range(self.n):
            create(**self.document)

    def after(self) -> None:
        self.model().objects.all().delete()


class LargeFlatDocUpdate(UpdateMixin, LargeFlat):
    pass


class LargeFlatDocFilterPkByIn(PkByInMixin, LargeFlat):
    pass


class LargeNested(Task):
    dataset = "nested-models/large_doc_nested.json"

    def model(self):
        from odmapp.models import LargeNestedModel

        return LargeNestedModel

    def build(self):
        """One LargeNestedModel from the document, every string sub-document given a fresh
        `unique_field` (an ObjectId's hex), as the official tasks do."""
        from bson import ObjectId
        from odmapp.models import IntegerEmbeddedModel, StringEmbeddedModel

        model = self.model()()
        for name, value in self.document.items():
            if "array" in name:
                items = []
                for item in value:
                    sub = StringEmbeddedModel(**item)
                    sub.unique_field = str(ObjectId())
                    items.append(sub)
                setattr(model, name, items)
            elif "embedded_str_doc" in name:
                sub = StringEmbeddedModel(**value)
                sub.unique_field = str(ObjectId())
                setattr(model, name, sub)
            else:
                setattr(model, name, IntegerEmbeddedModel(**value))
        return model

    def setup(self) -> None:
        self.saved = []
        for _ in range(self.n):
            model = self.build()
            model.save()
            self.saved.append(model)

    def teardown(self) -> None:
        self.model().objects.all().delete()


class LargeNestedDocCreation(LargeNested):
    def setup(self) -> None:
        pass

    def do(self) -> None:
        for _ in range(self.n):
            self.build().save()

    def after(self) -> None:
        self.model().objects.all().delete()


class LargeNestedDocUpdate(LargeNested):
    def setup(self) -> None:
        super().setup()
        self.size_per_op = len(UPDATED_VALUE)
        self.models = list(self.model().objects.all())
        self.iteration = 0

    def do(self) -> None:
        value = UPDATED_VALUE + str(self.iteration)
        for m in self.models:
            m.embedded_str_doc_1.field1 = value
            m.save()
        self.iteration += 1


class LargeNestedDocFilterByUniqueField(LargeNested):
    def setup(self) -> None:
        super().setup()
        self.keys = [m.embedded_str_doc_1.unique_field for m in self.saved]

    def do(self) -> None:
        objects = self.model().objects
        for key in self.keys:
            if len(list(objects.filter(embedded_str_doc_1__unique_field=key))) != 1:
                raise AssertionError(f"embedded_str_doc_1.unique_field={key}: not one row")


class LargeNestedDocFilterArrayByUniqueField(LargeNested):
    def setup(self) -> None:
        super().setup()
        self.keys = [m.embedded_str_doc_array[0].unique_field for m in self.saved]

    def do(self) -> None:
        objects = self.model().objects
        for key in self.keys:
            if len(list(objects.filter(embedded_str_doc_array__unique_field=key))) != 1:
                raise AssertionError(f"embedded_str_doc_array.unique_field={key}: not one row")


def percentiles(times: list[float]) -> dict[str, float]:
    """The spec's nearest-rank rule, i = int(N * p / 100) - 1 (never below the first)."""
    ordered = sorted(times)
    return {f"p{p}": ordered[max(0, int(len(ordered) * p / 100) - 1)] for p in PERCENTILES}


def process_cpu(pid: int | None) -> float | None:
    """The CPU seconds (user + system) process `pid` has used; None where /proc has no
    answer. The system part includes the kernel's work for the process's writes and
    fsyncs."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def run_task(task: Task, min_time: float, min_iterations: int, max_time: float,
             server_pid: int | None = None) -> dict:
    task.setup()
    times: list[float] = []
    client_cpu = server_cpu = 0.0
    start = time.monotonic()
    while True:
        task.before()
        c0, s0 = time.process_time(), process_cpu(server_pid)
        t0 = time.perf_counter()
        task.do()
        times.append(time.perf_counter() - t0)
        client_cpu += time.process_time() - c0
        s1 = process_cpu(server_pid)
        if s0 is not None and s1 is not None:
            server_cpu += s1 - s0
        task.after()
        elapsed = time.monotonic() - start
        if elapsed >= min_time and (len(times) >= min_iterations or elapsed >= max_time):
            break
    task.teardown()
    pct = percentiles(times)
    return {
        "times": times,
        "iterations": len(times),
        "median": pct["p50"],
        "percentiles": pct,
        "data_size": task.data_size,
        "ops": task.ops,
        "mb_per_s": task.data_size / pct["p50"] / 1e6,
        # CPU per timed iteration, mean (a CPU clock ticks in 10 ms steps: means, not medians)
        "client_cpu": client_cpu / len(times),
        "server_cpu": server_cpu / len(times) if server_pid is not None else None,
    }


def worker(args) -> None:
    setup_django(args.backend, args.dbpath, args.socket)
    task_class = globals()[args.task]
    n = args.large_docs if args.task.startswith("LargeFlat") else args.docs
    result = run_task(task_class(Path(args.data), n), args.min_time, args.min_iterations,
                      args.max_time, args.server_pid)
    result["versions"] = versions()
    print("RESULT " + json.dumps(result), flush=True)


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for dist in ("django", "pymongo", "django-mongodb-backend", "djongo-rs", "djongo"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            pass
    return out


# ---- the driver ---------------------------------------------------------------------------


def start_server(binary: str, dbpath: Path) -> tuple[subprocess.Popen, Path]:
    """One djongo-server on `dbpath`, serving only its owner-only socket, `dbpath/djongo.sock`:
    the socket djongo's embedded default joins, and the one the official backend is given."""
    log = (dbpath.parent / "djongo-server.out").open("wb")
    proc = subprocess.Popen(
        [binary, "--dbpath", str(dbpath), "--no-tcp"], stdout=log, stderr=subprocess.STDOUT
    )
    sock = dbpath / "djongo.sock"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"djongo-server exited ({proc.returncode}); see {log.name}")
        if sock.exists():
            with socket.socket(socket.AF_UNIX) as s:
                try:
                    s.connect(str(sock))
                    return proc, sock
                except OSError:
                    pass
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("djongo-server did not open its socket within 30 s")


def drop_databases(sock: Path) -> None:
    from urllib.parse import quote_plus

    import pymongo

    client = pymongo.MongoClient("mongodb://" + quote_plus(str(sock)),
                                 serverSelectionTimeoutMS=10000)
    try:
        for name in client.list_database_names():
            if name.startswith("odm_"):
                client.drop_database(name)
    finally:
        client.close()


def run_worker(python: str, backend: str, task: str, args, dbpath: Path, sock: Path,
               server_pid: int) -> dict:
    cmd = [
        python, str(Path(__file__).resolve()), "worker", "--backend", backend, "--task", task,
        "--dbpath", str(dbpath), "--socket", str(sock), "--data", str(args.data),
        "--server-pid", str(server_pid),
        "--docs", str(args.docs), "--large-docs", str(args.large_docs),
        "--min-time", str(args.min_time), "--min-iterations", str(args.min_iterations),
        "--max-time", str(args.max_time),
    ]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.task_timeout,
                              cwd=HERE)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {args.task_timeout} s"}
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-12:]
    return {"error": "\n".join(tail) or f"exit status {proc.returncode}"}


def driver(args) -> None:
    # Absolute, not resolved: a virtualenv's python is a symlink that must stay one.
    backends = [(name, str(Path(python).absolute()))
                for name, python in (b.split("=", 1) for b in args.backend)]
    tasks = args.task or TASK_NAMES
    out = Path(args.out)
    load_before = os.getloadavg()
    results: dict = {
        "settings": {
            "docs": args.docs,
            "large_docs": args.large_docs,
            "min_time": args.min_time,
            "min_iterations": args.min_iterations,
            "max_time": args.max_time,
            "rounds": args.rounds,
        },
        "datasets": datasets(Path(args.data)),
        "columns": [name for name, _ in backends],
        "tasks": {},
    }
    workdir = Path(tempfile.mkdtemp(prefix="odm-bench-"))
    dbpath = workdir / "store"
    dbpath.mkdir(mode=0o700)
    server, sock = start_server(args.server, dbpath)
    try:
        for i, task in enumerate(tasks):
            runs: dict[str, list[dict]] = {name: [] for name, _ in backends}
            for r in range(args.rounds):
                # Alternate which backend goes first, so that neither always runs on a store
                # the other has just grown (or on a machine the other has just warmed); with
                # several rounds, the backends take turns, so a change in the machine's load
                # falls on both.
                order = backends if (i + r) % 2 == 0 else list(reversed(backends))
                for name, python in order:
                    drop_databases(sock)
                    started = time.monotonic()
                    result = run_worker(python, name, task, args, dbpath, sock, server.pid)
                    result["wall"] = time.monotonic() - started
                    runs[name].append(result)
                    shown = (
                        f"median {result['median'] * 1e3:9.1f} ms, "
                        f"{result['mb_per_s']:8.3f} MB/s, {result['iterations']} iterations"
                        if "error" not in result
                        else "FAILED: " + result["error"].splitlines()[-1]
                    )
                    print(f"{task:<40} {name:<14} {shown}", flush=True)
            results["tasks"][task] = {name: pooled(rs) for name, rs in runs.items()}
            if server.poll() is not None:
                raise RuntimeError("djongo-server died during the run")
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
        shutil.rmtree(workdir, ignore_errors=True)
    # The documents' versions: what each column's interpreter had installed.
    results["versions"] = {
        name: next(
            (r["versions"] for r in (results["tasks"][t].get(name, {}) for t in tasks)
             if "versions" in r),
            {},
        )
        for name, _ in backends
    }
    results["machine"] = machine(load_before, args.server)
    results["command"] = args.command
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    report(results, out)


def pooled(runs: list[dict]) -> dict:
    """One backend's rounds of one task as one result: every round's iterations together
    (the median of them all), CPU means weighted by iterations. A failed round fails it."""
    failed = next((r for r in runs if "error" in r), None)
    if failed is not None or len(runs) == 1:
        return failed or runs[0]
    times = [t for r in runs for t in r["times"]]
    n = len(times)
    pct = percentiles(times)
    first = runs[0]
    server = [r["server_cpu"] for r in runs]
    return {
        **first,
        "times": times,
        "iterations": n,
        "rounds": len(runs),
        "median": pct["p50"],
        "percentiles": pct,
        "mb_per_s": first["data_size"] / pct["p50"] / 1e6,
        "client_cpu": sum(r["client_cpu"] * r["iterations"] for r in runs) / n,
        "server_cpu": (sum(s * r["iterations"] for s, r in zip(server, runs, strict=True)) / n
                       if None not in server else None),
        "wall": sum(r["wall"] for r in runs),
    }


def datasets(data: Path) -> dict:
    import hashlib

    out = {}
    for rel in ("flat-models/small_doc.json", "flat-models/large_doc.json",
                "nested-models/large_doc_nested.json"):
        body = (data / rel).read_bytes()
        out[rel] = {"bytes": len(body), "sha256": hashlib.sha256(body).hexdigest()}
    return out


def machine(load_before, server: str) -> dict:
    cpu = cpu_model()
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, cwd=HERE).stdout.strip()
    except OSError:
        commit = "unknown"
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit,
        "server": server,
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "load_before": [round(x, 1) for x in load_before],
        "load_after": [round(x, 1) for x in os.getloadavg()],
    }


# ---- the report ---------------------------------------------------------------------------


def fmt_seconds(s: float) -> str:
    ms = s * 1e3
    return f"{ms:,.0f} ms" if ms >= 100 else f"{ms:.1f} ms"


def geomean(values: list[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else float("nan")


def ratios(results: dict, column: str, peer: str) -> dict[str, float]:
    out = {}
    for task, cols in results["tasks"].items():
        a, b = cols.get(column, {}), cols.get(peer, {})
        if "median" in a and "median" in b:
            out[task] = a["median"] / b["median"]
    return out


def report(results: dict, out: Path) -> None:
    columns = results["columns"]
    peer = "official"
    ours = [c for c in columns if c != peer]
    s = results["settings"]
    lines = [
        "# ODM Performance Benchmark: djongo and django-mongodb-backend on one djongo-rs server",
        "",
        "Generated by `benches/odm/run.sh` (`benches/odm/bench.py`). The tasks, models and "
        "datasets are those of MongoDB's [ODM Performance Benchmarking specification]"
        "(https://github.com/mongodb/specifications/blob/master/source/benchmarking/"
        "odm-benchmarking.md) as django-mongodb-backend implements it in its "
        "`performance_tests/` (its two extra tasks, *FilterPkByIn*, included). Both backends "
        "talk to the same `djongo-server` process (release build) over its Unix socket, one "
        "task at a time, each task in a fresh process on an empty database.",
        "",
        "- **djongo**: the embedded default (`DATA_DIR` = the server's data directory): it "
        "joins the server the script started, as every process of a project joins its store's "
        "server, and sends the ORM's statements with its own client (no pymongo).",
        "- **djongo-client** (when present): djongo with `CLIENT` pointing at the same socket, so "
        "every statement goes through pymongo, as it does against MongoDB.",
        "- **official**: django-mongodb-backend (PyPI, the 5.2 series), `HOST` = the same "
        "socket, through pymongo, with its own settings (ObjectId primary keys).",
        "",
        f"Times are the median iteration (the spec's score), each iteration doing N operations "
        f"(N = {s['docs']:,}; {s['large_docs']:,} for the large flat model); MB/s is the spec's "
        "score (dataset bytes × operations ÷ median). **÷ official** is djongo's median ÷ the "
        "official backend's: below 1, djongo is faster. Iterations ran until "
        f"{s['min_time']:g} s had passed, then stopped at {s['min_iterations']} iterations or "
        f"{s['max_time']:g} s, whichever came first."
        + (f" Each task ran {s['rounds']} times per backend, the backends taking turns (so that "
           "a change in the machine's load falls on both); a median and the iterations count "
           "are over all rounds' iterations." if s.get("rounds", 1) > 1 else ""),
        "",
    ]
    header = ["task", "what one iteration does"]
    for c in columns:
        header += [f"{c} median", f"{c} MB/s", f"{c} iters"]
    header += [f"{c} ÷ official" for c in ours]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("| --- | --- |" + " ---: |" * (len(header) - 2))
    task_info = {t[0]: t for t in TASKS}
    for task, cols in results["tasks"].items():
        _, group, what, origin = task_info[task]
        label = task + ("" if origin == "spec" else " *")
        cells = [label, what]
        for c in columns:
            r = cols.get(c, {})
            if "median" in r:
                cells += [fmt_seconds(r["median"]), f"{r['mb_per_s']:.3f}", str(r["iterations"])]
            else:
                cells += ["failed", "–", "–"]
        for c in ours:
            a, b = cols.get(c, {}), cols.get(peer, {})
            cells.append(
                f"**{a['median'] / b['median']:.2f}**" if "median" in a and "median" in b else "–"
            )
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("\\* the official backend's own addition to the spec's tasks.")
    lines.append("")
    for c in ours:
        rs = ratios(results, c, peer)
        if rs:
            worst = max(rs, key=rs.get)
            lines.append(
                f"{c} ÷ official: geometric mean **{geomean(list(rs.values())):.2f}** over "
                f"{len(rs)} tasks; {sum(v <= 1.0 for v in rs.values())} of {len(rs)} at or "
                f"below 1.0; highest {rs[worst]:.2f} ({worst})."
            )
            lines.append("")
    lines += cpu_table(results, columns, ours, peer)
    failures = [
        (task, c, r["error"])
        for task, cols in results["tasks"].items()
        for c, r in cols.items()
        if "error" in r
    ]
    if failures:
        lines += ["## Failures", ""]
        for task, c, err in failures:
            lines.append(f"- {task}, {c}:")
            lines.append("")
            lines += ["      " + line for line in err.splitlines()]
            lines.append("")
    lines += ["## Percentiles (ms, nearest rank)", ""]
    lines.append("| task | column | " + " | ".join(f"p{p}" for p in PERCENTILES) + " |")
    lines.append("| --- | --- |" + " ---: |" * len(PERCENTILES))
    for task, cols in results["tasks"].items():
        for c in columns:
            r = cols.get(c, {})
            if "percentiles" in r:
                cells = [f"{r['percentiles'][f'p{p}'] * 1e3:.1f}" for p in PERCENTILES]
                lines.append(f"| {task} | {c} | " + " | ".join(cells) + " |")
    lines.append("")
    m = results.get("machine", {})
    lines += ["## Datasets", ""]
    for rel, d in results.get("datasets", {}).items():
        lines.append(f"- `{rel}`: {d['bytes']:,} bytes, sha256 `{d['sha256'][:16]}…`")
    lines += [
        "",
        "From `source/benchmarking/odm-data/{flat,nested}_models.tgz` of mongodb/specifications.",
        "",
        "## Versions and machine",
        "",
    ]
    for c, v in results.get("versions", {}).items():
        lines.append(f"- {c}: " + ", ".join(f"{k} {val}" for k, val in v.items()))
    lines += [
        f"- djongo-rs commit {m.get('commit')}; server `{m.get('server')}`",
        f"- date: {m.get('date')}",
        f"- nproc: {m.get('nproc')}; CPU: {m.get('cpu')}",
        f"- OS: {m.get('os')}; Python {m.get('python')}",
        f"- load average before/after: {m.get('load_before')} / {m.get('load_after')} "
        "(a shared machine: absolute times move with other work; the ratios, measured "
        "task by task one right after the other, are steadier)",
        "",
        "## Command",
        "",
        f"    {results.get('command') or 'benches/odm/run.sh'}",
        "",
    ]
    (out / "results.md").write_text("\n".join(lines))
    plot(results, out / "results.png")


def cpu(r: dict) -> float | None:
    """Client + server CPU seconds of one iteration (mean), if both were measured."""
    if r.get("client_cpu") is None or r.get("server_cpu") is None:
        return None
    return r["client_cpu"] + r["server_cpu"]


def cpu_table(results: dict, columns: list[str], ours: list[str], peer: str) -> list[str]:
    """The CPU each backend spent per iteration: its own process and the server's. Steadier
    than wall time on a loaded machine (others' work does not count), but blind to time spent
    waiting for the disk."""
    if not any(cpu(r) is not None for cols in results["tasks"].values() for r in cols.values()):
        return []
    lines = ["## CPU per iteration", "",
             "Mean CPU time of one timed iteration: the backend's process (client) and the "
             "server's process (server, user + system: the kernel's work for its writes and "
             "fsyncs included, the wait for the disk not). **÷ official** compares the sums.", ""]
    header = ["task"]
    for c in columns:
        header += [f"{c} client", f"{c} server"]
    header += [f"{c} ÷ official" for c in ours]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("| --- |" + " ---: |" * (len(header) - 1))
    cpu_ratios: dict[str, list[float]] = {c: [] for c in ours}
    for task, cols in results["tasks"].items():
        cells = [task]
        for c in columns:
            r = cols.get(c, {})
            if cpu(r) is None:
                cells += ["–", "–"]
            else:
                cells += [fmt_seconds(r["client_cpu"]), fmt_seconds(r["server_cpu"])]
        for c in ours:
            a, b = cpu(cols.get(c, {})), cpu(cols.get(peer, {}))
            if a is not None and b:
                cpu_ratios[c].append(a / b)
                cells.append(f"**{a / b:.2f}**")
            else:
                cells.append("–")
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    for c, rs in cpu_ratios.items():
        if rs:
            lines.append(f"{c} ÷ official, CPU: geometric mean **{geomean(rs):.2f}**; "
                         f"{sum(v <= 1.0 for v in rs)} of {len(rs)} at or below 1.0.")
            lines.append("")
    return lines


def plot(results: dict, path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no plot", file=sys.stderr)
        return
    columns = results["columns"]
    tasks = list(results["tasks"])
    fig, (left, right) = plt.subplots(1, 2, figsize=(16, 6.5))
    width = 0.8 / len(columns)
    for j, c in enumerate(columns):
        values = [results["tasks"][t].get(c, {}).get("median", float("nan")) for t in tasks]
        left.bar([i + j * width for i in range(len(tasks))], values, width, label=c)
    left.set_yscale("log")
    left.set_ylabel("median iteration (s, log scale)")
    left.set_xticks([i + 0.4 - width / 2 for i in range(len(tasks))])
    left.set_xticklabels(tasks, rotation=60, ha="right", fontsize=8)
    left.legend()
    left.set_title("median time of one iteration")
    ours = [c for c in columns if c != "official"]
    width = 0.8 / max(1, len(ours))
    for j, c in enumerate(ours):
        rs = ratios(results, c, "official")
        right.bar([i + j * width for i in range(len(tasks))],
                  [rs.get(t, float("nan")) for t in tasks], width, label=f"{c} ÷ official")
    right.axhline(1.0, color="black", linewidth=0.8)
    right.set_ylabel("ratio (below 1: djongo faster)")
    right.set_xticks([i + 0.4 - width / 2 for i in range(len(tasks))])
    right.set_xticklabels(tasks, rotation=60, ha="right", fontsize=8)
    right.legend()
    right.set_title("djongo ÷ django-mongodb-backend, same server")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="mode")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data", required=True, help="directory holding flat-models/ and "
                        "nested-models/ (the extracted odm-data tarballs)")
    common.add_argument("--docs", type=int, default=10000)
    common.add_argument("--large-docs", type=int, default=10000)
    common.add_argument("--min-time", type=float, default=30.0)
    common.add_argument("--min-iterations", type=int, default=10)
    common.add_argument("--max-time", type=float, default=60.0)
    d = sub.add_parser("run", parents=[common])
    d.add_argument("--server", required=True, help="the djongo-server binary")
    d.add_argument("--backend", action="append", required=True, metavar="NAME=PYTHON",
                   help="djongo, djongo-client or official, and the interpreter to run it")
    d.add_argument("--task", action="append", choices=TASK_NAMES)
    d.add_argument("--task-timeout", type=float, default=1800)
    d.add_argument("--rounds", type=int, default=1,
                   help="run each task this many times per backend, the backends taking turns; "
                        "the rounds' iterations are pooled")
    d.add_argument("--out", default=str(HERE))
    d.add_argument("--command", default="")
    w = sub.add_parser("worker", parents=[common])
    w.add_argument("--backend", required=True)
    w.add_argument("--task", required=True, choices=TASK_NAMES)
    w.add_argument("--dbpath", required=True)
    w.add_argument("--socket", required=True)
    w.add_argument("--server-pid", type=int, help="the server's pid, to read its CPU time")
    args = parser.parse_args()
    if args.mode == "worker":
        worker(args)
    elif args.mode == "run":
        driver(args)
    else:
        parser.print_help()


if __name__ == "__main__":
    main()
