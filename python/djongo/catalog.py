"""Table definitions, recorded beside the counters in ``__schema__``.

MongoDB stores no column list, so CREATE TABLE and ALTER TABLE record each
table's columns in its ``__schema__`` document under a ``columns`` key,
next to Djongo's ``auto`` key (whose shape is unchanged)::

    {"name": "app_author",
     "auto": {"field_names": ["id"], "seq": 12},
     "columns": [{"name": "id", "type": "integer", "null": false,
                  "primary_key": true, "unique": false, "auto": true}, ...]}

Introspection reads it back; a collection without a record (made by Djongo,
by an insert, or copied in) is described from a sample of its documents.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from bson import json_util
from pymongo.client_session import ClientSession
from pymongo.database import Database
from pymongo.errors import AutoReconnect, OperationFailure

from .binding import to_bson
from .sequences import SCHEMA_COLLECTION

if TYPE_CHECKING:
    from ._core import InsertRows

COLUMN_KEYS = ("name", "type", "null", "primary_key", "unique", "auto", "default", "index",
               "collation")

# The hidden field that holds the value of an index expression
# (``Index(Lower("name"))``): MongoDB indexes field paths only, so each
# expression key of an index is a generated column of its own, recorded with
# ``"index": <index name>`` and kept out of the table's description.
INDEX_FIELD_PREFIX = "__djongo_index__"


def index_field(index: str, position: int) -> str:
    """The hidden field of key ``position`` of the index ``index``."""
    return f"{INDEX_FIELD_PREFIX}{index}__{position}"


def is_index_field(name: str) -> bool:
    return name.startswith(INDEX_FIELD_PREFIX)

logger = logging.getLogger("djongo")

# The databases whose __schema__ this process has indexed by name.
_indexed: set[tuple[int, str]] = set()
_indexed_lock = threading.Lock()


def ensure_name_index(db: Database) -> None:
    """Indexes ``__schema__`` by table name (once per database per process):
    every insert and DDL statement looks up its table's record, which without
    it reads every record of the database."""
    key = (id(db.client), db.name)
    if key in _indexed:
        return
    with _indexed_lock:
        if key in _indexed:
            return
        for attempt in (1, 2):
            try:
                db[SCHEMA_COLLECTION].create_index("name", unique=True, name="name_1")
            except AutoReconnect:
                # The store's server went away under the command (a process
                # serving it in-process exited: docs/multiprocess.md), and
                # pymongo does not retry index builds; this one is idempotent,
                # so it is sent once more, to whichever server took over.
                if attempt == 2:
                    raise
                continue
            except OperationFailure as exc:
                # Two records for one table (data from elsewhere): look up by scan.
                logger.warning("djongo: cannot index %s.%s by name: %s", db.name,
                               SCHEMA_COLLECTION, exc)
            break
        _indexed.add(key)


def forget_name_index(client: Any, name: str) -> None:
    """The database ``name`` was dropped: its next ``__schema__`` needs the index again."""
    with _indexed_lock:
        _indexed.discard((id(client), name))


def _column(column: dict[str, Any], default: Any = None) -> dict[str, Any]:
    record = {k: column[k] for k in COLUMN_KEYS if k in column and k != "default"}
    if "default" in column:
        record["default"] = default
    if "default_expr" in column:
        record["default_expr"] = encode_expression(column["default_expr"])
    if "generated" in column:
        record["generated"] = encode_expression(column["generated"])
    return record


def encode_expression(expr: Any) -> str:
    """An aggregation expression (an expression DEFAULT, already bound) as
    Extended JSON text: stored as a document, its ``$``-prefixed keys would
    be read as operators by MongoDB's update language."""
    return json_util.dumps(expr, json_options=json_util.CANONICAL_JSON_OPTIONS)


def decode_expression(text: str) -> Any:
    return json_util.loads(text, json_options=json_util.CANONICAL_JSON_OPTIONS)


def columns(db: Database, table: str, session: ClientSession | None) -> list[dict] | None:
    """The recorded columns of ``table``, or None if it has no record."""
    doc = db[SCHEMA_COLLECTION].find_one({"name": table}, {"columns": 1}, session=session)
    if doc is None or "columns" not in doc:
        return None
    return list(doc["columns"])


def visible_columns(cols: list[dict] | None) -> list[dict] | None:
    """The table's own columns: without the hidden fields of index expressions."""
    return None if cols is None else [c for c in cols if "index" not in c]


def index_expression_columns(cols: list[dict] | None, index: str | None = None) -> list[dict]:
    """The hidden columns of index expressions (of the index ``index``, or of all)."""
    return [c for c in cols or () if "index" in c and (index is None or c["index"] == index)]


def drop_columns(db: Database, table: str, names: set[str],
                 session: ClientSession | None) -> None:
    cols = columns(db, table, session)
    if cols is not None:
        _write(db, table, [c for c in cols if c["name"] not in names], session)


def is_recorded(db: Database, table: str, session: ClientSession | None) -> bool:
    return columns(db, table, session) is not None


def record_table(db: Database, table: str, cols: list[dict], session: ClientSession | None,
                 defaults: dict[str, Any] | None = None) -> None:
    ensure_name_index(db)
    defaults = defaults or {}
    record = [_column(c, defaults.get(c["name"])) for c in cols]
    db[SCHEMA_COLLECTION].update_one(
        {"name": table}, {"$set": {"columns": record}}, upsert=True, session=session
    )


