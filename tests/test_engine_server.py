"""End-to-end checks of the embedded engine's standalone server through pymongo.

The binary is built by cargo (`cargo build -p djongo-server`); this file builds
nothing and fails, rather than skips, when the binary is missing.
"""

import os
import signal

import pymongo
import pytest
from pymongo.errors import DuplicateKeyError, OperationFailure

from tests.engine_server import Server


@pytest.fixture
def server(tmp_path):
    s = Server(tmp_path / "data").start()
    yield s
    s.stop()


@pytest.fixture
def client(server):
    c = server.client()
    yield c
    c.close()


def test_handshake_reports_replica_set(client):
    hello = client.admin.command("hello")
    assert hello["setName"] == "djongo"
    assert hello["isWritablePrimary"] is True
    assert client.server_info()["version"] == "7.0.0"


def test_crud(client):
    coll = client.app.people
    coll.insert_one({"_id": 1, "name": "ada", "age": 36})
    coll.insert_many([{"_id": 2, "name": "bob", "age": 20}, {"_id": 3, "name": "cy", "age": 50}])
    assert coll.find_one({"_id": 2})["name"] == "bob"
    assert [d["_id"] for d in coll.find({"age": {"$gte": 30}}).sort("age", -1)] == [3, 1]
    res = coll.update_one({"_id": 1}, {"$set": {"age": 37}})
    assert (res.matched_count, res.modified_count) == (1, 1)
    assert coll.find_one({"_id": 1})["age"] == 37
    res = coll.update_many({}, {"$inc": {"age": 1}})
    assert res.modified_count == 3
    res = coll.update_one({"_id": 9}, {"$set": {"name": "zed"}}, upsert=True)
    assert res.upserted_id == 9
    doc = coll.find_one_and_update({"_id": 2}, {"$set": {"name": "bobby"}},
                                   return_document=pymongo.ReturnDocument.AFTER)
    assert doc["name"] == "bobby"
    assert coll.delete_one({"_id": 3}).deleted_count == 1
    assert coll.count_documents({}) == 3
    assert sorted(coll.distinct("name")) == ["ada", "bobby", "zed"]
    assert "people" in client.app.list_collection_names()
    coll.drop()
    assert "people" not in client.app.list_collection_names()


def test_aggregate(client):
    coll = client.app.sales
    coll.insert_many([{"k": "a", "v": 1}, {"k": "a", "v": 2}, {"k": "b", "v": 5}])
    out = list(coll.aggregate([{"$match": {"v": {"$gt": 0}}},
                               {"$group": {"_id": "$k", "total": {"$sum": "$v"}}},
                               {"$sort": {"_id": 1}}]))
    assert out == [{"_id": "a", "total": 3}, {"_id": "b", "total": 5}]


def test_many_documents_use_cursors(client):
    coll = client.app.many
    coll.insert_many([{"i": i} for i in range(1000)])
    assert len(list(coll.find({}, batch_size=64))) == 1000


def test_unique_index_raises_duplicate_key_error(client):
    coll = client.app.users
    coll.create_index("email", unique=True)
    coll.insert_one({"email": "a@example.com"})
    with pytest.raises(DuplicateKeyError) as info:
        coll.insert_one({"email": "a@example.com"})
    assert "E11000 duplicate key error collection: app.users index: email_1" in str(info.value)
    assert info.value.details["keyValue"] == {"email": "a@example.com"}


def test_partial_unique_index_allows_many_nulls(client):
    coll = client.app.profiles
    coll.create_index("nick", unique=True,
                      partialFilterExpression={"nick": {"$type": "string"}})
    coll.insert_many([{"nick": None}, {"nick": None}, {}, {"nick": "x"}])
    with pytest.raises(DuplicateKeyError):
        coll.insert_one({"nick": "x"})


def test_transaction_commit_and_abort(client):
    coll = client.app.accounts
    coll.insert_one({"_id": "base"})
    with client.start_session() as s:
        with s.start_transaction():
            coll.insert_one({"_id": "committed"}, session=s)
            assert coll.count_documents({}, session=s) == 2
            assert coll.find_one({"_id": "committed"}) is None  # invisible outside
    assert coll.find_one({"_id": "committed"}) is not None
    with client.start_session() as s:
        s.start_transaction()
        coll.insert_one({"_id": "aborted"}, session=s)
        s.abort_transaction()
    assert coll.find_one({"_id": "aborted"}) is None


def test_failed_statement_aborts_transaction(client):
    coll = client.app.txdup
    coll.insert_one({"_id": 1})
    with client.start_session() as s:
        s.start_transaction()
        coll.insert_one({"_id": 2}, session=s)
        with pytest.raises(DuplicateKeyError):
            coll.insert_one({"_id": 1}, session=s)
        with pytest.raises(OperationFailure):
            s.commit_transaction()
    assert coll.find_one({"_id": 2}) is None


def test_kill_9_keeps_acknowledged_writes(server):
    c = server.client()
    c.app.durable.create_index("k", unique=True)
    c.app.durable.insert_many([{"_id": i, "k": i} for i in range(100)])
    c.close()
    server.kill9()
    server.start()
    c = server.client()
    assert c.app.durable.count_documents({}) == 100
    with pytest.raises(DuplicateKeyError):
        c.app.durable.insert_one({"k": 5})
    c.close()


def test_sigterm_stops_cleanly(server):
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(10) == 0
    assert os.path.exists(server.dbpath / "djongo.redb")


def _listening_addresses(port: int) -> set[str]:
    """Local addresses of the TCP sockets listening on ``port`` (Linux /proc)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):
            continue
        with open(table) as f:
            next(f)
            for line in f:
                local, state = line.split()[1], line.split()[3]
                address, hex_port = local.split(":")
                if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                    found.add(address)
    return found


def test_binds_loopback_unless_told_otherwise(tmp_path):
    default = Server(tmp_path / "a").start()
    try:
        # 0100007F is 127.0.0.1 in /proc's little-endian hex.
        assert _listening_addresses(default.port) == {"0100007F"}
    finally:
        default.stop()
    everywhere = Server(tmp_path / "b", "--bind", "0.0.0.0").start()
    try:
        assert _listening_addresses(everywhere.port) == {"00000000"}
    finally:
        everywhere.stop()
