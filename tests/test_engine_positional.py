"""Array positions in updates and projections, through pymongo: the positional
``$`` (the element the query matched), ``$[]`` (every element), ``$[<id>]``
with ``arrayFilters``, and the ``field.$`` projection. Expected results and
error codes are those of MongoDB's manual for these operators.
"""

from __future__ import annotations

import pymongo
import pytest
from pymongo import ReturnDocument, UpdateOne
from pymongo.errors import OperationFailure, WriteError

from tests.engine_server import Server

STUDENTS = [
    {
        "_id": 1,
        "grades": [85, 80, 80],
        "marks": [{"grade": 80, "mean": 75}, {"grade": 85, "mean": 90}],
    },
    {
        "_id": 2,
        "grades": [88, 90, 92],
        "marks": [{"grade": 90, "mean": 75}, {"grade": 87, "mean": 81}],
    },
    {"_id": 3, "grades": [85, 100, 90], "marks": [{"grade": 95, "mean": 85}]},
]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("positional") / "data").start()
    yield s
    s.stop()


@pytest.fixture
def students(server):
    client = server.client()
    coll = client.school.students
    coll.drop()
    coll.insert_many(STUDENTS)
    yield coll
    client.close()


def test_positional_dollar_updates_the_first_matched_element(students):
    res = students.update_one({"_id": 1, "grades": 80}, {"$set": {"grades.$": 82}})
    assert (res.matched_count, res.modified_count) == (1, 1)
    assert students.find_one({"_id": 1})["grades"] == [85, 82, 80]

    students.update_one({"_id": 2, "marks.grade": 87}, {"$inc": {"marks.$.mean": 4}})
    assert students.find_one({"_id": 2})["marks"] == [
        {"grade": 90, "mean": 75},
        {"grade": 87, "mean": 85},
    ]

    # $elemMatch picks the element that meets every condition.
    students.update_one(
        {"marks": {"$elemMatch": {"grade": {"$lte": 90}, "mean": {"$gt": 80}}}},
        {"$set": {"marks.$.flag": True}},
    )
    assert students.find_one({"_id": 1})["marks"][1] == {"grade": 85, "mean": 90, "flag": True}


def test_positional_dollar_in_update_many_uses_each_documents_match(students):
    students.update_many({"grades": {"$gte": 90}}, {"$set": {"grades.$": 0}})
    assert [d["grades"] for d in students.find().sort("_id", 1)] == [
        [85, 80, 80],
        [88, 0, 92],
        [85, 0, 90],
    ]


def test_positional_dollar_without_an_array_condition_is_refused(students):
    with pytest.raises(WriteError) as e:
        students.update_one({"_id": 1}, {"$set": {"grades.$": 1}})
    assert e.value.code == 2
    assert "positional operator did not find the match" in str(e.value)
    with pytest.raises(WriteError) as e:
        students.update_one({"grades": 77}, {"$set": {"grades.$": 1}}, upsert=True)
    assert e.value.code == 2
    assert students.count_documents({}) == 3, "the refused upsert inserted nothing"


def test_all_positional_and_array_filters(students):
    students.update_many({}, {"$inc": {"grades.$[]": 10}})
    assert students.find_one({"_id": 1})["grades"] == [95, 90, 90]

    res = students.update_many(
        {}, {"$set": {"grades.$[g]": 100}}, array_filters=[{"g": {"$gte": 100}}]
    )
    assert (res.matched_count, res.modified_count) == (3, 2), "nothing in _id 1 reaches 100"
    assert [d["grades"] for d in students.find().sort("_id", 1)] == [
        [95, 90, 90],
        [98, 100, 100],
        [95, 100, 100],
    ]

    students.update_many(
        {},
        {"$set": {"marks.$[m].mean": 100}},
        array_filters=[{"m.grade": {"$gte": 90}, "m.mean": {"$lt": 80}}],
    )
    assert students.find_one({"_id": 2})["marks"][0] == {"grade": 90, "mean": 100}
    assert students.find_one({"_id": 3})["marks"][0] == {"grade": 95, "mean": 85}


def test_array_filters_through_bulk_write_and_find_one_and_update(students):
    students.bulk_write(
        [
            UpdateOne(
                {"_id": 3},
                {"$mul": {"marks.$[hi].mean": 2}},
                array_filters=[{"hi.grade": {"$gt": 90}}],
            )
        ]
    )
    assert students.find_one({"_id": 3})["marks"] == [{"grade": 95, "mean": 170}]
    doc = students.find_one_and_update(
        {"_id": 1},
        {"$set": {"grades.$[low]": 0}},
        array_filters=[{"low": {"$lt": 85}}],
        return_document=ReturnDocument.AFTER,
    )
    assert doc["grades"] == [85, 0, 0]


def test_array_filters_are_checked_against_the_update(students):
    with pytest.raises(WriteError) as e:
        students.update_one({"_id": 1}, {"$set": {"grades.$[x]": 1}})
    assert e.value.code == 2 and "No array filter found for identifier 'x'" in str(e.value)
    with pytest.raises(WriteError) as e:
        students.update_one(
            {"_id": 1}, {"$set": {"grades.$[x]": 1}}, array_filters=[{"x": 1}, {"y": 2}]
        )
    assert e.value.code == 9 and "identifier 'y' was not used" in str(e.value)
    with pytest.raises(WriteError) as e:
        students.update_one({"_id": 1}, {"$set": {"grades.$[]": 1}, "$inc": {"grades.0": 1}})
    assert e.value.code == 40, "grades.$[] and grades.0 touch the same element"
    assert students.find_one({"_id": 1}) == STUDENTS[0], "refused updates change nothing"


def test_positional_projection(students):
    got = list(students.find({"grades": {"$gte": 90}}, {"grades.$": 1}).sort("_id", 1))
    assert got == [{"_id": 2, "grades": [90]}, {"_id": 3, "grades": [100]}]
    got = students.find_one({"marks.grade": 87}, {"marks.$": 1, "_id": 0})
    assert got == {"marks": [{"grade": 87, "mean": 81}]}
    with pytest.raises(OperationFailure) as e:
        list(students.find({}, {"grades.$": 1}))
    assert e.value.code == 51246
    with pytest.raises(OperationFailure) as e:
        list(students.find({"grades": 85}, {"grades.$": 0}))
    assert e.value.code == 31395


def test_the_server_keeps_serving_after_refusals(server, students):
    for bad in ({"$set": {"grades.$.x.$": 1}}, {"$rename": {"grades.$": "g"}}):
        with pytest.raises(WriteError):
            students.update_one({"grades": 85}, bad)
    client = server.client()
    try:
        assert client.admin.command("ping")["ok"] == 1.0
        assert isinstance(client, pymongo.MongoClient)
    finally:
        client.close()
