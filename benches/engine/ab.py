"""A/B of two djongo-server binaries through raw pymongo: `insert_many` of 1000 documents,
`insert_one`, and the commands Django sends for benches/orm's reads (the same shapes as
crates/server/benches/orm_shapes.rs, on 50 authors and 5,000 entries with the same indexes).
Same data, same run, calls alternating between the two servers so load on the shared
machine hits both alike.

    python benches/engine/ab.py --a /tmp/server-before --b target/release/djongo-server \\
        [--label-a a5beb69] [--label-b branch] [--rounds 40] [--out benches/engine/ab.md]

Prints (and with --out writes) the median time per call of each and the ratio b ÷ a
(below 1: b is faster). Inserted documents are benches/engine/bench.py's `items`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import Server, free_port, make_items  # noqa: E402
from bson import ObjectId  # noqa: E402

AUTHORS = 50
ENTRIES = 5000
NON_NULL = ["double", "string", "object", "array", "binData", "objectId", "bool", "date", "int",
            "timestamp", "long", "decimal", "regex"]


def load_orm(db) -> None:
    """benches/orm's data as Django stores it (orm_shapes.rs `load`)."""
    base = dt.datetime(2024, 1, 1)
    db.command("createIndexes", "benchapp_entry", indexes=[
        {"key": {"id": 1}, "name": "benchapp_entry_pkey", "unique": True,
         "partialFilterExpression": {"id": {"$type": NON_NULL}}},
        *({"key": {f: 1}, "name": f"benchapp_entry_{f}"}
          for f in ("author_id", "headline", "n", "rating", "at"))])
    # Fixed ObjectIds, so the two servers' answers can be compared whole.
    db.benchapp_author.insert_many([{"_id": ObjectId(f"{i:024x}"), "name": f"author {i}",
                                     "id": i + 1} for i in range(AUTHORS)])
    for start in range(0, ENTRIES, 1000):
        db.benchapp_entry.insert_many([
            {"_id": ObjectId(f"{10**6 + i:024x}"), "author_id": i % AUTHORS + 1,
             "headline": f"h{i % 250}", "n": i,
             "rating": (i * 7919) % 1000 / 100,
             "at": base + dt.timedelta(seconds=(i * 104729) % ENTRIES),
             "body": "lorem ipsum " * 8, "id": i + 1}
            for i in range(start, min(ENTRIES, start + 1000))])


# The pipeline Django's Author.objects.annotate(Count('entry'), Avg('entry__n')) compiles to.
ANNOTATE = [
    {"$lookup": {"from": "benchapp_entry", "localField": "id", "foreignField": "author_id",
                 "as": "__djongo_join1"}},
    {"$unwind": {"path": "$__djongo_join1", "preserveNullAndEmptyArrays": True}},
    {"$group": {
        "_id": {"g0": {"$ifNull": ["$id", None]}, "g1": {"$ifNull": ["$name", None]}},
        "a0": {"$sum": {"$cond": [{"$ne": [{"$ifNull": ["$__djongo_join1.id", None]}, None]},
                                  1, 0]}},
        "a1": {"$avg": "$__djongo_join1.n"}}},
    {"$project": {"_id": 0, "c0": "$_id.g0", "c1": "$_id.g1", "c2": "$a0", "c3": "$a1"}},
]
SELECT_RELATED = [
    {"$lookup": {"from": "benchapp_author", "localField": "author_id", "foreignField": "id",
                 "as": "__djongo_join1"}},
    {"$unwind": "$__djongo_join1"},
    {"$limit": 20},
]


