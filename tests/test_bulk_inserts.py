"""Multi-row INSERTs: what ``bulk_create()`` and a raw ``INSERT ... VALUES
(...), (...)`` store and return, every row built from the statement's
parameters in Rust (``djongo._core.InsertRows``, docs/statement-path.md).

Each way an INSERT takes is covered: inside ``atomic()`` (the ids taken
outside the transaction), in autocommit (numbered by the server in the
insert's own write), with explicit ids, and with a failing row in the middle.
"""

from __future__ import annotations

import datetime as dt
from contextlib import nullcontext
from decimal import Decimal

import pytest
from bson import ObjectId
from django.db import IntegrityError, connection, transaction

from tests.blogapp.models import Author, Document
from tests.copyapp.models import Book, Publisher
from tests.fieldsapp.models import Memo
from tests.writeapp.models import Booking

pytestmark = pytest.mark.django_db(transaction=True)

TITLES = ["plain", "naïve café", "日本語の本", "emoji 🎉", "", "quote ' \" $gt"]
PRICES = [Decimal("12.50"), None, Decimal("0.01"), Decimal("999999.99"), None, Decimal("-3.00")]


def _stored(model) -> list[dict]:
    connection.ensure_connection()
    collection = connection.connection.database[model._meta.db_table]
    return sorted(collection.find({}), key=lambda d: d["id"])


def _books(publisher: Publisher) -> list[Book]:
    return [Book(title=t, price=p, publisher=publisher)
            for t, p in zip(TITLES, PRICES, strict=True)]


def test_bulk_create_stores_nulls_decimals_unicode_and_datetimes_as_single_inserts_do():
    publisher = Publisher.objects.create(name="P")
    made = Book.objects.bulk_create(_books(publisher))
    ids = [b.id for b in made]
    assert None not in ids and ids == sorted(ids) and len(set(ids)) == len(ids)

    single = Publisher.objects.create(name="Q")
    for book in _books(single):
        book.save()
    by_id = {b.id: b for b in Book.objects.all()}
    for book, title, price in zip(made, TITLES, PRICES, strict=True):
        read = by_id[book.id]
        assert (read.title, read.price, read.publisher_id) == (title, price, publisher.id)
    # Stored exactly as the one-row inserts store the same values.
    stored = _stored(Book)
    bulk, one_by_one = stored[:len(TITLES)], stored[len(TITLES):]
    for a, b in zip(bulk, one_by_one, strict=True):
        assert {k: type(v) for k, v in a.items()} == {k: type(v) for k, v in b.items()}
        assert [k for k in a if k != "_id"] == [k for k in b if k != "_id"]
        # (``updated`` is auto_now: the time of each save.)
        differ = ("_id", "id", "publisher_id", "updated")
        assert {k: v for k, v in a.items() if k not in differ} == \
            {k: v for k, v in b.items() if k not in differ}
    assert bulk[0]["price"] == Decimal("12.50") and bulk[1]["price"] is None


def test_bulk_create_stores_dates_and_aware_datetimes_in_utc_to_the_millisecond():
    at = dt.datetime(2031, 2, 28, 23, 59, 7, 123456, tzinfo=dt.timezone(dt.timedelta(hours=5)))
    Booking.objects.bulk_create([
        Booking(room="a", day=dt.date(2031, 1, 2), at=at),
        Booking(room="b", day=dt.date(2024, 2, 29), at=None),
    ])
    stored = _stored(Booking)
    assert [(d["room"], d["day"], d["at"]) for d in stored] == [
        ("a", dt.datetime(2031, 1, 2), dt.datetime(2031, 2, 28, 18, 59, 7, 123000)),
        ("b", dt.datetime(2024, 2, 29), None),
    ]
    read = list(Booking.objects.order_by("room").values_list("day", "at"))
    assert read == [(dt.date(2031, 1, 2), at.replace(microsecond=123000)),
                    (dt.date(2024, 2, 29), None)]


@pytest.mark.parametrize("atomic", [False, True])
def test_a_raw_multi_row_insert_returns_its_ids_and_stores_each_row(atomic):
    sql = ('INSERT INTO "blogapp_author" ("name", "email", "rank") VALUES '
           '(%s, %s, %s), (%s, %s, %s), (%s, %s, %s) RETURNING "blogapp_author"."id"')
    params = ["Zoë", None, 1, "李", "li@example.com", 2, "x" * 300, None, -7]
    with transaction.atomic() if atomic else nullcontext():
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
    ids = [r[0] for r in rows]
    assert len(ids) == 3 and ids == sorted(ids) and all(isinstance(i, int) for i in ids)
    got = list(Author.objects.order_by("id").values_list("id", "name", "email", "rank"))
    assert got == [(ids[0], "Zoë", None, 1), (ids[1], "李", "li@example.com", 2),
                   (ids[2], "x" * 300, None, -7)]


