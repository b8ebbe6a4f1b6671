"""bulk_create(ignore_conflicts=...) and bulk_create(update_conflicts=...) as
MongoDB upserts, in and out of transactions."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, ProgrammingError, connection, transaction

from tests.blogapp.models import Author


def emails() -> list[tuple[str, str | None, int]]:
    return list(Author.objects.order_by("name").values_list("name", "email", "rank"))


def seed() -> list[Author]:
    return Author.objects.bulk_create([
        Author(name="ann", email="ann@example.com", rank=1),
        Author(name="bob", email="bob@example.com", rank=2),
    ])


def check_ignore_conflicts():
    seed()
    Author.objects.bulk_create([
        Author(name="ann again", email="ann@example.com", rank=9),
        Author(name="cid", email="cid@example.com", rank=3),
        Author(name="cid twin", email="cid@example.com", rank=4),
        Author(name="no mail 1", email=None),
        Author(name="no mail 2", email=None),
    ], ignore_conflicts=True)
    assert emails() == [
        ("ann", "ann@example.com", 1), ("bob", "bob@example.com", 2),
        ("cid", "cid@example.com", 3), ("no mail 1", None, 0), ("no mail 2", None, 0),
    ]


def check_update_conflicts():
    seed()
    created = Author.objects.bulk_create([
        Author(name="ann v2", email="ann@example.com", rank=10),
        Author(name="dan", email="dan@example.com", rank=4),
        Author(name="nobody", email=None, rank=5),
    ], update_conflicts=True, unique_fields=["email"], update_fields=["name", "rank"])
    assert emails() == [
        ("ann v2", "ann@example.com", 10), ("bob", "bob@example.com", 2),
        ("dan", "dan@example.com", 4), ("nobody", None, 5),
    ]
    # Every object gets the key of the row it inserted or updated.
    by_email = dict(Author.objects.values_list("email", "pk"))
    assert [a.pk for a in created] == [by_email["ann@example.com"], by_email["dan@example.com"],
                                       by_email[None]]


@pytest.mark.django_db
def test_ignore_conflicts_inside_a_transaction():
    check_ignore_conflicts()
    # The transaction goes on: MongoDB aborts one on a duplicate key error.
    Author.objects.create(name="zed")
    assert Author.objects.count() == 6


@pytest.mark.django_db(transaction=True)
def test_ignore_conflicts_outside_a_transaction():
    check_ignore_conflicts()


@pytest.mark.django_db
def test_update_conflicts_inside_a_transaction():
    check_update_conflicts()


@pytest.mark.django_db(transaction=True)
def test_update_conflicts_outside_a_transaction():
    check_update_conflicts()


@pytest.mark.django_db(transaction=True)
def test_upserts_inside_atomic_roll_back_with_it():
    seed()
    with pytest.raises(RuntimeError), transaction.atomic():
        Author.objects.bulk_create([Author(name="ann v2", email="ann@example.com", rank=7)],
                                   update_conflicts=True, unique_fields=["email"],
                                   update_fields=["name"])
        Author.objects.bulk_create([Author(name="eve", email="eve@example.com")],
                                   ignore_conflicts=True)
        raise RuntimeError
    assert emails() == [("ann", "ann@example.com", 1), ("bob", "bob@example.com", 2)]


@pytest.mark.django_db
def test_a_conflict_target_that_is_no_unique_constraint_is_refused():
    seed()
    with pytest.raises(ProgrammingError, match="does not match"), transaction.atomic():
        Author.objects.bulk_create([Author(name="ann", email="x@example.com")],
                                   update_conflicts=True, unique_fields=["name"],
                                   update_fields=["rank"])
    assert emails() == [("ann", "ann@example.com", 1), ("bob", "bob@example.com", 2)]


@pytest.mark.django_db
def test_a_conflict_on_another_unique_index_is_still_an_integrity_error():
    seed()
    with pytest.raises(IntegrityError), transaction.atomic():
        # Targets the primary key, collides on email.
        Author.objects.bulk_create([Author(pk=10_000, name="x", email="bob@example.com")],
                                   update_conflicts=True, unique_fields=["pk"],
                                   update_fields=["name"])


@pytest.mark.django_db
def test_the_plan_names_the_target_and_the_updated_columns():
    from djongo import _core

    plan = _core.compile_uncached(
        'INSERT INTO "t" ("a", "b", "c") VALUES (%s, %s, %s) '
        'ON CONFLICT("a", "b") DO UPDATE SET "c" = EXCLUDED."c" RETURNING "t"."id"')
    assert plan["on_conflict"] == {"target": ["a", "b"], "update": [["c", "c"]]}
    assert plan["returning"] == ["id"]
    assert connection.features.supports_update_conflicts_with_target
