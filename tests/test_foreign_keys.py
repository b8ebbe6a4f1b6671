"""Foreign keys on the embedded engine, as a Django user sees them: a
reference to no row fails with IntegrityError when the transaction commits
(at the end of the statement in autocommit), a referenced row cannot go while
rows refer to it, check_constraints finds violations inside a transaction,
introspection reports the constraints, and two transactions cannot together
leave a dangling reference."""

import threading
from types import SimpleNamespace

import pytest
from django.db import IntegrityError, OperationalError, connection, transaction
from djongo.features import DatabaseFeatures

from tests.blogapp.models import Author, Entry

pytestmark = pytest.mark.django_db(transaction=True)

ENTRY = Entry._meta.db_table
AUTHOR = Author._meta.db_table


def entry(author_id, headline="h"):
    return Entry(headline=headline, blog={"name": "b", "tagline": "t"}, author_id=author_id)


def test_the_embedded_engine_declares_foreign_keys():
    assert connection.features.supports_foreign_keys
    assert connection.features.can_introspect_foreign_keys


def test_foreign_keys_stay_off_on_mongodb(monkeypatch):
    """A real MongoDB's hello has no ``djongo`` field: no foreign keys."""
    from djongo import server

    client = SimpleNamespace(admin=SimpleNamespace(
        command=lambda name: {"isWritablePrimary": True, "setName": "rs0", "ok": 1.0}))
    monkeypatch.setattr(server, "get_client", lambda choice: client)
    monkeypatch.setattr(server, "_capabilities", {})
    settings = {**connection.settings_dict, "CLIENT": {"host": "mongodb://db.example:27017"}}
    features = DatabaseFeatures(SimpleNamespace(settings_dict=settings,
                                                wrap_database_errors=_null()))
    assert not features.supports_foreign_keys
    assert not features.can_introspect_foreign_keys


def _null():
    import contextlib

    return contextlib.nullcontext()


def test_a_reference_to_no_row_fails_in_autocommit():
    with pytest.raises(IntegrityError, match="FOREIGN KEY constraint failed"):
        entry(author_id=12345).save()
    assert not Entry.objects.exists()


def test_a_valid_reference_and_null_are_accepted():
    author = Author.objects.create(name="a")
    entry(author.pk).save()
    entry(None).save()
    assert Entry.objects.count() == 2


def test_the_check_is_deferred_to_the_commit():
    # Inside atomic() a reference may come before its row (loaddata's
    # forward references): only the state at commit counts.
    with transaction.atomic():
        entry(777).save()
        Author.objects.create(id=777, name="late")
    assert Entry.objects.get().author.name == "late"

    with pytest.raises(IntegrityError, match="FOREIGN KEY constraint failed"):
        with transaction.atomic():
            entry(888).save()
            Author.objects.create(name="unrelated")
    # Nothing of the failed transaction was applied.
    assert not Author.objects.filter(name="unrelated").exists()
    assert Entry.objects.count() == 1


def test_a_referenced_row_cannot_go_while_referred_to():
    author = Author.objects.create(name="a")
    entry(author.pk).save()
    with pytest.raises(IntegrityError, match="FOREIGN KEY constraint failed"):
        Author.objects.filter(pk=author.pk)._raw_delete(Author.objects.db)
    with pytest.raises(IntegrityError, match="FOREIGN KEY constraint failed"):
        Author.objects.filter(pk=author.pk).update(id=author.pk + 1000)
    assert Author.objects.filter(pk=author.pk).exists()
    # Django's own cascade deletes the entries first: that commits.
    author.delete()
    assert not Entry.objects.exists()


def test_check_constraints_reports_what_the_commit_would_refuse():
    author = Author.objects.create(name="a")
    with transaction.atomic():
        e = entry(author.pk)
        e.save()
        connection.check_constraints(table_names=[ENTRY])
        Entry.objects.filter(pk=e.pk).update(author_id=999)
        with pytest.raises(IntegrityError) as raised:
            connection.check_constraints(table_names=[ENTRY])
        assert "FOREIGN KEY constraint failed" in str(raised.value)
        with pytest.raises(IntegrityError):
            connection.check_constraints()
        transaction.set_rollback(True)


