"""The embedded store's own client (djongo.transport, crates/python/src/store).

On the embedded store the ORM's statements go through it instead of pymongo;
pymongo stays behind ``mongo_*``, GridFS and the schema statements. These
tests check what a user must not be able to tell apart: one transaction for
both clients, the same Python values in rows, writes that survive the store's
server dying, and inserts that see another process's migration.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote

import pytest
from bson import Binary, Decimal128, Int64, MaxKey, MinKey, ObjectId, Regex, Timestamp
from bson.dbref import DBRef
from django.conf import settings
from django.db import DataError, connection, transaction
from django.db.models import F
from djongo import records
from djongo.connection import Connection

from tests.blogapp.models import Author
from tests.engine_server import SocketServer
from tests.multiproc import run_django, server_pid, start_django, wait_until_gone
from tests.writeapp.models import Note

pytestmark = pytest.mark.django_db(transaction=True)


def names():
    return sorted(Author.objects.values_list("name", flat=True))


def test_the_orm_goes_through_the_stores_own_client():
    connection.ensure_connection()
    assert connection.connection.store is not None


# -- one transaction, two clients ---------------------------------------------------------


def _authors_collection():
    connection.ensure_connection()
    return connection.connection.database[Author._meta.db_table]


def _mongo_insert(name: str) -> None:
    """What a ``mongo_*`` call does inside atomic(): pymongo, in the connection's session."""
    session = connection.connection.session_for_statement()
    _authors_collection().insert_one({"name": name, "email": None}, session=session)


@pytest.mark.parametrize("first", ["orm", "pymongo"])
def test_orm_statements_and_pymongo_calls_commit_as_one_transaction(first):
    with transaction.atomic():
        if first == "orm":
            Author.objects.create(name="orm")
            _mongo_insert("pymongo")
        else:
            _mongo_insert("pymongo")
            Author.objects.create(name="orm")
        # Inside, each sees the other's writes...
        assert sorted(d["name"] for d in _authors_collection().find(
            {}, session=connection.connection.session_for_statement())) == ["orm", "pymongo"]
        # ...and nobody outside sees either yet.
        assert list(_authors_collection().find()) == []
    assert names() == ["orm", "pymongo"]


@pytest.mark.parametrize("first", ["orm", "pymongo"])
def test_orm_statements_and_pymongo_calls_roll_back_as_one_transaction(first):
    with pytest.raises(RuntimeError), transaction.atomic():
        if first == "orm":
            Author.objects.create(name="orm")
            _mongo_insert("pymongo")
        else:
            _mongo_insert("pymongo")
            Author.objects.create(name="orm")
        raise RuntimeError("roll back")
    assert names() == []
    # The connection goes on with a new transaction.
    with transaction.atomic():
        Author.objects.create(name="after")
        _mongo_insert("after too")
    assert names() == ["after", "after too"]


# -- rows ----------------------------------------------------------------------------------

VALUES = {
    "int32": 7, "int64": Int64(2**40), "double": 2.5, "text": "été \u2603", "true": True,
    "null": None, "when": dt.datetime(2024, 2, 29, 23, 59, 58, 123000),
    "old": dt.datetime(1, 1, 1), "decimal": Decimal128("-12.3400"), "oid": ObjectId(),
    "bytes": Binary(b"\x00\x01", 0), "uuid": Binary(b"\x11" * 16, 4),
    "doc": {"a": [1, {"b": Decimal128("1E+3")}], "c": None}, "list": [1, "x", [2]],
    "regex": Regex("^a.*", "i"), "ts": Timestamp(5, 6), "ref": DBRef("coll", 3),
    "min": MinKey(), "max": MaxKey(),
}


