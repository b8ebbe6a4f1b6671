"""Moving data in: `manage.py repaircounters` and `manage.py copydata --from sqlite`."""

from datetime import UTC, datetime
from decimal import Decimal
from io import StringIO

import pytest
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.db.models import Max
from django.db.models.query import QuerySet

from tests.blogapp.models import Author
from tests.copyapp.models import Book, Publisher, Tag

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "sqlite"])

LONG_AGO = datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC)


def run(*args, **options):
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


@pytest.fixture(autouse=True)
def counters_from_zero():
    """The tables start empty; so do their counters (flush keeps them: no sequence reset)."""
    connection.mongo_database["__schema__"].update_many(
        {"name": {"$regex": "^(blogapp|copyapp)_"}, "auto": {"$exists": True}},
        {"$set": {"auto.seq": 0}})


def counter(table):
    return connection.mongo_database["__schema__"].find_one({"name": table})["auto"]


# -- repaircounters ---------------------------------------------------------------------


@pytest.fixture
def authors_inserted_behind_the_counter():
    """Rows written straight into MongoDB (a restore, a script): the counter says 2."""
    Author.objects.create(name="one")
    Author.objects.create(name="two")
    connection.mongo_database["blogapp_author"].insert_many(
        [{"id": 17, "name": "restored"}, {"id": 40, "name": "imported"}])
    assert counter("blogapp_author")["seq"] == 2


def test_repaircounters_dry_run_reports_without_writing(authors_inserted_behind_the_counter):
    out, _ = run("repaircounters", "blogapp", "--dry-run")
    assert "blogapp_author.id: counter would be raised from 2 to 40" in out
    assert "(dry run: nothing written)" in out
    assert counter("blogapp_author")["seq"] == 2


def test_repaircounters_raises_a_counter_behind_the_data(authors_inserted_behind_the_counter):
    out, _ = run("repaircounters")
    assert "blogapp_author.id: counter was raised from 2 to 40" in out
    assert counter("blogapp_author") == {"field_names": ["id"], "seq": 40}
    assert Author.objects.create(name="next").id == 41

    out, _ = run("repaircounters")
    assert "counters are at or above the largest id" in out


def test_repaircounters_never_lowers_and_creates_missing_counters():
    Author.objects.create(name="one")
    schema = connection.mongo_database["__schema__"]
    schema.update_one({"name": "blogapp_author"}, {"$set": {"auto.seq": 100}})
    # A collection copied in from elsewhere, without its counter.
    connection.mongo_database["copyapp_publisher"].insert_one({"id": 9, "name": "copied"})
    schema.update_one({"name": "copyapp_publisher"}, {"$unset": {"auto": ""}})

    out, _ = run("repaircounters", "blogapp", "copyapp.Publisher")
    assert "copyapp_publisher.id: counter was created at 9" in out
    assert "blogapp_author" not in out
    assert counter("blogapp_author")["seq"] == 100
    assert counter("copyapp_publisher") == {"field_names": ["id"], "seq": 9}
    assert Publisher.objects.create(name="new").id == 10


def test_repaircounters_refuses_a_database_that_is_not_djongo():
    with pytest.raises(CommandError, match="'sqlite' uses SQLite"):
        run("repaircounters", "--database", "sqlite")


# -- copydata ------------------------------------------------------------------------


@pytest.fixture
def bookshop():
    """A small bookshop in SQLite: foreign keys, a self reference, tags, gaps in the ids."""
    src = "sqlite"
    publishers = [Publisher.objects.using(src).create(name=f"publisher {i}") for i in range(3)]
    tags = [Tag.objects.using(src).create(label=f"tag-{i}") for i in range(4)]
    previous = None
    for i in range(25):
        book = Book.objects.using(src).create(
            title=f"book {i}", publisher=publishers[i % 3], price=Decimal("9.99") + i,
            sequel_of=previous if i % 5 else None,
        )
        book.tags.set(tags[: i % 4])
        previous = book
    Book.objects.using(src).filter(title__in=["book 3", "book 24"]).delete()
    Book.objects.using(src).update(updated=LONG_AGO)
    yield
    ContentType.objects.clear_cache()