def test_introspection_reports_the_constraint():
    with connection.cursor() as cursor:
        relations = connection.introspection.get_relations(cursor, ENTRY)
        constraints = connection.introspection.get_constraints(cursor, ENTRY)
    assert relations["author_id"] == ("id", AUTHOR)
    fks = [c for c in constraints.values() if c["foreign_key"]]
    assert [(c["columns"], c["foreign_key"]) for c in fks] == [(["author_id"], (AUTHOR, "id"))]


def test_dropping_the_constraint_stops_the_check():
    with connection.cursor() as cursor:
        name = next(n for n, c in connection.introspection.get_constraints(cursor, ENTRY).items()
                    if c["foreign_key"])
    with connection.schema_editor() as editor:
        editor.execute(editor._delete_fk_sql(Entry, name))
    try:
        entry(4242).save()
        assert Entry.objects.filter(author_id=4242).exists()
        Entry.objects.all().delete()
    finally:
        with connection.schema_editor() as editor:
            editor.execute(editor._create_fk_sql(Entry, Entry._meta.get_field("author"),
                                                 "_fk_%(to_table)s_%(to_column)s"))
    with pytest.raises(IntegrityError):
        entry(4242).save()


def test_adding_a_constraint_checks_the_rows_present():
    with connection.cursor() as cursor:
        name = next(n for n, c in connection.introspection.get_constraints(cursor, ENTRY).items()
                    if c["foreign_key"])
    with connection.schema_editor() as editor:
        editor.execute(editor._delete_fk_sql(Entry, name))
    entry(5151).save()
    try:
        with pytest.raises(IntegrityError, match="FOREIGN KEY constraint failed"):
            with connection.schema_editor() as editor:
                editor.execute(editor._create_fk_sql(
                    Entry, Entry._meta.get_field("author"), "_fk_%(to_table)s_%(to_column)s"))
    finally:
        Entry.objects.all().delete()
        with connection.schema_editor() as editor:
            editor.execute(editor._create_fk_sql(Entry, Entry._meta.get_field("author"),
                                                 "_fk_%(to_table)s_%(to_column)s"))


@pytest.mark.parametrize("first", ["delete", "insert"])
def test_deleting_the_referenced_row_and_referring_to_it_cannot_both_commit(first):
    """Write skew: one transaction deletes the author, another inserts an
    entry referring to it; each alone is valid on its snapshot. The entry's
    check claims the author's document, so the two conflict, whichever
    writes first (and holds its transaction open while the other runs)."""
    author = Author.objects.create(name="contested")
    work = {
        "delete": lambda: Author.objects.filter(pk=author.pk)._raw_delete(Author.objects.db),
        "insert": lambda: entry(author.pk).save(),
    }
    second = "insert" if first == "delete" else "delete"
    wrote = threading.Event()
    second_done = threading.Event()
    outcome = {}

    def run_first():
        from django.db import connections

        try:
            with transaction.atomic():
                work[first]()
                wrote.set()
                second_done.wait(10)
            outcome[first] = "committed"
        except (IntegrityError, OperationalError) as exc:
            outcome[first] = type(exc).__name__
        finally:
            wrote.set()
            connections.close_all()

    worker = threading.Thread(target=run_first)
    worker.start()
    wrote.wait(10)
    try:
        with transaction.atomic():
            work[second]()
        outcome[second] = "committed"
    except (IntegrityError, OperationalError) as exc:
        outcome[second] = type(exc).__name__
    finally:
        second_done.set()
        worker.join()
    assert list(outcome.values()).count("committed") == 1, outcome
    # Whatever won, no entry refers to a missing author.
    dangling = (Entry.objects.filter(author_id=author.pk).exists()
                and not Author.objects.filter(pk=author.pk).exists())
    assert not dangling, outcome