def test_rows_hold_the_values_pymongo_reads():
    collection = _authors_collection().database["typed_values"]
    collection.insert_one({"_id": 1, **VALUES})
    columns = ", ".join(f'"{name}"' for name in [*VALUES, "missing"])
    sql = f'SELECT {columns} FROM "typed_values" WHERE "_id" = %s'
    with connection.cursor() as cursor:
        cursor.execute(sql, [1])
        through_store = cursor.fetchall()
    pymongo_only = Connection(connection.connection.client, connection.connection.database.name,
                              enforce_schema=False)
    cursor = pymongo_only.cursor()
    cursor.execute(sql, [1])
    through_pymongo = cursor.fetchall()
    assert through_store == through_pymongo
    [row] = through_store
    by_name = dict(zip([*VALUES, "missing"], row, strict=True))
    assert by_name["decimal"] == Decimal("-12.3400") and isinstance(by_name["decimal"], Decimal)
    assert by_name["bytes"] == b"\x00\x01" and type(by_name["bytes"]) is bytes
    assert by_name["when"] == VALUES["when"] and by_name["when"].tzinfo is None
    assert by_name["missing"] is None
    for name in ("int64", "double", "text", "oid", "uuid", "regex", "ts", "ref", "min", "max"):
        assert by_name[name] == VALUES[name], name


def _rows_both_ways(collection_name: str, columns: list[str]):
    """The rows of ``collection_name`` read through the store's client and through pymongo
    (a connection without the store's client), as (type, repr) per cell: repr tells a
    Decimal's exponent (1.10 from 1.1) and a NaN's sign, which == does not."""
    sql = 'SELECT %s FROM "%s" ORDER BY "_id"' % (
        ", ".join(f'"{name}"' for name in columns), collection_name)
    with connection.cursor() as cursor:
        cursor.execute(sql)
        through_store = cursor.fetchall()
    pymongo_only = Connection(connection.connection.client, connection.connection.database.name,
                              enforce_schema=False)
    cursor = pymongo_only.cursor()
    cursor.execute(sql)
    through_pymongo = cursor.fetchall()

    def shown(rows):
        return [[(type(cell), repr(cell)) for cell in row] for row in rows]

    return shown(through_store), shown(through_pymongo)


EDGE_DATETIMES = [
    dt.datetime(1970, 1, 1), dt.datetime(1969, 12, 31, 23, 59, 59, 999000),
    dt.datetime(1, 1, 1), dt.datetime(1, 1, 1, 0, 0, 0, 1000),
    dt.datetime(9999, 12, 31, 23, 59, 59, 999000), dt.datetime(1600, 2, 29, 1, 2, 3, 456000),
    dt.datetime(1900, 3, 1, 12), dt.datetime(2000, 2, 29, 23, 59, 59, 1000),
    dt.datetime(2024, 12, 31, 0, 0, 0, 999000), dt.datetime(1955, 11, 5, 6, 15, 0, 7000),
]


def test_rows_hold_datetimes_as_pymongo_reads_them():
    collection = _authors_collection().database["edge_datetimes"]
    collection.drop()
    collection.insert_many([{"_id": i, "at": at} for i, at in enumerate(EDGE_DATETIMES)])
    through_store, through_pymongo = _rows_both_ways("edge_datetimes", ["at"])
    assert through_store == through_pymongo
    assert through_store == [[(dt.datetime, repr(at))] for at in EDGE_DATETIMES]


def _bid(high: int, low: int = 0) -> Decimal128:
    return Decimal128.from_bid(low.to_bytes(8, "little") + high.to_bytes(8, "little"))


EDGE_DECIMALS = [
    Decimal128("0"), Decimal128("-0"), Decimal128("0E-6176"), Decimal128("-0E+6111"),
    Decimal128("1.10"), Decimal128("-12.3400"), Decimal128("1E-6176"), Decimal128("1E+6111"),
    Decimal128("9999999999999999999999999999999999E+6111"),
    Decimal128("-1234567890123456789012345678901234E-6176"), Decimal128("0.000001"),
    Decimal128("NaN"), Decimal128("-NaN"), Decimal128("sNaN"), Decimal128("-sNaN"),
    Decimal128("Infinity"), Decimal128("-Infinity"),
    # A NaN with a payload; the two top combination bits set (a coefficient past 34 digits,
    # read as zero with the exponent two bits lower); 2**113 - 1 in the usual form (zero too).
    _bid(0x7C00_0000_0000_0001), _bid(0xE000_0000_0000_0000), _bid(0x67FF_F000_0000_0000),
    _bid(0x3040_0000_0000_0000 | 0x0001_FFFF_FFFF_FFFF, 2**64 - 1),
]


def test_rows_hold_decimals_as_pymongo_reads_them():
    collection = _authors_collection().database["edge_decimals"]
    collection.drop()
    collection.insert_many([{"_id": i, "d": d} for i, d in enumerate(EDGE_DECIMALS)])
    through_store, through_pymongo = _rows_both_ways("edge_decimals", ["d"])
    assert through_store == through_pymongo
    assert through_store == [[(Decimal, repr(d.to_decimal()))] for d in EDGE_DECIMALS]


