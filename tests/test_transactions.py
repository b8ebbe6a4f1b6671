"""transaction.atomic() as a user sees it on the embedded engine: real
transactions, savepoints for nested blocks, and what concurrent transactions
do to each other."""

import contextlib
import threading
from types import SimpleNamespace

import pytest
from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.models import F
from django.db.transaction import TransactionManagementError
from djongo.features import DatabaseFeatures
from djongo.transaction import is_transient, retry_on_conflict

from tests.blogapp.models import Author

# Commits must really happen here, so each test runs outside a wrapping
# transaction and the tables are flushed afterwards.
pytestmark = pytest.mark.django_db(transaction=True)


def names():
    return sorted(Author.objects.values_list("name", flat=True))


def test_the_embedded_engine_declares_savepoints():
    assert connection.features.uses_savepoints
    assert connection.features.can_release_savepoints


def test_savepoints_stay_off_on_a_server_without_them(monkeypatch):
    """A real MongoDB's hello has no ``djongo`` field, and no savepoint commands."""
    from djongo import server

    hellos = []

    def hello(name):
        hellos.append(name)
        return {"isWritablePrimary": True, "setName": "rs0", "ok": 1.0}

    client = SimpleNamespace(admin=SimpleNamespace(command=hello))
    monkeypatch.setattr(server, "get_client", lambda choice: client)
    monkeypatch.setattr(server, "_capabilities", {})
    settings = {**connection.settings_dict, "CLIENT": {"host": "mongodb://db.example:27017"}}
    for _ in range(2):
        features = DatabaseFeatures(_ForbiddenConnection(settings))
        assert not features.uses_savepoints
        assert not features.can_release_savepoints
        assert features.supports_transactions
    # Asked once per process, not once per connection.
    assert hellos == ["hello"]


class _ForbiddenConnection:
    """A DatabaseWrapper stand-in that refuses to connect, as pytest-django
    does outside a database test."""

    wrap_database_errors = contextlib.nullcontext()

    def __init__(self, settings_dict):
        self.settings_dict = settings_dict

    def ensure_connection(self):
        raise AssertionError("Database access not allowed")


def test_feature_flags_of_the_embedded_engine_need_no_connection():
    features = DatabaseFeatures(_ForbiddenConnection(connection.settings_dict))
    assert features.uses_savepoints
    assert features.can_release_savepoints
    assert features.supports_transactions


def test_a_standalone_mongodb_has_neither_transactions_nor_savepoints():
    from djongo.server import capabilities_from_hello

    caps = capabilities_from_hello({"isWritablePrimary": True, "ok": 1.0})
    assert (caps.transactions, caps.savepoints) == (False, False)
    caps = capabilities_from_hello({"msg": "isdbgrid", "djongo": "not a dict"})
    assert (caps.transactions, caps.savepoints) == (True, False)


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


# -- concurrent transactions ------------------------------------------------------


class Holder:
    """Another thread (so another Django connection) inside ``atomic()``,
    holding the documents it wrote until ``finish()``."""

    def __init__(self, work) -> None:
        self._holding = threading.Event()
        self._finish = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(work,))
        self._thread.start()
        assert self._holding.wait(30), self.error

    def _run(self, work) -> None:
        try:
            with transaction.atomic():
                work()
                self._holding.set()
                assert self._finish.wait(60)
        except BaseException as exc:  # reported by finish()
            self.error = exc
            self._holding.set()
        finally:
            connection.close()

    def finish(self) -> None:
        self._finish.set()
        self._thread.join(60)
        assert self.error is None, self.error


def test_a_write_conflict_fails_at_once_and_the_connection_recovers():
    author = Author.objects.create(name="shared")
    holder = Holder(lambda: Author.objects.filter(pk=author.pk).update(rank=1))
    try:
        with pytest.raises(OperationalError, match="Write conflict"), transaction.atomic():
            Author.objects.create(name="lost with the block")
            Author.objects.filter(pk=author.pk).update(rank=2)
        # The block is left: the connection works, and nothing of it stayed.
        assert names() == ["shared"]
    finally:
        holder.finish()
    # Retrying the block now succeeds, on top of the other transaction.
    with transaction.atomic():
        Author.objects.filter(pk=author.pk).update(rank=F("rank") + 10)
    assert Author.objects.get(pk=author.pk).rank == 11


