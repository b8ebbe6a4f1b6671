"""``$jsonSchema`` validators generated from models (``djongo.models.JSONSchemaValidation``):
what is installed, what it refuses, and how migrations keep it in step with the model."""

import datetime

import pytest
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, connection, migrations, models, transaction
from django.db.migrations.autodetector import MigrationAutodetector
from django.db.migrations.graph import MigrationGraph
from django.db.migrations.questioner import MigrationQuestioner
from django.db.migrations.state import ModelState, ProjectState
from django.test.utils import isolate_apps
from djongo.models import JSONSchemaValidation
from djongo.models.schema_validation import json_schema

from tests.validationapp.models import Address, Article, Tag

# Each test runs on the embedded engine and on a standalone djongo-server
# reached through CLIENT (tests/conftest.py).
pytestmark = [pytest.mark.django_db(databases=["default", "standalone"]),
              pytest.mark.usefixtures("default_server")]


def options_of(table: str) -> dict:
    db = connection.connection.database
    infos = list(db.list_collections(filter={"name": table},
                                     session=connection.connection.session_for_statement()))
    return infos[0]["options"] if infos else {}


def schema_of(table: str) -> dict | None:
    validator = options_of(table).get("validator") or {}
    clauses = validator.get("$and", [validator])
    return next((c["$jsonSchema"] for c in clauses if "$jsonSchema" in c), None)


def test_migrate_installs_the_schema_generated_from_the_model():
    assert schema_of("validationapp_article") == {
        "bsonType": "object",
        "required": ["id", "title"],
        "properties": {
            "id": {"bsonType": ["int", "long"]},
            "title": {"bsonType": "string", "maxLength": 30},
            "status": {"bsonType": "string", "maxLength": 10, "enum": ["draft", "live"]},
            "rating": {"bsonType": ["int", "long", "null"], "minimum": 1, "maximum": 5},
            "address": {"bsonType": ["object", "null"], "required": ["city"], "properties": {
                "city": {"bsonType": "string", "maxLength": 30},
                "zip_code": {"bsonType": ["string", "null"], "maxLength": 5}}},
            "tags": {"bsonType": ["array", "null"], "items": {
                "bsonType": "object", "required": ["label"],
                "properties": {"label": {"bsonType": "string", "maxLength": 10}}}},
            "published": {"bsonType": ["date", "null"]},
        },
        "title": "validationapp.Article",
    }
    options = options_of("validationapp_article")
    assert (options["validationLevel"], options["validationAction"]) == ("strict", "error")


def test_valid_documents_are_stored():
    Article.objects.create(title="Hello", status="live", rating=5,
                           address=Address(city="Oslo", zip_code="0150"),
                           tags=[Tag(label="news")],
                           published=datetime.datetime(2025, 1, 2, tzinfo=datetime.UTC))
    Article.objects.create(title="Bare")
    assert Article.objects.count() == 2


@pytest.mark.parametrize("values, message", [
    ({"title": "x" * 31}, "field 'title': maxLength 30"),
    ({"title": "t", "status": "gone"}, "field 'status': enum"),
    ({"title": "t", "rating": 6}, "field 'rating': maximum 5"),
    ({"title": "t", "address": Address(city="C" * 31)}, "field 'address.city': maxLength 30"),
    ({"title": "t", "tags": [Tag(label="far too long")]}, "field 'tags.0.label': maxLength 10"),
])
def test_invalid_documents_raise_integrity_error_naming_the_field(values, message):
    with pytest.raises(IntegrityError, match="document failed schema validation") as exc, \
            transaction.atomic():
        Article.objects.create(**values)
    assert message in str(exc.value)
    assert Article.objects.count() == 0


def test_readme_example():
    with pytest.raises(IntegrityError) as exc, transaction.atomic():
        Article.objects.create(title="t", status="gone", rating=6)
    message = str(exc.value)
    assert message.startswith("document failed schema validation (document _id=")
    assert "field 'status': enum ['draft', 'live']: value was not found in enum" in message
    assert "field 'rating': maximum 5: comparison failed" in message


def test_updates_are_validated_too():
    a = Article.objects.create(title="ok")
    with pytest.raises(IntegrityError, match="field 'status'"), transaction.atomic():
        Article.objects.filter(pk=a.pk).update(status="archived")
    a.refresh_from_db()
    assert a.status == "draft"


