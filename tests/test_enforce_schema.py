"""ENFORCE_SCHEMA: missing fields read as None (False, default) or raise (True)."""

import pytest
from bson import ObjectId
from django.db import DatabaseError, connection
from djongo.exceptions import MigrationError

from tests.blogapp.models import Author

pytestmark = pytest.mark.django_db


@pytest.fixture
def old_document(mongo_db):
    """A document written before the model gained its ``rank`` and ``email`` fields."""
    mongo_db["blogapp_author"].insert_one({"id": 9001, "name": "old"})


def test_missing_fields_read_as_none_by_default(old_document):
    author = Author.objects.get(id=9001)
    assert (author.name, author.email, author.rank) == ("old", None, None)


def test_enforce_schema_names_collection_document_and_field(old_document, monkeypatch):
    monkeypatch.setattr(connection.connection, "enforce_schema", True)
    with pytest.raises(MigrationError) as info:
        Author.objects.get(id=9001)
    error = info.value
    assert (error.collection, error.field) == ("blogapp_author", "email")
    assert isinstance(error.document_id, ObjectId)
    assert str(error.document_id) in str(error) and "'email'" in str(error)
    # Django code catching its own DatabaseError sees it too.
    assert isinstance(error, DatabaseError)
    # Selecting only the fields the document has reads it.
    assert Author.objects.filter(id=9001).values_list("name", flat=True).get() == "old"


def test_enforce_schema_reads_a_stored_null(mongo_db, monkeypatch):
    mongo_db["blogapp_author"].insert_one({"id": 9002, "name": "n", "email": None, "rank": 1})
    monkeypatch.setattr(connection.connection, "enforce_schema", True)
    assert Author.objects.get(id=9002).email is None


def test_enforce_schema_setting_reaches_the_connection():
    from djongo.base import DatabaseWrapper

    params = DatabaseWrapper({"ENGINE": "djongo", "NAME": "x", "ENFORCE_SCHEMA": True},
                             alias="enforced").get_connection_params()
    assert params["enforce_schema"] is True
    assert DatabaseWrapper({"ENGINE": "djongo", "NAME": "x"}).get_connection_params()[
        "enforce_schema"] is False


@pytest.fixture
def never_migrated_authors():
    """The Author table as if migrate never ran; migrated again afterwards,
    with the foreign keys that referred to it (dropping a table drops them,
    as PostgreSQL's DROP TABLE ... CASCADE does)."""
    with connection.schema_editor() as editor:
        editor.delete_model(Author)
    yield
    connection.mongo_database.drop_collection("blogapp_author")
    connection.mongo_database["__schema__"].delete_one({"name": "blogapp_author"})
    with connection.schema_editor() as editor:
        editor.create_model(Author)
        for rel in Author._meta.related_objects:
            fields = ([f for f in rel.through._meta.local_fields
                       if f.remote_field and f.remote_field.model is Author]
                      if rel.many_to_many else [rel.field])
            for field in fields:
                editor.execute(editor._create_fk_sql(
                    field.model, field, "_fk_%(to_table)s_%(to_column)s"))


@pytest.mark.django_db(transaction=True)
def test_a_collection_that_was_never_migrated_works(never_migrated_authors):
    """With ENFORCE_SCHEMA off, a missing collection and counter are created on first use."""
    first = Author.objects.create(name="first")
    second = Author.objects.create(name="second")
    assert (first.id, second.id) == (1, 2)
    entry = connection.mongo_database["__schema__"].find_one({"name": "blogapp_author"})
    assert entry["auto"] == {"field_names": ["id"], "seq": 2}
