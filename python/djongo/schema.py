"""Migrations: Django writes DDL in this dialect, the compiler maps it to MongoDB."""

from __future__ import annotations

import datetime
import decimal

from bson import Decimal128
from django.db import NotSupportedError
from django.db.backends.base.schema import BaseDatabaseSchemaEditor, _related_non_m2m_objects

from . import catalog, collations, records, validator
from .cursor import django_errors
from .json_values import JSONValue
from .models import schema_validation

AUTO_FIELDS = {"AutoField", "BigAutoField", "SmallAutoField"}
SERIAL_TYPES = {"integer": "serial", "bigint": "bigserial", "smallint": "smallserial"}


def sql_literal(value) -> str:
    """``value`` as a SQL literal in the dialect the compiler reads."""
    if isinstance(value, JSONValue):
        # A key of a JSONField compared in a CHECK or a default: the stored
        # BSON value. A document, an array or JSON null has no SQL literal.
        if value.value is None or isinstance(value.value, (dict, list)):
            raise NotSupportedError(
                f"the JSON value {value.value!r} in a CHECK constraint or a column default "
                "(only strings, numbers and booleans)")
        value = value.value
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, float, decimal.Decimal)):
        return str(value)
    if isinstance(value, Decimal128):
        return str(value.to_decimal())
    if isinstance(value, datetime.datetime):
        # Stored as BSON dates (binding.to_bson): the compiler folds the CAST
        # of a literal into one, so a CHECK or an index condition compares
        # dates with dates, not with text.
        if value.tzinfo is not None:
            value = value.astimezone(datetime.UTC).replace(tzinfo=None)
        return f"CAST('{value.isoformat()}' AS timestamp)"
    if isinstance(value, datetime.date):
        return f"CAST('{value.isoformat()}' AS date)"
    if isinstance(value, datetime.time):
        value = value.isoformat()
    if isinstance(value, (bytes, memoryview)):
        value = bytes(value).hex()
    return "'%s'" % str(value).replace("'", "''")