@pytest.mark.parametrize("millis", [253402300800000, -62135596800001, 2**62])
def test_a_date_outside_python_s_years_fails_as_it_does_through_pymongo(millis):
    # pymongo's default (DatetimeConversion.DATETIME) refuses a BSON date outside the years
    # 1 to 9999 that a datetime holds; the store's client refuses it the same way.
    from bson.datetime_ms import DatetimeMS

    collection = _authors_collection().database["far_dates"]
    collection.drop()
    collection.insert_one({"_id": 1, "at": DatetimeMS(millis)})
    sql = 'SELECT "at" FROM "far_dates"'
    connection.ensure_connection()
    pymongo_only = Connection(connection.connection.client, connection.connection.database.name,
                              enforce_schema=False)
    raised = []
    for db_connection in (connection.connection, pymongo_only):
        with pytest.raises(Exception) as failure:
            cursor = db_connection.cursor()
            cursor.execute(sql)
            cursor.fetchall()
        raised.append((type(failure.value), str(failure.value)))
    assert raised[0] == raised[1]
    # Through Django, a DatabaseError as any other failure.
    with pytest.raises(DataError, match="out of range"), connection.cursor() as cursor:
        cursor.execute(sql)
        cursor.fetchall()


@pytest.mark.parametrize("use_tz", [True, False])
def test_datetime_fields_read_back_what_was_saved_with_and_without_use_tz(use_tz):
    from django.test import override_settings

    from tests.planapp.models import Post, Writer

    with override_settings(USE_TZ=use_tz):
        writer = Writer.objects.create(name="w")
        saved = [at.replace(tzinfo=dt.UTC) if use_tz else at for at in EDGE_DATETIMES]
        for n, at in enumerate(saved):
            Post.objects.create(writer=writer, headline="h", n=n, rating=0.0, at=at, body="")
        read = list(Post.objects.order_by("n").values_list("at", flat=True))
        assert read == saved
        assert all((at.tzinfo is not None) is use_tz for at in read)
        assert Post.objects.get(n=1).at == saved[1]


