"""What drivers rely on from a replica set member, checked through pymongo against
``djongo-server``: cluster time and causal consistency, snapshot reads, fail points
(``--enable-test-commands``), command-level ``let``, views, change streams, capped
collections with tailable cursors, write concern errors, and the options refused rather
than ignored (collections' collations, time-series).

MongoDB's own driver specification tests cover the same ground more widely
(``scripts/spec-tests``); these are the quick checks pytest runs on every change.
"""

from __future__ import annotations

import threading
import time

import pymongo
import pytest
from bson import Timestamp
from pymongo import CursorType, WriteConcern
from pymongo.errors import NotPrimaryError, OperationFailure, WriteConcernError

from tests.engine_server import Server


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("driver") / "data", "--enable-test-commands").start()
    yield s
    s.stop()


@pytest.fixture
def client(server):
    c = server.client(replicaSet="djongo")
    yield c
    c.admin.command("configureFailPoint", "failCommand", mode="off")
    c.close()


@pytest.fixture
def db(client, request):
    name = "t_" + request.node.name[:50]
    client.drop_database(name)
    return client[name]


def test_replies_carry_cluster_time_and_writes_move_it(db):
    first = db.command("ping")
    assert isinstance(first["$clusterTime"]["clusterTime"], Timestamp)
    before = db.command("ping")["operationTime"]
    reply = db.command({"insert": "c", "documents": [{"_id": 1}]})
    assert reply["operationTime"] > before


def test_a_causally_consistent_session_sends_after_cluster_time(client, db):
    seen = []

    class Listener(pymongo.monitoring.CommandListener):
        def started(self, event):
            seen.append(event.command)

        def succeeded(self, event):
            pass

        def failed(self, event):
            pass

    with pymongo.MongoClient(client.address[0], client.address[1], replicaSet="djongo",
                             event_listeners=[Listener()]) as c:
        coll = c[db.name].c
        with c.start_session(causal_consistency=True) as s:
            coll.insert_one({"_id": 1}, session=s)
            assert coll.find_one({"_id": 1}, session=s) == {"_id": 1}
    find = next(cmd for cmd in seen if "find" in cmd)
    assert "afterClusterTime" in find["readConcern"]


def test_snapshot_reads_see_the_data_as_of_their_first_read(client, db):
    db.c.insert_many([{"_id": 1, "v": 1}, {"_id": 2, "v": 2}])
    with client.start_session(snapshot=True) as s:
        assert db.c.find_one({"_id": 1}, session=s)["v"] == 1
        db.c.update_one({"_id": 1}, {"$set": {"v": 10}})
        db.c.insert_one({"_id": 3, "v": 3})
        # Later reads of the session read at the first read's cluster time.
        assert db.c.find_one({"_id": 1}, session=s)["v"] == 1
        assert db.c.count_documents({}, session=s) == 2
        assert db.c.distinct("v", session=s) == [1, 2]
    assert db.c.find_one({"_id": 1})["v"] == 10


def test_snapshot_read_concern_is_refused_where_mongod_refuses_it(db):
    with pytest.raises(OperationFailure) as e:
        db.command({"insert": "c", "documents": [{}], "readConcern": {"level": "snapshot"}})
    assert e.value.code == 72


def test_fail_command_fails_with_the_labels_given(client, db):
    client.admin.command("configureFailPoint", "failCommand", mode={"times": 1},
                         data={"failCommands": ["find"], "errorCode": 2, "errorLabels": ["Custom"]})
    with pytest.raises(OperationFailure) as e:
        db.c.find_one()
    assert e.value.code == 2
    assert e.value.has_error_label("Custom")
    assert db.c.find_one() is None, "the fail point fired once"


def test_a_retryable_write_survives_a_closed_connection(client, db):
    client.admin.command("configureFailPoint", "failCommand", mode={"times": 1},
                         data={"failCommands": ["insert"], "closeConnection": True})
    db.c.insert_one({"_id": 1})
    assert db.c.count_documents({}) == 1


def test_retriable_errors_are_labelled_for_retryable_writes(client, db):
    client.admin.command("configureFailPoint", "failCommand", mode={"times": 2},
                         data={"failCommands": ["insert"], "errorCode": 189})
    # PrimarySteppedDown twice: the retry fails too, and the error says why
    # the driver retried.
    with pytest.raises(NotPrimaryError) as e:
        db.c.insert_one({"_id": 1})
    assert e.value.has_error_label("RetryableWriteError")


def test_test_commands_need_the_flag(tmp_path):
    s = Server(tmp_path / "data").start()
    try:
        with s.client() as c:
            with pytest.raises(OperationFailure) as e:
                c.admin.command("configureFailPoint", "failCommand", mode="off")
            assert e.value.code == 59
            assert c.admin.command("getParameter", "*")["enableTestCommands"] is False
    finally:
        s.stop()


def test_a_transaction_survives_a_fail_point_that_closes_the_connection(client, db):
    db.c.insert_one({"_id": 0})
    client.admin.command("configureFailPoint", "failCommand", mode={"times": 1},
                         data={"failCommands": ["commitTransaction"], "closeConnection": True})
    with client.start_session() as s:
        s.start_transaction()
        db.c.insert_one({"_id": 1}, session=s)
        s.commit_transaction()  # retried by pymongo after the closed connection
    assert db.c.count_documents({}) == 2


def test_command_level_let(db):
    db.c.insert_many([{"_id": 1, "n": "a"}, {"_id": 2, "n": "b"}])
    expr = {"$expr": {"$eq": ["$_id", "$$id"]}}
    assert [d["_id"] for d in db.c.find(expr, let={"id": 2})] == [2]
    assert list(db.c.aggregate([{"$match": expr}, {"$project": {"v": "$$v"}}],
                               let={"id": 1, "v": "x"})) == [{"_id": 1, "v": "x"}]
    db.c.update_one(expr, [{"$set": {"n": "$$new"}}], let={"id": 1, "new": "z"})
    assert db.c.find_one({"_id": 1})["n"] == "z"
    assert db.c.delete_many(expr, let={"id": 2}).deleted_count == 1


