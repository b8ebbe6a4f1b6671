"""Runs compiled plans and turns the results into rows.

One method per plan ``op`` (docs/plan-format.md). Reads yield tuples in
SELECT order from the ``c0, c1, ...`` fields of the result documents; writes
report a row count; DDL maps tables, columns, unique constraints and indexes
onto collections, fields and indexes.

Statements reach the server through pymongo, except on the embedded store,
whose own client (``self.store``, djongo.transport) runs the reads and
writes of the ORM: it binds the plan and shapes the rows in Rust. The
semantics around them (ids, defaults, NOT NULL, ENFORCE_SCHEMA) stay here,
for both.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bson import Decimal128, ObjectId, json_util
from pymongo import DeleteMany, InsertOne, ReturnDocument, UpdateMany, UpdateOne
from pymongo.errors import BulkWriteError, CollectionInvalid, ExecutionTimeout, OperationFailure

from . import (
    catalog,
    client_functions,
    collations,
    concerns,
    foreign_keys,
    records,
    sequences,
    shared_transaction,
    validator,
)
from ._core import InsertRows
from .binding import Binder, to_bson
from .database import IntegrityError, NotSupportedError, ProgrammingError
from .exceptions import MigrationError

if TYPE_CHECKING:
    from .connection import Connection

logger = logging.getLogger("djongo")

# Every BSON type but null: a unique index restricted to documents whose keys
# have one of these allows any number of NULLs, as a SQL UNIQUE constraint does.
NON_NULL_TYPES = [
    "double", "string", "object", "array", "binData", "objectId", "bool",
    "date", "int", "timestamp", "long", "decimal", "regex",
]


# The field a find under ENFORCE_SCHEMA adds to carry the document's _id.
ENFORCED_ID = "__djongo_id"

# How long taking ids outside the transaction waits for a counter document
# held by a transaction before taking them inside this one (Executor._counter).
COUNTER_WAIT_MS = 1000

# How many _ids one delete command of a correlated DELETE names.
DELETE_BATCH = 10_000

# The server's answer to an insert whose counter filter matched nothing
# (``djongoCounter``): the table's record changed since this process read it.
NO_MATCHING_DOCUMENT = 47
# The collection is already there ("create").
NAMESPACE_EXISTS = 48

# Plan ops that write the ``__schema__`` documents of their tables.
SCHEMA_OPS = frozenset({
    "create_table", "drop_table", "rename_table", "add_column", "drop_column",
    "rename_column", "alter_column", "create_index", "add_constraint", "drop_constraint",
})


# The rows of a result that has none: an exhausted iterator stays exhausted,
# so every such result can share it (one fewer call per statement).
NO_ROWS: Iterator[tuple] = iter(())


@dataclass
class Result:
    rows: Iterator[tuple] = NO_ROWS
    rowcount: int = -1
    columns: Sequence[str] = ()
    lastrowid: Any = None


class Executor:
    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        # The session of a statement that runs in a transaction of its own
        # (_as_one_statement) while the connection is in autocommit.
        self._statement_session = None
        self.store = connection.store

    @property
    def db(self):
        return self.connection.database

    @property
    def session(self):
        if self._statement_session is not None:
            return self._statement_session
        return self.connection.session_for_statement()

    def _concerns(self) -> concerns.Options | None:
        """The statement's read and write concerns (djongo.concerns), unless
        it runs in a transaction, whose own apply."""
        options = concerns.current.get()
        if options is None or self.session is not None:
            return None
        return options

    def _collection(self, name: str, options: concerns.Options | None = None):
        """The pymongo collection ``name``, with the statement's concerns."""
        options = options if options is not None else self._concerns()
        collection = self.db[name]
        return collection.with_options(**options.pymongo()) if options else collection

    def _bulk(self, collection: str):
        """The open BulkWrite that collects writes to ``collection``, if any."""
        bulk = self.connection.bulk
        return bulk if bulk is not None and bulk.covers(collection) else None

    def _queue(self, bulk, collection: str, requests: list) -> None:
        bulk.queue(collection, requests, concerns.current.get())

    def _as_one_statement(self, work: Callable[[], Result]) -> Result:
        """Runs ``work`` (several commands) as one SQL statement: in the
        connection's transaction if there is one, else in a transaction of
        its own where the server has them, so no other client's write lands
        between its read and its writes."""
        if self.session is not None or not self.connection.supports_transactions:
            return work()
        with self.connection.client.start_session() as session:
            def run(session):
                self._statement_session = session
                try:
                    return work()
                finally:
                    self._statement_session = None

            return session.with_transaction(run)

    def execute(self, plan: dict[str, Any], params: Sequence[Any]) -> Result:
        expected = plan.get("params", 0)
        if expected != len(params):
            raise ProgrammingError(
                f"the statement has {expected} parameters but {len(params)} were given"
            )
        # Sub-plans form one flat list in dependency order: a sub-plan's slots
        # only refer to results of sub-plans before it.
        subquery_results: list[list[tuple]] = []
        binder = Binder(params, subquery_results)
        if "collation" in plan:
            plan = self._with_operation_collation(plan)
        for subplan in plan.get("subqueries", ()):
            result = self._run(subplan, binder)
            subquery_results.append(list(result.rows))
        result = self._run(plan, binder)
        if plan.get("post_filter"):
            hidden = int(plan["hidden_columns"])
            rows = list(client_functions.post_filter(
                result.rows, binder.bind(plan["post_filter"]), hidden))
            result.rows, result.rowcount = iter(rows), len(rows)
            result.columns = result.columns[:-hidden]
        if plan.get("post"):
            result.rows = client_functions.post_process(result.rows, plan["post"])
        return result

    def _with_operation_collation(self, plan: dict[str, Any]) -> dict[str, Any]:
        """The plan with the collation its commands run under (``collation``
        in each of them, sub-plans included), when it is not the simple one."""
        uses = plan["collation"]
        names, columns = uses["names"], uses["columns"]
        collated = self._schema_facts("collations", catalog.all_collated_columns)
        if not names and (not collated or not any(c in collated.get(t, ()) for t, c in columns)):
            # The usual case, on every statement that compares columns: no
            # table has a collated column (or none of these).
            return plan
        chosen = self._operation_collation(names, columns, collated)
        if chosen is None:
            return plan

        def under(p: dict[str, Any]) -> dict[str, Any]:
            p = {**p, "operation_collation": chosen}
            if "select" in p:
                p["select"] = under(p["select"])
            return p

        return {**under(plan), "subqueries": [under(p) for p in plan.get("subqueries", ())]}

    def _operation_collation(self, names: list[str], columns: Sequence[Sequence[str]],
                             collated: dict[str, dict]) -> dict | None:
        """MongoDB's collation for a statement that names ``names`` and
        compares ``columns`` (collations.choose). ``collated``: the columns'
        collations, from ``_schema_facts``; their types are read only when a
        collation other than the simple one is in play."""
        columns = [tuple(c) for c in columns]

        def type_of(table: str, column: str) -> str | None:
            record = records.get(self.connection, table) or self._table_record(table) or {}
            for c in record.get("columns") or ():
                if c["name"] == column:
                    return c.get("type")
            return None

        return collations.choose(names, columns, lambda t, c: collated.get(t, {}).get(c), type_of)

    def _run(self, plan: dict[str, Any], binder: Binder) -> Result:
        op = plan["op"]
        handler = getattr(self, f"_run_{op}", None)
        if handler is None:
            raise NotSupportedError(f"the executor does not implement plan op {op!r}")
        if op in SCHEMA_OPS:
            # Generated columns and collations may have changed: read them
            # again when needed.
            self.connection.generated = None
            self.connection.collations = None
            tables = [t for t in (plan.get("collection"), plan.get("to")) if t]
            records.forget(self.connection, *tables)
            records.forget_facts(self.connection)
            if self.session is not None:
                self.connection.wrote_schema_of(*tables)
        return handler(plan, binder)

    # -- reads -------------------------------------------------------------

    def _rows(self, documents, width: int) -> Iterator[tuple]:
        keys = [f"c{i}" for i in range(width)]
        for doc in documents:
            yield tuple(doc.get(k) for k in keys)

    def _enforced_rows(self, documents, width: int, collection: str,
                       projection: dict) -> Iterator[tuple]:
        """Rows of a ``find`` under ``ENFORCE_SCHEMA: True``.

        A stored null is a value; only a field absent from the document is a
        schema mismatch, reported with the collection, the document's ``_id``
        and the field's name.
        """
        keys = [f"c{i}" for i in range(width)]
        for doc in documents:
            for key in keys:
                if key not in doc:
                    source = projection.get(key)
                    field = source[1:] if isinstance(source, str) and source[:1] == "$" else key
                    raise MigrationError(collection, doc.get(ENFORCED_ID), field)
            yield tuple(doc[k] for k in keys)

    def _run_find(self, plan, binder: Binder) -> Result:
        columns = plan["columns"]
        # Most statements have no concerns: no call to weigh them then.
        options = concerns.current.get() and self._concerns()
        if self.store is not None and not self.connection.enforce_schema and not plan.get("star"):
            return Result(rows=self.store.find(plan, binder, options and options.for_read()),
                          columns=columns)
        limit = binder.bind(plan.get("limit"))
        if limit == 0:
            return Result(columns=columns, rowcount=0)
        projection = binder.bind(plan.get("projection"))
        enforce = (self.connection.enforce_schema and not plan.get("star")
                   and isinstance(projection, dict))
        if enforce:
            # The document's _id names it in the error; it is no column.
            projection = {**projection, ENFORCED_ID: "$_id"}
        cursor = self._collection(plan["collection"], options).find(
            binder.bind_filter(plan.get("filter") or {}),
            projection,
            sort=list(binder.bind(plan["sort"]).items()) if plan.get("sort") else None,
            skip=binder.bind(plan.get("skip")) or 0,
            limit=limit or 0,
            session=self.session,
            collation=plan.get("operation_collation"),
        )
        if plan.get("star"):
            return self._star_result(plan["collection"], list(cursor))
        if enforce:
            rows = self._enforced_rows(cursor, len(columns), plan["collection"], projection)
        else:
            rows = self._rows(cursor, len(columns))
        return Result(rows=rows, columns=columns)

    def _star_result(self, collection: str, documents: list[dict]) -> Result:
        """``SELECT *``: the stored fields, in the order the documents hold them.

        MongoDB's own ``_id`` is left out when the collection's key is an
        integer auto field (the Djongo layout), as it is no model column.
        """
        record = self._table_record(collection) or {}
        columns: dict[str, None] = dict.fromkeys(c["name"] for c in record.get("columns") or ())
        for doc in documents:
            columns.update(dict.fromkeys(doc))
        if _auto_field(record) is not None:
            columns.pop("_id", None)
        # The hidden fields of index expressions are no columns.
        names = [name for name in columns if not catalog.is_index_field(name)]
        rows = [tuple(doc.get(name) for name in names) for doc in documents]
        return Result(rows=iter(rows), columns=names, rowcount=len(rows))

    def _run_aggregate(self, plan, binder: Binder) -> Result:
        columns = plan["columns"]
        options = self._concerns()
        if self.store is not None:
            rows = self.store.aggregate(plan, binder, options and options.for_read())
            return Result(rows=iter(rows), columns=columns, rowcount=len(rows))
        pipeline = binder.bind(plan["pipeline"])
        collection = plan.get("collection")
        if collection:
            target = self._collection(collection, options)
        else:
            target = self.db.with_options(**options.pymongo()) if options else self.db
        documents = list(target.aggregate(pipeline, session=self.session,
                                          collation=plan.get("operation_collation")))
        default_row = plan.get("default_row")
        if not documents and default_row is not None:
            return Result(rows=iter([tuple(default_row)]), columns=columns, rowcount=1)
        rows = list(self._rows(documents, len(columns)))
        return Result(rows=iter(rows), columns=columns, rowcount=len(rows))

    # -- writes ------------------------------------------------------------

    def _run_insert(self, plan, binder: Binder) -> Result:
        collection = plan["collection"]
        columns = plan["columns"]
        returning = plan.get("returning") or []
        # The rows stay BSON (InsertRows) up to the store's client; the
        # paths that take dicts get them below.
        rows = binder.insert_rows(plan)
        if "_id" in columns:
            # A NULL key is one to generate, as a NULL into an auto field is
            # one to number: Django's bulk_create() sends None for an
            # ObjectIdField key, which is no AutoField to leave out.
            rows.drop_nulls("_id")
        bulk = self._bulk(collection)
        if bulk is not None and plan.get("on_conflict"):
            raise NotSupportedError(
                f"INSERT ... ON CONFLICT into {collection!r} inside a BulkWrite: a bulk write "
                "has no upserts of its own; run it outside the block")
        numbered = None if bulk is not None else self._insert_numbered(collection, rows, plan)
        if numbered is not None:
            return _inserted(*numbered, returning)

        cached = self._checked_record(collection, rows, bulk is not None)
        record = cached or self._table_record(collection)
        auto = _auto_field(record)
        if auto is None and not (record or {}).get("columns"):
            # A collection made implicitly (ENFORCE_SCHEMA off, or data copied
            # in): a returned column the statement does not set is its key.
            unset = [c for c in returning if c not in columns or rows.count_unset(c) == len(rows)]
            if len(unset) == 1 and unset[0] != "_id":
                auto = unset[0]
                self._register_implicit_counter(collection, auto)
        if auto is not None:
            # Raise the counter past explicit ids before allocating, so a
            # statement mixing both never hands out an id it also inserts.
            explicit = rows.explicit(auto)
            raising = sequences.raising(max(explicit)) if explicit else None
            if raising is not None:
                self._counter(collection, lambda s, t: self._update_counter(
                    collection, raising, s, t))
                if bulk is not None:
                    # An explicit id may fall in the block's reserved ids.
                    bulk.ids.drop(collection)
            missing = rows.count_unset(auto)
            if missing:
                if bulk is not None or cached is not None:
                    first = (self._bulk_ids(bulk, collection, cached, missing)
                             if bulk is not None
                             else self._ids_while(collection, cached, missing))
                    if first is None and cached is not None:
                        # Another process changed the table: read its record again.
                        records.forget(self.connection, collection)
                        return self._run_insert(plan, binder)
                else:
                    first = self._counter(collection, lambda s, t: sequences.first_allocated(
                        self._update_counter(collection, sequences.allocation(missing),
                                             s, t), missing))
                if first is None:
                    raise ProgrammingError(f"table {collection!r} has no id counter in "
                                           f"{sequences.SCHEMA_COLLECTION}")
                rows.number(auto, first)

        cols = (record or {}).get("columns")
        expression_defaults = catalog.expression_defaults(cols, rows)
        if expression_defaults:
            for name, value in self._evaluate(expression_defaults).items():
                rows.set_default(name, value)
        catalog.complete_rows(cols, rows, collection, auto)
        on_conflict = plan.get("on_conflict")
        generated = catalog.generated_columns(cols)
        if self.store is not None and bulk is None and not on_conflict and not generated:
            self._insert_many(collection, rows, ordered=True)
            return _inserted(rows, auto, returning)
        documents = rows.dicts()
        if generated:
            self._compute_generated(documents, generated)
        if on_conflict == "ignore":
            inserted = self._insert_skipping_conflicts(collection, documents)
            return Result(rowcount=inserted, columns=returning)
        if on_conflict:
            upserted = self._upsert(collection, documents, on_conflict, returning)
            return Result(rows=iter(upserted), rowcount=len(documents), columns=returning)
        if bulk is not None:
            for doc in documents:
                # The id is known now (an ObjectId key is read back from it).
                doc.setdefault("_id", ObjectId())
            self._queue(bulk, collection, [InsertOne(doc) for doc in documents])
        else:
            self._insert_many(collection, documents, ordered=True)
        return _inserted(documents, auto, returning)

    def _register_implicit_counter(self, collection: str, auto: str) -> None:
        """Creates the id counter of a table made by its first insert.

        Outside the statement's transaction, as its ids are taken
        (``_counter``): concurrent transactions inserting into a new table
        would otherwise each create the counter document and all but one
        fail with a write conflict. The counter starts past the largest
        committed id; ids this transaction inserted itself are not visible
        outside it, so it raises the counter past those too.

        The collection itself is created outside too while the transaction
        has not reached the server yet (Django's ``bulk_create()`` and
        ``delete()`` start theirs with this statement): its snapshot then
        holds the collection, and transactions doing the same at once do
        not conflict on creating it. A transaction already under way
        creates it itself, as MongoDB does (a collection created after its
        snapshot is not one it may write to), and conflicts with another
        creating it at the same time.
        """
        session = self.session
        if session is not None and not shared_transaction.started(session):
            try:
                self.db.command("create", collection)
            except OperationFailure as exc:
                if exc.code != NAMESPACE_EXISTS:
                    raise
        sequences.register(self.db, collection, auto, None)
        records.forget(self.connection, collection)
        if session is not None:
            own = sequences.largest_id(self.db, collection, auto, session)
            if own:
                sequences.raise_to(self.db, collection, own, None)

    def _insert_numbered(self, collection: str, documents: InsertRows,
                         plan) -> tuple[InsertRows, str] | None:
        """Inserts with the ids taken in the insert's own write, when it can:
        on the embedded store, outside a transaction, with the table's record
        cached (``records``). Returns the rows as written and the auto field,
        or None when nothing was written (then the statement takes the long
        way, with ``documents`` untouched: record, counter, insert)."""
        # ``self.session``, not ``in_transaction``: inside atomic() the
        # transaction starts with its first statement, which may be this one.
        if self.store is None or self.session is not None or plan.get("on_conflict"):
            return None
        record = records.get(self.connection, collection)
        auto = _auto_field(record)
        if auto is None:
            return None
        explicit = len(documents) - documents.count_unset(auto)
        if 0 < explicit < len(documents):
            # The server raises the counter past explicit ids per command; a
            # statement split into several could be numbered into an id a later
            # part gives. Django inserts rows with and without pks apart.
            return None
        columns = record.get("columns")
        if catalog.expression_defaults(columns, documents) or catalog.generated_columns(columns):
            return None
        # Copies: the record may be stale, and then the long way must not
        # find its defaults already applied.
        rows = documents.copy()
        try:
            catalog.complete_rows(columns, rows, collection, auto)
        except IntegrityError:
            # Decided on the table's current record only.
            records.forget(self.connection, collection)
            return None
        digest = records.digest(record)
        counter = sequences.counter_spec(collection, auto, record, digest)
        options = self._concerns()
        try:
            self.store.insert(collection, rows, True, counter=counter,
                              concerns=options and options.for_write())
        except OperationFailure as exc:
            if exc.code != NO_MATCHING_DOCUMENT:
                raise
            # Another process changed the table: read its record again.
            records.forget(self.connection, collection)
            return None
        if digest is None and counter.get("digest") is not None:
            # The filter carrying the record matched: later inserts send the digest.
            records.keep_digest(record, counter["digest"])
        return rows, auto

    def _compute_generated(self, documents: list[dict], generated: dict[str, Any]) -> None:
        """Fills the generated columns of rows about to be inserted: the
        server evaluates each column's expression over each row, in one
        aggregate (a value the row gave for such a column is replaced, as a
        generated column takes no value of its own)."""
        names = list(generated)
        projection = {"_id": 0, **{f"g{i}": generated[n] for i, n in enumerate(names)}}
        pipeline = [{"$documents": [{k: v for k, v in doc.items() if k not in generated}
                                    for doc in documents]},
                    {"$project": projection}]
        computed = list(self.db.aggregate(pipeline, session=self.session))
        for doc, row in zip(documents, computed, strict=True):
            for i, name in enumerate(names):
                doc[name] = row.get(f"g{i}")

    def _generated(self, collection: str) -> dict[str, Any]:
        """The generated columns of ``collection`` (an UPDATE must recompute
        them), from ``_schema_facts``."""
        return self._schema_facts("generated", catalog.all_generated_columns).get(collection, {})

    def _schema_facts(self, kind: str, read: Callable[[Any, Any], dict]) -> dict:
        """``kind`` (``"collations"`` or ``"generated"``, the connection's
        attribute of that name) for every table: what this transaction read,
        inside one that wrote ``__schema__`` (its own DDL); else the
        process's copy (records.shared_facts), read again after this
        process's DDL. A transaction without DDL of its own sees the
        committed facts, so it reads them outside itself and shares them:
        every Django ``delete()`` and ``bulk_create()`` runs in one, and read
        them anew on each call."""
        facts = getattr(self.connection, kind)
        if facts is None:
            in_transaction = self.connection.in_transaction
            own = in_transaction and self.connection.wrote_schema
            session = self.session if own else None
            facts = records.shared_facts(self.connection, kind,
                                         lambda: read(self.db, session), share=not own)
            if in_transaction:
                setattr(self.connection, kind, facts)
        return facts

    def _counter(self, collection: str, update: Callable[[Any, int | None], Any]) -> Any:
        """Runs ``update(session, max_time_ms)`` on ``collection``'s id counter.

        Like a SQL sequence, the counter is updated outside the transaction
        (``Connection.sequence_session``), so concurrent transactions do not
        conflict on it. When that cannot work it is updated inside the
        transaction instead: the counter document is not there outside it
        (the transaction created it), or it stays held by a transaction (this
        one, having written it directly) for ``COUNTER_WAIT_MS``.
        """
        session = self.connection.sequence_session(collection)
        if session is not None or not self.connection.in_transaction:
            return update(session, None)
        try:
            result = update(None, COUNTER_WAIT_MS)
        except ExecutionTimeout:
            result = None
        if result is not None:
            return result
        self.connection.wrote_schema_of(collection)
        return update(self.session, None)

    def _checked_record(self, collection: str, rows: InsertRows,
                        in_bulk: bool) -> dict | None:
        """The table's record as this process keeps it (``records``), where
        the statement takes its ids only while the counter document still is
        that record, so a stale one is noticed before anything is written:
        in a BulkWrite (``_bulk_ids``), and in a transaction whose rows all
        take their ids from the counter (``_ids_while``; Django's
        ``bulk_create()`` runs in one) unless the transaction wrote the
        table's ``__schema__`` document itself. None: read the record."""
        cached = records.get(self.connection, collection)
        if cached is None or in_bulk:
            return cached
        auto = _auto_field(cached)
        if (self.store is None or not self.connection.in_transaction or auto is None
                or self.connection.sequence_session(collection) is not None
                or rows.count_unset(auto) < len(rows)):
            return None
        return cached

    def _ids_while(self, collection: str, record: dict, count: int) -> int | None:
        """The first of ``count`` ids, taken outside the transaction (as
        ``_counter`` takes them) only while the counter document still is
        ``record``; None when it is not (another process changed the table),
        or when a transaction holds it: then the long way decides."""
        query = sequences.counter_filter(collection, record)
        try:
            after = self._update_counter(collection, sequences.allocation(count), None,
                                         COUNTER_WAIT_MS, query)
        except ExecutionTimeout:
            return None
        return sequences.first_allocated(after, count)

    def _bulk_ids(self, bulk, collection: str, cached: dict | None, count: int) -> int | None:
        """The first of ``count`` ids for rows a BulkWrite queues: from the
        ids it reserved for the table, reserving a larger block when they run
        out (ids left unused are skipped, as a rolled back insert's are).
        With a ``cached`` record, None when the counter document is no longer
        that record."""
        first = bulk.ids.take(collection, count)
        if first is not None:
            return first
        size = bulk.ids.next_size(collection, count)
        query = sequences.counter_filter(collection, cached) if cached is not None else None
        first = self._counter(collection, lambda s, t: sequences.first_allocated(
            self._update_counter(collection, sequences.allocation(size), s, t, query), size))
        if first is None:
            return None
        bulk.ids.reserve(collection, first, size)
        return bulk.ids.take(collection, count)

    def _update_counter(self, collection: str, update: dict, session,
                        max_time_ms: int | None, query: dict | None = None) -> dict | None:
        """Updates ``collection``'s id counter (in ``session``, or outside any
        transaction); the counter document after, None if there is none (or
        none matches ``query``)."""
        query = query or {"name": collection}
        if self.store is None:
            return self.db[sequences.SCHEMA_COLLECTION].find_one_and_update(
                query, update, return_document=ReturnDocument.AFTER,
                session=session, **({"maxTimeMS": max_time_ms} if max_time_ms else {}))
        command = {"findAndModify": sequences.SCHEMA_COLLECTION, "query": query,
                   "update": update, "new": True}
        if max_time_ms:
            command["maxTimeMS"] = max_time_ms
        inside = session is not None
        if not inside:
            # Not waiting for the disk: ids only matter to the writes that
            # use them, and those commit after this update, durably, which
            # makes it durable too; if the store dies before, none of them
            # was acknowledged, and the ids may be handed out again.
            command["writeConcern"] = {"j": False}
        return self.store.command(command, in_transaction=inside, write=not inside).get("value")

    def _evaluate(self, expressions: dict[str, Any]) -> dict[str, Any]:
        """Evaluates aggregation expressions that read no document, in one
        database-level aggregate (so ``$$NOW`` has one value per statement)."""
        names = list(expressions)
        projection = {f"e{i}": expressions[name] for i, name in enumerate(names)}
        pipeline = [{"$documents": [{}]}, {"$project": {"_id": 0, **projection}}]
        row = next(iter(self.db.aggregate(pipeline, session=self.session)), {})
        return {name: row.get(f"e{i}") for i, name in enumerate(names)}

    def _unique_indexes(self, collection: str) -> list[tuple[list[str], dict | None]]:
        """The keys and partial filter of each unique index of ``collection``."""
        return [
            (list(index["key"]), index.get("partialFilterExpression"))
            for index in self.db[collection].list_indexes(session=self.session)
            if index.get("unique") or index["name"] == "_id_"
        ]

    def _insert_skipping_conflicts(self, collection: str, documents: list[dict]) -> int:
        """``ON CONFLICT DO NOTHING``: rows hitting a unique index are skipped.

        Each row is an upsert that only inserts (``$setOnInsert``) and whose
        filter matches a stored row it would collide with on any unique
        index, so a colliding row is a no-op, not a duplicate-key error: it
        works inside a transaction, which MongoDB aborts on any write error.
        Outside one, a row another client inserts at the same moment may
        still collide; that error is ignored too. Any other error fails the
        statement.
        """
        indexes = self._unique_indexes(collection)
        # The filter finds a collision as each unique index does: under its
        # collation (one per operation, so the indexes must share it).
        collation = self._conflict_collation(collection, [keys for keys, _ in indexes])
        operations = []
        for doc in documents:
            _check_plain_keys(collection, doc)
            branches = []
            for keys, partial in indexes:
                if any(doc.get(k) is None for k in keys):
                    continue  # a NULL key never collides (partial unique indexes)
                match = {k: {"$eq": doc[k]} for k in keys}
                branches.append({"$and": [partial, match]} if partial else match)
            if branches:
                operations.append(UpdateOne({"$or": branches}, {"$setOnInsert": doc}, upsert=True,
                                            collation=collation))
            else:
                operations.append(InsertOne(doc))
        if not operations:
            return 0
        in_transaction = self.session is not None
        try:
            result = self._collection(collection).bulk_write(
                operations, ordered=in_transaction, session=self.session)
        except BulkWriteError as exc:
            details = exc.details or {}
            if in_transaction or any(e.get("code") != 11000
                                     for e in details.get("writeErrors", ())):
                raise
            return details.get("nInserted", 0) + details.get("nUpserted", 0)
        return result.inserted_count + result.upserted_count

    def _insert_many(self, collection: str, documents: list[dict] | InsertRows,
                     ordered: bool) -> int:
        """Inserts ``documents`` (dicts; ``InsertRows`` on the embedded
        store only); the number inserted (``BulkWriteError`` when one fails,
        on either path)."""
        options = self._concerns()
        if self.store is not None:
            return self.store.insert(collection, documents, ordered,
                                     concerns=options and options.for_write())
        result = self._collection(collection, options).insert_many(
            documents, ordered=ordered, session=self.session)
        return len(result.inserted_ids)

    def _upsert(self, collection: str, documents: list[dict], on_conflict: dict,
                returning: Sequence[str]) -> list[tuple]:
        """``ON CONFLICT (target) DO UPDATE SET col = EXCLUDED.src``: each row
        is an upsert on the target columns, setting the updated columns in
        either case and the others only when it inserts. A row with a NULL
        target column collides with nothing (SQL's UNIQUE), so it is
        inserted. Rows come back in order, each with the values of the row
        it inserted or updated, as SQL's RETURNING does.
        """
        target = on_conflict["target"]
        updates = [tuple(pair) for pair in on_conflict["update"]]
        if not any(set(keys) == set(target) for keys, _ in self._unique_indexes(collection)):
            # As SQL databases answer: the target must be a unique constraint.
            raise ProgrammingError(
                f"ON CONFLICT ({', '.join(target)}) does not match any primary key or unique "
                f"constraint of table {collection!r}"
            )
        operations, keyed = [], []
        for doc in documents:
            _check_plain_keys(collection, doc)
            if any(doc.get(k) is None for k in target):
                operations.append(InsertOne(doc))
                keyed.append(None)
                continue
            match = {k: {"$eq": doc[k]} for k in target}
            changes = {column: doc.get(source) for column, source in updates}
            _check_not_null(collection, _not_null_columns(self._table_record(collection)),
                            {k: v for k, v in changes.items() if v is None})
            on_insert = {k: v for k, v in doc.items() if k not in changes}
            update = {"$set": changes}
            if on_insert:
                update["$setOnInsert"] = on_insert
            operations.append(UpdateOne(match, update, upsert=True,
                                        collation=self._conflict_collation(collection, [target])))
            keyed.append(match)
        self._collection(collection).bulk_write(operations, ordered=True, session=self.session)
        generated = self._generated(collection)
        matches = [m for m in keyed if m is not None]
        if generated and matches:
            # An updated row's generated columns follow its new values.
            self.db[collection].update_many({"$or": matches}, [{"$set": generated}],
                                            session=self.session)
        if not returning:
            return []
        stored = {}
        if matches:
            projection = {"_id": 0, **{c: 1 for c in (*returning, *target)}}
            for row in self.db[collection].find({"$or": matches}, projection,
                                                session=self.session):
                stored[_key(row.get(k) for k in target)] = row
        rows = []
        for doc, match in zip(documents, keyed, strict=True):
            source = doc if match is None else stored.get(_key(doc[k] for k in target), doc)
            rows.append(tuple(source.get(c) for c in returning))
        return rows

    def _selected(self, plan, binder: Binder) -> list[tuple]:
        """The rows of a correlated write's read: ``(_id, value, ...)``."""
        return list(self._run(plan["select"], binder).rows)

    def _run_update(self, plan, binder: Binder) -> Result:
        if "select" in plan:
            if self._bulk(plan["collection"]) is not None:
                return self._update_each(plan, binder)
            return self._as_one_statement(lambda: self._update_each(plan, binder))
        # Only an update that sets a NULL can break NOT NULL, so only then is
        # the table's record read.
        set_to_null = binder.set_to_null(plan)
        if set_to_null:
            required = _not_null_columns(self._table_record(plan["collection"]))
            _check_not_null(plan["collection"], required, dict.fromkeys(set_to_null))
        generated = self._generated(plan["collection"])
        bulk = self._bulk(plan["collection"])
        options = self._concerns()
        if self.store is not None and not generated and bulk is None:
            return Result(rowcount=self.store.update(plan, binder,
                                                     options and options.for_write()))
        update = binder.bind(plan["update"])
        if generated:
            update = [*update, {"$set": generated}]
        query = binder.bind_filter(plan.get("filter") or {})
        collation = plan.get("operation_collation")
        if bulk is not None:
            self._queue(bulk, plan["collection"], [UpdateMany(query, update, collation=collation)])
            if bulk.saving_stored_instance:
                # save() of an instance that is in the database: its UPDATE
                # matches it (asking the server would cost what bulk saves).
                return Result(rowcount=1)
            return Result(rowcount=self._matching(plan["collection"], query, collation))
        result = self._collection(plan["collection"], options).update_many(
            query, update, session=self.session, collation=collation,
        )
        return Result(rowcount=result.matched_count)

    def _matching(self, collection: str, query: dict, collation: dict | None = None) -> int:
        """How many documents ``query`` matches now: a queued UPDATE's or
        DELETE's row count (the block's pending writes are not seen)."""
        return self.db[collection].count_documents(query, session=self.session,
                                                   collation=collation)

    def _update_each(self, plan, binder: Binder) -> Result:
        """An UPDATE with correlated subqueries: each selected document gets
        its own computed values (and the statement's other assignments)."""
        collection, names = plan["collection"], plan["set"]
        rows = self._selected(plan, binder)
        others = binder.bind(plan["update"])
        generated = self._generated(collection)
        if generated:
            others = [*others, {"$set": generated}]
        required = None
        operations = []
        for _id, *values in rows:
            if any(v is None for v in values):
                if required is None:
                    required = _not_null_columns(self._table_record(collection))
                _check_not_null(collection, required,
                                {n: v for n, v in zip(names, values, strict=True) if v is None})
            computed = {n: {"$literal": to_bson(v)} for n, v in zip(names, values, strict=True)}
            stages = [{"$set": computed}] if computed else []
            operations.append(UpdateOne({"_id": _id}, stages + others))
        bulk = self._bulk(collection)
        if bulk is not None:
            self._queue(bulk, collection, operations)
        elif operations:
            self._collection(collection).bulk_write(operations, ordered=True,
                                                    session=self.session)
        return Result(rowcount=len(rows))

    def _table_record(self, collection: str) -> dict | None:
        """The collection's ``__schema__`` document: counter and recorded
        columns (remembered for later inserts, see ``records``).

        Read where its ids are taken (``Connection.sequence_session``):
        outside the transaction unless the transaction wrote the document
        itself. A read inside would take the transaction's snapshot before
        the insert could create a new table outside it
        (``_register_implicit_counter``)."""
        query = {"name": collection}
        fields = {"auto": 1, "columns": 1}
        catalog.ensure_name_index(self.db)
        session = self.connection.sequence_session(collection)
        if self.store is None:
            record = self.db[sequences.SCHEMA_COLLECTION].find_one(query, fields, session=session)
        else:
            reply = self.store.command({"find": sequences.SCHEMA_COLLECTION, "filter": query,
                                        "projection": fields, "limit": 1, "singleBatch": True},
                                       in_transaction=session is not None)
            found = reply["cursor"]["firstBatch"]
            record = found[0] if found else None
        records.remember(self.connection, collection, record)
        return record

    def _run_delete(self, plan, binder: Binder) -> Result:
        bulk = self._bulk(plan["collection"])
        if "select" in plan:
            if bulk is not None:
                return self._delete_selected(plan, binder)
            return self._as_one_statement(lambda: self._delete_selected(plan, binder))
        options = self._concerns()
        if self.store is not None and bulk is None:
            return Result(rowcount=self.store.delete(plan, binder,
                                                     options and options.for_write()))
        query = binder.bind_filter(plan.get("filter") or {})
        collation = plan.get("operation_collation")
        if bulk is not None:
            self._queue(bulk, plan["collection"], [DeleteMany(query, collation=collation)])
            return Result(rowcount=self._matching(plan["collection"], query, collation))
        result = self._collection(plan["collection"], options).delete_many(
            query, session=self.session, collation=collation)
        return Result(rowcount=result.deleted_count)

    def _delete_selected(self, plan, binder: Binder) -> Result:
        """A DELETE with correlated subqueries: the selected documents by _id."""
        ids = [row[0] for row in self._selected(plan, binder)]
        bulk = self._bulk(plan["collection"])
        if bulk is not None:
            self._queue(bulk, plan["collection"], [
                DeleteMany({"_id": {"$in": ids[start:start + DELETE_BATCH]}})
                for start in range(0, len(ids), DELETE_BATCH)])
            return Result(rowcount=len(ids))
        deleted = 0
        for start in range(0, len(ids), DELETE_BATCH):
            deleted += self._collection(plan["collection"]).delete_many(
                {"_id": {"$in": ids[start:start + DELETE_BATCH]}}, session=self.session,
            ).deleted_count
        return Result(rowcount=deleted)

    # -- EXPLAIN -----------------------------------------------------------

    def _run_explain(self, plan, binder: Binder) -> Result:
        """``EXPLAIN``: the MongoDB commands the statement becomes, with its
        parameters, and the server's own query plan for a read the server
        can explain (the embedded engine has no explain command)."""
        statement = plan["statement"]
        explanation: dict[str, Any] = {"statement": statement, "parameters": list(binder.params)}
        if statement["op"] in ("find", "aggregate") and not statement.get("subqueries"):
            try:
                explanation["server"] = self.db.command(
                    "explain", _explainable(statement, binder), verbosity="queryPlanner",
                    session=self.session)
            except OperationFailure as exc:
                explanation["server"] = f"not available: {exc.details.get('errmsg', exc)}"
        if plan.get("format") == "json":
            # Django writes each cell of a JSON explain with json.dumps.
            cell = json.loads(json_util.dumps(explanation))
        else:
            cell = json_util.dumps(explanation, indent=1)
        return Result(rows=iter([(cell,)]), columns=["QUERY PLAN"], rowcount=1)

    # -- savepoints ---------------------------------------------------------

    # Django only sends these when features.uses_savepoints is on, i.e. when
    # the server advertised the embedded engine's savepoint commands. They
    # run in the connection's transaction (self.session starts it if this is
    # its first statement).

    def _savepoint_command(self, command: str, plan) -> Result:
        if self.store is not None:
            self.store.command({command: plan["name"]})
        else:
            self.db.command({command: plan["name"]}, session=self.session)
        return Result(rowcount=0)

    def _run_savepoint(self, plan, binder: Binder) -> Result:
        return self._savepoint_command("savepoint", plan)

    def _run_rollback_to_savepoint(self, plan, binder: Binder) -> Result:
        return self._savepoint_command("rollbackToSavepoint", plan)

    def _run_release_savepoint(self, plan, binder: Binder) -> Result:
        return self._savepoint_command("releaseSavepoint", plan)

    # -- schema ------------------------------------------------------------

    def _run_noop(self, plan, binder: Binder) -> Result:
        return Result(rowcount=0)

    def _run_create_table(self, plan, binder: Binder) -> Result:
        name = plan["collection"]
        session = self.session
        _check_collations(plan["columns"])
        if catalog.is_recorded(self.db, name, session):
            if plan.get("if_not_exists"):
                return Result(rowcount=0)
            raise ProgrammingError(f"table {name!r} already exists")
        try:
            self.db.create_collection(name, session=session)
        except CollectionInvalid:
            # Collections spring into being on first insert, so one may
            # exist before its CREATE TABLE: adopt it rather than fail.
            logger.info("djongo: collection %s already exists; adopting it", name)
        columns = binder.bind(plan["columns"])
        composite_key = plan.get("primary_key") or []
        for column in columns:
            if column["name"] in composite_key:
                column["primary_key"] = True
        defaults = {c["name"]: c["default"] for c in columns if "default" in c}
        catalog.record_table(self.db, name, columns, session, defaults)
        for column in plan["columns"]:
            if column.get("auto"):
                sequences.register(self.db, name, column["name"], session)
            if column["name"] == "_id":
                continue
            if column.get("primary_key"):
                self._unique_index(name, [column["name"]], f"{name}_pkey")
                catalog.set_pk_index(self.db, name, f"{name}_pkey", session)
            elif column.get("unique"):
                self._unique_index(name, [column["name"]], f"{name}_{column['name']}_key")
        if composite_key:
            self._unique_index(name, composite_key, f"{name}_pkey")
            catalog.set_pk_index(self.db, name, f"{name}_pkey", session)
        uniques = plan.get("unique", ())
        names = plan.get("unique_names") or [None] * len(uniques)
        for columns, constraint in zip(uniques, names, strict=True):
            self._unique_index(name, columns, constraint or f"{name}_{'_'.join(columns)}_uniq")
        validator.add_checks(self.db, name, _named_checks(name, plan.get("checks")), session)
        for fk in [*plan.get("foreign_keys", ()),
                   *(c["references"] for c in plan["columns"] if c.get("references"))]:
            self._add_foreign_key(name, fk)
        return Result(rowcount=0)

    def _free_keys(self, collection: str, keys: list[tuple[str, int]]) -> list[tuple[str, int]]:
        """``keys``, or the same fields with directions flipped if needed.

        MongoDB keeps one index per key pattern, while SQL allows several
        constraints and indexes on the same columns (a field's UNIQUE and a
        Meta constraint). Flipping directions keeps the same fields, order
        and uniqueness, and gives each its own index to name and drop.
        """
        taken = {tuple(index["key"].items())
                 for index in self.db[collection].list_indexes(session=self.session)}
        if tuple(keys) not in taken:
            return keys
        if not all(isinstance(d, int) for _, d in keys):
            return keys  # "2dsphere" and the like have no direction to flip
        for mask in range(1, 2 ** len(keys)):
            candidate = [(k, -d if mask >> i & 1 else d) for i, (k, d) in enumerate(keys)]
            if tuple(candidate) not in taken:
                return candidate
        return keys

    def _unique_index(self, collection: str, columns: Sequence[str], name: str,
                      where: dict | None = None, options: dict | None = None,
                      keys: list[tuple[str, Any]] | None = None) -> None:
        # SQL's UNIQUE ignores rows with a NULL key, and a partial index
        # (WHERE ...) also ignores rows outside its condition.
        conditions = [{c: {"$type": NON_NULL_TYPES}} for c in columns]
        if where:
            conditions.append(where)
        where = conditions[0] if len(conditions) == 1 else {"$and": conditions}
        keys = self._free_keys(collection, keys or [(c, 1) for c in columns])
        options = {**(options or {})}
        if "collation" not in options:
            collation = self._unique_collation(collection, columns)
            if collation is not None:
                options["collation"] = collation
        self.db[collection].create_index(
            keys, name=name, unique=True, partialFilterExpression=where, session=self.session,
            **options,
        )

    def _conflict_collation(self, collection: str, keys: list[list[str]]) -> dict | None:
        """The collation under which rows collide on the unique indexes over
        ``keys`` (each takes its text columns' collation): an upsert's filter
        must compare as they do, under one collation (MongoDB takes one per
        operation)."""
        recorded = {c["name"]: c for c in catalog.columns(self.db, collection, self.session) or ()}
        found = {recorded[c].get("collation") or collations.SIMPLE for key in keys for c in key
                 if c in recorded and collations.is_text(recorded[c].get("type"))}
        if len(found) > 1:
            raise NotSupportedError(
                f"ON CONFLICT on {collection!r}, whose unique constraints compare under "
                f"different collations ({', '.join(sorted(found))}): MongoDB takes one per "
                "operation")
        return collations.to_mongo(found.pop()) if found else None

    def _unique_collation(self, collection: str, columns: Sequence[str]) -> dict | None:
        """The collation a unique index over ``columns`` must compare under:
        their own, so that values the collation calls equal collide (a
        MongoDB index has one collation, so they must share it)."""
        recorded = {c["name"]: c for c in catalog.columns(self.db, collection, self.session) or ()}
        found = {recorded[c].get("collation") or collations.SIMPLE for c in columns
                 if c in recorded and collations.is_text(recorded[c].get("type"))}
        if len(found) > 1:
            raise NotSupportedError(
                f"a unique constraint on {', '.join(columns)} of {collection!r} whose columns "
                f"have different collations ({', '.join(sorted(found))}): a MongoDB index has one")
        return collations.to_mongo(found.pop()) if found else None

    def _run_drop_table(self, plan, binder: Binder) -> Result:
        name = plan["collection"]
        if name not in self.db.list_collection_names(session=self.session):
            if catalog.is_recorded(self.db, name, self.session):
                # Created but never written to (or emptied by a restore).
                sequences.drop(self.db, name, self.session)
                return Result(rowcount=0)
            if plan.get("if_exists"):
                return Result(rowcount=0)
            raise ProgrammingError(f"no such table: {name}")
        self.db.drop_collection(name, session=self.session)
        sequences.drop(self.db, name, self.session)
        return Result(rowcount=0)

    def _run_rename_table(self, plan, binder: Binder) -> Result:
        old, new = plan["collection"], plan["to"]
        if old in self.db.list_collection_names(session=self.session):
            self.db[old].rename(new, session=self.session)
        elif not catalog.is_recorded(self.db, old, self.session):
            raise ProgrammingError(f"no such table: {old}")
        sequences.rename(self.db, old, new, self.session)
        return Result(rowcount=0)

    def _run_add_column(self, plan, binder: Binder) -> Result:
        name = plan["collection"]
        column = binder.bind(plan["column"])
        _check_collations([column])
        default = column.get("default")
        if catalog.column(self.db, name, column["name"], self.session) is not None:
            raise ProgrammingError(f"column {column['name']!r} of table {name!r} already exists")
        # Existing rows take the default, as in SQL (Djongo left them without
        # the field, which broke NOT NULL columns). An expression default is
        # evaluated by the server (a pipeline update).
        if "generated" in column:
            # Existing rows get their value too.
            self.db[name].update_many(
                {}, [{"$set": {column["name"]: column["generated"]}}], session=self.session)
        elif "default_expr" in column:
            self.db[name].update_many(
                {column["name"]: {"$exists": False}},
                [{"$set": {column["name"]: column["default_expr"]}}],
                session=self.session,
            )
        elif default is not None:
            self.db[name].update_many(
                {column["name"]: {"$exists": False}},
                {"$set": {column["name"]: default}},
                session=self.session,
            )
        catalog.add_column(self.db, name, column, default, self.session)
        if column.get("primary_key"):
            self._unique_index(name, [column["name"]], f"{name}_pkey")
            catalog.set_pk_index(self.db, name, f"{name}_pkey", self.session)
        elif column.get("unique"):
            self._unique_index(name, [column["name"]], f"{name}_{column['name']}_key")
        if column.get("auto"):
            sequences.register(self.db, name, column["name"], self.session)
        validator.add_checks(self.db, name, _named_checks(name, plan.get("checks")), self.session)
        if plan["column"].get("references"):
            self._add_foreign_key(name, plan["column"]["references"])
        return Result(rowcount=0)

    def _run_drop_column(self, plan, binder: Binder) -> Result:
        name, column = plan["collection"], plan["column"]
        pk_index = catalog.pk_index(self.db, name, self.session)
        # An index over an expression that reads the column goes with it,
        # as in PostgreSQL.
        reading = {c["index"] for c in catalog.index_expression_columns(
            catalog.columns(self.db, name, self.session))
            if _reads_field(catalog.decode_expression(c["generated"]), column)}
        for index in self.db[name].list_indexes(session=self.session):
            if index["name"] in reading:
                self.db[name].drop_index(index["name"], session=self.session)
                self._dropped_index(name, index["name"])
            elif column in index["key"] and index["name"] != "_id_":
                self.db[name].drop_index(index["name"], session=self.session)
                if index["name"] == pk_index:
                    catalog.set_pk_index(self.db, name, None, self.session)
        validator.drop_field(self.db, name, column, self.session)
        if self.connection.foreign_keys:
            foreign_keys.drop_field(self.db, name, column, self.session)
        self.db[name].update_many({}, {"$unset": {column: ""}}, session=self.session)
        catalog.drop_column(self.db, name, column, self.session)
        sequences.unregister(self.db, name, column, self.session)
        return Result(rowcount=0)

    def _run_rename_column(self, plan, binder: Binder) -> Result:
        name, old, new = plan["collection"], plan["from"], plan["to"]
        validator.rename_field(self.db, name, old, new, self.session)
        # The values stay as they are: the foreign keys naming the column,
        # renamed just after, owe no check (bypassDocumentValidation).
        self.db[name].update_many(
            {old: {"$exists": True}}, {"$rename": {old: new}}, session=self.session,
            bypass_document_validation=True,
        )
        if self.connection.foreign_keys:
            foreign_keys.rename_field(self.db, name, old, new, self.session)
        # Indexes name their fields: rebuild those on the old name.
        for index in list(self.db[name].list_indexes(session=self.session)):
            if old not in index["key"] or index["name"] == "_id_":
                continue
            options = {k: v for k, v in index.items() if k not in ("key", "v", "ns")}
            if "partialFilterExpression" in options:
                options["partialFilterExpression"] = _rename_field(
                    options["partialFilterExpression"], old, new
                )
            keys = [(new if k == old else k, d) for k, d in index["key"].items()]
            self.db[name].drop_index(index["name"], session=self.session)
            self.db[name].create_index(keys, session=self.session, **options)
        catalog.rename_column(self.db, name, old, new, self.session)
        # Index expressions read the column under its new name, as in SQL.
        cols = catalog.columns(self.db, name, self.session)
        for column in catalog.index_expression_columns(cols):
            expression = catalog.decode_expression(column["generated"])
            if _reads_field(expression, old):
                catalog.alter_column(self.db, name, column["name"], {
                    "generated": catalog.encode_expression(
                        _rename_in_expression(expression, old, new))}, self.session)
        sequences.rename_field(self.db, name, old, new, self.session)
        return Result(rowcount=0)

    def _run_alter_column(self, plan, binder: Binder) -> Result:
        # MongoDB stores neither types nor nullability: the change is
        # recorded for introspection; a changed default only matters for
        # later inserts, which Django fills in itself.
        name, column = plan["collection"], plan["column"]
        changes = dict(binder.bind(plan["set"]))
        if "type" in changes:
            serial = {"serial": "integer", "bigserial": "bigint", "smallserial": "smallint"}
            changes["auto"] = changes["type"] in serial
            changes["type"] = serial.get(changes["type"], changes["type"])
            if changes["auto"]:
                sequences.register(self.db, name, column, self.session)
            else:
                sequences.unregister(self.db, name, column, self.session)
        catalog.alter_column(self.db, name, column, changes, self.session)
        return Result(rowcount=0)

    def _run_create_index(self, plan, binder: Binder) -> Result:
        name, index_name = plan["collection"], plan["name"]
        where = binder.bind_filter(plan.get("where"))
        existing = {i["name"] for i in self.db[name].list_indexes(session=self.session)}
        if index_name in existing:
            if plan.get("if_not_exists"):
                return Result(rowcount=0)
            raise ProgrammingError(f"index {index_name!r} already exists")
        keys, expressions = self._index_keys(name, index_name, plan["keys"], binder)
        # MongoDB's own index options (djongo.models.indexes): expireAfterSeconds,
        # sparse...; the index kind is already in the planned keys.
        options = dict(plan.get("options") or {})
        for document_option in ("weights", "wildcardProjection", "collation"):
            if document_option in options:
                options[document_option] = json.loads(options[document_option])
        if plan.get("collate"):
            # Index(Collate("title", "sv")): an index with that collation.
            collation = collations.to_mongo(plan["collate"])
            options["collation"] = collation or {"locale": collations.SIMPLE}
        try:
            if plan.get("unique"):
                self._unique_index(name, [k for k, _ in keys], index_name, where, options, keys)
            else:
                if where:
                    options["partialFilterExpression"] = where
                self.db[name].create_index(self._free_keys(name, keys), name=index_name,
                                           session=self.session, **options)
        except Exception:
            # A unique index refused by the rows present leaves no hidden field.
            self._drop_index_expressions(name, expressions)
            raise
        return Result(rowcount=0)

    def _index_keys(self, collection: str, index_name: str, planned: list,
                    binder: Binder) -> tuple[list[tuple[str, int]], list[dict]]:
        """The index's (field, direction) keys. An expression key (``[null,
        direction, expression]``) becomes a hidden generated column, which
        the executor computes for the rows present and keeps up to date on
        every INSERT and UPDATE (as for GeneratedField), so that MongoDB,
        which indexes fields only, can index it: on a real MongoDB as well."""
        keys: list[tuple[str, int]] = []
        expressions: list[dict] = []
        for position, key in enumerate(planned):
            field, direction = key[0], key[1]
            if field is None:
                field = catalog.index_field(index_name, position)
                expressions.append({"name": field, "type": "index expression", "null": True,
                                    "index": index_name, "generated": binder.bind(key[2])})
            keys.append((field, direction))
        if not expressions:
            return keys, expressions
        if not catalog.is_recorded(self.db, collection, self.session):
            raise NotSupportedError(
                f"an index on an expression of {collection!r}, a collection without a "
                "recorded table definition (djongo keeps the expression's value in a "
                "generated field, which needs the table's record)")
        for column in expressions:
            catalog.add_column(self.db, collection, column, None, self.session)
        self.db[collection].update_many(
            {}, [{"$set": {c["name"]: c["generated"] for c in expressions}}],
            session=self.session)
        return keys, expressions

    def _drop_index_expressions(self, collection: str, columns: list[dict]) -> None:
        """Removes the hidden fields of an index's expressions, values and records."""
        if not columns:
            return
        names = {c["name"] for c in columns}
        self.db[collection].update_many(
            {}, {"$unset": dict.fromkeys(names, "")}, session=self.session)
        catalog.drop_columns(self.db, collection, names, self.session)

    def _dropped_index(self, collection: str, index_name: str) -> None:
        """After DROP INDEX: the hidden fields of its expressions go too."""
        cols = catalog.columns(self.db, collection, self.session)
        self._drop_index_expressions(
            collection, catalog.index_expression_columns(cols, index_name))

    def _run_drop_index(self, plan, binder: Binder) -> Result:
        self._drop_index_named(plan.get("collection"), plan["name"], plan.get("if_exists", False))
        return Result(rowcount=0)

    def _drop_index_named(self, collection: str | None, name: str, if_exists: bool) -> None:
        candidates = [collection] if collection else self.db.list_collection_names(
            session=self.session
        )
        for candidate in candidates:
            for index in self.db[candidate].list_indexes(session=self.session):
                if index["name"] == name and name != "_id_":
                    self.db[candidate].drop_index(name, session=self.session)
                    self._dropped_index(candidate, name)
                    return
        if not if_exists:
            raise ProgrammingError(f"no such index: {name}")

    def _run_add_constraint(self, plan, binder: Binder) -> Result:
        kind, name = plan["kind"], plan["collection"]
        if kind == "unique":
            self._unique_index(name, plan["columns"], plan["name"])
        elif kind == "primary_key":
            current = catalog.primary_key(self.db, name, self.session)
            if current:
                raise ProgrammingError(f"table {name!r} already has a primary key")
            self._unique_index(name, plan["columns"], plan["name"])
            catalog.set_pk_index(self.db, name, plan["name"], self.session)
            for column in plan["columns"]:
                catalog.alter_column(self.db, name, column,
                                     {"primary_key": True, "null": False}, self.session)
        elif kind == "check":
            validator.add_checks(self.db, name, _named_checks(name, [plan]), self.session)
        elif kind == "foreign_key":
            self._add_foreign_key(name, plan)
        return Result(rowcount=0)

    def _add_foreign_key(self, table: str, plan) -> None:
        if not self.connection.foreign_keys:
            raise NotSupportedError(
                "FOREIGN KEY constraints: MongoDB enforces no references (the embedded "
                "engine does)")
        references = plan["references"]
        columns, to_columns = plan["columns"], list(references["columns"])
        if not to_columns:
            to_columns = catalog.primary_key(self.db, references["table"], self.session) or []
        if len(columns) != 1 or len(to_columns) != 1:
            raise NotSupportedError("a FOREIGN KEY over several columns")
        name = plan.get("name") or f"{table}_{columns[0]}_fkey"
        foreign_keys.add(self.db, table, foreign_keys.ForeignKey(
            name, columns[0], references["table"], to_columns[0]), self.session)

    def _run_drop_constraint(self, plan, binder: Binder) -> Result:
        name = plan["collection"]
        if validator.drop_check(self.db, name, plan["name"], self.session):
            return Result(rowcount=0)
        if (self.connection.foreign_keys
                and foreign_keys.drop(self.db, name, plan["name"], self.session)):
            return Result(rowcount=0)
        for index in self.db[name].list_indexes(session=self.session):
            if index["name"] == plan["name"] and index["name"] != "_id_":
                if index["name"] == catalog.pk_index(self.db, name, self.session):
                    for column in catalog.primary_key(self.db, name, self.session) or []:
                        catalog.alter_column(self.db, name, column, {"primary_key": False},
                                             self.session)
                    catalog.set_pk_index(self.db, name, None, self.session)
                self.db[name].drop_index(index["name"], session=self.session)
                self._dropped_index(name, index["name"])
                break
        return Result(rowcount=0)

    def _run_create_view(self, plan, binder: Binder) -> Result:
        # A MongoDB view: the SELECT's pipeline over its collection, run by
        # the server whenever the view is read (parameters bound now).
        name = plan["view"]
        if (name in self.db.list_collection_names(session=self.session)
                or catalog.is_recorded(self.db, name, self.session)):
            raise ProgrammingError(f"table or view {name!r} already exists")
        self.db.create_collection(name, viewOn=plan["collection"],
                                  pipeline=binder.bind(plan["pipeline"]), session=self.session)
        return Result(rowcount=0)

    def _run_drop_view(self, plan, binder: Binder) -> Result:
        name = plan["view"]
        views = {c["name"] for c in self.db.list_collections(
            filter={"type": "view"}, session=self.session)}
        if name in views:
            self.db.drop_collection(name, session=self.session)
        elif not plan.get("if_exists"):
            raise ProgrammingError(f"no such view: {name}")
        return Result(rowcount=0)

    def _run_set_auto_increment(self, plan, binder: Binder) -> Result:
        # MySQL's ALTER TABLE ... AUTO_INCREMENT = n: the next id is n, or
        # the one after the largest id present, so a reset never hands out an
        # id that is in use. Like the counter, this is not transactional.
        name = plan["collection"]
        field = sequences.auto_field(self.db, name, self.session)
        if field is None:
            return Result(rowcount=0)
        seq = max(plan["next"] - 1, sequences.largest_id(self.db, name, field, self.session))
        self._counter(name, lambda s, t: sequences.restart(self.db, name, seq, s, t))
        return Result(rowcount=0)


