"""$out, $merge and the stages that read other collections ($graphLookup), through pymongo
against the standalone ``djongo-server`` (built by ``cargo build -p djongo-server``)."""

import threading

import pytest
from pymongo.errors import OperationFailure

from tests.engine_server import Server


@pytest.fixture
def server(tmp_path):
    s = Server(tmp_path / "data").start()
    yield s
    s.stop()


@pytest.fixture
def db(server):
    c = server.client()
    yield c.app
    c.close()


def index_names(coll):
    return sorted(ix["name"] for ix in coll.list_indexes())


# --- $out --------------------------------------------------------------------------------

def test_out_writes_the_results_and_replaces_the_target(db):
    db.sales.insert_many([{"_id": i, "k": "ab"[i % 2], "v": i} for i in range(6)])
    db.totals.insert_many([{"_id": "old", "total": -1}, {"_id": "older", "total": -2}])
    db.totals.create_index("total", unique=True)
    result = list(db.sales.aggregate([{"$group": {"_id": "$k", "total": {"$sum": "$v"}}},
                                      {"$sort": {"_id": 1}}, {"$out": "totals"}]))
    assert result == []
    assert list(db.totals.find().sort("_id", 1)) == [{"_id": "a", "total": 6},
                                                     {"_id": "b", "total": 9}]
    # The target keeps its indexes, as on MongoDB.
    assert index_names(db.totals) == ["_id_", "total_1"]
    # Documents without _id get one; {db, coll} names another database.
    db.sales.aggregate([{"$project": {"_id": 0, "v": 1}},
                        {"$out": {"db": "archive", "coll": "vs"}}])
    copied = list(db.client.archive.vs.find())
    assert sorted(d["v"] for d in copied) == list(range(6))
    assert all("_id" in d for d in copied)


def test_out_that_breaks_a_unique_index_changes_nothing(db):
    db.src.insert_many([{"_id": 1, "email": "a@x"}, {"_id": 2, "email": "a@x"}])
    db.people.insert_one({"_id": "kept", "email": "k@x"})
    db.people.create_index("email", unique=True)
    with pytest.raises(OperationFailure) as failure:
        db.src.aggregate([{"$out": "people"}])
    assert failure.value.code == 11000
    assert "duplicate key" in str(failure.value)
    assert list(db.people.find()) == [{"_id": "kept", "email": "k@x"}]
    assert index_names(db.people) == ["_id_", "email_1"]


def test_out_replaces_the_target_atomically(db, server):
    db.big.insert_many([{"_id": i} for i in range(400)])
    db.target.insert_many([{"_id": i} for i in range(3)])
    seen = set()
    stop = threading.Event()
    reader = server.client()

    def watch():
        while not stop.is_set():
            seen.add(reader.app.target.count_documents({}))

    thread = threading.Thread(target=watch)
    thread.start()
    try:
        for _ in range(5):
            db.big.aggregate([{"$out": "target"}])
            db.target.aggregate([{"$limit": 3}, {"$out": "target"}])
    finally:
        stop.set()
        thread.join()
        reader.close()
    # A reader sees the old contents or the new ones, never a half-written collection.
    assert seen <= {3, 400}


def test_out_and_merge_are_refused_inside_a_transaction(db):
    db.src.insert_one({"_id": 1})
    for stage in ({"$out": "t"}, {"$merge": {"into": "t"}}):
        with db.client.start_session() as s:
            s.start_transaction()
            with pytest.raises(OperationFailure) as failure:
                db.src.aggregate([stage], session=s)
            assert failure.value.code == 263
            assert "cannot be used in a transaction" in str(failure.value)
            # As on MongoDB, the failed statement aborts the transaction.
            with pytest.raises(OperationFailure):
                s.commit_transaction()
    assert "t" not in db.list_collection_names()


def test_out_and_merge_must_be_the_last_stage(db):
    db.src.insert_one({"_id": 1})
    for stage in ({"$out": "t"}, {"$merge": "t"}):
        with pytest.raises(OperationFailure) as failure:
            db.src.aggregate([stage, {"$match": {}}])
        assert failure.value.code == 40601


# --- $merge ------------------------------------------------------------------------------

def seed(db):
    db.monthly.insert_many([{"_id": 1, "emp": "ann", "month": 1, "sales": 10},
                            {"_id": 2, "emp": "bob", "month": 1, "sales": 5}])
    db.incoming.insert_many([{"_id": 1, "emp": "ann", "month": 1, "sales": 12, "note": "fix"},
                             {"_id": 3, "emp": "cy", "month": 1, "sales": 7}])


def test_merge_defaults_merge_matched_and_insert_new(db):
    seed(db)
    db.incoming.aggregate([{"$merge": "monthly"}])
    assert list(db.monthly.find().sort("_id", 1)) == [
        {"_id": 1, "emp": "ann", "month": 1, "sales": 12, "note": "fix"},
        {"_id": 2, "emp": "bob", "month": 1, "sales": 5},
        {"_id": 3, "emp": "cy", "month": 1, "sales": 7}]