def snapshot(alias):
    books = Book.objects.using(alias).order_by("pk")
    return {
        "books": list(books.values_list("id", "title", "publisher_id", "updated", "price",
                                        "sequel_of_id")),
        "tags": list(Tag.objects.using(alias).order_by("pk").values_list("label", flat=True)),
        "book_tags": sorted(Book.tags.through.objects.using(alias)
                            .values_list("id", "book_id", "tag_id")),
        "publishers": list(Publisher.objects.using(alias).order_by("pk")
                           .values_list("id", "name")),
    }


def test_copydata_copies_every_row_and_repairs_the_counters(bookshop):
    out, err = run("copydata", "copyapp", "--from", "sqlite", "--batch-size", "4")
    assert snapshot("default") == snapshot("sqlite")
    assert Book.objects.get(title="book 7").updated == LONG_AGO  # not now(): raw copy
    assert "Row counts match for all 4 models." in out
    # The progress bars went to stderr, one per model, each to its total.
    assert "copyapp.Book: 100%" in err and "23/23" in err
    assert "copyapp.Book_tags: 100%" in err

    # New rows continue after the copied ids.
    assert Book.objects.create(title="new", publisher_id=1).id == 25
    assert Publisher.objects.create(name="new").id == 4


def test_copydata_resumes_after_an_interruption(bookshop, monkeypatch):
    insert = QuerySet._insert
    calls = []

    def interrupted(self, *args, **kwargs):
        calls.append(self.model)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return insert(self, *args, **kwargs)

    monkeypatch.setattr(QuerySet, "_insert", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run("copydata", "copyapp", "--from", "sqlite", "--batch-size", "4", "--no-progress")
    monkeypatch.setattr(QuerySet, "_insert", insert)
    assert 0 < Book.objects.count() < 23

    out, err = run("copydata", "copyapp", "--from", "sqlite", "--batch-size", "4",
                   "--no-progress", verbosity=2)
    assert err == ""
    assert "copyapp.Publisher: 0 copied, 3 already there" in out
    assert "copyapp.Book: 19 copied, 4 already there" in out
    assert snapshot("default") == snapshot("sqlite")


def test_copydata_fails_when_counts_differ(bookshop):
    run("copydata", "copyapp", "--from", "sqlite", "--no-progress")
    Publisher.objects.create(name="only in MongoDB")
    with pytest.raises(CommandError, match=r"copyapp\.Publisher: 3 rows in 'sqlite', 4 in "
                                           r"'default'"):
        run("copydata", "copyapp", "--from", "sqlite", "--no-progress")


def test_copydata_replaces_the_content_types_migrate_made(bookshop):
    """Content types and permissions get the source's ids, so references to them hold."""
    src = "sqlite"
    ContentType.objects.using(src).filter(app_label="copyapp").delete()
    ContentType.objects.clear_cache()
    # An id neither database has given out: the target's ids grow with every flush
    # of a transactional test, so the source's next id may be taken there.
    free = 1 + max(ContentType.objects.using(alias).aggregate(m=Max("pk"))["m"] or 0
                   for alias in (src, "default"))
    book_type = ContentType.objects.using(src).create(pk=free, app_label="copyapp",
                                                       model="book")
    permission = Permission.objects.using(src).create(
        name="Can shelve book", codename="shelve_book", content_type=book_type)
    Group.objects.using(src).create(name="librarians").permissions.add(permission)
    assert not ContentType.objects.filter(pk=book_type.pk).exists()

    run("copydata", "contenttypes", "auth", "--from", src, "--no-progress")
    ContentType.objects.clear_cache()
    assert ContentType.objects.get(pk=book_type.pk).model_class() is Book
    librarians = Group.objects.get(name="librarians")
    assert [p.codename for p in librarians.permissions.all()] == ["shelve_book"]
    assert librarians.permissions.get().content_type.model == "book"


def test_copydata_checks_its_arguments():
    with pytest.raises(CommandError, match="No database 'nowhere'"):
        run("copydata", "--from", "nowhere")
    with pytest.raises(CommandError, match="same database"):
        run("copydata", "--from", "default")
    with pytest.raises(CommandError, match="'sqlite' uses SQLite"):
        run("copydata", "--from", "default", "--database", "sqlite")
    with pytest.raises(CommandError, match="Unknown app or model 'nosuchapp'"):
        run("copydata", "nosuchapp", "--from", "sqlite")
