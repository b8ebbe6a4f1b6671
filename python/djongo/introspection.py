"""Reading the schema back: collections as tables, indexes as constraints."""

from __future__ import annotations

from collections import namedtuple

from django.db import ProgrammingError
from django.db.backends.base.introspection import BaseDatabaseIntrospection, TableInfo
from django.db.backends.base.introspection import FieldInfo as BaseFieldInfo

from . import catalog, foreign_keys, sequences
from .cursor import django_errors
from .schema import sql_literal
from .validator import CollectionValidator

# Internal collections never shown as tables.
HIDDEN_COLLECTIONS = {sequences.SCHEMA_COLLECTION}


def _bson_type_name(value) -> str:
    import datetime

    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "bigint" if abs(value) > 2**31 - 1 else "integer"
    if isinstance(value, float):
        return "real"
    if isinstance(value, datetime.datetime):
        return "datetime"
    if isinstance(value, dict):
        return "embedded"
    if isinstance(value, list):
        return "array"
    if isinstance(value, bytes):
        return "blob"
    type_name = type(value).__name__
    return {"ObjectId": "objectid", "Decimal128": "decimal"}.get(type_name, "text")


# How many documents describe a collection Django did not create (inspectdb's
# --sample-size changes it): enough to see optional fields, bounded for large ones.
DEFAULT_SAMPLE_SIZE = 1000


def _sampled_columns(documents) -> list[tuple[str, str, bool, str | None]]:
    """(name, type, nullable, note) per field seen in *documents*, in first-seen order.

    A field is nullable when some document lacks it or holds null; its type is
    the one most documents hold (an integer wider than 32 bits makes it bigint),
    and a field holding several types gets a note naming them.
    """
    counts: dict[str, dict[str, int]] = {}
    present: dict[str, int] = {}
    nulls: set[str] = set()
    total = 0
    for document in documents:
        total += 1
        for key, value in document.items():
            present[key] = present.get(key, 0) + 1
            if value is None:
                nulls.add(key)
                continue
            kind = _bson_type_name(value)
            by_type = counts.setdefault(key, {})
            by_type[kind] = by_type.get(kind, 0) + 1
    columns = []
    for name, seen in present.items():
        by_type = counts.get(name, {})
        if {"integer", "bigint"} <= by_type.keys():
            # One integer field, wider than 32 bits in some documents.
            by_type = dict(by_type)
            by_type["bigint"] += by_type.pop("integer")
        kind = max(by_type, key=by_type.__getitem__) if by_type else "text"
        note = None
        if len(by_type) > 1:
            mix = ", ".join(f"{t} in {n}" for t, n in sorted(by_type.items(), key=lambda i: -i[1]))
            note = f"Mixed types in the sample: {mix} of {total} documents."
        columns.append((name, kind, seen < total or name in nulls, note))
    return columns


# Django's FieldInfo plus what get_field_type needs to tell AutoFields apart.
# ``note`` says what inspectdb should tell the user about a sampled field.
FieldInfo = namedtuple("FieldInfo", BaseFieldInfo._fields + ("auto", "primary_key", "note"),
                       defaults=(None,))


def _split_type(sql_type: str) -> tuple[str, int | None, int | None, int | None]:
    """``varchar(30)`` → ("varchar", 30, None, None); ``decimal(5, 2)`` → precision, scale."""
    base, _, rest = sql_type.partition("(")
    numbers = [p.strip() for p in rest.rstrip(")").split(",")] if rest else []
    numbers = [int(p) for p in numbers if p.isdigit()]
    base = base.strip().lower()
    if base in ("char", "varchar") and numbers:
        return base, numbers[0], None, None
    if numbers:
        return base, None, numbers[0], numbers[1] if len(numbers) > 1 else None
    return base, None, None, None


