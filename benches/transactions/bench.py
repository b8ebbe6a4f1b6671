"""Concurrent writers through Django: djongo on the embedded engine before and
after per-document transactions, and Django's own sqlite3 backend, same run.

Started by benches/transactions/run.sh, which builds both djongo-server
binaries. Each engine gets a pool of writer processes (Django configured
once per process, so the GIL and start-up cost nothing); for 1, 2, 4 and 8
writers, each updating its own row, every writer runs for the same few
seconds from a common start:

* transaction: ``atomic()`` around ``get()`` and ``save()`` of the row
  (a read-modify-write transaction);
* transaction + 5 ms work: the same with 5 ms of application work between
  the read and the write (what a view does under ``ATOMIC_REQUESTS``);
* single write: ``filter(pk=...).update(balance=F("balance") + 1)``.

Engines take turns cell by cell and round by round, so load on the shared
machine hits all alike. The report gives operations per second (median over
rounds), p99 latency (all rounds pooled) and failed operations, with ratios
and a plot.

    python bench.py --old OLD_BINARY --new NEW_BINARY --out-dir benches/transactions
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing as mp
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from machine import cpu_model  # noqa: E402

HERE = Path(__file__).resolve().parent
WRITERS = (1, 2, 4, 8)
MODES = ("transaction", "transaction + 5 ms work", "single write")
WORK_SECONDS = 0.005
ENGINES = ("old engine", "new engine", "sqlite3")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(binary: str, data: Path, log: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    proc = subprocess.Popen([binary, "--dbpath", str(data), "--port", str(port)],
                            stdout=open(log, "wb"), stderr=subprocess.STDOUT)  # noqa: SIM115
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, port
        except OSError:
            if proc.poll() is not None:
                raise SystemExit(f"{binary} exited while starting; see {log}") from None
            time.sleep(0.05)
    raise SystemExit(f"{binary} did not listen on {port}")


def database(engine: str, port: int | None, tmp: Path) -> dict:
    if engine == "sqlite3":
        # WAL and synchronous=FULL: every commit is durable, as each
        # acknowledged djongo-server commit is. IMMEDIATE so that concurrent
        # transactions queue for the writer instead of failing to upgrade.
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": str(tmp / "bench.sqlite3"),
                "OPTIONS": {"timeout": 30, "transaction_mode": "IMMEDIATE",
                            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"}}
    return {"ENGINE": "djongo", "NAME": "bench",
            "CLIENT": {"host": f"mongodb://127.0.0.1:{port}/", "directConnection": True}}


def writer_process(db_settings: dict, jobs: mp.Queue, results: mp.Queue) -> None:
    sys.path.insert(0, str(HERE))
    import django
    from django.conf import settings

    settings.configure(DATABASES={"default": db_settings}, INSTALLED_APPS=["benchapp"],
                       DEFAULT_AUTO_FIELD="django.db.models.AutoField", USE_TZ=False)
    django.setup()
    from benchapp.models import Account
    from django.core.management import call_command
    from django.db import DatabaseError, transaction
    from django.db.models import F

    while (job := jobs.get()) is not None:
        if job == "setup":
            call_command("migrate", run_syncdb=True, verbosity=0)
            for _ in range(max(WRITERS)):
                Account.objects.create(balance=0)
            results.put(sorted(Account.objects.values_list("pk", flat=True)))
            continue
        row, mode, start_at, duration = job
        time.sleep(max(0.0, start_at - time.time()))
        latencies: list[float] = []
        errors: Counter[str] = Counter()
        end = start_at + duration
        while time.time() < end:
            t0 = time.perf_counter()
            try:
                if mode.startswith("transaction"):
                    with transaction.atomic():
                        account = Account.objects.get(pk=row)
                        if mode != "transaction":
                            time.sleep(WORK_SECONDS)
                        account.balance += 1
                        account.save(update_fields=["balance"])
                else:
                    Account.objects.filter(pk=row).update(balance=F("balance") + 1)
                latencies.append(time.perf_counter() - t0)
            except DatabaseError as exc:
                errors[f"{type(exc).__name__}: {str(exc).splitlines()[0][:70]}"] += 1
        results.put((latencies, dict(errors)))


class Pool:
    def __init__(self, engine: str, db_settings: dict) -> None:
        self.engine = engine
        ctx = mp.get_context("spawn")
        self.results = ctx.Queue()
        self.jobs = [ctx.Queue() for _ in range(max(WRITERS))]
        self.procs = [ctx.Process(target=writer_process, args=(db_settings, q, self.results))
                      for q in self.jobs]
        for p in self.procs:
            p.start()
        self.jobs[0].put("setup")
        self.rows = self.results.get(timeout=300)

    def run(self, mode: str, writers: int, duration: float) -> tuple[list[float], Counter]:
        start_at = time.time() + 1.0
        for i in range(writers):
            self.jobs[i].put((self.rows[i], mode, start_at, duration))
        latencies: list[float] = []
        errors: Counter[str] = Counter()
        for _ in range(writers):
            lat, err = self.results.get(timeout=duration + 300)
            latencies += lat
            errors.update(err)
        return latencies, errors

    def close(self) -> None:
        for q in self.jobs:
            q.put(None)
        for p in self.procs:
            p.join(60)


def p99(values: list[float]) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[98]


def machine() -> list[str]:
    cpu = cpu_model()
    import django
    import pymongo
    rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()
    return [f"date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
            f"nproc: {os.cpu_count()}; CPU: {cpu}",
            f"OS: {platform.system()} {platform.release()}",
            f"Python {platform.python_version()}, Django {django.get_version()}, "
            f"pymongo {pymongo.version}, SQLite {__import__('sqlite3').sqlite_version}; {rustc}"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--old", required=True, help="djongo-server binary before the change")
    ap.add_argument("--new", required=True, help="djongo-server binary after the change")
    ap.add_argument("--old-ref", default="?", help="the commit --old was built from")
    ap.add_argument("--out-dir", type=Path, default=HERE)
    ap.add_argument("--duration", type=float, default=3.0, help="seconds per cell")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--command", default="benches/transactions/run.sh")
    args = ap.parse_args()

    load_before = os.getloadavg()
    cells: dict[tuple[str, str, int], dict] = {}
    with tempfile.TemporaryDirectory(prefix="djongo-txn-bench-") as tmp_name:
        tmp = Path(tmp_name)
        servers = {}
        for engine, binary in (("old engine", args.old), ("new engine", args.new)):
            servers[engine] = start_server(binary, tmp / engine.replace(" ", "-"),
                                           tmp / f"{engine.replace(' ', '-')}.log")
        pools = {}
        try:
            for engine in ENGINES:
                port = servers[engine][1] if engine in servers else None
                pools[engine] = Pool(engine, database(engine, port, tmp))
                print(f"{engine}: ready", flush=True)
            for rnd in range(args.rounds):
                for mode in MODES:
                    for writers in WRITERS:
                        # Rotate who goes first, so no engine always follows another.
                        order = ENGINES[rnd % 3:] + ENGINES[:rnd % 3]
                        for engine in order:
                            lat, err = pools[engine].run(mode, writers, args.duration)
                            cell = cells.setdefault((engine, mode, writers),
                                                    {"rates": [], "lat": [], "errors": Counter()})
                            cell["rates"].append(len(lat) / args.duration)
                            cell["lat"] += lat
                            cell["errors"].update(err)
                            print(f"round {rnd + 1} {mode:24} {writers} writers {engine:10}: "
                                  f"{len(lat) / args.duration:8.1f}/s p99 {p99(lat) * 1000:8.2f} ms"
                                  f"{' errors ' + str(sum(err.values())) if err else ''}",
                                  flush=True)
        finally:
            for pool in pools.values():
                pool.close()
            for proc, _ in servers.values():
                proc.terminate()
                proc.wait(15)
    load_after = os.getloadavg()
    summary = {key: {"rate": statistics.median(c["rates"]), "p99": p99(c["lat"]) * 1000,
                     "errors": c["errors"]} for key, c in cells.items()}
    write_report(args, summary, load_before, load_after)
    plot(args.out_dir / "results.png", summary)


def write_report(args, summary: dict, load_before, load_after) -> None:
    lines = [
        "# Concurrent writers: transactions and single writes",
        "",
        "Generated by `benches/transactions/run.sh`. Django ORM writers, each in its own process "
        "and each updating its own row (different documents), for "
        f"{args.duration:g} s per cell, {args.rounds} rounds; engines take turns cell by cell. "
        f"**old engine**: `djongo-server` built from {args.old_ref} (one store-wide writer held "
        "for a transaction's whole life); **new engine**: this tree (snapshot + overlay, "
        "per-document conflicts); **sqlite3**: Django's sqlite3 backend, WAL, "
        "synchronous=FULL, `transaction_mode=IMMEDIATE`. Both djongo-servers are release "
        "builds reached over loopback TCP; every commit is durable on all three.",
        "",
        "- *transaction*: `atomic()` around `get()` and `save()` of the writer's row;",
        "- *transaction + 5 ms work*: the same, with 5 ms of application work (a sleep) "
        "between the read and the write, as a view under `ATOMIC_REQUESTS` does;",
        "- *single write*: `filter(pk=...).update(balance=F('balance') + 1)`, autocommit.",
        "",
        "Throughput is operations per second summed over the writers (median of the rounds); "
        "p99 is the 99th percentile latency of one operation, all rounds pooled.",
        "",
    ]
    for mode in MODES:
        lines += [f"## {mode}", "",
                  "| writers | old ops/s | new ops/s | sqlite3 ops/s | new ÷ old | new ÷ sqlite3 "
                  "| old p99 ms | new p99 ms | sqlite3 p99 ms | failed (old/new/sqlite3) |",
                  "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
        for writers in WRITERS:
            c = {e: summary[(e, mode, writers)] for e in ENGINES}
            old, new, lite = (c[e]["rate"] for e in ENGINES)
            failed = "/".join(str(sum(c[e]["errors"].values())) for e in ENGINES)
            lines.append(
                f"| {writers} | {old:.0f} | {new:.0f} | {lite:.0f} | "
                f"{new / old if old else float('inf'):.2f} | "
                f"{new / lite if lite else float('inf'):.2f} | "
                f"{c['old engine']['p99']:.1f} | {c['new engine']['p99']:.1f} | "
                f"{c['sqlite3']['p99']:.1f} | {failed} |")
        lines.append("")
    errors = Counter()
    for (engine, _, _), s in summary.items():
        for message, n in s["errors"].items():
            errors[f"{engine}: {message}"] += n
    if errors:
        lines += ["Failed operations, by error:", ""]
        lines += [f"- {n} × {message}" for message, n in errors.most_common()]
        lines.append("")
    lines += ["![throughput and p99 latency](results.png)", "", "## Machine", ""]
    lines += [f"- {m}" for m in machine()]
    lines += [f"- load average (1, 5, 15 min) before/after: "
              f"{', '.join(f'{x:.1f}' for x in load_before)} / "
              f"{', '.join(f'{x:.1f}' for x in load_after)} (a shared 2-core machine: "
              "absolute numbers move with other work; the ratios are steadier)",
              "", "## Command", "", f"    {args.command}", ""]
    (args.out_dir / "results.md").write_text("\n".join(lines))
    print(f"wrote {args.out_dir / 'results.md'}")


def plot(path: Path, summary: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(MODES), figsize=(5.5 * len(MODES), 8), sharex=True)
    for col, mode in enumerate(MODES):
        for engine, style in zip(ENGINES, ("o--", "o-", "s:"), strict=True):
            rates = [summary[(engine, mode, w)]["rate"] for w in WRITERS]
            tails = [summary[(engine, mode, w)]["p99"] for w in WRITERS]
            axes[0][col].plot(WRITERS, rates, style, label=engine)
            axes[1][col].plot(WRITERS, tails, style, label=engine)
        axes[0][col].set_title(f"{mode}: throughput")
        axes[0][col].set_ylabel("operations / s")
        axes[1][col].set_title(f"{mode}: p99 latency")
        axes[1][col].set_ylabel("ms (log)")
        axes[1][col].set_yscale("log")
        axes[1][col].set_xlabel("concurrent writers (different rows)")
        axes[1][col].set_xticks(WRITERS)
        for ax in (axes[0][col], axes[1][col]):
            ax.grid(True, alpha=0.3)
            ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
