"""What the backend supports: Django decides the SQL it writes from these.

Only what really works is declared; each ``False`` is a gap, not a policy.
"""

from django.db.backends.base.features import BaseDatabaseFeatures
from django.utils.functional import cached_property

from .cursor import translate_errors
from .server import Capabilities, choose_server, server_capabilities


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
    def _capabilities(self) -> Capabilities:
        # Computed without opening a Django connection (see
        # server.server_capabilities): third-party test modules read
        # uses_savepoints at import time, where pytest-django forbids one.
        choice = choose_server(self.connection.settings_dict)
        with self.connection.wrap_database_errors, translate_errors(None):
            return server_capabilities(choice)

    @cached_property
    def supports_transactions(self) -> bool:
        # MongoDB runs transactions on replica sets and sharded clusters only
        # (the embedded engine is a one-node replica set).
        return self._capabilities.transactions

    @cached_property
    def uses_savepoints(self) -> bool:
        # The embedded engine has savepoint commands (MongoDB has none), so
        # nested atomic() blocks recover from errors there; on MongoDB an
        # error inside atomic() rolls back the whole transaction.
        return self._capabilities.savepoints

    @cached_property
    def can_release_savepoints(self) -> bool:
        return self.uses_savepoints

    @cached_property
    def supports_foreign_keys(self) -> bool:
        # The embedded engine enforces REFERENCES constraints (the
        # collection option foreignKeys, docs/foreign-keys.md); MongoDB has
        # none, and there Django keeps relations itself (on_delete), as with
        # Djongo.
        return self._capabilities.foreign_keys

    @cached_property
    def can_introspect_foreign_keys(self) -> bool:
        return self._capabilities.foreign_keys

    supports_forward_references = True
    # Foreign keys are checked when the transaction commits (at the end of
    # each statement in autocommit), like PostgreSQL's DEFERRABLE INITIALLY
    # DEFERRED; where there are none, nothing is checked at all. Either way
    # Django may delete rows in any order and load fixtures with forward
    # references.
    can_defer_constraint_checks = True

    # An expression DEFAULT (db_default=Now()) is recorded in __schema__ and
    # evaluated by the server for each insert that leaves the column out.
    supports_expression_defaults = True
    # CHECK constraints are clauses of the collection's validator
    # (djongo/validator.py), enforced by the server, MongoDB included.
    supports_column_check_constraints = True
    supports_table_check_constraints = True
    can_introspect_check_constraints = True
    supports_partial_indexes = True
    # An expression key is a hidden generated field, indexed (executor._index_keys).
    supports_expression_indexes = True
    supports_deferrable_unique_constraints = False
    supports_covering_indexes = False
    supports_index_column_ordering = True
    supports_combined_alters = False
    supports_comments = False
    supports_comments_inline = False

    supports_timezones = False
    has_native_uuid_field = False
    has_native_duration_field = False
    # Django's JSONField: native BSON documents and arrays (json_values.py).
    supports_json_field = True
    has_native_json_field = True
    supports_json_field_contains = True
    has_select_for_update = False
    # FOR UPDATE is accepted and ignored (has_select_for_update is False), with or
    # without LIMIT.
    supports_select_for_update_with_limit = True
    # bulk_create(ignore_conflicts / update_conflicts): MongoDB upserts.
    supports_ignore_conflicts = True
    supports_update_conflicts = True
    supports_update_conflicts_with_target = True
    # Counters restart with ALTER TABLE t AUTO_INCREMENT = 1 (as on MySQL); an
    # explicit id raises its counter, so sequence_reset_sql has nothing to do.
    supports_sequence_reset = True
    # Window functions are $setWindowFields (frames: ROWS, and RANGE, with EXCLUDE; a RANGE
    # offset is a MongoDB range window, over one ORDER BY key), also over the
    # groups of a grouped query.
    supports_over_clause = True
    supports_frame_range_fixed_distance = True
    # EXCLUDE CURRENT ROW | GROUP | TIES: the frame is pushed and filtered
    # (compiler: lower/window.rs).
    supports_frame_exclusion = True
    # Date arithmetic: DATETIME - DATETIME is milliseconds, scaled to the
    # microseconds a DurationField stores (operations.subtract_temporals).
    supports_temporal_subtraction = True
    # GREATEST/LEAST are $max/$min, which skip NULLs.
    greatest_least_ignores_nulls = True
    has_json_object_function = True
    # Conditions are selected as BSON booleans (three-valued: true, false, null).
    # Without this Django selects CASE WHEN c THEN 1 ELSE 0 END and later compares
    # that 1/0 with a real boolean (`= (x < 5)`, `WHERE NOT "alias"`), and in BSON
    # 1 is not true: such filters silently matched no rows.
    supports_boolean_expr_in_select_clause = True
    supports_regex_backreferencing = False
    # cursor.execute(sql, {'name': value}) with %(name)s markers (cursor.positional).
    supports_paramstyle_pyformat = True
    # EXPLAIN shows the MongoDB commands a query becomes (and MongoDB's own
    # query plan where the server explains).
    supports_explaining_query_execution = True
    supported_explain_formats = {"JSON", "TEXT"}
    # Composite keys: Django writes (a = x AND b = y) for (a, b) = (x, y), as
    # for SQLite; the query language has no row values.
    supports_tuple_lookups = False
    supports_unspecified_pk = False
    # db_collation and Collate(): MongoDB collations, named as ICU collations
    # are (BCP 47 tags with -u- keywords); each statement runs under the one
    # collation its compared columns or its COLLATE give (docs/collations.md).
    supports_collation_on_charfield = True
    supports_collation_on_textfield = True
    # A case- or accent-insensitive collation ("und-u-ks-level2").
    supports_non_deterministic_collations = True
    test_collations = {
        "ci": "und-u-ks-level2",
        "cs": "simple",
        "non_default": "sv",
        "swedish_ci": "sv-u-ks-level2",
        "virtual": "sv",
    }
    # INTERSECT / EXCEPT: rows tagged by input, grouped, kept by count.
    supports_select_intersection = True
    supports_select_difference = True
    supports_slicing_ordering_in_compound = False
    supports_aggregate_filter_clause = False
    supports_default_keyword_in_insert = False
    supports_default_keyword_in_bulk_insert = False
    # A row of nothing but defaults: the server fills in the DEFAULTs recorded
    # in __schema__ (literal and expression ones).
    insert_test_table_with_defaults = "INSERT INTO {} DEFAULT VALUES"
    # GeneratedField: computed by the server from the row whenever it is
    # written (VIRTUAL ones are stored as well).
    supports_stored_generated_columns = True
    supports_virtual_generated_columns = True
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
    # CharField(max_length=None): a varchar without a limit (BSON strings have none).
    supports_unlimited_charfield = True
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