def test_a_collection_collation_is_refused_not_ignored(db):
    # An operation's and an index's collation are implemented
    # (tests/test_engine_collation.py); a collection's default collation is not yet.
    db.c.insert_one({"x": "a"})
    with pytest.raises(OperationFailure) as e:
        db.create_collection("d", collation={"locale": "en"})
    assert e.value.code == 115
    assert db.c.find_one({"x": "a"}, collation={"locale": "simple"})["x"] == "a"


def test_views(db):
    db.src.insert_many([{"_id": i, "x": i} for i in range(6)])
    db.create_collection("big", viewOn="src", pipeline=[{"$match": {"x": {"$gte": 3}}}])
    assert [d["x"] for d in db.big.find({}, sort=[("x", -1)])] == [5, 4, 3]
    assert db.big.count_documents({"x": {"$lt": 5}}) == 2
    assert db.big.distinct("x") == [3, 4, 5]
    assert list(db.big.aggregate([{"$group": {"_id": None, "s": {"$sum": "$x"}}}])) == \
        [{"_id": None, "s": 12}]
    kinds = {c["name"]: c["type"] for c in db.list_collections()}
    assert kinds == {"src": "collection", "big": "view"}
    with pytest.raises(OperationFailure) as e:
        db.big.insert_one({"x": 9})
    assert e.value.code == 166


def test_change_streams(db):
    with db.c.watch(full_document="updateLookup") as stream:
        db.c.insert_one({"_id": 1, "a": 1})
        db.c.update_one({"_id": 1}, {"$set": {"a": 2}})
        db.c.delete_one({"_id": 1})
        events = [stream.next() for _ in range(3)]
        token = events[0]["_id"]
    assert [e["operationType"] for e in events] == ["insert", "update", "delete"]
    assert events[1]["updateDescription"]["updatedFields"] == {"a": 2}
    with db.c.watch(resume_after=token) as resumed:
        assert resumed.next()["operationType"] == "update"
    with db.watch() as database_stream:
        db.c.drop()
        assert database_stream.next()["operationType"] == "drop"


def test_a_collection_change_stream_ends_when_its_collection_is_dropped(db):
    db.c.insert_one({})
    with db.c.watch() as stream:
        db.c.drop()
        assert stream.next()["operationType"] == "drop"
        assert stream.next()["operationType"] == "invalidate"
        assert not stream.alive


def test_capped_collections_and_tailable_cursors(db):
    db.create_collection("log", capped=True, size=4096, max=3)
    for i in (5, 3, 9, 1):
        db.log.insert_one({"_id": i})
    assert [d["_id"] for d in db.log.find()] == [3, 9, 1], "oldest evicted, insertion order"
    assert [d["_id"] for d in db.log.find().sort("$natural", -1)] == [1, 9, 3]
    cursor = db.log.find(cursor_type=CursorType.TAILABLE_AWAIT)
    assert [next(cursor)["_id"] for _ in range(3)] == [3, 9, 1]
    threading.Timer(0.2, lambda: db.log.insert_one({"_id": 42})).start()
    started = time.monotonic()
    assert next(cursor)["_id"] == 42
    assert time.monotonic() - started < 5
    cursor.close()
    with pytest.raises(OperationFailure):
        db.plain.insert_one({})
        next(db.plain.find(cursor_type=CursorType.TAILABLE))


def test_write_concern_a_single_member_cannot_satisfy(db):
    with pytest.raises(WriteConcernError) as e:
        db.get_collection("c", write_concern=WriteConcern(w=2)).insert_one({"_id": 1})
    assert e.value.code == 100
    assert db.c.count_documents({}) == 1, "the write itself was applied"
    with pytest.raises(WriteConcernError) as e:
        db.get_collection("c", write_concern=WriteConcern(w="dc1")).insert_one({"_id": 2})
    assert e.value.code == 79


def test_database_level_sources(client, db):
    with client.start_session() as s:
        db.c.insert_one({}, session=s)
        sessions = list(client.admin.aggregate([{"$listLocalSessions": {}}]))
        assert any(x["_id"]["id"] == s.session_id["id"] for x in sessions)
    ops = list(client.admin.aggregate([{"$currentOp": {}}]))
    assert any(op["command"].get("aggregate") == 1 for op in ops)


def test_options_refused_rather_than_ignored(db):
    with pytest.raises(OperationFailure) as e:
        db.create_collection("ts", timeseries={"timeField": "t"})
    assert e.value.code == 115
    with pytest.raises(OperationFailure) as e:
        db.c.update_one({}, {"$set": {"a": 1}}, sort={"a": 1})
    assert e.value.code == 40415, "updates with sort came with MongoDB 8.0"


def test_clustered_collections_list_their_index(db):
    db.create_collection("c", clusteredIndex={"key": {"_id": 1}, "unique": True, "name": "by id"})
    info = next(db.list_collections(filter={"name": "c"}))
    assert info["options"]["clusteredIndex"]["name"] == "by id"
    assert "idIndex" not in info
    assert list(db.c.list_indexes())[0]["clustered"] is True


def test_snapshot_reads_at_an_unknown_time_are_refused(db):
    future = Timestamp(2**32 - 1, 0)
    with pytest.raises(OperationFailure) as e:
        db.command({"find": "c", "readConcern": {"level": "snapshot", "atClusterTime": future}})
    assert e.value.code == 72
