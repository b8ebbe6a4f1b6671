"""What the backend supports: Django decides the SQL it writes from these.

Only what really works is declared; each ``False`` is a gap, not a policy.
"""

from django.db.backends.base.features import BaseDatabaseFeatures
from django.utils.functional import cached_property


class DatabaseFeatures(BaseDatabaseFeatures):
    minimum_database_version = None

    # Inserts: ids come from __schema__ counters and are returned by RETURNING.
    can_return_columns_from_insert = True
    can_return_rows_from_bulk_insert = True
    has_bulk_insert = True

    # Transactions are MongoDB multi-document transactions; DDL is not
    # transactional. Savepoints: see uses_savepoints below.
    can_rollback_ddl = False
    atomic_transactions = True

    @cached_property
    def _server_extensions(self) -> dict:
        """The ``djongo`` field of the server's hello reply: what the embedded
        engine adds to MongoDB. A real MongoDB has no such field ({})."""
        self.connection.ensure_connection()
        with self.connection.wrap_database_errors:
            hello = self.connection.connection.client.admin.command("hello")
        extensions = hello.get("djongo")
        return extensions if isinstance(extensions, dict) else {}

    @cached_property
    def supports_transactions(self) -> bool:
        # MongoDB runs transactions on replica sets and sharded clusters only
        # (the embedded engine is a one-node replica set).
        self.connection.ensure_connection()
        with self.connection.wrap_database_errors:
            return self.connection.connection.supports_transactions

    @cached_property
    def uses_savepoints(self) -> bool:
        # The embedded engine has savepoint commands (MongoDB has none), so
        # nested atomic() blocks recover from errors there; on MongoDB an
        # error inside atomic() rolls back the whole transaction.
        return bool(self._server_extensions.get("savepoints"))

    @cached_property
    def can_release_savepoints(self) -> bool:
        return self.uses_savepoints

    # Relations are not enforced by the server.
    supports_foreign_keys = False
    can_introspect_foreign_keys = False
    supports_forward_references = True
    can_defer_constraint_checks = False

    # An expression DEFAULT (db_default=Now()) is recorded in __schema__ and
    # evaluated by the server for each insert that leaves the column out.
    supports_expression_defaults = True
    # CHECK constraints are clauses of the collection's validator
    # (djongo/validator.py), enforced by the server, MongoDB included.
    supports_column_check_constraints = True
    supports_table_check_constraints = True
    can_introspect_check_constraints = True
    supports_partial_indexes = True
    supports_expression_indexes = False
    supports_deferrable_unique_constraints = False
    supports_covering_indexes = False
    supports_index_column_ordering = True
    supports_combined_alters = False
    supports_comments = False
    supports_comments_inline = False

    supports_timezones = False
    has_native_uuid_field = False
    has_native_duration_field = False
    supports_json_field = False
    has_select_for_update = False
    supports_select_for_update_with_limit = False
    supports_ignore_conflicts = False
    supports_update_conflicts = False
    supports_sequence_reset = False
    # Window functions are $setWindowFields (frames: ROWS, and RANGE with
    # UNBOUNDED/CURRENT ROW bounds; a RANGE offset is refused).
    supports_over_clause = True
    supports_frame_range_fixed_distance = False
    supports_frame_exclusion = False
    # Date arithmetic: DATETIME - DATETIME is milliseconds, scaled to the
    # microseconds a DurationField stores (operations.subtract_temporals).
    supports_temporal_subtraction = True
    # GREATEST/LEAST are $max/$min, which skip NULLs.
    greatest_least_ignores_nulls = True
    has_json_object_function = False
    # Conditions are selected as BSON booleans (three-valued: true, false, null).
    # Without this Django selects CASE WHEN c THEN 1 ELSE 0 END and later compares
    # that 1/0 with a real boolean (`= (x < 5)`, `WHERE NOT "alias"`), and in BSON
    # 1 is not true: such filters silently matched no rows.
    supports_boolean_expr_in_select_clause = True
    supports_regex_backreferencing = False
    supports_paramstyle_pyformat = False
    supports_unspecified_pk = False
    supports_collation_on_charfield = False
    supports_collation_on_textfield = False
    supports_non_deterministic_collations = False
    supports_select_intersection = False
    supports_select_difference = False
    supports_slicing_ordering_in_compound = False
    supports_aggregate_filter_clause = False
    supports_default_keyword_in_insert = False
    supports_default_keyword_in_bulk_insert = False
    supports_stored_generated_columns = False
    supports_virtual_generated_columns = False
    can_clone_databases = False
    test_db_allows_multiple_connections = True
    nulls_order_largest = False
    ignores_table_name_case = False
    interprets_empty_strings_as_nulls = False
    related_fields_match_type = False
    # GROUP BY 1: the compiler resolves output positions to the select expressions.
    allows_group_by_select_index = True
    requires_literal_defaults = False
    connection_persists_old_columns = False
    # Django's schema editor indexes ForeignKey columns (db_index=True).
    indexes_foreign_keys = True
    supports_index_on_text_field = True
    can_introspect_default = False
    introspected_field_types = {
        **BaseDatabaseFeatures.introspected_field_types,
        # Column types as djongo writes them (base.DatabaseWrapper.data_types).
        "DurationField": "BigIntegerField",
        "GenericIPAddressField": "CharField",
        "PositiveBigIntegerField": "BigIntegerField",
        "PositiveIntegerField": "IntegerField",
        "PositiveSmallIntegerField": "SmallIntegerField",
    }
