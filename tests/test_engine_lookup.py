"""``$lookup`` on an indexed foreign field reads only the foreign documents that
can match; the answers must be exactly those of a full scan. Each case runs the
same join against two copies of the foreign collection, one indexed on the join
field and one not, and compares.
"""

from __future__ import annotations

import pytest
from bson import Int64, ObjectId

from tests.engine_server import Server

AUTHORS = [
    {"_id": 1, "id": 1, "name": "Ann", "tags": ["x", "y"]},
    {"_id": 2, "id": 2, "name": "Bob", "tags": ["y"]},
    {"_id": 3, "id": 3.0, "name": "Cid", "tags": []},          # 3.0 equals 3
    {"_id": 4, "id": Int64(4), "name": "Dee"},                  # so does NumberLong(4)
    {"_id": 5, "id": None, "name": "Nul"},
    {"_id": 6, "name": "Missing"},
    {"_id": 7, "id": "7", "name": "Str"},                       # a string is not 7
    {"_id": 8, "id": [1, 9], "name": "Arr"},                    # array elements match
]

ENTRIES = [
    {"_id": 10, "author_id": 1},
    {"_id": 11, "author_id": 3},
    {"_id": 12, "author_id": 4.0},
    {"_id": 13, "author_id": 7},
    {"_id": 14, "author_id": None},
    {"_id": 15},
    {"_id": 16, "author_id": [2, 9]},
    {"_id": 17, "author_id": "y"},
    {"_id": 18, "author_id": ObjectId("0123456789ab0123456789ab")},
]


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("lookup") / "data").start()
    client = s.client()
    d = client.joins
    d.entries.insert_many(ENTRIES)
    for name in ("authors_indexed", "authors_plain"):
        d[name].insert_many(AUTHORS)
    d.authors_indexed.create_index("id")
    d.authors_indexed.create_index("tags")
    yield d
    client.close()
    s.stop()


def join(db, coll, match, local, foreign, extra=()):
    pipeline = [{"$match": match},
                {"$lookup": {"from": coll, "localField": local, "foreignField": foreign,
                             "as": "a"}},
                *extra,
                {"$sort": {"_id": 1}}]
    return list(db.entries.aggregate(pipeline))


@pytest.mark.parametrize("match", [
    {"_id": 10},                       # one key: a point lookup
    {"_id": {"$in": [10, 11, 12]}},    # numbers across types
    {"_id": 13},                       # no match
    {"_id": {"$in": [14, 15]}},        # null and missing: needs the scan path
    {"_id": 16},                       # a local array
    {},                                # everything, mixed
])
def test_indexed_lookup_answers_as_a_scan(db, match):
    indexed = join(db, "authors_indexed", match, "author_id", "id")
    plain = join(db, "authors_plain", match, "author_id", "id")
    assert indexed == plain
    assert indexed, "the match selects some entries"


def test_indexed_lookup_on_a_multikey_index(db):
    got = join(db, "authors_indexed", {"_id": 17}, "author_id", "tags")
    assert [a["name"] for a in got[0]["a"]] == ["Ann", "Bob"]
    assert got == join(db, "authors_plain", {"_id": 17}, "author_id", "tags")


def test_indexed_lookup_keeps_collection_order_and_sub_pipeline(db):
    extra = ({"$project": {"names": "$a.name"}},)
    got = join(db, "authors_indexed", {"_id": {"$in": [10, 16]}}, "author_id", "id", extra)
    assert got == [{"_id": 10, "names": ["Ann", "Arr"]}, {"_id": 16, "names": ["Bob", "Arr"]}]
    pipeline = [{"$match": {"_id": 16}},
                {"$lookup": {"from": "authors_indexed", "localField": "author_id",
                             "foreignField": "_id", "as": "a",
                             "pipeline": [{"$project": {"name": 1, "_id": 0}}]}}]
    assert list(db.entries.aggregate(pipeline))[0]["a"] == [{"name": "Bob"}]


@pytest.mark.parametrize("coll", ["authors_indexed", "authors_plain"])
@pytest.mark.parametrize("tail", [
    [{"$group": {"_id": "$a.name", "n": {"$sum": 1}, "ids": {"$push": "$_id"}}},
     {"$sort": {"_id": 1}}],
    [{"$project": {"_id": 1, "who": "$a.name", "tags": "$a.tags"}},
     {"$sort": {"_id": 1, "who": 1}}],
    [{"$match": {"a.name": {"$ne": "Bob"}}}, {"$count": "n"}],
    [{"$unwind": "$a.tags"}, {"$count": "n"}],
])
def test_reading_only_the_fields_a_pipeline_uses_changes_nothing(db, coll, tail):
    # The engine decodes only the joined fields the tail reads; a stage reading
    # $$ROOT in between makes it decode everything. Both must agree.
    head = [{"$lookup": {"from": coll, "localField": "author_id", "foreignField": "id",
                         "as": "a"}},
            {"$unwind": {"path": "$a", "preserveNullAndEmptyArrays": True}}]
    partial = list(db.entries.aggregate(head + tail))
    whole = list(db.entries.aggregate(head + [{"$addFields": {"everything": "$$ROOT"}}] + tail))
    assert partial == whole
    assert partial