def _check_collations(columns: list[dict]) -> None:
    """Refuses a column collation djongo does not know, before anything is made."""
    for column in columns:
        if column.get("collation"):
            collations.to_mongo(column["collation"])


def _explainable(plan: dict, binder: Binder) -> dict:
    """A read plan as the MongoDB command it runs, for ``explain``."""
    if plan["op"] == "find":
        command = {"find": plan["collection"],
                   "filter": binder.bind_filter(plan.get("filter") or {})}
        for key in ("projection", "sort", "skip", "limit"):
            if plan.get(key) is not None:
                command[key] = binder.bind(plan[key])
        return command
    return {"aggregate": plan.get("collection") or 1,
            "pipeline": binder.bind(plan["pipeline"]), "cursor": {}}


def _check_plain_keys(collection: str, doc: dict) -> None:
    """Update operators read their keys as paths: a column named ``a.b`` or
    ``$x`` would land elsewhere, so such a row cannot be upserted."""
    for name in doc:
        if not name or name.startswith("$") or "." in name or "\x00" in name:
            raise NotSupportedError(
                f"ON CONFLICT on table {collection!r}: the column name {name!r} holds '.' or "
                "starts with '$', which an upsert would read as a path"
            )


def _reads_field(expression: Any, field: str) -> bool:
    """Whether an aggregation expression reads ``$field`` (or a path in it)."""
    if isinstance(expression, str):
        return expression == f"${field}" or expression.startswith(f"${field}.")
    if isinstance(expression, dict):
        return any(k != "$literal" and _reads_field(v, field) for k, v in expression.items())
    if isinstance(expression, list):
        return any(_reads_field(v, field) for v in expression)
    return False