def test_the_constraint_is_part_of_the_model_state():
    constraint = JSONSchemaValidation()
    assert constraint.deconstruct() == (
        "djongo.models.JSONSchemaValidation", (), {"name": "%(app_label)s_%(class)s_json_schema"})
    assert [c.name for c in Article._meta.constraints] == [
        "validationapp_article_json_schema", "rating_at_least_1"]
    custom = JSONSchemaValidation(name="s", validation_level="moderate")
    assert custom.deconstruct()[2] == {"name": "s", "validation_level": "moderate"}
    assert custom != JSONSchemaValidation(name="s")
    with pytest.raises(ValueError):
        JSONSchemaValidation(validation_action="shout")


def test_autodetector_sees_the_constraint_and_field_changes():
    def state(*, constraints, choices):
        project = ProjectState()
        project.add_model(ModelState("validationapp", "Note", [
            ("id", models.AutoField(primary_key=True)),
            ("kind", models.CharField(max_length=5, choices=choices)),
        ], options={"constraints": constraints}))
        return project

    def operations(old, new):
        questioner = MigrationQuestioner(specified_apps={"validationapp"})
        changes = MigrationAutodetector(old, new, questioner).changes(MigrationGraph())
        return [type(op).__name__ for op in changes["validationapp"][0].operations]

    before = state(constraints=[], choices=[("a", "A")])
    after = state(constraints=[JSONSchemaValidation(name="note_schema")], choices=[("a", "A")])
    assert operations(before, after) == ["AddConstraint"]
    # New choices change the enum, so the autodetector's AlterField must reach the schema editor.
    later = state(constraints=[JSONSchemaValidation(name="note_schema")],
                  choices=[("a", "A"), ("b", "B")])
    assert operations(after, later) == ["AlterField"]


def apply(operation, state: ProjectState) -> ProjectState:
    new_state = state.clone()
    operation.state_forwards("validationapp", new_state)
    with connection.schema_editor() as editor:
        operation.database_forwards("validationapp", editor, state, new_state)
    return new_state


@pytest.mark.django_db(transaction=True, databases=["default", "standalone"])
def test_migrations_keep_the_validator_in_step_with_the_model():
    table = "validationapp_pony"
    state = apply(migrations.CreateModel("Pony", [
        ("id", models.AutoField(primary_key=True)),
        ("name", models.CharField(max_length=10)),
    ]), ProjectState())
    try:
        assert schema_of(table) is None
        state = apply(migrations.AddConstraint("Pony", JSONSchemaValidation(name="pony_schema")),
                      state)
        assert schema_of(table)["properties"]["name"] == {"bsonType": "string", "maxLength": 10}
        state = apply(migrations.AlterField("Pony", "name", models.CharField(
            max_length=20, choices=[("Ed", "Ed"), ("Al", "Al")])), state)
        assert schema_of(table)["properties"]["name"] == {
            "bsonType": "string", "maxLength": 20, "enum": ["Ed", "Al"]}
        state = apply(migrations.AddField("Pony", "weight", models.FloatField(default=1.5)),
                      state)
        assert schema_of(table)["properties"]["weight"] == {"bsonType": "double"}
        state = apply(migrations.RenameField("Pony", "weight", "mass"), state)
        schema = schema_of(table)
        assert "mass" in schema["properties"] and "weight" not in schema["properties"]
        state = apply(migrations.RemoveField("Pony", "mass"), state)
        assert "mass" not in schema_of(table)["properties"]
        db = connection.connection.database
        db[table].insert_one({"id": 1, "name": "Ed"})
        with pytest.raises(IntegrityError, match="field 'name'"):
            state.apps.get_model("validationapp", "Pony").objects.create(name="Bo")
        state = apply(migrations.RemoveConstraint("Pony", "pony_schema"), state)
        assert schema_of(table) is None
        assert options_of(table).get("validator", {}) == {}
    finally:
        apply(migrations.DeleteModel("Pony"), state)