class DatabaseIntrospection(BaseDatabaseIntrospection):
    data_types_reverse = {
        "integer": "IntegerField",
        "int": "IntegerField",
        "bigint": "BigIntegerField",
        "smallint": "SmallIntegerField",
        "bool": "BooleanField",
        "boolean": "BooleanField",
        "real": "FloatField",
        "double": "FloatField",
        "datetime": "DateTimeField",
        "timestamp": "DateTimeField",
        "date": "DateField",
        "time": "TimeField",
        "decimal": "DecimalField",
        "numeric": "DecimalField",
        "text": "TextField",
        "varchar": "CharField",
        "char": "CharField",
        "blob": "BinaryField",
        "embedded": "JSONField",
        "array": "JSONField",
        "json": "JSONField",
        "objectid": "GenericObjectIdField",
    }
    # Documents read to describe a collection Django did not create.
    sample_size = DEFAULT_SAMPLE_SIZE
    _auto_fields = {
        "integer": "AutoField", "bigint": "BigAutoField", "smallint": "SmallAutoField",
    }

    def _db(self, cursor):
        return cursor.connection.database

    def get_field_type(self, data_type, description):
        if getattr(description, "auto", False) and data_type in self._auto_fields:
            return self._auto_fields[data_type]
        if data_type == "objectid" and getattr(description, "primary_key", False):
            return "ObjectIdField"
        return super().get_field_type(data_type, description)

    @django_errors
    def get_table_list(self, cursor):
        db = self._db(cursor)
        kinds = {c["name"]: "v" if c.get("type") == "view" else "t"
                 for c in db.list_collections()}
        # Tables created but not yet holding a collection (an empty table
        # whose collection was dropped by a restore) are tables too.
        for doc in db[sequences.SCHEMA_COLLECTION].find({"columns": {"$exists": True}},
                                                         {"name": 1}):
            kinds.setdefault(doc["name"], "t")
        return [
            TableInfo(name, kind)
            for name, kind in sorted(kinds.items())
            if name not in HIDDEN_COLLECTIONS and not name.startswith("system.")
        ]

    @django_errors
    def get_table_description(self, cursor, table_name):
        """The recorded columns, or fields seen in a sample of documents."""
        recorded = catalog.visible_columns(catalog.columns(self._db(cursor), table_name, None))
        if recorded is not None:
            description = []
            for column in recorded:
                base, size, precision, scale = _split_type(column.get("type", "text"))
                description.append(FieldInfo(
                    column["name"], base, size, size, precision, scale,
                    bool(column.get("null", True)),
                    sql_literal(column["default"]) if "default" in column else None,
                    column.get("collation"),
                    bool(column.get("auto")), bool(column.get("primary_key")),
                ))
            return description
        if table_name not in self._db(cursor).list_collection_names(
            filter={"name": table_name}
        ):
            raise ProgrammingError(f"no such table: {table_name}")
        db = self._db(cursor)
        auto = sequences.auto_field(db, table_name, None)
        # The document key is the primary key, whatever its type.
        key = auto or "_id"
        sample = db[table_name].find({}, limit=max(1, int(self.sample_size)))
        return [
            FieldInfo(name, kind, None, None, None, None, nullable and name != key, None, None,
                      name == auto, name == key, note)
            for name, kind, nullable, note in _sampled_columns(sample)
        ]

    @django_errors
    def get_sequences(self, cursor, table_name, table_fields=()):
        field = sequences.auto_field(self._db(cursor), table_name, None)
        return [{"table": table_name, "column": field}] if field else []

    @django_errors
    def get_relations(self, cursor, table_name):
        """{column: (referenced column, referenced table)} of the table's
        foreign keys (the embedded engine's; MongoDB has none)."""
        if not self.connection.features.can_introspect_foreign_keys:
            return {}
        return {fk.field: (fk.referenced_field, fk.references)
                for fk in foreign_keys.read(self._db(cursor), table_name, None)}

    @django_errors
    def get_primary_key_columns(self, cursor, table_name):
        db = self._db(cursor)
        recorded = catalog.primary_key(db, table_name, None)
        if recorded is not None:
            return recorded or None
        field = sequences.auto_field(db, table_name, None)
        return [field or "_id"]

    @django_errors
    def get_constraints(self, cursor, table_name):
        constraints = {}
        db = self._db(cursor)
        if next(db.list_collections(filter={"name": table_name, "type": "view"}), None):
            return constraints  # a view has no index and no validator
        recorded = catalog.primary_key(db, table_name, None)
        primary_key = self.get_primary_key_columns(cursor, table_name) or []
        pk_index = catalog.pk_index(db, table_name, None)
        for index in db[table_name].list_indexes():
            # An expression key (the hidden field that holds its value) has no
            # column, as in PostgreSQL's introspection.
            columns = [None if catalog.is_index_field(key) else key for key in index["key"]]
            if index["name"] == "_id_" and recorded is not None and primary_key != ["_id"]:
                # MongoDB's own key, not one of the table's columns.
                continue
            if pk_index is not None:
                is_pk = index["name"] == pk_index
            else:
                is_pk = columns == primary_key and bool(index.get("unique") or columns == ["_id"])
            kind, columns = _index_kind(index, columns)
            options = {k: index[k] for k in _INDEX_OPTIONS if k in index}
            constraints[index["name"]] = {
                "columns": columns,
                "primary_key": is_pk,
                "unique": bool(index.get("unique")) or index["name"] == "_id_",
                "foreign_key": None,
                "check": False,
                "index": True,
                "type": kind,
                # Per key (an expression key has no column to look it up by).
                "orders": (["DESC" if d == -1 else "ASC" for d in index["key"].values()]
                           if kind == "idx" else
                           ["DESC" if index["key"].get(c) == -1 else "ASC" for c in columns]),
                "definition": None,
                "options": options or None,
            }
        if self.connection.features.can_introspect_foreign_keys:
            for fk in foreign_keys.read(db, table_name, None):
                constraints[fk.name] = {
                    "columns": [fk.field],
                    "primary_key": False,
                    "unique": False,
                    "foreign_key": (fk.references, fk.referenced_field),
                    "check": False,
                    "index": False,
                    "definition": None,
                    "options": None,
                }
        # CHECK constraints are clauses of the collection's validator.
        for check in CollectionValidator.read(db, table_name, None).checks:
            constraints[check.name] = {
                "columns": check.columns,
                "primary_key": False,
                "unique": False,
                "foreign_key": None,
                "check": True,
                "index": False,
                "definition": None,
                "options": None,
            }
        return constraints


# The MongoDB index options get_constraints reports (as "options").
_INDEX_OPTIONS = ("expireAfterSeconds", "sparse", "hidden", "partialFilterExpression", "collation",
                  "weights", "default_language", "language_override", "wildcardProjection")


def _index_kind(index: dict, columns: list[str]) -> tuple[str, list[str]]:
    """The kind of an index as ``djongo.models.indexes`` names it (the
    index class's ``suffix``) and the columns it covers."""
    key = index["key"]
    if "_fts" in key:
        # {prefix..., _fts: "text", _ftsx: 1, suffix...}: the weighted fields.
        before = columns[:columns.index("_fts")]
        after = columns[columns.index("_ftsx") + 1:] if "_ftsx" in key else []
        return "text", before + [f for f in index.get("weights", {}) if f != "$**"] + after
    if "hashed" in key.values():
        return "hashed", columns
    if "2dsphere" in key.values():
        return "2dsphere", columns
    if any(c is not None and (c == "$**" or c.endswith(".$**")) for c in columns):
        return "wildcard", [c.removesuffix("$**").removesuffix(".") for c in columns if c != "$**"]
    return "idx", columns
