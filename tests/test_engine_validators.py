"""Collection validators on the engine, through pymongo against the standalone
``djongo-server`` (built by ``cargo build -p djongo-server``): ``create`` and
``collMod`` with ``validator``/``validationLevel``/``validationAction``, the writes
they govern, ``bypassDocumentValidation``, and mongod's error 121 with ``errInfo``."""

import pytest
from bson import Int64
from pymongo import ReturnDocument
from pymongo.errors import BulkWriteError, OperationFailure, WriteError

from tests.engine_server import Server


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("validators") / "data").start()
    yield s
    s.stop()


@pytest.fixture
def client(server):
    c = server.client()
    yield c
    c.close()


@pytest.fixture
def db(client, request):
    name = "v_" + request.node.name[:50].replace("[", "_").replace("]", "_")
    client.drop_database(name)
    yield client[name]
    client.drop_database(name)


STUDENTS = {"$jsonSchema": {
    "bsonType": "object",
    "required": ["name", "year"],
    "properties": {
        "name": {"bsonType": "string", "maxLength": 20, "description": "must be a string"},
        "year": {"bsonType": "int", "minimum": 2017, "maximum": 3017},
        "major": {"enum": ["Math", "History", None]},
        "address": {"bsonType": "object", "required": ["city"],
                    "properties": {"city": {"bsonType": "string"}}},
    },
}}


def error_of(exc_info) -> dict:
    """The write error (or command error) document of a refused write."""
    exc = exc_info.value
    if isinstance(exc, BulkWriteError):
        return exc.details["writeErrors"][0]
    return exc.details


def test_create_stores_the_options_and_list_collections_shows_them(db):
    db.create_collection("students", validator=STUDENTS)
    info = next(db.list_collections(filter={"name": "students"}))
    assert info["options"] == {"validator": STUDENTS, "validationLevel": "strict",
                               "validationAction": "error"}


def test_a_failing_insert_gets_121_with_errinfo(db):
    db.create_collection("students", validator=STUDENTS)
    db.students.insert_one({"_id": 1, "name": "Ann", "year": 2020})
    with pytest.raises(WriteError) as exc:
        db.students.insert_one({"_id": 2, "name": 7, "year": 2020, "major": "Art"})
    err = error_of(exc)
    assert err["code"] == 121
    assert err["errmsg"] == "Document failed validation"
    assert err["errInfo"] == {"failingDocumentId": 2, "details": {
        "operatorName": "$jsonSchema",
        "schemaRulesNotSatisfied": [{"operatorName": "properties", "propertiesNotSatisfied": [
            {"propertyName": "name", "description": "must be a string", "details": [
                {"operatorName": "bsonType", "specifiedAs": {"bsonType": "string"},
                 "reason": "type did not match", "consideredValue": 7, "consideredType": "int"}]},
            {"propertyName": "major", "details": [
                {"operatorName": "enum", "specifiedAs": {"enum": ["Math", "History", None]},
                 "reason": "value was not found in enum", "consideredValue": "Art"}]},
        ]}],
    }}
    assert db.students.count_documents({}) == 1


def test_ordered_and_unordered_inserts_report_each_failure(db):
    db.create_collection("c", validator={"a": {"$gte": 0}})
    with pytest.raises(BulkWriteError) as exc:
        db.c.insert_many([{"_id": 1, "a": 1}, {"_id": 2, "a": -1}, {"_id": 3, "a": 2}])
    assert [e["index"] for e in exc.value.details["writeErrors"]] == [1]
    assert db.c.count_documents({}) == 1
    with pytest.raises(BulkWriteError) as exc:
        db.c.insert_many([{"_id": 4, "a": -1}, {"_id": 5, "a": 2}, {"_id": 6, "a": -2}],
                         ordered=False)
    errors = exc.value.details["writeErrors"]
    assert [(e["index"], e["code"]) for e in errors] == [(0, 121), (2, 121)]
    assert errors[0]["errInfo"]["details"] == {
        "operatorName": "$gte", "specifiedAs": {"a": {"$gte": 0}},
        "reason": "comparison failed", "consideredValue": -1}
    assert sorted(d["_id"] for d in db.c.find()) == [1, 5]