def test_merge_modes(db):
    seed(db)
    db.incoming.aggregate([{"$project": {"sales": 1}},
                           {"$merge": {"into": "monthly", "whenMatched": "replace",
                                       "whenNotMatched": "discard"}}])
    assert list(db.monthly.find().sort("_id", 1)) == [
        {"_id": 1, "sales": 12}, {"_id": 2, "emp": "bob", "month": 1, "sales": 5}]
    db.incoming.aggregate([{"$merge": {"into": "monthly", "whenMatched": "keepExisting"}}])
    assert db.monthly.find_one({"_id": 1}) == {"_id": 1, "sales": 12}
    assert db.monthly.find_one({"_id": 3})["emp"] == "cy"
    # A pipeline sees the incoming document as $$new (or as its own let variables).
    db.incoming.aggregate([{"$merge": {"into": "monthly", "whenMatched": [
        {"$set": {"sales": {"$add": ["$sales", "$$new.sales"]}}}]}}])
    assert db.monthly.find_one({"_id": 1})["sales"] == 24
    db.incoming.aggregate([{"$merge": {"into": "monthly", "let": {"extra": "$sales"},
                                       "whenMatched": [{"$set": {"last": "$$extra"}}],
                                       "whenNotMatched": "discard"}}])
    assert db.monthly.find_one({"_id": 3})["last"] == 7
    with pytest.raises(OperationFailure) as failure:
        db.incoming.aggregate([{"$merge": {"into": "monthly", "whenMatched": "fail"}}])
    assert failure.value.code == 11000
    with pytest.raises(OperationFailure) as failure:
        db.incoming.aggregate([{"$addFields": {"_id": {"$add": ["$_id", 100]}}},
                               {"$merge": {"into": "monthly", "whenNotMatched": "fail"}}])
    assert failure.value.code == 13113
    # A failed $merge writes nothing.
    assert db.monthly.count_documents({}) == 3


def test_merge_on_other_fields_needs_a_unique_index(db):
    seed(db)
    stage = {"$merge": {"into": "monthly", "on": ["emp", "month"], "whenMatched": "merge"}}
    with pytest.raises(OperationFailure) as failure:
        db.incoming.aggregate([{"$project": {"_id": 0}}, stage])
    assert failure.value.code == 51183
    db.monthly.create_index([("month", 1), ("emp", 1)], unique=True, partialFilterExpression={
        "emp": {"$type": "string"}})
    with pytest.raises(OperationFailure) as failure:
        db.incoming.aggregate([{"$project": {"_id": 0}}, stage])
    assert failure.value.code == 51183, "a partial index does not prove uniqueness"
    db.monthly.create_index([("emp", 1), ("month", 1)], unique=True)
    db.incoming.aggregate([{"$project": {"_id": 0}}, stage])
    ann = db.monthly.find_one({"emp": "ann"})
    assert (ann["_id"], ann["sales"], ann["note"]) == (1, 12, "fix")
    assert db.monthly.count_documents({}) == 3
    with pytest.raises(OperationFailure) as failure:
        db.incoming.aggregate([{"$project": {"_id": 0, "emp": 1}}, stage])
    assert failure.value.code == 51132
    # The target's _id cannot change under a matched document.
    with pytest.raises(OperationFailure) as failure:
        db.incoming.aggregate([{"$addFields": {"_id": "new"}}, stage])
    assert failure.value.code == 66


def test_merge_reports_unique_index_violations_like_mongodb(db):
    db.users.create_index("email", unique=True)
    db.users.insert_one({"_id": 1, "email": "a@x"})
    db.signups.insert_one({"_id": 2, "email": "a@x"})
    with pytest.raises(OperationFailure) as failure:
        db.signups.aggregate([{"$merge": "users"}])
    assert failure.value.code == 11000
    assert failure.value.details["keyValue"] == {"email": "a@x"}
    assert list(db.users.find()) == [{"_id": 1, "email": "a@x"}]


# --- stages that read other collections ----------------------------------------------------

def test_graph_lookup_and_redact(db):
    db.employees.insert_many([
        {"_id": 1, "name": "Dev"},
        {"_id": 2, "name": "Eliot", "reportsTo": "Dev"},
        {"_id": 3, "name": "Ron", "reportsTo": "Eliot"},
        {"_id": 4, "name": "Asya", "reportsTo": "Ron"}])
    out = list(db.employees.aggregate([
        {"$match": {"name": "Asya"}},
        {"$graphLookup": {"from": "employees", "startWith": "$reportsTo",
                          "connectFromField": "reportsTo", "connectToField": "name",
                          "as": "chain", "depthField": "depth", "maxDepth": 1}},
        {"$project": {"chain": {"$sortArray": {"input": "$chain.name", "sortBy": 1}},
                      "depths": {"$sortArray": {"input": "$chain.depth", "sortBy": 1}}}}]))
    assert out == [{"_id": 4, "chain": ["Eliot", "Ron"], "depths": [0, 1]}]
    db.docs.insert_one({"_id": 1, "level": 1,
                        "parts": [{"level": 1, "x": 1}, {"level": 5, "x": 2}]})
    out = list(db.docs.aggregate([{"$redact": {"$cond": [{"$lte": ["$level", 2]},
                                                           "$$DESCEND", "$$PRUNE"]}}]))
    assert out == [{"_id": 1, "level": 1, "parts": [{"level": 1, "x": 1}]}]
