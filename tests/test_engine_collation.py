"""Collations on the embedded engine, through pymongo, as MongoDB documents them
(https://www.mongodb.com/docs/manual/reference/collation/): under an operation's
``collation=``, every comparison of strings it makes (query operators, ``$expr``,
sort, ``$group`` and ``distinct`` keys, update and delete filters) follows the locale
and options; ``$regex`` and field names do not. A unique index with a collation
refuses values its collation calls equal."""

from __future__ import annotations

import pytest
from pymongo.errors import DuplicateKeyError, OperationFailure

from tests.engine_server import Server

CI = {"locale": "en", "strength": 2}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("collation") / "data").start()
    yield s
    s.stop()


@pytest.fixture
def db(server, request):
    client = server.client()
    name = "t_" + request.node.name[:50]
    client.drop_database(name)
    yield client[name]
    client.close()


@pytest.fixture
def names(db):
    db.n.insert_many([{"_id": i, "name": n} for i, n in
                      enumerate(["andrew", "ANDREW", "Andrew", "bob", "Zoe", "Ödön", "otto"])])
    return db.n


def test_equality_and_in_follow_the_collation(names):
    assert names.count_documents({"name": "Andrew"}) == 1
    assert names.count_documents({"name": "Andrew"}, collation=CI) == 3
    found = names.find({"name": {"$in": ["BOB", "zoe"]}}, collation=CI)
    assert sorted(d["_id"] for d in found) == [3, 4]
    assert names.find_one({"name": {"$ne": "andrew"}, "_id": {"$lt": 3}}, collation=CI) is None


def test_ranges_follow_the_collation(names):
    # Binary: "Z" (0x5A) sorts before "b"; in English, b < Z.
    assert [d["name"] for d in names.find({"name": {"$lt": "b"}, "_id": {"$gt": 2}})] == ["Zoe"]
    found = names.find({"name": {"$gt": "b"}, "_id": {"$gt": 2}}, collation={"locale": "en"})
    assert [d["name"] for d in found] == ["bob", "Zoe", "Ödön", "otto"]


def test_sort_follows_the_locale(names):
    def order(collation):
        return [d["name"] for d in names.find({"_id": {"$gte": 3}}, sort=[("name", 1)],
                                              collation=collation)]
    assert order(None) == ["Zoe", "bob", "otto", "Ödön"]
    # German sorts Ö with O; Swedish puts it after Z.
    assert order({"locale": "de"}) == ["bob", "Ödön", "otto", "Zoe"]
    assert order({"locale": "sv"}) == ["bob", "otto", "Zoe", "Ödön"]


def test_group_and_distinct_keys_follow_the_collation(names):
    groups = names.aggregate([{"$match": {"_id": {"$lt": 3}}},
                              {"$group": {"_id": "$name", "n": {"$sum": 1}}}], collation=CI)
    assert [g["n"] for g in groups] == [3]
    assert len(names.distinct("name", {"_id": {"$lt": 3}}, collation=CI)) == 1
    assert len(names.distinct("name", {"_id": {"$lt": 3}})) == 3


def test_expr_comparisons_follow_the_collation(names):
    query = {"$expr": {"$eq": ["$name", "ANDREW"]}}
    assert names.count_documents(query) == 1
    assert names.count_documents(query, collation=CI) == 3


def test_regex_is_not_collated(names):
    assert names.count_documents({"name": {"$regex": "^andrew$"}}, collation=CI) == 1


def test_updates_and_deletes_take_the_statement_collation(names):
    result = names.update_many({"name": "andrew"}, {"$set": {"seen": True}}, collation=CI)
    assert result.matched_count == 3
    assert names.delete_many({"name": "BOB"}, collation=CI).deleted_count == 1
    assert names.count_documents({}) == 6
    doc = names.find_one_and_update({"name": "zoe"}, {"$set": {"seen": True}}, collation=CI)
    assert doc["_id"] == 4


def test_numeric_ordering(db):
    db.v.insert_many([{"_id": i, "v": v} for i, v in enumerate(["10", "9", "100"])])
    def order(collation):
        return [d["v"] for d in db.v.find(sort=[("v", 1)], collation=collation)]
    assert order(None) == ["10", "100", "9"]
    assert order({"locale": "en", "numericOrdering": True}) == ["9", "10", "100"]


def test_indexed_field_is_compared_under_the_collation(db):
    # The index holds binary keys: under a collation the engine does not use
    # its bounds, and still finds every match.
    db.i.create_index("name")
    db.i.insert_many([{"_id": 1, "name": "Anna"}, {"_id": 2, "name": "anna"}])
    assert db.i.count_documents({"name": "ANNA"}, collation=CI) == 2
    assert db.i.count_documents({"name": "ANNA"}) == 0
    assert [d["_id"] for d in db.i.find({"_id": {"$in": [1, 2]}}, collation=CI)] == [1, 2]


@pytest.mark.parametrize("collation, code", [
    ({"strength": 2}, 9),
    ({"locale": "en", "strength": 9}, 2),
    ({"locale": "en", "caseFirst": "sideways"}, 2),
    ({"locale": "en", "unknown": 1}, 9),
    ({"locale": "simple", "strength": 1}, 2),
])
def test_a_bad_collation_is_refused(db, collation, code):
    db.c.insert_one({"x": "a"})
    with pytest.raises(OperationFailure) as e:
        db.c.find_one({}, collation=collation)
    assert e.value.code == code


def test_a_unique_index_with_a_collation_refuses_values_it_calls_equal(db):
    db.u.create_index("email", unique=True, collation=CI, name="email_ci")
    listed = {i["name"]: i for i in db.u.list_indexes()}
    assert listed["email_ci"]["collation"] == CI
    db.u.insert_one({"_id": 1, "email": "Ann@Example.org"})
    with pytest.raises(DuplicateKeyError):
        db.u.insert_one({"_id": 2, "email": "ann@example.ORG"})
    db.u.insert_one({"_id": 3, "email": "bob@example.org"})
    with pytest.raises(DuplicateKeyError):
        db.u.update_one({"_id": 3}, {"$set": {"email": "ANN@example.org"}})
    # Queries read the documents, not the collated index: both kinds agree.
    assert db.u.count_documents({"email": "ann@example.org"}) == 0
    assert db.u.count_documents({"email": "ann@example.org"}, collation=CI) == 1
    assert db.u.find_one({"email": "Ann@Example.org"}, hint="email_ci")["_id"] == 1
    # The same key with another collation is another index.
    db.u.create_index("email", name="email_binary")
    assert len(list(db.u.list_indexes())) == 3


def test_a_collated_unique_index_over_existing_duplicates_is_refused(db):
    db.d.insert_many([{"_id": 1, "k": "x"}, {"_id": 2, "k": "X"}])
    with pytest.raises(OperationFailure) as e:
        db.d.create_index("k", unique=True, collation=CI)
    assert e.value.code == 11000
    db.d.create_index("k", unique=True)
