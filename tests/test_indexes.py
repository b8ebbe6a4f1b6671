"""djongo.models.indexes: MongoDB's index options through Meta.indexes and migrations."""

from __future__ import annotations

import pytest
from django.db import NotSupportedError, connection
from djongo.models import MongoIndex, TTLIndex

from tests.blogapp.models import Author, Entry


def _indexes(collection: str) -> dict[str, dict]:
    connection.ensure_connection()
    return {i["name"]: dict(i) for i in connection.mongo_database[collection].list_indexes()}


@pytest.mark.django_db(transaction=True, databases=["default", "standalone"])
@pytest.mark.usefixtures("default_server")   # embedded, and a standalone djongo-server
def test_ttl_and_sparse_indexes_are_created_and_dropped_by_the_schema_editor():
    ttl = TTLIndex(fields=["pub_date"], expire_after_seconds=3600, name="entry_pub_ttl",
                   sparse=True)
    sparse = MongoIndex(fields=["email", "-rank"], name="author_email_sparse", sparse=True)
    with connection.schema_editor() as editor:
        editor.add_index(Entry, ttl)
        editor.add_index(Author, sparse)
    made = _indexes("blogapp_entry")["entry_pub_ttl"]
    assert made["key"] == {"pub_date": 1}
    assert made["expireAfterSeconds"] == 3600 and made["sparse"] is True
    made = _indexes("blogapp_author")["author_email_sparse"]
    assert made["key"] == {"email": 1, "rank": -1} and made["sparse"] is True
    assert "expireAfterSeconds" not in made
    with connection.schema_editor() as editor:
        editor.remove_index(Entry, ttl)
        editor.remove_index(Author, sparse)
    assert "entry_pub_ttl" not in _indexes("blogapp_entry")
    assert "author_email_sparse" not in _indexes("blogapp_author")


def test_migrations_write_them_back_as_djongo_indexes():
    index = TTLIndex(fields=["pub_date"], expire_after_seconds=60, name="entry_pub_ttl")
    path, args, kwargs = index.deconstruct()
    assert path == "djongo.models.TTLIndex"
    assert kwargs == {"fields": ["pub_date"], "name": "entry_pub_ttl", "expire_after_seconds": 60}
    assert TTLIndex(**kwargs) == index
    assert TTLIndex(**{**kwargs, "expire_after_seconds": 61}) != index
    assert MongoIndex(fields=["a"], name="x", hidden=True).deconstruct()[2]["hidden"] is True


@pytest.mark.parametrize("kwargs", [
    {"fields": ["a", "b"], "expire_after_seconds": 1},
    {"fields": ["a"], "expire_after_seconds": -1},
    {"fields": ["a"], "expire_after_seconds": 2**31},
    {"fields": ["a"], "expire_after_seconds": "soon"},
    {"fields": ["a"], "expire_after_seconds": True},
])
def test_bad_ttl_indexes_are_refused_when_declared(kwargs):
    with pytest.raises(ValueError, match="TTLIndex"):
        TTLIndex(name="bad", **kwargs)


@pytest.mark.django_db(databases=["default", "standalone"])
@pytest.mark.usefixtures("default_server")
def test_an_unknown_index_option_is_refused_not_dropped():
    with connection.cursor() as cursor, pytest.raises(NotSupportedError, match="colour"):
        cursor.execute('CREATE INDEX "ix" ON "blogapp_entry" ("headline") WITH ("colour" = 1)')
