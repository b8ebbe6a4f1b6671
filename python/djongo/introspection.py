"""Reading the schema back: collections as tables, indexes as constraints."""

from __future__ import annotations

from collections import namedtuple

from django.db import ProgrammingError
from django.db.backends.base.introspection import BaseDatabaseIntrospection, TableInfo
from django.db.backends.base.introspection import FieldInfo as BaseFieldInfo

from . import catalog, sequences
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


# Django's FieldInfo plus what get_field_type needs to tell AutoFields apart.
FieldInfo = namedtuple("FieldInfo", BaseFieldInfo._fields + ("auto", "primary_key"))


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
        "objectid": "CharField",
    }
    _auto_fields = {
        "integer": "AutoField", "bigint": "BigAutoField", "smallint": "SmallAutoField",
    }

    def _db(self, cursor):
        return cursor.connection.database

    def get_field_type(self, data_type, description):
        if getattr(description, "auto", False) and data_type in self._auto_fields:
            return self._auto_fields[data_type]
        return super().get_field_type(data_type, description)

    @django_errors
    def get_table_list(self, cursor):
        db = self._db(cursor)
        names = set(db.list_collection_names())
        # Tables created but not yet holding a collection (an empty table
        # whose collection was dropped by a restore) are tables too.
        names.update(
            doc["name"] for doc in db[sequences.SCHEMA_COLLECTION].find(
                {"columns": {"$exists": True}}, {"name": 1}
            )
        )
        return [
            TableInfo(name, "t")
            for name in sorted(names)
            if name not in HIDDEN_COLLECTIONS and not name.startswith("system.")
        ]

    @django_errors
    def get_table_description(self, cursor, table_name):
        """The recorded columns, or fields seen in a sample of documents."""
        recorded = catalog.columns(self._db(cursor), table_name, None)
        if recorded is not None:
            description = []
            for column in recorded:
                base, size, precision, scale = _split_type(column.get("type", "text"))
                description.append(FieldInfo(
                    column["name"], base, size, size, precision, scale,
                    bool(column.get("null", True)),
                    sql_literal(column["default"]) if "default" in column else None, None,
                    bool(column.get("auto")), bool(column.get("primary_key")),
                ))
            return description
        if table_name not in self._db(cursor).list_collection_names(
            filter={"name": table_name}
        ):
            raise ProgrammingError(f"no such table: {table_name}")
        seen: dict[str, object] = {}
        nullable: set[str] = set()
        for doc in self._db(cursor)[table_name].find({}, limit=100):
            for key, value in doc.items():
                if value is None:
                    nullable.add(key)
                seen.setdefault(key, value)
        auto = sequences.auto_field(self._db(cursor), table_name, None)
        return [
            FieldInfo(name, _bson_type_name(value), None, None, None, None,
                      name in nullable, None, None, name == auto, name == auto)
            for name, value in seen.items()
            if name != "_id" or not type(value).__name__ == "ObjectId"
        ]

    @django_errors
    def get_sequences(self, cursor, table_name, table_fields=()):
        field = sequences.auto_field(self._db(cursor), table_name, None)
        return [{"table": table_name, "column": field}] if field else []

    @django_errors
    def get_relations(self, cursor, table_name):
        return {}

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
        recorded = catalog.primary_key(db, table_name, None)
        primary_key = self.get_primary_key_columns(cursor, table_name) or []
        pk_index = catalog.pk_index(db, table_name, None)
        for index in db[table_name].list_indexes():
            columns = list(index["key"].keys())
            if index["name"] == "_id_" and recorded is not None and primary_key != ["_id"]:
                # MongoDB's own key, not one of the table's columns.
                continue
            if pk_index is not None:
                is_pk = index["name"] == pk_index
            else:
                is_pk = columns == primary_key and bool(index.get("unique") or columns == ["_id"])
            constraints[index["name"]] = {
                "columns": columns,
                "primary_key": is_pk,
                "unique": bool(index.get("unique")) or index["name"] == "_id_",
                "foreign_key": None,
                "check": False,
                "index": True,
                "type": "idx",
                "orders": ["DESC" if d == -1 else "ASC" for d in index["key"].values()],
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
