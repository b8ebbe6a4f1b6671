"""Operation benchmark: djongo-server against FerretDB 1.24 (SQLite), same data, same run.

Started by benches/engine/run.sh, which builds both servers; this script starts them on
free loopback ports in a temporary directory, loads identical data through pymongo, times
each operation alternately on the two servers (so load on the shared machine hits both
alike), and writes a Markdown report.

    python bench.py --ours target/release/djongo-server --ferretdb .cache/bin/ferretdb \\
        --out benches/engine/results.md [--docs 5000] [--scale 1.0]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pymongo
from pymongo.errors import OperationFailure

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from machine import cpu_model  # noqa: E402

DB = "bench"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ping(uri: str, proc: subprocess.Popen, what: str) -> pymongo.MongoClient:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with status {proc.returncode} while starting")
        client = pymongo.MongoClient(uri, directConnection=True, serverSelectionTimeoutMS=1000)
        try:
            client.admin.command("ping")
            return client
        except Exception:  # noqa: BLE001 - not up yet
            client.close()
            time.sleep(0.2)
    raise SystemExit(f"{what} did not answer ping at {uri}")


class Server:
    def __init__(self, name: str, argv: list[str], port: int, log: Path):
        self.name = name
        self.log = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        self.client = wait_ping(f"mongodb://127.0.0.1:{port}/", self.proc, name)
        self.db = self.client[DB]

    def stop(self) -> None:
        self.client.close()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def make_items(n: int, start: int = 0) -> list[dict]:
    rng = random.Random(start + 7)
    return [{"_id": i, "ki": i % 500, "kn": i % 500, "cat": i % 50,
             "v": round(rng.uniform(0, 100), 3), "s": f"item-{i:06d}",
             "tags": [f"t{i % 7}", f"t{i % 11}"]}
            for i in range(start, start + n)]


def load(db, n_docs: int) -> None:
    db.drop_collection("items")
    db.drop_collection("cats")
    db.drop_collection("singles")
    db.drop_collection("bulk")
    items = make_items(n_docs)
    for i in range(0, len(items), 1000):
        db.items.insert_many(items[i:i + 1000])
    db.items.create_index("ki")
    db.cats.insert_many([{"_id": c, "region": f"r{c % 5}", "name": f"cat{c}"}
                         for c in range(50)])
    assert db.items.count_documents({}) == n_docs


LOOKUP_GROUP = [
    {"$lookup": {"from": "cats", "localField": "cat", "foreignField": "_id", "as": "c"}},
    {"$unwind": "$c"},
    {"$group": {"_id": "$c.region", "total": {"$sum": "$v"}}},
    {"$sort": {"_id": 1}},
]


def lookup_group_workaround(db) -> list[dict]:
    """What a FerretDB 1.24 user does instead ($lookup is not implemented there):
    $group on the server, the join on the client."""
    per_cat = {g["_id"]: g["t"] for g in db.items.aggregate(
        [{"$group": {"_id": "$cat", "t": {"$sum": "$v"}}}])}
    region = {c["_id"]: c["region"] for c in db.cats.find({}, {"region": 1})}
    totals: dict = {}
    for cat, t in per_cat.items():
        totals[region[cat]] = totals.get(region[cat], 0) + t
    return [{"_id": r, "total": totals[r]} for r in sorted(totals)]


def operations(n_docs: int, scale: float) -> list[tuple[str, str, int, Callable]]:
    """(name, description, repetitions, fn(db, rng, rep) -> None)."""
    def reps(n: int) -> int:
        return max(3, int(n * scale))

    def point(db, rng, _):
        assert db.items.find_one({"_id": rng.randrange(n_docs)}) is not None

    def scan_noindex(db, rng, _):
        assert len(list(db.items.find({"kn": rng.randrange(500)}))) == n_docs // 500

    def scan_index(db, rng, _):
        assert len(list(db.items.find({"ki": rng.randrange(500)}))) == n_docs // 500

    def insert_one(db, _rng, rep):
        db.singles.insert_one({"_id": rep, "s": f"single-{rep}", "v": rep * 0.5})

    def insert_many(db, _rng, rep):
        db.bulk.insert_many(make_items(1000, start=(rep + 1) * 1_000_000))

    def update_many(db, rng, _):
        r = db.items.update_many({"cat": rng.randrange(50)}, {"$inc": {"v": 1}})
        assert r.modified_count == n_docs // 50

    def lookup_group(db, _rng, _):
        assert len(list(db.items.aggregate(LOOKUP_GROUP))) == 5

    return [
        ("point read", "find_one({_id: k}), random k", reps(400), point),
        ("scan, no index", f"find({{kn: x}}): {n_docs // 500} of {n_docs} docs, no index",
         reps(20), scan_noindex),
        ("scan, index", f"find({{ki: x}}): {n_docs // 500} of {n_docs} docs, index on ki",
         reps(200), scan_index),
        ("insert_one", "one document per call", reps(300), insert_one),
        ("insert_many", "1000 documents per call", reps(8), insert_many),
        ("update_many", f"$inc on {n_docs // 50} docs matched by an unindexed field",
         reps(15), update_many),
        ("$lookup + $group", "items ⋈ cats on cat, $unwind, $group by region, $sort",
         reps(15), lookup_group),
    ]


def time_once(fn, db, rng, rep) -> float:
    t0 = time.perf_counter()
    fn(db, rng, rep)
    return time.perf_counter() - t0


def machine() -> list[str]:
    cpu = cpu_model()
    rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()
    return [f"date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
            f"nproc: {os.cpu_count()}; CPU: {cpu}",
            f"OS: {platform.system()} {platform.release()}",
            f"Python {platform.python_version()}, pymongo {pymongo.version}; {rustc}"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ours", required=True, help="djongo-server binary")
    ap.add_argument("--ferretdb", required=True, help="FerretDB 1.24 binary")
    ap.add_argument("--out", required=True, help="Markdown report to write")
    ap.add_argument("--docs", type=int, default=5000)
    ap.add_argument("--scale", type=float, default=1.0, help="multiplies repetitions")
    ap.add_argument("--command", default="", help="the command line, for the report")
    args = ap.parse_args()
    n_docs = args.docs - args.docs % 500

    tmp = Path(tempfile.mkdtemp(prefix="djongo-engine-bench-"))
    servers: list[Server] = []
    load_before = os.getloadavg()
    try:
        p1, p2 = free_port(), free_port()
        (tmp / "ours").mkdir()
        (tmp / "fdb-data").mkdir()
        (tmp / "fdb-state").mkdir()
        servers.append(Server("djongo-server", [args.ours, "--dbpath", str(tmp / "ours"),
                                                "--port", str(p1)], p1, tmp / "ours.log"))
        servers.append(Server("FerretDB", [
            args.ferretdb, "--handler=sqlite", f"--sqlite-url=file:{tmp}/fdb-data/",
            f"--listen-addr=127.0.0.1:{p2}", f"--state-dir={tmp}/fdb-state",
            "--debug-addr=-", "--telemetry=disable", "--log-level=error"], p2, tmp / "fdb.log"))
        for s in servers:
            load(s.db, n_docs)
            print(f"loaded {n_docs} documents into {s.name}", flush=True)

        rows = []
        for name, desc, n, fn in operations(n_docs, args.scale):
            samples: dict[str, list[float]] = {s.name: [] for s in servers}
            errors: dict[str, str] = {}
            rngs = {s.name: random.Random(name) for s in servers}
            for s in servers:   # warm-up, and find out whether the server can do it at all
                try:
                    fn(s.db, rngs[s.name], -1)
                except OperationFailure as e:
                    errors[s.name] = f"error {e.code}: {e.details.get('errmsg', e)}"
            for rep in range(n):
                for s in servers:
                    if s.name not in errors:
                        samples[s.name].append(time_once(fn, s.db, rngs[s.name], rep))
            if "FerretDB" in errors and name == "$lookup + $group":
                fdb = next(s for s in servers if s.name == "FerretDB")
                expected = list(next(s for s in servers if s.name != "FerretDB")
                                .db.items.aggregate(LOOKUP_GROUP))
                got = lookup_group_workaround(fdb.db)
                assert [g["_id"] for g in got] == [g["_id"] for g in expected]
                samples["FerretDB workaround"] = [
                    time_once(lambda db, _r, _i: lookup_group_workaround(db), fdb.db, None, i)
                    for i in range(n)]
            rows.append((name, desc, n, samples, errors))
            med = {k: statistics.median(v) * 1000 for k, v in samples.items() if v}
            print(f"{name}: " + ", ".join(f"{k} {v:.3f} ms" for k, v in med.items())
                  + "".join(f"; {k}: {v}" for k, v in errors.items()), flush=True)
    finally:
        for s in servers:
            s.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    load_after = os.getloadavg()
    write_report(args, n_docs, rows, load_before, load_after)


def write_report(args, n_docs, rows, load_before, load_after) -> None:
    def ms(v: list[float]) -> str:
        return f"{statistics.median(v) * 1000:.3f}" if v else "–"

    out = ["# Operations: djongo-server vs FerretDB 1.24 (SQLite)", "",
           "Generated by `benches/engine/run.sh`; per-operation medians in milliseconds, "
           "measured through pymongo over loopback TCP, both servers started by the same run "
           "on the same data, operations alternating between the two servers. "
           "**ratio = ours ÷ FerretDB** (below 1: we are faster).", "",
           f"Data: `items` with {n_docs} documents (`_id`, `ki` indexed, `kn` not, `cat` 0–49, "
           "`v`, `s`, `tags`), `cats` with 50. Release build of `djongo-server`; FerretDB "
           "v1.24.2 from `scripts/ferretdb-setup`, SQLite backend. Writes are acknowledged "
           "(w: 1) on both.", "",
           "| operation | what | samples | ours (ms) | FerretDB (ms) | ratio |",
           "| --- | --- | ---: | ---: | ---: | ---: |"]
    notes = []
    for name, desc, n, samples, errors in rows:
        ours = samples.get("djongo-server", [])
        fdb = samples.get("FerretDB", [])
        if "FerretDB" in errors:
            wk = samples.get("FerretDB workaround", [])
            fdb_cell = f"not implemented; workaround {ms(wk)}¹"
            ratio = (f"{statistics.median(ours) / statistics.median(wk):.3g}¹"
                     if ours and wk else "–")
            answer = errors["FerretDB"].replace("`", "")
            notes.append(f"¹ FerretDB 1.24 answers \"{answer}\". The workaround "
                         "column is what an application does instead: `$group` by `cat` on "
                         "the server, then the join with `cats` and the per-region sum in "
                         "Python; the ratio compares against that.")
        else:
            fdb_cell = ms(fdb)
            ratio = (f"{statistics.median(ours) / statistics.median(fdb):.3g}"
                     if ours and fdb else "–")
        ours_cell = ms(ours) if "djongo-server" not in errors else errors["djongo-server"]
        out.append(f"| {name} | {desc} | {n} | {ours_cell} | {fdb_cell} | {ratio} |")
    png = Path(args.out).with_suffix(".png")
    plot(rows, png)
    out += ["", f"![ours ÷ FerretDB per operation]({png.name})"]
    out += [""] + notes + ["", "## Machine", ""]
    out += [f"- {line}" for line in machine()]
    out.append(f"- load average (1, 5, 15 min) before/after: "
               f"{', '.join(f'{x:.1f}' for x in load_before)} / "
               f"{', '.join(f'{x:.1f}' for x in load_after)} (a shared 2-core machine: other "
               "work inflates absolute times; both servers see the same load, so the ratios "
               "are the steadier numbers)")
    out += ["", "## Command", "", f"    {args.command or 'benches/engine/run.sh'}", ""]
    Path(args.out).write_text("\n".join(out))
    print(f"wrote {args.out}")


def plot(rows, path: Path) -> None:
    """ours ÷ FerretDB per operation, on a log scale (against the workaround where FerretDB
    lacks the operation)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels, ratios = [], []
    for name, _desc, _n, samples, errors in rows:
        ours = samples.get("djongo-server", [])
        peer = samples.get("FerretDB workaround" if "FerretDB" in errors else "FerretDB", [])
        if ours and peer:
            # "$" would start matplotlib's math text.
            label = name + (" (vs workaround)" if "FerretDB" in errors else "")
            labels.append(label.replace("$", r"\$"))
            ratios.append(statistics.median(ours) / statistics.median(peer))
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(labels) + 1.4))
    bars = ax.barh(labels, ratios, color=["#4f81bd" if r < 1 else "#c0504d" for r in ratios])
    ax.bar_label(bars, labels=[f"{r:.3g}×" for r in ratios], padding=3, fontsize=8)
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_xscale("log")
    ax.invert_yaxis()
    ax.set_xlabel("djongo-server time ÷ FerretDB 1.24 time (log scale; below 1: faster)")
    ax.set_title("The same operations through pymongo: djongo-server vs FerretDB (SQLite)",
                 fontsize=10)
    ax.margins(x=0.2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
