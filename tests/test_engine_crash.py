"""``kill -9`` of the standalone server in the middle of a write load: every
acknowledged write is there afterwards, no transaction is half applied, and
the store opens cleanly with its indexes in step with its documents.
"""

from __future__ import annotations

import threading
import time

import pytest
from pymongo import WriteConcern
from pymongo.errors import DuplicateKeyError, PyMongoError

from tests.engine_server import Server

WRITERS = 4
ACKED_BEFORE_KILL = 400


def test_kill_9_mid_load_keeps_every_acknowledged_write(tmp_path):
    server = Server(tmp_path / "data").start()
    setup = server.client()
    setup.app.load.create_index("k", unique=True)
    setup.close()

    acked: list[str] = []
    committed: list[tuple[str, str]] = []
    attempted: list[tuple[str, str]] = []
    lock = threading.Lock()
    enough = threading.Event()

    def insert_load(writer: int) -> None:
        client = server.client(serverSelectionTimeoutMS=500, retryWrites=False)
        i = 0
        try:
            while True:
                key = f"w{writer}-{i}"
                client.app.load.insert_one({"_id": key, "k": key, "pad": "x" * 200})
                with lock:
                    acked.append(key)
                    if len(acked) >= ACKED_BEFORE_KILL:
                        enough.set()
                i += 1
        except PyMongoError:
            return  # the server is gone
        finally:
            client.close()

    def transaction_load() -> None:
        client = server.client(serverSelectionTimeoutMS=500, retryWrites=False)
        i = 0
        try:
            while True:
                pair = (f"t{i}-a", f"t{i}-b")
                with lock:
                    attempted.append(pair)
                with client.start_session() as s, s.start_transaction():
                    for key in pair:
                        client.app.load.insert_one({"_id": key, "k": key}, session=s)
                with lock:
                    committed.append(pair)
                i += 1
        except PyMongoError:
            return
        finally:
            client.close()

    threads = [threading.Thread(target=insert_load, args=(w,)) for w in range(WRITERS)]
    threads.append(threading.Thread(target=transaction_load))
    for t in threads:
        t.start()
    assert enough.wait(120), "the load never got going"
    server.kill9()
    for t in threads:
        t.join(60)
    # Writers only stop on an error, so each was still writing at the kill.
    assert not any(t.is_alive() for t in threads)

    server.start()
    client = server.client()
    load = client.app.load
    ids = {d["_id"] for d in load.find({}, {"_id": 1})}
    missing = [k for k in acked if k not in ids]
    assert not missing, f"{len(missing)} acknowledged inserts lost, e.g. {missing[:5]}"
    assert committed, "no transaction committed before the kill"
    for a, b in committed:
        assert a in ids and b in ids
    for a, b in attempted:
        assert (a in ids) == (b in ids), f"transaction {a}/{b} half applied"
    # The unique index holds exactly the stored documents.
    assert load.count_documents({}) == len(ids)
    for key in acked[:: max(1, len(acked) // 50)]:
        assert load.find_one({"k": key})["_id"] == key
    with pytest.raises(DuplicateKeyError):
        load.insert_one({"k": acked[0]})
    load.insert_one({"_id": "after", "k": "after"})
    assert load.find_one({"k": "after"}) is not None
    client.close()
    server.stop()
    assert server.proc.returncode == 0


def test_store_reopens_after_repeated_kills(tmp_path):
    server = Server(tmp_path / "data").start()
    for round_ in range(3):
        client = server.client()
        client.app.rounds.insert_one({"_id": round_})
        client.close()
        server.kill9()
        server.start()
    client = server.client()
    assert sorted(d["_id"] for d in client.app.rounds.find()) == [0, 1, 2]
    assert client.admin.command("ping")["ok"] == 1.0
    client.close()
    server.stop()


def test_unjournaled_writes_reach_the_disk_without_a_later_write(tmp_path):
    """``writeConcern: {j: false}`` is acknowledged before the disk has the
    write, as mongod does; the server makes it durable shortly after, even
    when nothing else is written, and at a clean stop."""
    server = Server(tmp_path / "data").start()
    client = server.client(retryWrites=False)
    quick = client.app.get_collection("c", write_concern=WriteConcern(w=1, j=False))
    quick.insert_one({"_id": "idle store"})
    time.sleep(1.0)       # mongod's journal interval is 100 ms
    client.close()
    server.kill9()

    server.start()
    client = server.client(retryWrites=False)
    quick = client.app.get_collection("c", write_concern=WriteConcern(w=1, j=False))
    quick.insert_one({"_id": "then a clean stop"})
    client.close()
    server.stop()

    server.start()
    client = server.client()
    assert sorted(d["_id"] for d in client.app.c.find()) == ["idle store", "then a clean stop"]
    client.close()
    server.stop()
