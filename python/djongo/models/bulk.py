"""``BulkWrite``: the ORM's writes of a block, sent as MongoDB bulk writes.

::

    with BulkWrite(ordered=False) as bulk:
        for row in rows:
            Entry.objects.create(headline=row["title"])    # queued; entry.pk is set
        Entry.objects.filter(stale=True).delete()          # queued
    bulk.result.inserted_count, bulk.result.deleted_count

Inside the block, the INSERT, UPDATE and DELETE statements of the covered
models (all of the database's, or ``models=[...]``) are not run: the executor
hands them here (``queue``) as bulk write requests, and the block's end sends
them, one ``bulk_write`` per collection (ordered: per run of consecutive
operations on one collection, so that the order holds across collections).

MongoDB's semantics hold: ordered stops at the first failed operation (later
ones are not sent); unordered sends every one and reports every failure,
applying them in any order (pymongo sends a collection's inserts, then its
updates, then its deletes). Inside ``transaction.atomic()`` they are sent in
its transaction when the block ends, and the first failure aborts that
transaction, as in MongoDB. Failures become one ``IntegrityError`` (a
duplicate key or a validator's refusal among them) or ``DatabaseError``
listing each failed operation; ``result`` has the counts either way.

What the block's statements see: ids are taken when the statement runs
(``obj.pk`` is set after ``save()``/``create()``; the block reserves them from
the counter in growing blocks, ``ReservedIds``), and reads inside the block do
not see the block's pending writes. An UPDATE or DELETE reports how many
documents its filter matches when it is queued; ``save()`` of an instance
loaded from (or already saved to) the database is queued as an update without
asking, as ``save()`` expects it to match.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models.signals import post_save, pre_save
from pymongo import DeleteMany, InsertOne, UpdateMany, UpdateOne
from pymongo.errors import BulkWriteError

from .. import database
from ..cursor import (
    DOCUMENT_VALIDATION_FAILURE,
    _duplicate_message,
    _is_data_error,
    translate_errors,
)
from ..validator import describe_failure

Request = InsertOne | UpdateOne | UpdateMany | DeleteMany

KINDS = {InsertOne: "insert", UpdateOne: "update", UpdateMany: "update", DeleteMany: "delete"}


@dataclass
class OperationError:
    """One failed operation: its place in the block (from 0), collection and
    kind, and the server's error."""

    index: int
    collection: str
    kind: str
    code: int | None
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"operation {self.index} ({self.kind} on {self.collection}): {self.message}"


@dataclass
class BulkWriteResult:
    """What the server did with a block's operations."""

    inserted_count: int = 0
    matched_count: int = 0
    modified_count: int = 0
    deleted_count: int = 0
    upserted_count: int = 0
    #: Operations queued in the block, and how many were sent to the server
    #: (ordered: none after the bulk write that failed).
    queued: int = 0
    sent: int = 0
    errors: list[OperationError] = field(default_factory=list)
    #: The same counts per collection.
    collections: dict[str, dict[str, int]] = field(default_factory=dict)

    def _add(self, collection: str, counts: dict[str, int]) -> None:
        per = self.collections.setdefault(collection, dict.fromkeys(
            ("inserted", "matched", "modified", "deleted", "upserted"), 0))
        for key, value in counts.items():
            per[key] += value
            setattr(self, f"{key}_count", getattr(self, f"{key}_count") + value)


