"""How statements reach the embedded store: its own client, in Rust.

``StoreTransport`` runs compiled plans through ``djongo._core.StoreClient``
(``crates/python/src/store``): the plan is bound and sent, and the rows come
back as tuples, in one call that releases the GIL while it waits. It is used
for the embedded store only (its owner-only socket, or, when this process
serves the store itself with ``STORE_SERVER: "in-process"``, the server's
command layer in the calling thread); a server reached through
``CLIENT``, and everything behind ``mongo_*`` and GridFS, goes through
pymongo. Both share the connection's transaction: a statement sent here
inside ``atomic()`` carries the session id and txnNumber of the connection's
pymongo session (``Connection.transaction_fields``).

Failures are raised as the pymongo exceptions pymongo would raise for the
same reply, so ``cursor.translate_errors`` maps both paths to Django's
errors in one place.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from bson import decode, json_util
from pymongo.errors import (
    AutoReconnect,
    BulkWriteError,
    CursorNotFound,
    DocumentTooLarge,
    DuplicateKeyError,
    ExecutionTimeout,
    NotPrimaryError,
    OperationFailure,
    PyMongoError,
    WriteError,
)

from . import _core

try:  # pymongo >= 4.9
    from pymongo.helpers_shared import _NOT_PRIMARY_CODES
except ImportError:  # pragma: no cover - older pymongo
    from pymongo.helpers import _NOT_PRIMARY_CODES  # type: ignore[no-redef]

if TYPE_CHECKING:
    from .binding import Binder
    from .connection import Connection

command_logger = logging.getLogger("djongo.mongo")

# The session bookkeeping left out of logged commands, as CommandLogger does.
_NOISE = frozenset({"lsid", "$clusterTime", "$db", "txnNumber", "autocommit",
                    "startTransaction"})


class StoreTransport:
    """Runs one connection's statements through the store's client."""

    def __init__(self, client: _core.StoreClient, connection: Connection, db: str) -> None:
        self.client = client
        self.connection = connection
        self.db = db

    # -- reads ---------------------------------------------------------------

    def find(self, plan: dict[str, Any], binder: Binder,
             concerns: dict[str, Any] | None = None) -> Iterator[tuple]:
        """The rows of a ``find`` plan; a large result is read batch by batch.
        ``concerns``: fields the command carries outside a transaction
        (``readConcern``, ``$readPreference``, ``writeConcern``: djongo.concerns)."""
        txn = self.connection.transaction_fields()
        log = _log_command if command_logger.isEnabledFor(logging.DEBUG) else None
        # Every read's path: `_reraised` by hand, without its object.
        try:
            rows, cursor_id = self.client.find(self.db, plan, binder, txn, log, concerns)
        except _core.StoreError as exc:
            raise _as_pymongo(exc, txn is not None, None) from None
        if txn is not None:
            self.connection.statement_completed()
        if not cursor_id:
            return iter(rows)
        later = None if txn is None else (txn[0], txn[1], False)
        return self._batches(rows, plan["collection"], cursor_id, len(plan["columns"]), later)

    def _batches(self, rows: list[tuple], collection: str, cursor_id: int, width: int,
                 txn: tuple | None) -> Iterator[tuple]:
        try:
            yield from rows
            while cursor_id:
                with _reraised(txn, self.connection):
                    rows, cursor_id = self.client.get_more(self.db, collection, cursor_id,
                                                           width, txn)
                yield from rows
        finally:
            if cursor_id:
                # Left unread (a closed Django cursor): the server may drop it now.
                try:
                    self.client.kill_cursors(self.db, collection, [cursor_id], txn)
                except _core.StoreError:
                    pass

    def aggregate(self, plan: dict[str, Any], binder: Binder,
                  concerns: dict[str, Any] | None = None) -> list[tuple]:
        """Every row of an ``aggregate`` plan."""
        txn = self.connection.transaction_fields()
        log = _log_command if command_logger.isEnabledFor(logging.DEBUG) else None
        try:
            rows = self.client.aggregate(self.db, plan, binder, txn, log, concerns)
        except _core.StoreError as exc:
            raise _as_pymongo(exc, txn is not None, None) from None
        if txn is not None:
            self.connection.statement_completed()
        return rows

    # -- writes --------------------------------------------------------------

    def update(self, plan: dict[str, Any], binder: Binder,
               concerns: dict[str, Any] | None = None) -> int:
        """Runs an ``update`` plan; the number of documents it matched."""
        txn = self.connection.transaction_fields()
        with _reraised(txn, self.connection, write="one"):
            return self.client.update(self.db, plan, binder, txn, self._log(), concerns)

    def delete(self, plan: dict[str, Any], binder: Binder,
               concerns: dict[str, Any] | None = None) -> int:
        """Runs a ``delete`` plan; the number of documents it deleted."""
        txn = self.connection.transaction_fields()
        with _reraised(txn, self.connection, write="one"):
            return self.client.delete(self.db, plan, binder, txn, self._log(), concerns)

    def insert(self, collection: str, documents: list[dict], ordered: bool = True,
               counter: dict[str, Any] | None = None,
               concerns: dict[str, Any] | None = None) -> int:
        """Inserts ``documents``; raises ``BulkWriteError`` as pymongo's
        ``insert_many`` does when one fails. ``counter`` (outside a
        transaction): the server numbers the documents that lack its
        ``field`` in the insert's own write, and their dicts get the numbers
        (``djongoCounter``, crates/server/src/commands/counter.rs)."""
        txn = self.connection.transaction_fields()
        with _reraised(txn, self.connection, write="bulk"):
            return self.client.insert(self.db, collection, documents, ordered, txn, self._log(),
                                      counter, concerns)

    def command(self, command: dict[str, Any], *, in_transaction: bool = True,
                write: bool = False) -> dict[str, Any]:
        """Runs ``command`` and returns its reply. ``in_transaction``: in the
        connection's transaction, if one is open; ``write``: a write outside
        a transaction (numbered, so that it can be sent again)."""
        txn = self.connection.transaction_fields() if in_transaction else None
        with _reraised(txn, self.connection):
            return self.client.command(self.db, command, txn, write and txn is None, self._log())

    def end_transaction(self, command: dict[str, Any],
                        txn: tuple[bytes, int, bool]) -> dict[str, Any]:
        """Sends ``commitTransaction`` or ``abortTransaction`` (``command``) for
        the transaction ``txn`` names (``shared_transaction.commit``/``abort``):
        on the admin database, as drivers send them."""
        with _reraised(txn):
            return self.client.command("admin", command, txn, False, self._log())

    @property
    def in_process(self) -> bool:
        """Whether this process serves the store and runs its commands in the
        calling thread (``STORE_SERVER: "in-process"``)."""
        return self.client.in_process

    def _log(self):
        return _log_command if command_logger.isEnabledFor(logging.DEBUG) else None


def _log_command(db: str, body: bytes) -> None:
    command = decode(body)
    name = next(iter(command), "?")
    shown = {k: v for k, v in command.items() if k not in _NOISE}
    command_logger.debug("%s.%s: %s", db, name, json_util.dumps(shown))


class _reraised:
    """Raises the client's failures as the pymongo exceptions of the same
    reply; tells ``connection`` of a statement in its transaction that
    succeeded, as pymongo notes its own (``Connection.statement_completed``)."""

    def __init__(self, txn: tuple | None, connection: Connection | None = None,
                 write: str | None = None) -> None:
        self.txn = txn
        self.connection = connection
        self.write = write

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc is None:
            if self.txn is not None and self.connection is not None:
                self.connection.statement_completed()
            return False
        if not isinstance(exc, _core.StoreError):
            return False
        raise _as_pymongo(exc, self.txn is not None, self.write) from None


def _as_pymongo(exc: _core.StoreError, in_transaction: bool, write: str | None) -> PyMongoError:
    if isinstance(exc, _core.StoreConnectionError):
        error = AutoReconnect(f"connection to the embedded store's server failed: {exc}")
        if in_transaction:
            # As drivers label a network error inside a transaction.
            error._add_error_label("TransientTransactionError")
        return error
    if isinstance(exc, _core.StoreTooLargeError):
        return DocumentTooLarge(str(exc))
    reply = exc.args[0] if exc.args and isinstance(exc.args[0], dict) else {}
    errors = reply.get("writeErrors")
    if errors:
        if write == "bulk":
            return BulkWriteError({
                "writeErrors": errors, "writeConcernErrors": [], "nInserted": reply.get("n", 0),
                "nUpserted": 0, "nMatched": 0, "nModified": 0, "nRemoved": 0, "upserted": [],
            })
        last = errors[-1]
        if last.get("code") == 11000:
            return DuplicateKeyError(last.get("errmsg"), 11000, last)
        return WriteError(last.get("errmsg"), last.get("code"), last)
    message, code = reply.get("errmsg", "the store's server failed"), reply.get("code")
    if code in (11000, 11001, 12582):
        return DuplicateKeyError(message, code, reply)
    if code in _NOT_PRIMARY_CODES:
        # ShutdownInProgress (91) from a server stopping, as pymongo raises it.
        return NotPrimaryError(message, reply)
    if code == 50:
        return ExecutionTimeout(message, code, reply)
    if code == 43:
        return CursorNotFound(message, code, reply)
    return OperationFailure(message, code, reply)
