"""Migrations: Django writes DDL in this dialect, the compiler maps it to MongoDB."""

from __future__ import annotations

import datetime
import decimal

from bson import Decimal128
from django.db.backends.base.schema import BaseDatabaseSchemaEditor

AUTO_FIELDS = {"AutoField", "BigAutoField", "SmallAutoField"}
SERIAL_TYPES = {"integer": "serial", "bigint": "bigserial", "smallint": "smallserial"}


def sql_literal(value) -> str:
    """``value`` as a SQL literal in the dialect the compiler reads."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, float, decimal.Decimal)):
        return str(value)
    if isinstance(value, Decimal128):
        return str(value.to_decimal())
    if isinstance(value, (datetime.date, datetime.time, datetime.datetime)):
        value = value.isoformat()
    if isinstance(value, (bytes, memoryview)):
        value = bytes(value).hex()
    return "'%s'" % str(value).replace("'", "''")


class DatabaseSchemaEditor(BaseDatabaseSchemaEditor):
    sql_delete_table = "DROP TABLE %(table)s"
    sql_delete_column = "ALTER TABLE %(table)s DROP COLUMN %(column)s"
    sql_create_fk = None
    sql_create_inline_fk = None
    sql_create_column_inline_fk = None
    sql_delete_fk = None

    def quote_value(self, value) -> str:
        return sql_literal(value)

    def _alter_column_type_sql(self, model, old_field, new_field, new_type, old_collation,
                               new_collation):
        # The SERIAL spelling tells the executor the column (still) takes its
        # values from a __schema__ counter; any other type ends the counter,
        # as PostgreSQL drops the sequence of an AutoField made IntegerField.
        if new_field.get_internal_type() in AUTO_FIELDS:
            new_type = SERIAL_TYPES.get(new_type, new_type)
        return super()._alter_column_type_sql(
            model, old_field, new_field, new_type, old_collation, new_collation
        )

    def prepare_default(self, value) -> str:
        return self.quote_value(value)

