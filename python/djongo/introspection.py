"""Reading the schema back: collections as tables, indexes as constraints."""

from __future__ import annotations

from django.db.backends.base.introspection import (
    BaseDatabaseIntrospection,
    FieldInfo,
    TableInfo,
)

from . import sequences

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


class DatabaseIntrospection(BaseDatabaseIntrospection):
    data_types_reverse = {
        "integer": "IntegerField",
        "bigint": "BigIntegerField",
        "smallint": "SmallIntegerField",
        "bool": "BooleanField",
        "real": "FloatField",
        "datetime": "DateTimeField",
        "date": "DateField",
        "time": "TimeField",
        "decimal": "DecimalField",
        "text": "TextField",
        "blob": "BinaryField",
        "embedded": "JSONField",
        "array": "JSONField",
        "objectid": "CharField",
    }

    def _db(self, cursor):
        return cursor.connection.database

    def get_table_list(self, cursor):
        names = self._db(cursor).list_collection_names()
        return [
            TableInfo(name, "t")
            for name in sorted(names)
            if name not in HIDDEN_COLLECTIONS and not name.startswith("system.")
        ]

    def get_table_description(self, cursor, table_name):
        """Fields seen in a sample of documents, with the type of their first value."""
        seen: dict[str, object] = {}
        nullable: set[str] = set()
        for doc in self._db(cursor)[table_name].find({}, limit=100):
            for key, value in doc.items():
                if value is None:
                    nullable.add(key)
                seen.setdefault(key, value)
        return [
            FieldInfo(name, _bson_type_name(value), None, None, None, None,
                      name in nullable, None, None, None)
            for name, value in seen.items()
            if name != "_id" or not type(value).__name__ == "ObjectId"
        ]

    def get_sequences(self, cursor, table_name, table_fields=()):
        field = sequences.auto_field(self._db(cursor), table_name, None)
        return [{"table": table_name, "column": field}] if field else []

    def get_relations(self, cursor, table_name):
        return {}

    def get_primary_key_columns(self, cursor, table_name):
        field = sequences.auto_field(self._db(cursor), table_name, None)
        return [field or "_id"]

    def get_constraints(self, cursor, table_name):
        constraints = {}
        primary_key = self.get_primary_key_columns(cursor, table_name)
        for index in self._db(cursor)[table_name].list_indexes():
            columns = list(index["key"].keys())
            constraints[index["name"]] = {
                "columns": columns,
                "primary_key": columns == primary_key,
                "unique": bool(index.get("unique")) or index["name"] == "_id_",
                "foreign_key": None,
                "check": False,
                "index": True,
                "type": "idx",
                "orders": ["DESC" if d == -1 else "ASC" for d in index["key"].values()],
                "definition": None,
                "options": None,
            }
        return constraints