def _rename_in_expression(expression: Any, old: str, new: str) -> Any:
    """An aggregation expression reading ``$new`` where it read ``$old``."""
    if isinstance(expression, str):
        if expression == f"${old}" or expression.startswith(f"${old}."):
            return f"${new}{expression[len(old) + 1:]}"
        return expression
    if isinstance(expression, dict):
        return {k: v if k == "$literal" else _rename_in_expression(v, old, new)
                for k, v in expression.items()}
    if isinstance(expression, list):
        return [_rename_in_expression(v, old, new) for v in expression]
    return expression


def _key(values) -> tuple:
    """Column values as a dictionary key (documents and arrays by their text)."""
    return tuple(repr(v) if isinstance(v, (dict, list)) else v for v in values)


def _named_checks(table: str, checks: list[dict] | None) -> list[dict]:
    """The CHECKs of a statement, each with a name: an unnamed (column) CHECK
    gets PostgreSQL's ``<table>_<column>_check``."""
    named = []
    taken: set[str] = set()
    for check in checks or ():
        name = check.get("name")
        if not name:
            base = "_".join([table, *check.get("columns", [])[:1], "check"])
            name, n = base, 1
            while name in taken:
                n += 1
                name = f"{base}{n}"
        taken.add(name)
        named.append({**check, "name": name})
    return named