class ReservedIds:
    """Ids a BulkWrite took from tables' counters ahead of its inserts: one
    counter update per block rather than per ``save()``. Blocks grow from 16
    to 1024 ids; what the block leaves unused is skipped, as a SQL sequence's
    cache is."""

    FIRST, LARGEST = 16, 1024

    def __init__(self) -> None:
        self._next: dict[str, int] = {}
        self._end: dict[str, int] = {}
        self._size: dict[str, int] = {}

    def take(self, table: str, count: int) -> int | None:
        first = self._next.get(table)
        if first is None or first + count > self._end[table]:
            return None
        self._next[table] = first + count
        return first

    def next_size(self, table: str, count: int) -> int:
        size = min(self._size.get(table, self.FIRST // 2) * 2, self.LARGEST)
        self._size[table] = size
        return max(size, count)

    def reserve(self, table: str, first: int, size: int) -> None:
        self._next[table], self._end[table] = first, first + size

    def drop(self, table: str) -> None:
        self._next.pop(table, None)
        self._end.pop(table, None)


@dataclass
class _Queued:
    index: int
    collection: str
    request: Request
    concerns: Any


class BulkWrite:
    """Collects the writes of the models it covers until the block ends
    (module docstring). ``models``: the model classes whose writes are
    collected (default: every model on ``using``)."""

    def __init__(self, ordered: bool = True, using: str | None = None,
                 models: list[type] | None = None) -> None:
        self.ordered = ordered
        self.using = using or DEFAULT_DB_ALIAS
        self.tables = None if models is None else {m._meta.db_table for m in models}
        self.result: BulkWriteResult | None = None
        self.ids = ReservedIds()
        self._queue: list[_Queued] = []
        self._connection = None
        # While save() of an instance that is in the database runs: its
        # UPDATE is expected to match it.
        self._saving_stored: list[bool] = []

    # -- the block -----------------------------------------------------------

    def __enter__(self) -> BulkWrite:
        wrapper = connections[self.using]
        wrapper.ensure_connection()
        connection = wrapper.connection
        if getattr(connection, "bulk", None) is not None:
            with wrapper.wrap_database_errors:
                raise database.ProgrammingError(
                    f"a BulkWrite is already open on database {self.using!r}; they do not nest")
        connection.bulk = self
        self._connection = connection
        self._queue = []
        self.result = None
        self.ids = ReservedIds()
        uid = f"djongo-bulk-{id(self)}"
        pre_save.connect(self._pre_save, dispatch_uid=uid, weak=False)
        post_save.connect(self._post_save, dispatch_uid=uid, weak=False)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        uid = f"djongo-bulk-{id(self)}"
        pre_save.disconnect(dispatch_uid=uid)
        post_save.disconnect(dispatch_uid=uid)
        connection, self._connection = self._connection, None
        connection.bulk = None
        queue, self._queue = self._queue, []
        if exc_type is not None:
            return  # nothing is sent
        wrapper = connections[self.using]
        with wrapper.wrap_database_errors:
            self._send(connection, queue)

    def _mine(self, using: str) -> bool:
        return using == self.using and self._connection is not None and getattr(
            connections[self.using].connection, "bulk", None) is self

    def _pre_save(self, sender, instance, raw, using, **kwargs) -> None:
        if self._mine(using):
            self._saving_stored.append(not instance._state.adding)

    def _post_save(self, sender, instance, created, raw, using, **kwargs) -> None:
        if self._mine(using) and self._saving_stored:
            self._saving_stored.pop()

    # -- the executor's side -------------------------------------------------

    def covers(self, collection: str) -> bool:
        return self.tables is None or collection in self.tables

    @property
    def saving_stored_instance(self) -> bool:
        """Whether the statement now running is save()'s UPDATE of an
        instance that is in the database."""
        return bool(self._saving_stored) and self._saving_stored[-1]

    def queue(self, collection: str, requests: list[Request], concerns: Any = None) -> None:
        for request in requests:
            self._queue.append(_Queued(len(self._queue), collection, request, concerns))

    # -- sending -------------------------------------------------------------

    def _groups(self, queue: list[_Queued]) -> list[list[_Queued]]:
        groups: list[list[_Queued]] = []
        if self.ordered:
            for op in queue:
                if groups and groups[-1][0].collection == op.collection:
                    groups[-1].append(op)
                else:
                    groups.append([op])
            return groups
        by_collection: dict[str, list[_Queued]] = {}
        for op in queue:
            by_collection.setdefault(op.collection, []).append(op)
        return list(by_collection.values())

    def _send(self, connection, queue: list[_Queued]) -> None:
        result = self.result = BulkWriteResult(queued=len(queue))
        session = connection.session_for_statement()
        for group in self._groups(queue):
            name = group[0].collection
            collection = connection.database[name]
            options = group[0].concerns
            if options is not None and session is None:
                collection = collection.with_options(**options.pymongo())
            result.sent += len(group)
            with translate_errors(None):
                try:
                    written = collection.bulk_write([op.request for op in group],
                                                    ordered=self.ordered, session=session)
                except BulkWriteError as exc:
                    details = exc.details or {}
                    result._add(name, _counts(details))
                    for error in details.get("writeErrors") or ():
                        op = group[error.get("index", 0)]
                        result.errors.append(_operation_error(op, error))
                    if self.ordered or session is not None:
                        # Ordered: nothing after the failure. In a transaction:
                        # the server has aborted it.
                        break
                    continue
            result._add(name, {"inserted": written.inserted_count,
                               "matched": written.matched_count,
                               "modified": written.modified_count,
                               "deleted": written.deleted_count,
                               "upserted": written.upserted_count})
        if result.errors:
            raise _error(result)


def _counts(details: dict) -> dict[str, int]:
    return {"inserted": details.get("nInserted", 0), "matched": details.get("nMatched", 0),
            "modified": details.get("nModified", 0), "deleted": details.get("nRemoved", 0),
            "upserted": details.get("nUpserted", 0)}


def _operation_error(op: _Queued, error: dict) -> OperationError:
    code = error.get("code")
    if code == 11000:
        message = _duplicate_message(error, error.get("errmsg"))
    elif code == DOCUMENT_VALIDATION_FAILURE:
        message = describe_failure(error)
    else:
        message = str(error.get("errmsg"))
    return OperationError(op.index, op.collection, KINDS[type(op.request)], code, message,
                          {k: v for k, v in error.items() if k != "op"})


def _error(result: BulkWriteResult) -> database.DatabaseError:
    codes = {e.code for e in result.errors}
    if codes & {11000, DOCUMENT_VALIDATION_FAILURE}:
        kind = database.IntegrityError
    elif all(_is_data_error(e.code, e.message) for e in result.errors):
        kind = database.DataError
    else:
        kind = database.DatabaseError
    listed = "; ".join(str(e) for e in result.errors)
    error = kind(f"bulk write: {len(result.errors)} of {result.queued} operations failed: "
                 f"{listed}")
    error.bulk_result = result
    return error