def test_updates_upserts_and_find_and_modify_are_checked(db):
    db.create_collection("c", validator={"$expr": {"$lte": ["$low", "$high"]}})
    db.c.insert_one({"_id": 1, "low": 1, "high": 5})
    with pytest.raises(WriteError) as exc:
        db.c.update_one({"_id": 1}, {"$set": {"low": 9}})
    assert error_of(exc)["errInfo"]["details"] == {
        "operatorName": "$expr", "specifiedAs": {"$expr": {"$lte": ["$low", "$high"]}},
        "reason": "expression did not match", "expressionResult": False}
    with pytest.raises(WriteError):
        db.c.update_one({"_id": 2}, {"$set": {"low": 9, "high": 1}}, upsert=True)
    with pytest.raises(WriteError):
        db.c.replace_one({"_id": 1}, {"low": 3, "high": 2})
    # Pipeline updates too.
    with pytest.raises(WriteError):
        db.c.update_one({"_id": 1}, [{"$set": {"high": {"$subtract": ["$low", 1]}}}])
    with pytest.raises(OperationFailure) as exc:
        db.c.find_one_and_update({"_id": 1}, {"$inc": {"low": 10}})
    assert exc.value.code == 121
    assert exc.value.details["codeName"] == "DocumentValidationFailure"
    assert exc.value.details["errInfo"]["failingDocumentId"] == 1
    assert db.c.find_one({"_id": 1}) == {"_id": 1, "low": 1, "high": 5}
    assert db.c.find_one_and_update({"_id": 1}, {"$inc": {"low": 1}},
                                    return_document=ReturnDocument.AFTER)["low"] == 2


def test_bypass_document_validation(db):
    db.create_collection("c", validator={"a": {"$exists": True}})
    db.c.insert_one({"_id": 1}, bypass_document_validation=True)
    db.c.insert_many([{"_id": 2}, {"_id": 3}], bypass_document_validation=True)
    db.c.update_one({"_id": 1}, {"$set": {"b": 1}}, bypass_document_validation=True)
    db.c.find_one_and_update({"_id": 2}, {"$set": {"b": 1}}, bypassDocumentValidation=True)
    assert db.c.count_documents({"b": 1}) == 2
    with pytest.raises(WriteError):
        db.c.insert_one({"_id": 4}, bypass_document_validation=False)


def test_coll_mod_changes_the_validator_level_and_action(db):
    db.c.insert_many([{"_id": 1, "a": 1}, {"_id": 2, "a": -1}])
    db.command("collMod", "c", validator={"a": {"$gte": 0}})
    info = next(db.list_collections(filter={"name": "c"}))["options"]
    assert info == {"validator": {"a": {"$gte": 0}}, "validationLevel": "strict",
                    "validationAction": "error"}
    # Existing documents are not checked; writes are.
    with pytest.raises(WriteError):
        db.c.update_one({"_id": 2}, {"$set": {"b": 1}})
    # moderate: an invalid document may stay invalid, a valid one may not become so.
    db.command("collMod", "c", validationLevel="moderate")
    db.c.update_one({"_id": 2}, {"$set": {"b": 1}})
    with pytest.raises(WriteError):
        db.c.update_one({"_id": 1}, {"$set": {"a": -5}})
    with pytest.raises(WriteError):
        db.c.insert_one({"_id": 3, "a": -1})
    # warn: let through (the server logs the warning).
    db.command("collMod", "c", validationLevel="strict", validationAction="warn")
    db.c.insert_one({"_id": 4, "a": -1})
    # off: nothing is checked.
    db.command("collMod", "c", validationLevel="off", validationAction="error")
    db.c.insert_one({"_id": 5, "a": -1})
    # An empty validator removes validation.
    db.command("collMod", "c", validator={}, validationLevel="strict")
    db.c.insert_one({"_id": 6, "a": -1})
    assert db.c.count_documents({}) == 5


@pytest.mark.parametrize("validator, code", [
    (7, 2),
    ({"$where": "this.a == this.b"}, 2),
    ({"$text": {"$search": "bob"}}, 2),
    ({"loc": {"$nearSphere": [0, 0]}}, 5626500),
    ({"$expr": {"$eq": ["$a", "$$unbound"]}}, 17276),
    ({"$jsonSchema": {"invalid": 1}}, 9),
    ({"$jsonSchema": {"format": "email"}}, 9),
    ({"$jsonSchema": {"type": "integer"}}, 9),
    ({"a": {"$foo": 1}}, 2),
])
def test_invalid_validators_are_refused(db, validator, code):
    with pytest.raises(OperationFailure) as exc:
        db.command("create", "c", validator=validator)
    assert exc.value.code == code
    db.create_collection("ok")
    with pytest.raises(OperationFailure) as exc:
        db.command("collMod", "ok", validator=validator)
    assert exc.value.code in (code, 14)  # collMod checks the type first


