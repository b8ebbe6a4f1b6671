"""How a 50-document delete grows with the collection, with and without secondary indexes.

The ORM benchmark's delete grows 2.7x from 5,000 to 500,000 entries (benches/orm/results.md),
raw pymongo's 3.1x on the same engine. This isolates the engine: a djongo-server (release
build) on a Unix socket, a collection of N documents shaped like the benchmark's entries,
with the benchmark's five secondary indexes or none, then rounds of inserting 50 documents
and deleting them with one delete_many. Prints the median wall time, the server
process's mean CPU time (every thread, from /proc) and the median bytes it writes (its
commit's pages: /proc/<pid>/io) per delete. The peer, in the same run: SQLite (the
standard library's, with the settings Django leaves it: a rollback journal, synchronous
FULL) holding the same rows and indexes in a file, deleting the same rows by rowid; its CPU
and bytes are this process's while the DELETE and its commit run.

    cargo build --release -p djongo-server
    .venv/bin/python benches/engine/delete_growth.py [N ...]
"""

from __future__ import annotations

import datetime as dt
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import pymongo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from machine import process_cpu_seconds, process_written_bytes  # noqa: E402

SERVER = Path(__file__).resolve().parents[2] / "target" / "release" / "djongo-server"
SECONDARY = ("headline", "rating", "at", "n", "author_id")
ROUNDS = 30
BASE = dt.datetime(2024, 1, 1)


def entry(rnd: random.Random, i: int, size: int, headline: str | None = None) -> dict:
    return {"_id": i, "id": i, "headline": headline or f"h{i % 40}", "rating": rnd.random() * 10,
            "at": BASE + dt.timedelta(seconds=rnd.randrange(10**7)), "n": rnd.randrange(size),
            "author_id": i % 50, "body": "lorem ipsum"}


def line(engine: str, size: int, secondary: bool, walls: list[float], cpus: list[float],
         written: list[int]) -> str:
    walls, written = sorted(walls), sorted(written)
    indexes = "5 secondary indexes" if secondary else "no secondary index"
    return (f"{size:>9,} documents, {indexes}, {engine}:"
            f" median wall {walls[len(walls) // 2] * 1e3:.2f} ms,"
            f" CPU {sum(cpus) / len(cpus) * 1e3:.2f} ms,"
            f" {written[len(written) // 2] / 1024:.0f} KiB written per delete")


def measure_sqlite(size: int, secondary: bool) -> str:
    scratch = Path(tempfile.mkdtemp(prefix="delete-growth-"))
    try:
        db = sqlite3.connect(scratch / "entries.sqlite3")
        db.execute("CREATE TABLE entries (_id INTEGER PRIMARY KEY, id INTEGER UNIQUE,"
                   " headline TEXT, rating REAL, at TEXT, n INTEGER, author_id INTEGER, body TEXT)")
        for field in SECONDARY if secondary else ():
            db.execute(f"CREATE INDEX entries_{field} ON entries ({field})")
        insert = "INSERT INTO entries VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        rnd = random.Random(1)

        def rows(first: int, stop: int, headline: str | None = None) -> list[tuple]:
            return [(e["_id"], e["id"], e["headline"], e["rating"], e["at"].isoformat(), e["n"],
                     e["author_id"], e["body"])
                    for e in (entry(rnd, i, size, headline) for i in range(first, stop))]

        for start in range(0, size, 10_000):
            db.executemany(insert, rows(start, min(size, start + 10_000)))
            db.commit()
        walls, cpus, written = [], [], []
        next_id = size
        for _ in range(ROUNDS):
            db.executemany(insert, rows(next_id, next_id + 50, "gone"))
            db.commit()
            next_id += 50
            began, cpu = time.perf_counter(), time.thread_time()
            wrote = process_written_bytes(os.getpid())
            deleted = db.execute("DELETE FROM entries WHERE _id >= ?", (next_id - 50,)).rowcount
            db.commit()
            walls.append(time.perf_counter() - began)
            cpus.append(time.thread_time() - cpu)
            written.append(process_written_bytes(os.getpid()) - wrote)
            assert deleted == 50, deleted
        db.close()
        return line("SQLite", size, secondary, walls, cpus, written)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def measure(size: int, secondary: bool) -> str:
    scratch = Path(tempfile.mkdtemp(prefix="delete-growth-"))
    sock = scratch / "server.sock"
    server = subprocess.Popen(
        [str(SERVER), "--dbpath", str(scratch / "data"), "--unix-socket", str(sock)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not sock.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        client = pymongo.MongoClient("mongodb://" + quote(str(sock), safe=""),
                                     directConnection=True)
        entries = client.bench.entries
        entries.create_index("id", unique=True)
        for field in SECONDARY if secondary else ():
            entries.create_index(field)
        rnd = random.Random(1)
        for start in range(0, size, 10_000):
            stop = min(size, start + 10_000)
            entries.insert_many([entry(rnd, i, size) for i in range(start, stop)])
        walls, cpus, written = [], [], []
        next_id = size
        for _ in range(ROUNDS):
            entries.insert_many([entry(rnd, next_id + k, size, "gone") for k in range(50)])
            next_id += 50
            began, cpu = time.perf_counter(), process_cpu_seconds(server.pid)
            wrote = process_written_bytes(server.pid)
            # Found through _id either way, so that only the writes differ.
            deleted = entries.delete_many({"_id": {"$gte": next_id - 50}}).deleted_count
            walls.append(time.perf_counter() - began)
            cpus.append(process_cpu_seconds(server.pid) - cpu)
            written.append(process_written_bytes(server.pid) - wrote)
            assert deleted == 50, deleted
        client.close()
        return line("djongo-server", size, secondary, walls, cpus, written)
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    for size in [int(a) for a in sys.argv[1:]] or [5_000, 200_000]:
        for secondary in (True, False):
            print(measure(size, secondary), flush=True)
            print(measure_sqlite(size, secondary), flush=True)
