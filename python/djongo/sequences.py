"""Integer auto-increment keys, kept in Djongo's ``__schema__`` collection.

Each collection with an auto field has one document
``{"name": <collection>, "auto": {"field_names": [<field>], "seq": <last id>}}``,
the same shape Djongo writes, so existing Djongo databases keep their
counters. Ids are taken with one atomic ``$inc`` per statement (a block for
bulk inserts), and an explicit id raises the counter to at least that id, so
``loaddata`` and restores never leave the counter behind the data.

Like a SQL sequence, the counter is not transactional: the backend takes ids
outside the statement's transaction (``Connection.sequence_session``), so
concurrent transactions inserting into one table never conflict on it, and
ids taken by a transaction that rolls back are skipped, not reused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pymongo import DESCENDING, ReturnDocument
from pymongo.client_session import ClientSession
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

SCHEMA_COLLECTION = "__schema__"


def auto_field(db: Database, collection: str, session: ClientSession | None) -> str | None:
    doc = db[SCHEMA_COLLECTION].find_one({"name": collection}, session=session)
    if doc is None:
        return None
    names = (doc.get("auto") or {}).get("field_names") or []
    return names[0] if names else None


def register(db: Database, collection: str, field: str, session: ClientSession | None) -> None:
    """Creates the counter for ``collection`` unless it exists.

    A collection that already holds documents (data copied in from elsewhere)
    starts its counter at the largest id present.
    """
    doc = db[SCHEMA_COLLECTION].find_one({"name": collection}, session=session)
    if doc is not None and doc.get("auto"):
        return
    start = largest_id(db, collection, field, session)
    if doc is None:
        # The table record (catalog.py) may share the document: only create
        # it when absent, and only set "auto" where it is still missing.
        update = {"$setOnInsert": {"auto": {"field_names": [field], "seq": start}}}
    else:
        update = {"$set": {"auto": {"field_names": [field], "seq": start}}}
    try:
        db[SCHEMA_COLLECTION].update_one(
            {"name": collection, "auto": {"$in": [None, {}]}}, update, upsert=doc is None,
            session=session,
        )
    except DuplicateKeyError:
        # Another process created the record since it was read (the unique
        # index on name, catalog.ensure_name_index): go on from that record.
        if doc is not None:
            raise
        register(db, collection, field, session)


def largest_id(db: Database, collection: str, field: str,
               session: ClientSession | None) -> int:
    """The largest numeric ``field`` in ``collection``; 0 when there is none."""
    top = db[collection].find_one(
        {field: {"$type": "number"}}, {field: 1}, sort=[(field, DESCENDING)], session=session
    )
    return int(top[field]) if top else 0


@dataclass(frozen=True)
class Repair:
    """A counter that was behind the data (``before`` is None: there was none)."""

    collection: str
    field: str
    before: int | None
    after: int
    field_names_before: list[str] | None = None


def repair(db: Database, collection: str, field: str, *, dry_run: bool = False,
           session: ClientSession | None = None) -> Repair | None:
    """Raises the counter of ``collection`` to its largest ``field``; never lowers it.

    Creates the counter (in Djongo's shape) when it is missing, and points
    ``field_names`` at ``field`` when it names another field. Returns what
    changed, or None when the counter was already right.
    """
    top = largest_id(db, collection, field, session)
    doc = db[SCHEMA_COLLECTION].find_one({"name": collection}, session=session)
    auto = (doc or {}).get("auto")
    auto = auto if isinstance(auto, dict) else {}
    names = auto.get("field_names")
    seq = auto.get("seq")
    current = int(seq) if isinstance(seq, int | float) and not isinstance(seq, bool) else None
    if names == [field] and current is not None and current >= top:
        return None
    after = max(top, current) if current is not None else top
    change = Repair(collection, field, current, after,
                    None if names == [field] else list(names or []))
    if dry_run:
        return change
    if auto:
        update = {"$set": {"auto.field_names": [field]}, "$max": {"auto.seq": after}}
    else:
        update = {"$set": {"auto": {"field_names": [field], "seq": after}}}
    db[SCHEMA_COLLECTION].update_one({"name": collection}, update, upsert=True, session=session)
    return change


def _time_limit(max_time_ms: int | None) -> dict[str, int]:
    return {"maxTimeMS": max_time_ms} if max_time_ms else {}


def allocate(db: Database, collection: str, count: int, session: ClientSession | None,
             max_time_ms: int | None = None) -> int | None:
    """Reserves ``count`` ids and returns the first; None when ``collection``
    has no counter (as ``session`` sees it)."""
    doc = db[SCHEMA_COLLECTION].find_one_and_update(
        {"name": collection}, allocation(count), return_document=ReturnDocument.AFTER,
        session=session, **_time_limit(max_time_ms),
    )
    return first_allocated(doc, count)


def allocation(count: int) -> dict[str, Any]:
    """The counter update that reserves ``count`` ids."""
    return {"$inc": {"auto.seq": count}}


def first_allocated(doc: dict | None, count: int) -> int | None:
    """The first of ``count`` ids reserved by ``allocation``, from the
    counter document after the update (None: there was no counter)."""
    if doc is None:
        return None
    return int(doc["auto"]["seq"]) - count + 1


def raise_to(db: Database, collection: str, value: Any, session: ClientSession | None,
             max_time_ms: int | None = None) -> bool | None:
    """Raises the counter to at least ``value``; None when ``collection`` has
    no counter (as ``session`` sees it)."""
    update = raising(value)
    if update is None:
        return True
    doc = db[SCHEMA_COLLECTION].find_one_and_update(
        {"name": collection}, update, {"_id": 1}, session=session, **_time_limit(max_time_ms),
    )
    return None if doc is None else True


def restart(db: Database, collection: str, seq: int, session: ClientSession | None,
            max_time_ms: int | None = None) -> bool | None:
    """Sets the counter to ``seq`` (the next id is ``seq + 1``); None when
    ``collection`` has no counter (as ``session`` sees it)."""
    doc = db[SCHEMA_COLLECTION].find_one_and_update(
        {"name": collection, "auto.field_names.0": {"$exists": True}},
        {"$set": {"auto.seq": seq}}, {"_id": 1},
        session=session, **_time_limit(max_time_ms),
    )
    return None if doc is None else True


def raising(value: Any) -> dict[str, Any] | None:
    """The counter update that raises it to at least ``value`` (None: not an
    integer, which no counter follows)."""
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return {"$max": {"auto.seq": value}}


def counter_filter(collection: str, record: dict) -> dict[str, Any]:
    """The filter that finds ``collection``'s counter document only while it
    still is ``record`` (its auto field and columns): a process that cached a
    record learns from no match that another one changed the table."""
    auto = record.get("auto") or {}
    return {
        "name": collection,
        "auto.field_names": auto.get("field_names"),
        "columns": record["columns"] if "columns" in record else {"$exists": False},
    }


def counter_spec(collection: str, field: str, record: dict,
                 digest: bytes | None) -> dict[str, Any]:
    """The insert's ``djongoCounter`` numbering ``field`` of ``collection``
    with ``record`` cached. With the server's ``digest`` of the counter
    document (given by an earlier insert whose filter carried ``record``),
    the filter is only the table's name and the digest goes along; without
    one, the filter is the whole ``counter_filter`` and the reply is asked
    for the digest (``null``)."""
    query = {"name": collection} if digest is not None else counter_filter(collection, record)
    return {"collection": SCHEMA_COLLECTION, "path": "auto.seq", "field": field,
            "filter": query, "digest": digest}


def reset(db: Database, collection: str, session: ClientSession | None) -> None:
    db[SCHEMA_COLLECTION].update_one(
        {"name": collection}, {"$set": {"auto.seq": 0}}, session=session
    )


def rename(db: Database, old: str, new: str, session: ClientSession | None) -> None:
    db[SCHEMA_COLLECTION].update_one({"name": old}, {"$set": {"name": new}}, session=session)


def drop(db: Database, collection: str, session: ClientSession | None) -> None:
    db[SCHEMA_COLLECTION].delete_one({"name": collection}, session=session)


def rename_field(db: Database, collection: str, old: str, new: str,
                 session: ClientSession | None) -> None:
    doc = db[SCHEMA_COLLECTION].find_one({"name": collection}, session=session)
    names = ((doc or {}).get("auto") or {}).get("field_names") or []
    if old in names:
        db[SCHEMA_COLLECTION].update_one(
            {"name": collection},
            {"$set": {"auto.field_names": [new if n == old else n for n in names]}},
            session=session,
        )


def unregister(db: Database, collection: str, field: str,
               session: ClientSession | None) -> None:
    """Forgets the counter when its field is dropped (the table record stays)."""
    db[SCHEMA_COLLECTION].update_one(
        {"name": collection, "auto.field_names": field}, {"$unset": {"auto": ""}},
        session=session,
    )