def test_bad_levels_actions_and_places(db, client):
    for options, code in [({"validationLevel": "sometimes"}, 2),
                          ({"validationAction": "shout"}, 2)]:
        with pytest.raises(OperationFailure) as exc:
            db.command("create", "c", **options)
        assert exc.value.code == code
    with pytest.raises(OperationFailure) as exc:
        client.admin.command("create", "c", validator={"a": 1})
    assert exc.value.code == 72
    with pytest.raises(OperationFailure) as exc:
        db.command("collMod", "missing", validator={"a": 1})
    assert exc.value.code == 26
    db.create_collection("c")
    with pytest.raises(OperationFailure) as exc:
        db.command("collMod", "c", colour="blue")
    assert exc.value.code == 40415  # IDLUnknownField, as mongod's strict command parser


def test_validators_hold_inside_transactions(client, db):
    db.create_collection("c", validator={"a": {"$type": "int"}})
    with client.start_session() as session:
        with pytest.raises(WriteError):
            with session.start_transaction():
                db.c.insert_one({"_id": 1, "a": 1}, session=session)
                db.c.insert_one({"_id": 2, "a": "x"}, session=session)
    assert db.c.count_documents({}) == 0
    with client.start_session() as session:
        with session.start_transaction():
            db.c.insert_one({"_id": 3, "a": 1}, session=session)
            db.c.update_one({"_id": 3}, {"$set": {"b": 2}}, session=session)
    assert db.c.find_one() == {"_id": 3, "a": 1, "b": 2}


def test_out_and_merge_check_the_target(db):
    db.src.insert_many([{"_id": 1, "v": 1}, {"_id": 2, "v": -1}])
    db.create_collection("target", validator={"v": {"$gte": 0}})
    with pytest.raises(OperationFailure) as exc:
        list(db.src.aggregate([{"$out": "target"}]))
    assert exc.value.code == 121
    assert db.target.count_documents({}) == 0
    list(db.src.aggregate([{"$out": "target"}], bypassDocumentValidation=True))
    assert db.target.count_documents({}) == 2
    # $out keeps the target's validator.
    assert next(db.list_collections(filter={"name": "target"}))["options"]["validator"] == {
        "v": {"$gte": 0}}
    db.target.delete_many({})
    with pytest.raises(OperationFailure) as exc:
        list(db.src.aggregate([{"$merge": {"into": "target"}}]))
    assert exc.value.code == 121
    db.target.insert_one({"_id": 1, "v": 5})
    with pytest.raises(OperationFailure):
        list(db.src.aggregate([{"$match": {"_id": 1}}, {"$set": {"v": -3}},
                               {"$merge": {"into": "target", "whenMatched": "merge"}}]))
    assert db.target.find_one({"_id": 1}) == {"_id": 1, "v": 5}


def test_json_schema_is_a_query_operator_too(db):
    db.c.insert_many([{"_id": 1, "n": Int64(3)}, {"_id": 2, "n": "3"}, {"_id": 3}])
    schema = {"required": ["n"], "properties": {"n": {"bsonType": "long"}}}
    assert [d["_id"] for d in db.c.find({"$jsonSchema": schema})] == [1]
    assert [d["_id"] for d in db.c.find({"$nor": [{"$jsonSchema": schema}]})] == [2, 3]


def test_expr_that_fails_to_evaluate(db):
    db.create_collection("c", validator={"$expr": {"$divide": [10, "$d"]}})
    with pytest.raises(WriteError) as exc:
        db.c.insert_one({"_id": 1, "d": 0})
    details = error_of(exc)["errInfo"]["details"]
    assert details["reason"] == "failed to evaluate aggregation expression"
    assert "divide by zero" in details["details"]["errmsg"]
    # In warn mode such a document is accepted.
    db.command("collMod", "c", validationAction="warn")
    db.c.insert_one({"_id": 2, "d": 0})