def test_a_conflict_in_a_nested_block_dooms_the_outer_one_until_it_ends():
    author = Author.objects.create(name="shared")
    holder = Holder(lambda: Author.objects.filter(pk=author.pk).update(rank=1))
    try:
        with pytest.raises(TransactionManagementError), transaction.atomic():
            Author.objects.create(name="outer")
            with pytest.raises(OperationalError), transaction.atomic():
                Author.objects.filter(pk=author.pk).update(rank=2)
            # As on PostgreSQL: the transaction is over, nothing more runs in it.
            Author.objects.create(name="refused")
    finally:
        holder.finish()
    assert names() == ["shared"]
    with transaction.atomic():
        Author.objects.create(name="next")
    assert names() == ["next", "shared"]


def test_an_aborted_transaction_frees_the_connection_once_the_block_is_left():
    Author.objects.create(name="a", email="taken@example.com")
    table = Author._meta.db_table
    with pytest.raises(OperationalError), transaction.atomic(), connection.cursor() as cursor:
        # No savepoint here: the duplicate key ends the transaction (MongoDB's
        # rule, and PostgreSQL's "current transaction is aborted"). A raw
        # cursor, so that Django does not mark the block for rollback itself.
        with contextlib.suppress(IntegrityError):
            cursor.execute(f"INSERT INTO {table} (name, email, rank) VALUES (%s, %s, %s)",
                           ["b", "taken@example.com", 0])
        cursor.execute(f"INSERT INTO {table} (name, rank) VALUES (%s, %s)", ["c", 0])
    assert names() == ["a"]
    Author.objects.create(name="d")
    assert names() == ["a", "d"]


def test_transactions_inserting_into_one_table_do_not_conflict_on_ids():
    """Ids come from the table's counter outside the transaction, like a SQL
    sequence, so two open transactions can both insert and commit."""
    holder = Holder(lambda: Author.objects.create(name="from the other thread"))
    try:
        with transaction.atomic():
            mine = Author.objects.create(name="from this thread")
    finally:
        holder.finish()
    ids = list(Author.objects.values_list("pk", flat=True))
    assert len(ids) == len(set(ids)) == 2
    assert mine.pk in ids
    # Ids of a rolled-back transaction are skipped, never handed out again.
    with contextlib.suppress(ValueError), transaction.atomic():
        lost = Author.objects.create(name="rolled back")
        raise ValueError
    assert Author.objects.create(name="after").pk > lost.pk


def test_a_counter_written_directly_inside_the_transaction_still_gives_the_right_ids(mongo_db):
    """Code that writes a table's ``__schema__`` counter inside the transaction
    without telling the backend: ids are then taken inside the transaction,
    after a short wait for the counter outside it, never from the stale one."""
    Author.objects.create(name="first")
    table = Author._meta.db_table
    with transaction.atomic():
        mongo_db["__schema__"].update_one({"name": table}, {"$inc": {"auto.seq": 100}})
        raised = mongo_db["__schema__"].find_one({"name": table})["auto"]["seq"]
        assert Author.objects.create(name="second").pk == raised + 1
    assert names() == ["first", "second"]


def test_retry_on_conflict_runs_the_block_again_after_a_write_conflict():
    author = Author.objects.create(name="shared")
    holder = Holder(lambda: Author.objects.filter(pk=author.pk).update(rank=1))
    attempts = []

    @retry_on_conflict(attempts=3, backoff=0)
    def bump() -> int:
        attempts.append(len(attempts) + 1)
        if len(attempts) == 2:
            # The first attempt lost to the other transaction; let it commit,
            # so the second attempt's snapshot includes its write.
            holder.finish()
        Author.objects.filter(pk=author.pk).update(rank=F("rank") + 10)
        return Author.objects.get(pk=author.pk).rank

    try:
        assert bump() == 11
    finally:
        holder.finish()
    assert attempts == [1, 2]
    assert Author.objects.get(pk=author.pk).rank == 11


def test_retry_on_conflict_leaves_other_errors_and_nested_blocks_alone():
    Author.objects.create(name="a", email="taken@example.com")
    attempts = []

    @retry_on_conflict(attempts=3, backoff=0)
    def duplicate() -> None:
        attempts.append(1)
        Author.objects.create(name="b", email="taken@example.com")

    with pytest.raises(IntegrityError):
        duplicate()
    assert attempts == [1]

    author = Author.objects.create(name="shared")
    holder = Holder(lambda: Author.objects.filter(pk=author.pk).update(rank=1))

    @retry_on_conflict(attempts=3, backoff=0)
    def conflicting() -> None:
        attempts.append(2)
        Author.objects.filter(pk=author.pk).update(rank=2)

    try:
        # Inside an outer block the outer transaction is the one aborted:
        # nothing can be retried here, so the conflict is raised at once.
        with pytest.raises(OperationalError) as raised, transaction.atomic():
            conflicting()
    finally:
        holder.finish()
    assert attempts == [1, 2]
    assert is_transient(raised.value)
    assert Author.objects.get(pk=author.pk).rank == 1
