"""transaction.atomic() as a user sees it on the embedded engine: real
transactions, and savepoints for nested blocks."""

import contextlib
from types import SimpleNamespace

import pytest
from django.db import IntegrityError, connection, transaction
from djongo.features import DatabaseFeatures

from tests.blogapp.models import Author

# Commits must really happen here, so each test runs outside a wrapping
# transaction and the tables are flushed afterwards.
pytestmark = pytest.mark.django_db(transaction=True)


def names():
    return sorted(Author.objects.values_list("name", flat=True))


def test_the_embedded_engine_declares_savepoints():
    assert connection.features.uses_savepoints
    assert connection.features.can_release_savepoints


def test_savepoints_stay_off_on_a_server_without_them():
    """A real MongoDB's hello has no ``djongo`` field, and no savepoint commands."""
    hello = {"isWritablePrimary": True, "ok": 1.0}
    wrapper = SimpleNamespace(
        ensure_connection=lambda: None,
        wrap_database_errors=contextlib.nullcontext(),
        connection=SimpleNamespace(client=SimpleNamespace(
            admin=SimpleNamespace(command=lambda name: hello))),
    )
    features = DatabaseFeatures(wrapper)
    assert not features.uses_savepoints
    assert not features.can_release_savepoints


def test_nested_atomic_rolls_back_only_the_inner_block():
    with transaction.atomic():
        Author.objects.create(name="outer", email="a@example.com")
        with pytest.raises(IntegrityError), transaction.atomic():
            Author.objects.create(name="inner", email="b@example.com")
            Author.objects.create(name="duplicate", email="a@example.com")
        # The transaction goes on: the outer block can still read and write.
        assert names() == ["outer"]
        Author.objects.create(name="after", email="c@example.com")
    assert names() == ["after", "outer"]


def test_outer_commit_keeps_released_inner_writes():
    with transaction.atomic():
        Author.objects.create(name="outer")
        with transaction.atomic():
            Author.objects.create(name="inner")
        with transaction.atomic():
            with transaction.atomic():
                Author.objects.create(name="deep")
    assert names() == ["deep", "inner", "outer"]


def test_inner_rollback_by_set_rollback():
    with transaction.atomic():
        Author.objects.create(name="kept")
        with transaction.atomic():
            Author.objects.create(name="dropped")
            transaction.set_rollback(True)
    assert names() == ["kept"]


def test_manual_savepoints():
    with transaction.atomic():
        Author.objects.create(name="first")
        sid = transaction.savepoint()
        Author.objects.filter(name="first").update(rank=5)
        Author.objects.create(name="second")
        transaction.savepoint_rollback(sid)
        assert Author.objects.get(name="first").rank == 0
        Author.objects.create(name="third")
        transaction.savepoint_commit(sid)
    assert names() == ["first", "third"]


def test_atomic_rolls_back_everything_on_an_exception():
    Author.objects.create(name="before")

    class Boom(Exception):
        pass

    with pytest.raises(Boom), transaction.atomic():
        Author.objects.create(name="lost")
        Author.objects.filter(name="before").update(rank=9)
        with transaction.atomic():
            Author.objects.create(name="lost too")
        raise Boom
    assert names() == ["before"]
    assert Author.objects.get(name="before").rank == 0


def test_a_duplicate_rolled_back_in_a_savepoint_can_be_inserted_again():
    with transaction.atomic():
        with transaction.atomic():
            Author.objects.create(name="x", email="same@example.com")
            transaction.set_rollback(True)
        Author.objects.create(name="y", email="same@example.com")
    assert list(Author.objects.values_list("name", "email")) == [("y", "same@example.com")]


def test_on_commit_runs_after_commit_only():
    calls = []
    with transaction.atomic():
        Author.objects.create(name="a")
        transaction.on_commit(lambda: calls.append("outer"))
        with pytest.raises(IntegrityError), transaction.atomic():
            transaction.on_commit(lambda: calls.append("discarded with its savepoint"))
            Author.objects.create(name="b", email="dup@example.com")
            Author.objects.create(name="c", email="dup@example.com")
        assert calls == []
    assert calls == ["outer"]

    with pytest.raises(ValueError), transaction.atomic():
        transaction.on_commit(lambda: calls.append("rolled back"))
        raise ValueError
    assert calls == ["outer"]