def run(db, command: dict) -> dict:
    return db.command(command)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--a", required=True, help="djongo-server binary (baseline)")
    ap.add_argument("--b", required=True, help="djongo-server binary (under test)")
    ap.add_argument("--label-a", default="a")
    ap.add_argument("--label-b", default="b")
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument("--out", help="Markdown file to write")
    ap.add_argument("--command", default="", help="the command line, for the report")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="djongo-insert-ab-"))
    servers: dict[str, Server] = {}
    load_before = os.getloadavg()
    try:
        for label, binary in ((args.label_a, args.a), (args.label_b, args.b)):
            port = free_port()
            (tmp / label).mkdir()
            servers[label] = Server(label, [binary, "--dbpath", str(tmp / label),
                                            "--port", str(port)], port, tmp / f"{label}.log")
        # (documents of call r, how to send them): the documents are made before the clock starts.
        for s in servers.values():
            load_orm(s.db)
        ops = {
            "find {id: k} (get by pk)": (
                lambda r: (r * 7919) % ENTRIES + 1,
                lambda db, k: run(db, {"find": "benchapp_entry", "filter": {"id": k}, "limit": 1,
                                       "singleBatch": True})),
            "find {n: {$gte}} sort {at: -1} limit 20": (
                lambda r: None,
                lambda db, _: run(db, {"find": "benchapp_entry",
                                       "filter": {"n": {"$gte": ENTRIES // 2}},
                                       "sort": {"at": -1}, "limit": 20})),
            "aggregate [$match rating < 5, $count]": (
                lambda r: None,
                lambda db, _: run(db, {"aggregate": "benchapp_entry", "cursor": {}, "pipeline": [
                    {"$match": {"rating": {"$lt": 5.0}}}, {"$count": "c0"}]})),
            "aggregate [$lookup author, $unwind, $limit 20]": (
                lambda r: None,
                lambda db, _: run(db, {"aggregate": "benchapp_entry", "cursor": {},
                                       "pipeline": SELECT_RELATED})),
            "aggregate on authors [$lookup entries, $unwind, $group, $project] (annotate)": (
                lambda r: None,
                lambda db, _: run(db, {"aggregate": "benchapp_author", "cursor": {},
                                       "pipeline": ANNOTATE})),
            "insert_many (1000 documents)": (
                lambda r: make_items(1000, start=(r + 2) * 1_000_000),
                lambda db, docs: db.bulk.insert_many(docs)),
            "insert_one": (
                lambda r: {"_id": r, "s": f"single-{r}", "v": r * 0.5},
                lambda db, doc: db.singles.insert_one(doc)),
        }
        results = []
        for name, (make, send) in ops.items():
            samples: dict[str, list[float]] = {k: [] for k in servers}
            answers = [send(s.db, make(-1)) for s in servers.values()]  # warm-up
            if isinstance(answers[0], dict) and "cursor" in answers[0]:
                a_rows, b_rows = (r["cursor"]["firstBatch"] for r in answers)
                assert a_rows == b_rows, f"{name}: the servers answer differently"
            reps = args.rounds if "many" in name or "annotate" in name else args.rounds * 5
            for r in range(reps):
                order = list(servers.items())
                if r % 2:
                    order.reverse()
                for label, s in order:
                    payload = make(r)
                    start = time.perf_counter()
                    send(s.db, payload)
                    samples[label].append(time.perf_counter() - start)
            med = {k: statistics.median(v) * 1000 for k, v in samples.items()}
            ratio = med[args.label_b] / med[args.label_a]
            results.append((name, reps, med, ratio))
            print(f"{name}: {args.label_a} {med[args.label_a]:.3f} ms, "
                  f"{args.label_b} {med[args.label_b]:.3f} ms, ratio {ratio:.3f}", flush=True)
    finally:
        for s in servers.values():
            s.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    if args.out:
        a, b = args.label_a, args.label_b
        lines = [
            f"# djongo-server {b} against {a}", "",
            "Generated by `benches/engine/ab.py`: raw pymongo calls over loopback TCP, "
            "both servers started by the same run, calls alternating between them; medians "
            f"in milliseconds. **ratio = {b} ÷ {a}** (below 1: {b} is faster).", "",
            f"| operation | samples | {a} (ms) | {b} (ms) | ratio |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        for name, reps, med, ratio in results:
            lines.append(f"| {name} | {reps} | {med[a]:.3f} | {med[b]:.3f} | {ratio:.3f} |")
        lines += ["", "## Machine", "",
                  f"- date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
                  f"- nproc: {os.cpu_count()}",
                  f"- load average before/after: {', '.join(f'{x:.1f}' for x in load_before)}"
                  f" / {', '.join(f'{x:.1f}' for x in os.getloadavg())} (a shared machine)",
                  "", "## Command", "", f"    {args.command}", ""]
        Path(args.out).write_text("\n".join(lines))


if __name__ == "__main__":
    main()
