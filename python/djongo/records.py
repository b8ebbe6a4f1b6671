"""Tables' ``__schema__`` records as inserts use them, cached per process.

An INSERT needs its table's record (catalog.py, sequences.py): which field
the counter numbers, and the columns' DEFAULTs and NOT NULLs. Reading it for
every statement costs a round trip, and it only changes with DDL. So a
process keeps the records it read, drops a table's record when its own DDL
touches the table (``Executor._run``), and never relies on one unchecked:
the insert that uses a cached record (on the embedded store, outside a
transaction) has the server take its ids from the counter document only if
that document still is the cached record (``sequences.counter_filter``).
When another process's migration changed the table, nothing is written and
the record is read again. The counter's value itself is never cached.

A record's columns can be large (a descriptor per column), so the filter
that carries them is sent once: that insert's reply gives the server's
digest of the counter document (all of it but the counter), which the
record keeps (``digest``), and later inserts send only the table's name and
that digest. The server computes the digest from what is stored, so a
change by any writer of ``__schema__`` (this backend's DDL in another
process, Djongo, an older djongo-rs, a shell) makes it differ.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .connection import Connection

# Records by (client, database, table); bounded like the plan cache.
_CAPACITY = 4096
_records: dict[tuple[int, str, str], dict] = {}
_lock = threading.Lock()


def _key(connection: Connection, table: str) -> tuple[int, str, str]:
    return id(connection.client), connection.database.name, table


def get(connection: Connection, table: str) -> dict | None:
    """The record of ``table`` this process last read, if any."""
    return _records.get(_key(connection, table))


# Where a cached record keeps its digest: a key no record read from the
# server has (reads project "auto" and "columns" only).
_DIGEST = "$digest"


def digest(record: dict) -> bytes | None:
    """The server's digest of the counter document ``record`` was matched
    against (``keep_digest``), if any."""
    return record.get(_DIGEST)


def keep_digest(record: dict, value: bytes) -> None:
    """Keeps ``value`` with ``record``: the digest the server gave for the
    counter document when a filter carrying ``record``'s assumptions
    matched it."""
    record[_DIGEST] = value


def remember(connection: Connection, table: str, record: dict | None) -> None:
    with _lock:
        if record is None:
            _records.pop(_key(connection, table), None)
            return
        if len(_records) >= _CAPACITY:
            _records.clear()
        _records[_key(connection, table)] = record


def forget(connection: Connection, *tables: str) -> None:
    """Drops the records of ``tables`` (their DDL ran in this process)."""
    with _lock:
        for table in tables:
            _records.pop(_key(connection, table), None)


# -- facts about every table: collated and generated columns ----------------
#
# A statement that compares columns needs their collations, an UPDATE the
# generated columns: each is one read of __schema__ for all tables. Read per
# connection, that is one more round trip for every web request under
# Django's default CONN_MAX_AGE = 0. So a process shares what it read for
# FACTS_MAX_AGE seconds, across its connections and threads, and reads again
# at once after its own DDL. Another process's migration is seen within that
# time (a connection kept open used to keep what it read until it closed).
# A read made inside a transaction may see that transaction's own DDL, which
# could still roll back: it serves its connection only.
FACTS_MAX_AGE = 1.0
_facts: dict[tuple[int, str, str], tuple[float, dict]] = {}


def shared_facts(connection: Connection, kind: str, read: Callable[[], dict],
                 share: bool = True) -> dict:
    """``kind`` (``"collations"`` or ``"generated"``) for every table: this
    process's copy if it is recent, else ``read()``, kept for the process
    when ``share`` (not when read inside a transaction that wrote
    ``__schema__``: its own DDL could still roll back)."""
    key = (id(connection.client), connection.database.name, kind)
    now = time.monotonic()
    cached = _facts.get(key)
    if cached is not None and now - cached[0] < FACTS_MAX_AGE:
        return cached[1]
    value = read()
    if share:
        with _lock:
            _facts[key] = (now, value)
    return value


def forget_facts(connection: Connection) -> None:
    """Drops this process's facts about ``connection``'s database (its own
    DDL ran)."""
    with _lock:
        for kind in ("collations", "generated"):
            _facts.pop((id(connection.client), connection.database.name, kind), None)
