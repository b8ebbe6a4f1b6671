"""A database written by the original Djongo (1.3) is read and extended as it is."""

from datetime import date, datetime

import pytest
from bson import ObjectId

from tests.blogapp.models import Author, Blog, Entry

pytestmark = pytest.mark.django_db

TABLES = ["blogapp_author", "blogapp_entry", "blogapp_entry_contributors"]


@pytest.fixture
def djongo_written(mongo_db):
    """Documents exactly as Djongo 1.3 leaves them: ``_id`` ObjectIds beside the integer
    ``id``, dates as BSON datetimes, the embedded blog as a sub-document, and
    ``__schema__`` holding only ``name`` and ``auto`` (no column records)."""
    from django.db import connection

    mongo_db["__schema__"].delete_many({"name": {"$in": TABLES}})
    # Written inside the test's transaction: ids for these tables must be taken
    # there too (outside it, their counters are not Djongo's yet).
    connection.connection.wrote_schema_of(*TABLES)
    mongo_db["__schema__"].insert_many([
        {"_id": ObjectId(), "name": "blogapp_author", "auto": {"field_names": ["id"], "seq": 7}},
        {"_id": ObjectId(), "name": "blogapp_entry", "auto": {"field_names": ["id"], "seq": 3}},
        {"_id": ObjectId(), "name": "blogapp_entry_contributors",
         "auto": {"field_names": ["id"], "seq": 1}},
    ])
    mongo_db["blogapp_author"].insert_many([
        {"_id": ObjectId(), "id": 5, "name": "John", "email": "john@example.com", "rank": 1},
        {"_id": ObjectId(), "id": 7, "name": "Paul", "email": "paul@example.com", "rank": 2},
    ])
    mongo_db["blogapp_entry"].insert_one({
        "_id": ObjectId(), "id": 3,
        "blog": {"name": "Beatles Blog", "tagline": "All the latest Beatles news."},
        "headline": "Let it be", "body_text": "", "pub_date": datetime(1970, 5, 8),
        "n_comments": 4, "rating": 4.5, "author_id": 7,
    })
    mongo_db["blogapp_entry_contributors"].insert_one(
        {"_id": ObjectId(), "id": 1, "entry_id": 3, "author_id": 5})


def test_djongo_rows_read_through_the_orm(djongo_written):
    entry = Entry.objects.select_related("author").get(headline="Let it be")
    assert entry.id == 3
    assert entry.blog.name == "Beatles Blog"
    assert entry.pub_date == date(1970, 5, 8)
    assert entry.author.name == "Paul"
    assert [a.name for a in entry.contributors.all()] == ["John"]
    assert list(Entry.objects.filter(blog={"name": "Beatles Blog"})) == [entry]
    assert Author.objects.filter(contributed__blog__name="Beatles Blog").get().id == 5


def test_new_rows_continue_djongos_counters(djongo_written, mongo_db):
    author = Author.objects.create(name="George")
    entry = Entry.objects.create(headline="Something", blog=Blog(name="Beatles Blog"),
                                 author=author)
    entry.contributors.add(Author.objects.get(name="Paul"))
    assert (author.id, entry.id) == (8, 4)
    assert mongo_db["blogapp_entry_contributors"].find_one({"entry_id": 4})["id"] == 2
    # The counters keep Djongo's shape, so Djongo itself could still open the database.
    stored = mongo_db["__schema__"].find({"name": {"$in": TABLES}})
    counters = {d["name"]: d["auto"] for d in stored}
    assert counters == {
        "blogapp_author": {"field_names": ["id"], "seq": 8},
        "blogapp_entry": {"field_names": ["id"], "seq": 4},
        "blogapp_entry_contributors": {"field_names": ["id"], "seq": 2},
    }


def test_an_embedded_document_written_by_djongo_is_updated_in_place(djongo_written, mongo_db):
    entry = Entry.objects.get(id=3)
    entry.blog.tagline = "Still the latest."
    entry.n_comments += 1
    entry.save()
    stored = mongo_db["blogapp_entry"].find_one({"id": 3})
    assert stored["blog"] == {"name": "Beatles Blog", "tagline": "Still the latest."}
    assert stored["n_comments"] == 5
    assert mongo_db["blogapp_entry"].count_documents({"id": 3}) == 1
    Entry.objects.filter(blog__name="Beatles Blog").update(rating=5.0)
    assert Entry.objects.get(id=3).rating == 5.0