@pytest.mark.parametrize("atomic", [False, True])
def test_explicit_ids_in_a_bulk_create_raise_the_counter(atomic):
    with transaction.atomic() if atomic else nullcontext():
        Author.objects.bulk_create([Author(id=700, name="a"), Author(id=40, name="b"),
                                    Author(name="c"), Author(name="d")])
    later = Author.objects.create(name="later")
    ids = sorted(Author.objects.values_list("id", flat=True))
    assert 40 in ids and 700 in ids and len(set(ids)) == 5
    assert later.id > 700
    numbered = Author.objects.filter(name__in=["c", "d"]).values_list("id", flat=True)
    assert all(i not in (40, 700) for i in numbered)


@pytest.mark.parametrize("atomic", [False, True])
def test_a_duplicate_key_in_the_middle_of_a_bulk_create_is_an_integrity_error_naming_it(atomic):
    Author.objects.create(name="first", email="taken@example.com")
    batch = [Author(name=f"n{i}", email=f"{i}@example.com") for i in range(5)]
    batch.insert(3, Author(name="dup", email="taken@example.com"))
    with pytest.raises(IntegrityError, match="taken@example.com"):
        with transaction.atomic() if atomic else nullcontext():
            Author.objects.bulk_create(batch)
    # bulk_create runs in a transaction of its own: none of its rows stay.
    assert list(Author.objects.values_list("name", flat=True)) == ["first"]


def test_a_raw_insert_with_a_duplicate_row_keeps_the_rows_before_it_in_autocommit():
    sql = ('INSERT INTO "blogapp_author" ("name", "email", "rank") VALUES '
           '(%s, %s, %s), (%s, %s, %s), (%s, %s, %s)')
    params = ["a", "same@example.com", 0, "b", "same@example.com", 0, "c", None, 0]
    with pytest.raises(IntegrityError, match="same@example.com"):
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
    # An ordered insert outside a transaction: the row before the failing one
    # was written, as MongoDB's insert writes it; the one after was not.
    assert list(Author.objects.values_list("name", flat=True)) == ["a"]


@pytest.mark.parametrize("atomic", [False, True])
def test_a_null_in_a_not_null_column_of_a_later_row_writes_nothing(atomic):
    sql = ('INSERT INTO "blogapp_author" ("name", "email", "rank") VALUES '
           '(%s, %s, %s), (%s, %s, %s)')
    with pytest.raises(IntegrityError, match="NOT NULL constraint failed: blogapp_author.name"):
        with transaction.atomic() if atomic else nullcontext():
            with connection.cursor() as cursor:
                cursor.execute(sql, ["ok", None, 0, None, None, 0])
    assert not Author.objects.exists()


def test_a_bulk_create_with_an_object_id_key_returns_the_stored_ids():
    made = Document.objects.bulk_create([Document(title="a"), Document(title="b")])
    assert all(isinstance(d._id, ObjectId) for d in made)
    assert sorted(Document.objects.values_list("_id", "title")) == \
        sorted((d._id, d.title) for d in made)


def test_a_bulk_create_larger_than_a_message_is_split_and_keeps_its_order(commands):
    # 50 rows of 1 MB: more than one 48 MB message, so the store's client
    # sends two insert commands; the ids and rows stay in the objects' order.
    # A first bulk_create leaves the table's facts known to the process, so
    # the big one's insert is the first command of its transaction (its ids
    # are taken outside it): only its first message may start the transaction.
    Memo.objects.bulk_create([Memo(text="warm-up")])
    Memo.objects.all().delete()
    commands.clear()
    text = "é" * (512 * 1024)  # 1 MB as UTF-8
    made = Memo.objects.bulk_create([Memo(text=f"{i:02d}{text}") for i in range(50)])
    inserts = [c for name, c in commands if name == "insert"]
    assert len(inserts) == 2 and sum(len(c["documents"]) for c in inserts) == 50
    ids = [m.pk for m in made]
    assert None not in ids and ids == sorted(ids) and len(set(ids)) == 50
    stored = list(Memo.objects.order_by("pk").values_list("pk", "text"))
    assert [pk for pk, _ in stored] == ids
    assert [t[:2] for _, t in stored] == [f"{i:02d}" for i in range(50)]
    assert all(t[2:] == text for _, t in stored)