def test_parameters_are_stored_as_pymongo_stores_them():
    when = dt.datetime(2024, 5, 1, 12, 30, 15, 987654, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    with connection.cursor() as cursor:
        cursor.execute('INSERT INTO "typed_params" ("a", "b", "c", "d", "e", "f") '
                       "VALUES (%s, %s, %s, %s, %s, %s)",
                       [when, Decimal("1.10"), 2**40, {"k": [1, (2, 3)]}, b"\x00",
                        dt.date(2020, 1, 2)])
    # Read with pymongo's own codec (the connection's reads decimals as Decimal).
    collection = _authors_collection().database.client[connection.connection.database.name]
    [doc] = collection["typed_params"].find({}, {"_id": 0})
    assert doc == {"a": dt.datetime(2024, 5, 1, 10, 30, 15, 987000),
                   "b": Decimal128("1.10"), "c": 2**40, "d": {"k": [1, [2, 3]]},
                   "e": b"\x00", "f": dt.datetime(2020, 1, 2)}


# -- the store's server dies ---------------------------------------------------------------


def test_writes_outside_a_transaction_survive_the_servers_death_applied_once():
    """A pooled connection to a killed server fails; the client waits for the
    next server (which this process's watcher starts) and sends the statement
    again, numbered in its session, so it is applied once."""
    Author.objects.bulk_create([Author(name=f"a{i}") for i in range(3)])
    pid = server_pid(Path(settings.DATABASES["default"]["DATA_DIR"]))
    os.kill(pid, signal.SIGKILL)
    wait_until_gone(pid)
    # A multi-document update, which pymongo would not retry; applied twice,
    # it would leave rank 2.
    assert Author.objects.filter(name__startswith="a").update(rank=F("rank") + 1) == 3
    Author.objects.create(name="b")
    assert list(Author.objects.values_list("name", "rank")) == [
        ("a0", 1), ("a1", 1), ("a2", 1), ("b", 0)]


def test_ids_taken_without_waiting_for_the_disk_stay_behind_the_counter_after_a_crash():
    """bulk_create() takes its ids with a counter update that does not wait
    for the disk (``j: false``); the transaction's commit that uses them does,
    and makes the update durable with it. Ids of a transaction that rolled
    back may be lost with a crash and handed out again, never an id of a
    stored row."""
    Author.objects.create(name="first")  # the table's record is cached
    made = Author.objects.bulk_create([Author(name=f"a{i}") for i in range(3)])
    with pytest.raises(RuntimeError), transaction.atomic():
        Author.objects.bulk_create([Author(name="rolled back") for _ in range(3)])
        raise RuntimeError
    pid = server_pid(Path(settings.DATABASES["default"]["DATA_DIR"]))
    os.kill(pid, signal.SIGKILL)
    wait_until_gone(pid)
    later = Author.objects.bulk_create([Author(name=f"b{i}") for i in range(3)])
    assert min(a.pk for a in later) > max(a.pk for a in made)
    assert names() == ["a0", "a1", "a2", "b0", "b1", "b2", "first"]
    assert len(set(Author.objects.values_list("pk", flat=True))) == 7


def test_a_transaction_begun_after_the_servers_death_runs_on_the_next_server():
    """The first statement of a transaction, written to a pooled connection
    whose server was killed, never reached a server: it goes to the next
    server, and the transaction runs there."""
    Author.objects.bulk_create([Author(name="a"), Author(name="b")])
    pid = server_pid(Path(settings.DATABASES["default"]["DATA_DIR"]))
    os.kill(pid, signal.SIGKILL)
    wait_until_gone(pid)
    with transaction.atomic():
        assert Author.objects.filter(name="a").update(rank=F("rank") + 1) == 1
        Author.objects.filter(name="b").delete()
    assert list(Author.objects.values_list("name", "rank")) == [("a", 1)]


# -- inserts and another process's migration -----------------------------------------------


def test_an_insert_sees_a_default_another_process_added(tmp_path):
    """Inserts keep their table's record per process; a column another
    process adds with a DEFAULT is still filled in."""
    data = tmp_path / "data"
    web = run_django(data, """
        # CREATE TABLE records the columns (blogapp has no migrations).
        call_command("migrate", run_syncdb=True, verbosity=0)
        Author.objects.create(name="before")      # the record is now cached here
        from tests.multiproc import execute_elsewhere
        execute_elsewhere("ALTER TABLE blogapp_author ADD COLUMN country varchar(20) "
                          "DEFAULT 'FR' NOT NULL")
        Author.objects.create(name="after")       # this process's model has no country
        from django.db import connection
        db = connection.connection.database
        print(sorted((d["name"], d.get("country")) for d in db.blogapp_author.find()))
    """)
    assert web.returncode == 0, web.stderr
    assert web.stdout.strip() == "[('after', 'FR'), ('before', 'FR')]"


def test_an_insert_with_the_records_digest_sees_a_default_another_process_added(tmp_path):
    """The second insert into a table sends the server's digest of its
    record instead of the record's columns; another process's migration
    changes the record, so the digest no longer matches and the insert
    still fills in the new column's DEFAULT."""
    data = tmp_path / "data"
    web = run_django(data, """
        call_command("migrate", run_syncdb=True, verbosity=0)
        Author.objects.create(name="first")       # reads the record
        Author.objects.create(name="second")      # the columns' filter; the digest comes back
        Author.objects.create(name="third")       # the digest only
        from tests.multiproc import execute_elsewhere
        execute_elsewhere("ALTER TABLE blogapp_author ADD COLUMN country varchar(20) "
                          "DEFAULT 'FR' NOT NULL")
        Author.objects.create(name="after")       # the digest differs: the long way
        Author.objects.create(name="later")       # the new record's columns, then its digest
        Author.objects.create(name="last")
        from django.db import connection
        db = connection.connection.database
        print(sorted((d["name"], d.get("country"), d["id"]) for d in db.blogapp_author.find()))
    """)
    assert web.returncode == 0, web.stderr
    assert web.stdout.strip() == str(sorted([
        ("first", "FR", 1), ("second", "FR", 2), ("third", "FR", 3), ("after", "FR", 4),
        ("later", "FR", 5), ("last", "FR", 6)]))


def test_inserts_send_the_tables_columns_once_then_the_records_digest(commands):
    """A table's record (a descriptor per column) goes to the server with
    the first insert numbered from the cached record; later inserts send
    the server's digest of it."""
    connection.ensure_connection()
    records.forget(connection.connection, Author._meta.db_table)  # as in a fresh process
    Author.objects.create(name="a")   # the record is read and cached
    commands.clear()
    Author.objects.create(name="b")
    Author.objects.create(name="c")
    counters = [command["djongoCounter"] for name, command in commands if name == "insert"]
    assert len(counters) == 2, commands
    first, second = counters
    assert "columns" in first["filter"] and first["digest"] is None
    assert second["filter"] == {"name": Author._meta.db_table}
    assert isinstance(second["digest"], bytes) and len(second["digest"]) == 32
    assert list(Author.objects.order_by("pk").values_list("name", flat=True)) == ["a", "b", "c"]


def test_ids_stay_unique_and_increasing_across_processes(tmp_path):
    data = tmp_path / "data"
    assert run_django(data, 'call_command("migrate", verbosity=0)').returncode == 0
    script = """
        ids = [Author.objects.create(name="p").pk for _ in range(30)]
        assert ids == sorted(ids), ids
        print(" ".join(map(str, ids)))
    """
    workers = [start_django(data, script, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
               for _ in range(3)]
    ids = []
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
        ids += [int(x) for x in out.split()]
    assert sorted(ids) == list(range(1, 91))


def test_bulk_create_in_a_transaction_takes_its_ids_in_one_round_trip(commands):
    """Django's bulk_create() runs in a transaction: with the table's record
    cached, the ids come from one counter update that checks the record
    (no read of ``__schema__``), which does not wait for the disk (the
    transaction's commit does), then one insert."""
    connection.ensure_connection()
    Author.objects.create(name="a")  # the record is read and cached
    commands.clear()
    made = Author.objects.bulk_create([Author(name=f"b{i}") for i in range(5)])
    # (A connection's first transaction asks once whether the server has them:
    # Connection.supports_transactions' hello is no statement.)
    sent = [(name, command) for name, command in commands if name != "hello"]
    assert [name for name, _ in sent] == ["findAndModify", "insert", "commitTransaction"], sent
    counter = sent[0][1]
    assert "columns" in counter["query"] and counter["writeConcern"] == {"j": False}
    first = Author.objects.get(name="a").pk
    assert [a.pk for a in made] == list(range(first + 1, first + 6))
    assert names() == ["a", "b0", "b1", "b2", "b3", "b4"]


def test_deletes_in_transactions_without_ddl_share_the_processs_schema_facts(commands,
                                                                            monkeypatch):
    """Django runs every ``delete()`` in a transaction: one that wrote no
    ``__schema__`` document sees the committed collations, so it reads them
    once for the process instead of reading ``__schema__`` again each time."""
    monkeypatch.setattr(records, "FACTS_MAX_AGE", 600.0)
    connection.ensure_connection()
    records.forget_facts(connection.connection)
    Note.objects.bulk_create([Note(text=f"gone{i}") for i in range(6)])
    commands.clear()
    for i in range(3):
        Note.objects.filter(text=f"gone{i}").delete()
    sent = [(name, command) for name, command in commands if name != "hello"]
    schema_reads = [c for name, c in sent if name == "find" and c["find"] == "__schema__"]
    assert len(schema_reads) <= 1, sent
    assert [name for name, _ in sent if name != "find"] == ["delete", "commitTransaction"] * 3
    assert sorted(Note.objects.values_list("text", flat=True)) == ["gone3", "gone4", "gone5"]


def test_bulk_create_in_a_transaction_sees_a_default_another_process_added(tmp_path):
    """The record a transaction's insert uses is checked by its counter
    update: after another process's migration, the insert reads the record
    again and fills in the new column's DEFAULT, inside the same
    transaction."""
    data = tmp_path / "data"
    web = run_django(data, """
        call_command("migrate", run_syncdb=True, verbosity=0)
        Author.objects.create(name="before")      # the record is now cached here
        from tests.multiproc import execute_elsewhere
        execute_elsewhere("ALTER TABLE blogapp_author ADD COLUMN country varchar(20) "
                          "DEFAULT 'FR' NOT NULL")
        with transaction.atomic():
            made = Author.objects.bulk_create([Author(name="after"), Author(name="later")])
            Author.objects.create(name="last")
        from django.db import connection
        db = connection.connection.database
        print([a.pk for a in made])
        print(sorted((d["name"], d.get("country"), d["id"]) for d in db.blogapp_author.find()))
    """)
    assert web.returncode == 0, web.stderr
    ids, rows = web.stdout.strip().splitlines()
    assert ids == "[2, 3]"
    assert rows == str(sorted([("before", "FR", 1), ("after", "FR", 2), ("later", "FR", 3),
                               ("last", "FR", 4)]))


@pytest.fixture(params=["embedded", "standalone-server"])
def served_by(request, tmp_path):
    """The environment of a test's Django processes: on the embedded store
    (its ORM statements through the store's own client), or with ``default``
    pointing through ``CLIENT`` at a ``djongo-server`` of the test's own
    (every statement through pymongo)."""
    if request.param == "embedded":
        yield {}
        return
    server = SocketServer(str(tmp_path / "standalone"), str(tmp_path / "server.sock")).start()
    try:
        yield {"DJONGO_TEST_MONGODB_URI": "mongodb://" + quote(server.socket, safe="")}
    finally:
        server.stop()


def test_transactions_making_an_implicit_table_together_do_not_conflict(tmp_path, served_by):
    """blogapp has no migrations, so ``migrate`` leaves its tables to be made
    by their first insert, id counter included. Two ``bulk_create()`` calls
    at once (each its own transaction, started by the insert) both find no
    table and no counter: neither is created inside either transaction, as
    ids are not taken inside one, so neither fails on the other's."""
    data = tmp_path / "data"
    migrated = run_django(data, 'call_command("migrate", verbosity=0)', env=served_by)
    assert migrated.returncode == 0, migrated.stderr
    result = run_django(data, """
        import threading
        from django.db import connection
        both_ready = threading.Barrier(2, timeout=30)
        errors, ids = [], []

        def insert(name):
            try:
                connection.ensure_connection()
                both_ready.wait()
                ids.extend(a.pk for a in Author.objects.bulk_create(
                    [Author(name=name) for _ in range(3)]))
            except Exception as exc:
                errors.append(repr(exc))
                both_ready.abort()
            finally:
                connection.close()

        threads = [threading.Thread(target=insert, args=(n,)) for n in ("a", "b")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        print(errors, sorted(ids), sorted(Author.objects.values_list("pk", flat=True)))
    """, env=served_by)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[] [1, 2, 3, 4, 5, 6] [1, 2, 3, 4, 5, 6]", result.stderr


def test_a_transaction_under_way_makes_an_implicit_table_and_numbers_past_its_own_ids(
        tmp_path, served_by):
    """A transaction that read before its first insert into a new implicit
    table (its snapshot is taken) creates the table itself; the counter,
    created outside it, starts past the ids it inserted explicitly."""
    data = tmp_path / "data"
    migrated = run_django(data, 'call_command("migrate", verbosity=0)', env=served_by)
    assert migrated.returncode == 0, migrated.stderr
    result = run_django(data, """
        from django.db import transaction
        with transaction.atomic():
            Author.objects.filter(name="none").exists()
            Author.objects.bulk_create([Author(pk=7, name="given")])
            made = Author.objects.bulk_create([Author(name="x") for _ in range(2)])
        print([a.pk for a in made], sorted(Author.objects.values_list("pk", flat=True)))
    """, env=served_by)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[8, 9] [7, 8, 9]", result.stderr


def test_bulk_create_ids_stay_unique_across_processes(tmp_path):
    data = tmp_path / "data"
    assert run_django(data, 'call_command("migrate", verbosity=0)').returncode == 0
    script = """
        ids = []
        for _ in range(10):
            ids += [a.pk for a in Author.objects.bulk_create([Author(name="p") for _ in range(3)])]
        assert ids == sorted(ids), ids
        print(" ".join(map(str, ids)))
    """
    workers = [start_django(data, script, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
               for _ in range(3)]
    ids = []
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
        ids += [int(x) for x in out.split()]
    assert sorted(ids) == list(range(1, 91))
    stored = run_django(data, """
        print(" ".join(str(pk) for pk in Author.objects.values_list("pk", flat=True)))
    """)
    assert sorted(int(x) for x in stored.stdout.split()) == list(range(1, 91)), stored.stderr
