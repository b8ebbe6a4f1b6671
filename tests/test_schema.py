"""What migrate leaves in MongoDB: collections, indexes and __schema__ counters."""

import pytest

pytestmark = pytest.mark.django_db


def test_migrate_created_collections_for_contrib_and_app(mongo_db):
    names = set(mongo_db.list_collection_names())
    for expected in ["auth_user", "auth_group", "auth_permission", "django_content_type",
                     "django_session", "django_admin_log", "django_migrations",
                     "blogapp_author", "blogapp_entry", "blogapp_entry_contributors"]:
        assert expected in names


def test_schema_entries_have_djongo_shape(mongo_db):
    from tests.blogapp.models import Author

    Author.objects.create(name="x")
    entry = mongo_db["__schema__"].find_one({"name": "blogapp_author"})
    assert entry["auto"]["field_names"] == ["id"]
    assert entry["auto"]["seq"] >= 1
    assert mongo_db["__schema__"].find_one({"name": "django_migrations"}) is not None


def test_unique_constraints_are_partial_unique_indexes(mongo_db):
    indexes = {i["name"]: i for i in mongo_db["auth_user"].list_indexes()}
    username = [i for i in indexes.values() if list(i["key"]) == ["username"]]
    assert username and username[0]["unique"]
    assert "partialFilterExpression" in username[0]
    together = [i for i in mongo_db["auth_permission"].list_indexes()
                if list(i["key"]) == ["content_type_id", "codename"]]
    assert together and together[0]["unique"]


@pytest.mark.django_db(transaction=True)
def test_adding_a_not_null_column_with_default_fills_existing_documents(mongo_db):
    """Third-party migrations' ADD COLUMN ... DEFAULT ... NOT NULL (a Djongo failure)."""
    from django.db import connection, models

    from tests.blogapp.models import Author

    Author.objects.create(name="before")
    field = models.IntegerField(default=42)
    field.set_attributes_from_name("karma")
    with connection.schema_editor() as editor:
        editor.add_field(Author, field)
    stored = mongo_db["blogapp_author"].find_one({"name": "before"})
    assert stored["karma"] == 42
    with connection.schema_editor() as editor:
        editor.remove_field(Author, field)
    assert "karma" not in mongo_db["blogapp_author"].find_one({"name": "before"})


def test_explicit_ids_from_loaddata_raise_the_counter(mongo_db):
    from django.core import serializers

    from tests.blogapp.models import Author

    data = '[{"model": "blogapp.author", "pk": 77, "fields": {"name": "loaded", "rank": 0}}]'
    for obj in serializers.deserialize("json", data):
        obj.save()
    assert Author.objects.create(name="after load").id == 78
