"""A Django connection: one database on a shared MongoClient, plus a session.

Django drives transactions through ``set_autocommit(False)`` / ``commit()`` /
``rollback()``. Here a transaction starts lazily with the first statement
after autocommit is turned off, runs in a pymongo session, and ends on
commit or rollback: ``transaction.atomic()`` is a real multi-document
transaction, not a no-op.

As on MongoDB, two transactions writing the same document conflict: the
second gets ``WriteConflict``, raised as ``OperationalError``, and its
transaction is over. Leaving the ``atomic()`` block rolls it back, and the
connection is ready for the next one (retrying the block is the cure), as on
PostgreSQL after a serialization failure.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from decimal import Decimal

from bson import Decimal128
from bson.codec_options import CodecOptions, TypeDecoder, TypeRegistry
from pymongo import MongoClient
from pymongo.client_session import ClientSession
from pymongo.database import Database

from . import _core, concerns, records, shared_transaction
from .cursor import Cursor, translate_errors
from .transport import StoreTransport

logger = logging.getLogger("djongo")


class _DecimalDecoder(TypeDecoder):
    bson_type = Decimal128

    def transform_bson(self, value: Decimal128) -> Decimal:
        return value.to_decimal()


# Rows reach Django's converters (and raw SQL users) as Python values: a
# Decimal128 from a computed column or extra(select=...) is read as Decimal.
SQL_CODEC_OPTIONS = CodecOptions(type_registry=TypeRegistry([_DecimalDecoder()]))


class Connection:
    def __init__(self, client: MongoClient, name: str, enforce_schema: bool,
                 store: _core.StoreClient | None = None,
                 foreign_keys: Callable[[], bool] = lambda: False) -> None:
        self.client = client
        # Whether the server enforces foreign keys (features.supports_foreign_keys),
        # asked only when DDL needs it: on MongoDB it takes a ``hello``.
        self._foreign_keys = foreign_keys
        self.database: Database = client.get_database(name, codec_options=SQL_CODEC_OPTIONS)
        self.enforce_schema = enforce_schema
        # The embedded store's own client (djongo.transport), or None: pymongo.
        self.store = StoreTransport(store, self, name) if store is not None else None
        self.autocommit = True
        self._session: ClientSession | None = None
        self._session_id: bytes | None = None
        self._supports_transactions: bool | None = None
        self.closed = False
        # Tables whose __schema__ document the current transaction has written
        # (DDL inside atomic()): ids for them are taken inside the transaction,
        # where that document is visible. Others take ids outside it.
        self._schema_written: set[str] = set()
        # Each table's generated columns (name → expression) and collated
        # columns (name → collation) as read inside the current transaction
        # (executor.Executor._generated, _operation_collation); outside one,
        # the process's shared copy serves (records.shared_facts).
        self.generated: dict[str, dict] | None = None
        self.collations: dict[str, dict] | None = None
        # The open djongo.models.BulkWrite, which collects this connection's
        # writes until its block ends, or None.
        self.bulk = None

    @property
    def foreign_keys(self) -> bool:
        return self._foreign_keys()

    @property
    def supports_transactions(self) -> bool:
        """Whether the server runs multi-document transactions.

        A replica set member (the embedded engine reports itself as one) or a
        mongos does; a standalone MongoDB, or FerretDB 1.x, does not. There,
        statements run as in autocommit and ``atomic()`` cannot roll back, as
        with the original Djongo; the backend says so once, at connect time.
        """
        if self._supports_transactions is None:
            hello = self.client.admin.command("hello")
            self._supports_transactions = bool(
                hello.get("setName") or hello.get("msg") == "isdbgrid")
            if not self._supports_transactions:
                logger.warning(
                    "djongo: the server is not a replica set member or mongos, so it has no "
                    "transactions: transaction.atomic() blocks run without rollback"
                )
        return self._supports_transactions

    def cursor(self) -> Cursor:
        self._check_open()
        return Cursor(self)

    def _check_open(self) -> None:
        if self.closed:
            from .database import InterfaceError

            raise InterfaceError("the connection is closed")

    def session_for_statement(self) -> ClientSession | None:
        """The session a statement runs in: a transaction's, or none in autocommit."""
        if self.autocommit or not self.supports_transactions:
            return None
        if self._session is None:
            self._session = self.client.start_session()
        if not self._session.in_transaction:
            self._schema_written.clear()
            options = concerns.for_transaction.get()
            self._session.start_transaction(**(options.transaction() if options else {}))
        return self._session

    def transaction_fields(self) -> tuple[bytes, int, bool] | None:
        """What a statement sent by the store's client carries to run in the
        connection's transaction: the session id, its txnNumber and whether
        this statement starts the transaction. None in autocommit.

        The transaction is the pymongo session's, so that ``mongo_*`` calls,
        GridFS and the executor's own pymongo calls share it: the first
        statement of either kind starts it on the server, and the session's
        state says so to the other (``shared_transaction``).
        """
        if self.autocommit:
            return None  # what session_for_statement says first, without the call
        session = self.session_for_statement()
        if session is None:
            return None
        if self._session_id is None:
            self._session_id = bytes(session.session_id["id"])
        number, starting = shared_transaction.statement(session)
        return self._session_id, number, starting

    def statement_completed(self) -> None:
        """A statement the store's client sent in the connection's
        transaction succeeded (``shared_transaction.completed``)."""
        if self._session is not None:
            shared_transaction.completed(self._session)

    def wrote_schema_of(self, *tables: str) -> None:
        """Notes that the current transaction wrote these tables' ``__schema__``
        documents (a no-op outside a transaction)."""
        if self.in_transaction:
            self._schema_written.update(tables)

    @property
    def wrote_schema(self) -> bool:
        """Whether the current transaction wrote any ``__schema__`` document."""
        return bool(self._schema_written)

    def sequence_session(self, table: str) -> ClientSession | None:
        """Where ids for ``table`` are taken: outside any transaction, as a SQL
        sequence is, so that transactions inserting into one table do not
        conflict on its counter (an id taken by a transaction that rolls back
        is skipped, never handed out twice). Inside the transaction only when
        it wrote the table's ``__schema__`` document itself, which is not
        visible outside it yet."""
        if self.in_transaction and table in self._schema_written:
            return self._session
        return None

    @property
    def in_transaction(self) -> bool:
        return self._session is not None and self._session.in_transaction

    # Django calls these inside its error wrapper, which maps the DB-API
    # classes raised here (translate_errors) to django.db's.

    def set_autocommit(self, autocommit: bool) -> None:
        if autocommit and self.in_transaction:
            self.commit()
        self.autocommit = autocommit

    def commit(self) -> None:
        if self.in_transaction:
            # A failed commit (a write conflict) raises a DatabaseError, so
            # Django's atomic() rolls back and the connection stays usable.
            with translate_errors(None):
                self._end_transaction(shared_transaction.commit,
                                      self._session.commit_transaction)
        self._transaction_ended()

    def rollback(self) -> None:
        if self.in_transaction:
            with translate_errors(None):
                self._end_transaction(shared_transaction.abort, self._session.abort_transaction)
        self._transaction_ended()

    def _end_transaction(self, here: Callable, through_pymongo: Callable[[], None]) -> None:
        """Ends the session's transaction (``here``: ``shared_transaction.commit``
        or ``abort``). On the embedded store its own client sends the command,
        as it sends the statements (through the store's socket, or in the
        calling thread when this process serves the store), with pymongo's
        retry and labels; on a server reached through ``CLIENT`` pymongo does."""
        session = self._session
        if self.store is None:
            through_pymongo()
            return
        if self._session_id is None:
            self._session_id = bytes(session.session_id["id"])
        session_id = self._session_id
        here(session, lambda command, number: self.store.end_transaction(
            command, (session_id, number, False)))

    def _transaction_ended(self) -> None:
        # What was read inside the transaction may have seen its own DDL:
        # read again, and let the process's other connections read again
        # once that DDL is committed (records.shared_facts).
        if self._schema_written:
            records.forget_facts(self)
        self._schema_written.clear()
        self.generated = None
        self.collations = None

    def close(self) -> None:
        # The MongoClient is shared by every connection to the same server in
        # the process; closing a Django connection only ends its session.
        try:
            if self._session is not None:
                with translate_errors(None):
                    if self._session.in_transaction:
                        self._end_transaction(shared_transaction.abort,
                                              self._session.abort_transaction)
                    self._session.end_session()
        finally:
            self._session = None
            self._session_id = None
            self.closed = True

    def ping(self) -> None:
        self._check_open()
        self.database.command("ping")
