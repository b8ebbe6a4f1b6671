"""What a foreign key costs a write, on one djongo-server, through raw pymongo.

Three collections with the same documents and indexes as Django makes them
(a unique ``id`` on the parents, an index on ``author_id``):

- ``plain_book``: no constraint (the path of every collection without one);
- ``book``: ``author_id`` refers to ``author.id`` (each insert looks its author
  up in the unique index and claims it);
- deletes of authors, from ``plain_author`` (nothing refers to it) and from
  ``author`` (referred to: each delete looks for a book in ``author_id``'s index).

Calls alternate between the two sides of each pair, so load on the shared
machine hits both alike; prints the median time per call and the ratio.

    python benches/engine/foreign_keys.py --server target/debug/djongo-server [--rounds 30]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import Server, free_port  # noqa: E402

AUTHORS = 200
BATCH = 500


def setup(db) -> None:
    for author in ("author", "plain_author"):
        db.command("createIndexes", author, indexes=[
            {"key": {"id": 1}, "name": f"{author}_pkey", "unique": True,
             "partialFilterExpression": {"id": {"$type": ["int", "long"]}}}])
        db[author].insert_many([{"id": i, "name": f"a{i}"} for i in range(AUTHORS)])
    for book in ("book", "plain_book"):
        db.command("createIndexes", book, indexes=[
            {"key": {"author_id": 1}, "name": f"{book}_author_id"}])
    db.command({"collMod": "book", "foreignKeys": [
        {"name": "book_author_fk", "field": "author_id", "references": "author",
         "referencedField": "id"}]})


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", required=True)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="fk-bench-"))
    port = free_port()
    server = Server("fk", [args.server, "--dbpath", str(tmp / "data"), "--port", str(port)],
                    port, tmp / "server.log")
    try:
        db = server.db
        setup(db)
        times: dict[str, list[float]] = {k: [] for k in
                                         ("insert plain", "insert fk", "delete plain",
                                          "delete referred")}
        next_id = AUTHORS
        for r in range(args.rounds):
            docs = [{"author_id": (r * BATCH + i) % AUTHORS, "title": f"t{i}"}
                    for i in range(BATCH)]
            order = [("insert plain", "plain_book"), ("insert fk", "book")]
            for label, coll in (order if r % 2 else order[::-1]):
                batch = [dict(d) for d in docs]
                times[label].append(timed(lambda coll=coll, batch=batch:
                                          db[coll].insert_many(batch)))
            # A fresh author on each side, deleted: the referred side must
            # look for books that refer to it (none do, so it may go).
            for coll in ("author", "plain_author"):
                db[coll].insert_one({"id": next_id, "name": "x"})
            deletes = [("delete plain", "plain_author"), ("delete referred", "author")]
            for label, coll in (deletes if r % 2 else deletes[::-1]):
                times[label].append(timed(lambda coll=coll, i=next_id:
                                          db[coll].delete_one({"id": i})))
            next_id += 1
        med = {k: statistics.median(v) for k, v in times.items()}
        print(f"{args.rounds} rounds; insert_many of {BATCH} books, delete_one of an author")
        print("| call | no constraint (ms) | with constraint (ms) | ratio |")
        print("| --- | ---: | ---: | ---: |")
        for call, a, b in (("insert_many", "insert plain", "insert fk"),
                           ("delete_one", "delete plain", "delete referred")):
            print(f"| {call} | {med[a] * 1000:.2f} | {med[b] * 1000:.2f} | "
                  f"{med[b] / med[a]:.2f} |")
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