@pytest.mark.django_db(transaction=True, databases=["default", "standalone"])
@isolate_apps("tests.validationapp")
def test_settings_choose_level_and_action(monkeypatch):
    class Kite(models.Model):
        name = models.CharField(max_length=3)

        class Meta:
            app_label = "validationapp"
            constraints = [JSONSchemaValidation(validation_level="moderate")]

    monkeypatch.setitem(connection.settings_dict, "SCHEMA_VALIDATION",
                        {"validationAction": "warn"})
    with connection.schema_editor() as editor:
        editor.create_model(Kite)
    try:
        options = options_of("validationapp_kite")
        assert (options["validationLevel"], options["validationAction"]) == ("moderate", "warn")
        Kite.objects.create(name="too long")  # a warning in the server's log, not an error
        # Without the database's consent nothing is installed.
        monkeypatch.setitem(connection.settings_dict, "SCHEMA_VALIDATION", False)
        with connection.schema_editor() as editor:
            editor.delete_model(Kite)
            editor.create_model(Kite)
        assert schema_of("validationapp_kite") is None
        assert [e.id for e in JSONSchemaValidation()._check(Kite, connection)] == ["djongo.W001"]
    finally:
        with connection.schema_editor() as editor:
            editor.delete_model(Kite)


def test_bad_settings_are_refused():
    from djongo.base import DatabaseWrapper

    for value in ("yes", {"validationLevel": "sometimes"}, {"level": "strict"}):
        wrapper = DatabaseWrapper({"ENGINE": "djongo", "NAME": "x", "SCHEMA_VALIDATION": value})
        with pytest.raises(ImproperlyConfigured, match="SCHEMA_VALIDATION"):
            wrapper.get_connection_params()


def test_sqlmigrate_shows_the_step_without_running_it():
    with connection.schema_editor(collect_sql=True) as editor:
        editor.add_constraint(Article, JSONSchemaValidation(name="x"))
    assert editor.collected_sql == [
        "-- djongo: set the $jsonSchema validator of validationapp_article"]


@isolate_apps("tests.validationapp")
def test_other_field_types():
    class Everything(models.Model):
        flag = models.BooleanField()
        amount = models.DecimalField(max_digits=5, decimal_places=2, null=True)
        day = models.DateField(default=datetime.date.today)
        when = models.TimeField(null=True)
        blob = models.BinaryField(null=True)
        level = models.PositiveSmallIntegerField(choices=[(1, "one"), (2, "two")])
        ref = models.ForeignKey(Article, on_delete=models.CASCADE, null=True)

        class Meta:
            app_label = "validationapp"

    props = json_schema(Everything, Everything._meta.local_concrete_fields,
                        connection)["properties"]
    assert props["flag"] == {"bsonType": "bool"}
    assert props["amount"] == {"bsonType": ["decimal", "null"]}
    assert props["day"] == {"bsonType": "date"}
    assert props["when"] == {"bsonType": ["string", "null"]}
    assert props["blob"] == {"bsonType": ["binData", "null"]}
    assert props["level"] == {"bsonType": ["int", "long"], "minimum": 0, "enum": [1, 2]}
    assert props["ref_id"] == {"bsonType": ["int", "long", "null"]}


def test_system_check_passes_when_enabled():
    assert [e for e in checks.run_checks() if e.id == "djongo.W001"] == []


def test_error_messages_name_what_failed():
    from djongo.validator import describe_failure

    error = {"errInfo": {"failingDocumentId": 7, "details": {
        "operatorName": "$and", "clausesNotSatisfied": [
            {"index": 0, "details": {
                "operatorName": "$expr",
                "specifiedAs": {"$expr": {"$let": {"vars": {"check": {"$literal": "c1"}},
                                                   "in": False}}},
                "reason": "expression did not match", "expressionResult": False}},
            {"index": 1, "details": {"operatorName": "$jsonSchema", "schemaRulesNotSatisfied": [
                {"operatorName": "required", "specifiedAs": {"required": ["a"]},
                 "missingProperties": ["a"]}]}},
        ]}}}
    assert describe_failure(error) == "CHECK constraint failed: c1 (document _id=7)"
    del error["errInfo"]["details"]["clausesNotSatisfied"][0]
    assert describe_failure(error) == (
        "document failed schema validation (document _id=7): field 'a' is required")
    item_error = {"operatorName": "bsonType", "specifiedAs": {"bsonType": "string"},
                  "reason": "type did not match", "consideredValue": 3, "consideredType": "int"}
    tags = {"propertyName": "tags", "details": [
        {"operatorName": "items", "reason": "At least one item did not match the sub-schema",
         "itemIndex": 1, "details": [item_error]}]}
    items = {"errInfo": {"details": {"operatorName": "$jsonSchema", "schemaRulesNotSatisfied": [
        {"operatorName": "properties", "propertiesNotSatisfied": [tags]}]}}}
    assert describe_failure(items) == ("document failed schema validation: "
                                       "field 'tags.1': bsonType 'string': type did not match")