def _rename_field(value: Any, old: str, new: str) -> Any:
    """A filter document with field ``old`` renamed to ``new``."""
    if isinstance(value, dict):
        return {(new if k == old else k): _rename_field(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [_rename_field(v, old, new) for v in value]
    return value


def _auto_field(record: dict | None) -> str | None:
    """The auto-increment field named by a ``__schema__`` record, if any."""
    names = ((record or {}).get("auto") or {}).get("field_names") or []
    return names[0] if names else None


def _not_null_columns(record: dict | None) -> set[str]:
    columns = (record or {}).get("columns") or []
    return {c["name"] for c in columns if c.get("null") is False and not c.get("auto")}


def _check_not_null(collection: str, required: set[str], values: dict) -> None:
    """SQL's NOT NULL: an explicit NULL into a NOT NULL column is refused.

    A column absent from the statement is left alone: documents written
    without it (ENFORCE_SCHEMA off) read it as NULL, as Djongo did.
    """
    for name in required:
        if name in values and values[name] is None:
            raise IntegrityError(f"NOT NULL constraint failed: {collection}.{name}")


def _inserted(documents: list[dict] | InsertRows, auto: str | None,
              returning: Sequence[str]) -> Result:
    """An INSERT's result: RETURNING's rows, the row count, the last id."""
    if isinstance(documents, InsertRows):
        rows = documents.returning(list(returning)) if returning else []
        lastrowid = documents.last(auto) if auto else None
        return Result(rows=iter(rows), rowcount=len(documents), lastrowid=lastrowid,
                      columns=returning)
    rows = ([tuple(_as_read(doc.get(c)) for c in returning) for doc in documents]
            if returning else [])
    lastrowid = documents[-1].get(auto) if auto and documents else None
    return Result(rows=iter(rows), rowcount=len(documents), lastrowid=lastrowid,
                  columns=returning)


def _as_read(value: Any) -> Any:
    """A value written by an INSERT as a read returns it (RETURNING): Decimal128 as Decimal."""
    return value.to_decimal() if isinstance(value, Decimal128) else value