def pk_index(db: Database, table: str, session: ClientSession | None) -> str | None:
    """The name of the unique index that is the table's PRIMARY KEY."""
    doc = db[SCHEMA_COLLECTION].find_one({"name": table}, {"pk_index": 1}, session=session)
    return (doc or {}).get("pk_index")


def set_pk_index(db: Database, table: str, name: str | None,
                 session: ClientSession | None) -> None:
    update = {"$set": {"pk_index": name}} if name else {"$unset": {"pk_index": ""}}
    db[SCHEMA_COLLECTION].update_one({"name": table}, update, session=session)


def _write(db: Database, table: str, cols: list[dict], session: ClientSession | None) -> None:
    # Read back through the SQL codec, a Decimal default is a Python Decimal.
    db[SCHEMA_COLLECTION].update_one(
        {"name": table}, {"$set": {"columns": to_bson(cols)}}, session=session
    )


def add_column(db: Database, table: str, column: dict, default: Any,
               session: ClientSession | None) -> None:
    cols = columns(db, table, session)
    if cols is None:
        return
    cols = [c for c in cols if c["name"] != column["name"]]
    cols.append(_column(column, default))
    _write(db, table, cols, session)


def drop_column(db: Database, table: str, name: str, session: ClientSession | None) -> None:
    cols = columns(db, table, session)
    if cols is not None:
        _write(db, table, [c for c in cols if c["name"] != name], session)


def rename_column(db: Database, table: str, old: str, new: str,
                  session: ClientSession | None) -> None:
    cols = columns(db, table, session)
    if cols is not None:
        for c in cols:
            if c["name"] == old:
                c["name"] = new
        _write(db, table, cols, session)


def alter_column(db: Database, table: str, name: str, changes: dict[str, Any],
                 session: ClientSession | None) -> None:
    cols = columns(db, table, session)
    if cols is None:
        return
    for c in cols:
        if c["name"] != name:
            continue
        for key, value in changes.items():
            if key == "drop_default":
                c.pop("default", None)
                c.pop("default_expr", None)
            elif key == "default":
                c.pop("default_expr", None)
                c["default"] = value
            elif key == "default_expr":
                c.pop("default", None)
                c["default_expr"] = encode_expression(value)
            else:
                c[key] = value
    _write(db, table, cols, session)


def set_collation(db: Database, table: str, name: str, collation: str | None,
                  session: ClientSession | None) -> None:
    """Records (or, with ``None``, removes) the collation of a column."""
    cols = columns(db, table, session)
    if cols is None:
        return
    for c in cols:
        if c["name"] == name:
            if collation:
                c["collation"] = collation
            else:
                c.pop("collation", None)
    _write(db, table, cols, session)


def column(db: Database, table: str, name: str, session: ClientSession | None) -> dict | None:
    for c in columns(db, table, session) or ():
        if c["name"] == name:
            return c
    return None


def primary_key(db: Database, table: str, session: ClientSession | None) -> list[str] | None:
    cols = columns(db, table, session)
    if cols is None:
        return None
    return [c["name"] for c in cols if c.get("primary_key")]


def generated_columns(cols: list[dict] | None) -> dict[str, Any]:
    """The generated columns of a table: name → aggregation expression over the row."""
    return {c["name"]: decode_expression(c["generated"]) for c in cols or () if "generated" in c}


def all_generated_columns(db: Database, session: ClientSession | None) -> dict[str, dict]:
    """Every table's generated columns (tables without any left out)."""
    found = db[SCHEMA_COLLECTION].find({"columns.generated": {"$exists": True}},
                                       {"name": 1, "columns": 1}, session=session)
    return {doc["name"]: generated_columns(doc.get("columns")) for doc in found}


def all_collated_columns(db: Database, session: ClientSession | None) -> dict[str, dict]:
    """Every table's columns with a collation: table → column → collation name
    (tables without any left out)."""
    found = db[SCHEMA_COLLECTION].find({"columns.collation": {"$exists": True}},
                                       {"name": 1, "columns": 1}, session=session)
    return {doc["name"]: {c["name"]: c["collation"] for c in doc.get("columns") or ()
                          if c.get("collation")}
            for doc in found}


def expression_defaults(cols: list[dict] | None, rows: InsertRows) -> dict[str, Any]:
    """The expression DEFAULTs (``db_default=Now()``) of the columns that some
    row leaves out, by column name: the server evaluates them."""
    return {
        c["name"]: decode_expression(c["default_expr"])
        for c in cols or ()
        if "default_expr" in c and rows.some_lack(c["name"])
    }


def complete_rows(cols: list[dict] | None, rows: InsertRows, table: str,
                  auto: str | None) -> None:
    """Applies column DEFAULTs and NOT NULL to rows about to be inserted.

    A column the INSERT leaves out takes its recorded DEFAULT (Django's
    ``db_default``, a third-party migration's ``ADD COLUMN ... DEFAULT``);
    an explicit NULL in a NOT NULL column raises ``IntegrityError`` and
    nothing is written. A column left out with no DEFAULT stays absent
    (read as NULL, as Djongo did). ``auto`` (filled from the counter) is exempt.
    """
    from .database import IntegrityError

    for column in cols or ():
        name = column["name"]
        # The counter fills `auto`; the driver fills a missing ObjectId `_id`.
        if name == auto or (name == "_id" and not rows.first_has(name)):
            continue
        if "default" in column and rows.some_lack(name):
            rows.set_default(name, to_bson(column["default"]))
        if not column.get("null", True) and rows.has_null(name):
            raise IntegrityError(
                    f'NOT NULL constraint failed: {table}.{name} (null value in column "{name}")'
                )
