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