class DatabaseSchemaEditor(BaseDatabaseSchemaEditor):
    sql_delete_table = "DROP TABLE %(table)s"
    sql_delete_column = "ALTER TABLE %(table)s DROP COLUMN %(column)s"
    # Foreign keys (only where features.supports_foreign_keys: the embedded
    # engine), named, as on PostgreSQL: added after CREATE TABLE with
    # ALTER TABLE ... ADD CONSTRAINT ... FOREIGN KEY ... REFERENCES ...
    # DEFERRABLE INITIALLY DEFERRED (Django's sql_create_fk), inline in ADD
    # COLUMN, dropped with DROP CONSTRAINT (executor: the engine's
    # foreignKeys collection option).
    sql_create_inline_fk = None
    sql_create_column_inline_fk = (
        "CONSTRAINT %(name)s REFERENCES %(to_table)s (%(to_column)s)%(deferrable)s"
    )

    def quote_value(self, value) -> str:
        return sql_literal(value)

    def _alter_column_type_sql(self, model, old_field, new_field, new_type, old_collation,
                               new_collation):
        # The SERIAL spelling tells the executor the column (still) takes its
        # values from a __schema__ counter; any other type ends the counter,
        # as PostgreSQL drops the sequence of an AutoField made IntegerField.
        if new_field.get_internal_type() in AUTO_FIELDS:
            new_type = SERIAL_TYPES.get(new_type, new_type)
        # The dialect has no ALTER COLUMN ... COLLATE: the altered column's
        # collation is recorded by _alter_field itself; a column that follows
        # it (a foreign key to a key whose collation changed) is recorded here.
        column = (model._meta.db_table, new_field.column)
        if old_collation != new_collation and column != self._collation_being_altered:
            self._record_collation(*column, new_collation)
            self._recollate_unique_indexes(*column)
        return super()._alter_column_type_sql(model, old_field, new_field, new_type, None, None)

    #: The (table, column) whose collation _alter_field is changing.
    _collation_being_altered: tuple[str, str] | None = None

    def _alter_field(self, model, old_field, new_field, old_type, new_type, old_db_params,
                     new_db_params, strict=False):
        old_collation = old_db_params.get("collation")
        new_collation = new_db_params.get("collation")
        if old_collation != new_collation:
            if new_collation:
                collations.to_mongo(new_collation)  # a name djongo knows, or NotSupportedError
            # Recorded first: a unique index made below takes it.
            self._record_collation(model._meta.db_table, old_field.column, new_collation)
        self._collation_being_altered = (model._meta.db_table, new_field.column)
        try:
            super()._alter_field(model, old_field, new_field, old_type, new_type, old_db_params,
                                 new_db_params, strict)
        finally:
            self._collation_being_altered = None
        if old_collation != new_collation:
            # The unique indexes the column keeps compare under its collation.
            try:
                self._recollate_unique_indexes(model._meta.db_table, new_field.column)
            except Exception:
                self._record_collation(model._meta.db_table, new_field.column, old_collation)
                raise
        # A key's new type reaches the columns that refer to it (an AutoField
        # made BigAutoField: its foreign keys, and theirs, become bigint).
        # Django does this itself only alongside the foreign key constraints
        # it drops and remakes, which this backend has none of.
        keys = ((old_field.primary_key and new_field.primary_key)
                or (old_field.unique and new_field.unique))
        if self.connection.features.supports_foreign_keys or not keys or old_type == new_type:
            return
        for old_rel, new_rel in _related_non_m2m_objects(old_field, new_field):
            params = new_rel.field.db_parameters(connection=self.connection)
            old_params = old_rel.field.db_parameters(connection=self.connection)
            fragment, other_actions = self._alter_column_type_sql(
                new_rel.related_model, old_rel.field, new_rel.field, params["type"],
                old_params.get("collation"), params.get("collation"),
            )
            self.execute(self.sql_alter_column % {
                "table": self.quote_name(new_rel.related_model._meta.db_table),
                "changes": fragment[0],
            }, fragment[1])
            for sql, sql_params in other_actions:
                self.execute(sql, sql_params)

    def _record_collation(self, table: str, column: str, collation: str | None) -> None:
        """Records a column's collation in ``__schema__`` (docs/collations.md)."""
        if self.collect_sql:
            self.collected_sql.append(
                f"-- djongo: record the collation of {table}.{column}: {collation or 'simple'}")
            return
        self._write_collation(table, column, collation)

    def _recollate_unique_indexes(self, table: str, column: str) -> None:
        """Rebuilds the unique indexes over ``column`` under its new collation
        (MongoDB cannot change an index's collation in place): the rows are
        checked again, as a new unique constraint checks them."""
        if self.collect_sql:
            self.collected_sql.append(
                f"-- djongo: rebuild the unique indexes of {table}.{column} under its collation")
            return
        self._rebuild_unique_indexes(table, column)

    @django_errors
    def _rebuild_unique_indexes(self, table: str, column: str) -> None:
        connection = self.connection.connection
        session = connection.session_for_statement()
        db = self.connection.mongo_database
        recorded = {c["name"]: c for c in catalog.columns(db, table, session) or ()}
        for index in list(db[table].list_indexes(session=session)):
            if not index.get("unique") or index["name"] == "_id_" or column not in index["key"]:
                continue
            found = {recorded[c].get("collation") or collations.SIMPLE for c in index["key"]
                     if c in recorded and collations.is_text(recorded[c].get("type"))}
            if len(found) > 1:
                raise NotSupportedError(
                    f"the unique index {index['name']!r} of {table!r} would cover columns with "
                    f"different collations ({', '.join(sorted(found))}): a MongoDB index has one")
            options = {k: v for k, v in index.items() if k not in ("v", "key", "name", "ns",
                                                                    "collation")}
            collation = collations.to_mongo(found.pop()) if found else None
            if collation is not None:
                options["collation"] = collation
            keys = list(index["key"].items())
            db[table].drop_index(index["name"], session=session)
            try:
                db[table].create_index(keys, name=index["name"], session=session, **options)
            except Exception:
                # Rows the new collation calls duplicates: the index stays as it was.
                previous = {k: v for k, v in index.items() if k not in ("v", "key", "name", "ns")}
                db[table].create_index(keys, name=index["name"], session=session, **previous)
                raise

    @django_errors
    def _write_collation(self, table: str, column: str, collation: str | None) -> None:
        connection = self.connection.connection
        catalog.set_collation(self.connection.mongo_database, table, column, collation,
                              connection.session_for_statement())
        connection.collations = None
        records.forget(connection, table)
        records.forget_facts(connection)

    def prepare_default(self, value) -> str:
        return self.quote_value(value)

    # -- the $jsonSchema of models with JSONSchemaValidation -----------------------------
    # Each operation that changes a model's fields regenerates its schema
    # from the fields it leaves (``model`` is the state before the change).

    def create_model(self, model):
        super().create_model(model)
        self._set_json_schema(model, model._meta.local_concrete_fields)

    def add_field(self, model, field):
        super().add_field(model, field)
        if field.concrete:
            self._set_json_schema(model, [*model._meta.local_concrete_fields, field])

    def remove_field(self, model, field):
        super().remove_field(model, field)
        self._set_json_schema(
            model, [f for f in model._meta.local_concrete_fields if f.name != field.name])

    def alter_field(self, model, old_field, new_field, strict=False):
        super().alter_field(model, old_field, new_field, strict)
        self._set_json_schema(model, [new_field if f.name == old_field.name else f
                                      for f in model._meta.local_concrete_fields])

    def add_constraint(self, model, constraint):
        if isinstance(constraint, schema_validation.JSONSchemaValidation):
            self._set_json_schema(model, model._meta.local_concrete_fields, constraint)
        else:
            super().add_constraint(model, constraint)

    def remove_constraint(self, model, constraint):
        if isinstance(constraint, schema_validation.JSONSchemaValidation):
            self._write_json_schema(model, None, None, None)
        else:
            super().remove_constraint(model, constraint)

    def _set_json_schema(self, model, fields, constraint=None) -> None:
        constraint = constraint or schema_validation.model_constraint(model)
        if constraint is None or not schema_validation.enabled(self.connection.settings_dict):
            return
        schema = schema_validation.json_schema(model, fields, self.connection)
        level, action = schema_validation.level_and_action(constraint,
                                                           self.connection.settings_dict)
        self._write_json_schema(model, schema, level, action)

    def _write_json_schema(self, model, schema, level, action) -> None:
        table = model._meta.db_table
        if self.collect_sql:
            what = "set" if schema is not None else "remove"
            self.collected_sql.append(f"-- djongo: {what} the $jsonSchema validator of {table}")
            return
        self._write_validator(table, schema, level, action)

    @django_errors
    def _write_validator(self, table, schema, level, action) -> None:
        database = self.connection.mongo_database
        validator.set_json_schema(database, table, schema, level, action,
                                  self.connection.connection.session_for_statement())

