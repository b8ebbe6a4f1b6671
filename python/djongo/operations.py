"""How Django should spell SQL for the compiler, and how values cross over."""

from __future__ import annotations

import datetime
import decimal
import functools
import json
import re
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from bson import Decimal128
from django.conf import settings
from django.db import DatabaseError, DataError, NotSupportedError
from django.db.backends.base.operations import BaseDatabaseOperations
from django.db.backends.utils import split_tzname_delta
from django.db.models.constants import OnConflict
from django.db.models.expressions import Col
from django.db.models.functions import Cast
from django.utils import timezone

from . import database, json_values, sequences
from .cursor import django_errors

_DECIMALS = decimal.Context(prec=34)

PATTERN_LOOKUPS = {
    "iexact", "contains", "icontains", "startswith", "istartswith",
    "endswith", "iendswith", "regex", "iregex",
}
TEXT_FIELDS = {
    None, "CharField", "TextField", "EmailField", "SlugField", "URLField",
    "FileField", "FilePathField", "ImageField", "UUIDField", "GenericIPAddressField",
    "IPAddressField",
    # djongo.models.JSONField keys: a pattern matches string values only (a
    # cast would fail on a key holding an array or a sub-document).
    "DjongoJSONField",
}

# Django's extract lookups → EXTRACT fields (PostgreSQL names; week_day is
# written from DOW).
_EXTRACT_PARTS = {
    "year": "YEAR", "iso_year": "ISOYEAR", "quarter": "QUARTER", "month": "MONTH",
    "week": "WEEK", "day": "DAY", "iso_week_day": "ISODOW",
    "hour": "HOUR", "minute": "MINUTE", "second": "SECOND",
}
_TRUNC_UNITS = {"year", "quarter", "month", "week", "day", "hour", "minute", "second"}



def quote_identifier(name: str) -> str:
    """``name`` as one double-quoted SQL identifier, whatever it holds.

    For names that come from users (JSON keys, dict keys of lookups): unlike
    ``quote_name`` it never keeps quotes that are already there, so the key
    ``"x"`` stays the three characters it is.
    """
    return '"%s"' % name.replace('"', '""')


# One double-quoted identifier (inner quotes doubled), or several joined by
# dots (a db_table written '"schema"."table"').
_QUOTED = re.compile(r'"(?:[^"]|"")*"(?:\."(?:[^"]|"")*")*')


def is_quoted_identifier(name: str) -> bool:
    """True when ``name`` is already quoted: every character inside quotes."""
    return _QUOTED.fullmatch(name) is not None


# Parameter markers for last_executed_query: quoted text is skipped, as the
# compiler skips it (python/djongo/../crates/compiler/src/placeholders.rs).
_MARKERS = re.compile(r"""'(?:[^']|'')*'?|"(?:[^"]|"")*"?|`[^`]*`?|%s|%%""")


# quote_name's answers by name. The names are the models' tables and columns
# (and aliases), a bounded set; raw names from elsewhere are bounded by
# clearing when full.
_QUOTED_NAMES: dict[str, str] = {}
_QUOTED_NAMES_CAPACITY = 4096


def interpolate(sql: str, literals: list[str]) -> str:
    """``sql`` with each ``%s`` marker replaced by the next of ``literals``."""
    values = iter(literals)

    def replace(match: re.Match) -> str:
        token = match.group(0)
        if token == "%s":
            return next(values, "%s")
        if token == "%%":
            return "%"
        if token.startswith("'"):
            return token.replace("%%", "%")
        return token

    return _MARKERS.sub(replace, sql)


def _strip_ms(sql: str) -> str:
    """``(x / 1000)`` as format_for_duration_arithmetic writes it → ``x``."""
    if sql.startswith("(") and sql.endswith(" / 1000)"):
        return sql[1:-len(" / 1000)")]
    return sql


class DatabaseOperations(BaseDatabaseOperations):
    # Django's compilers, running each statement with its model's and
    # queryset's read and write concerns (djongo.concerns).
    compiler_module = "djongo.compiler"
    cast_char_field_without_max_length = "text"
    # Cast(x, DecimalField(...)) rounds to the field's places, as in SQL.
    cast_data_types = {
        "DecimalField": "numeric(%(max_digits)s, %(decimal_places)s)",
    }
    explain_prefix = "EXPLAIN"

    def __init__(self, connection) -> None:
        super().__init__(connection)
        # prepare_join_on_clause: whether a join of two fields casts one.
        self._join_casts: dict[tuple, bool] = {}

    def deferrable_sql(self) -> str:
        # Foreign keys are checked at commit (end of statement in autocommit).
        return " DEFERRABLE INITIALLY DEFERRED"

    def explain_query_prefix(self, format=None, **options):
        prefix = super().explain_query_prefix(format, **options)
        return f"{prefix} FORMAT {format.upper()}" if format else prefix

    def quote_name(self, name: str) -> str:
        # Django quotes some names twice (a db_table written '"t"'), so a
        # name already quoted (every character inside quotes) is kept; any
        # other name is quoted, its quotes doubled, and never leaves them.
        # A lazy name (Django's test models make db_collation one) is read.
        # Django quotes every table and column of every statement it writes
        # (8 to 10 for a point read): the answer for a str is kept.
        if type(name) is str:
            quoted = _QUOTED_NAMES.get(name)
            if quoted is not None:
                return quoted
        else:
            name = str(name)
        quoted = name if is_quoted_identifier(name) else quote_identifier(name)
        if len(_QUOTED_NAMES) >= _QUOTED_NAMES_CAPACITY:
            _QUOTED_NAMES.clear()
        _QUOTED_NAMES[name] = quoted
        return quoted

    def pk_default_value(self) -> str:
        return "NULL"

    def no_limit_value(self):
        return None

    def max_name_length(self) -> int:
        return 200

    # bulk_update() objects per UPDATE. Its SQL sets each field to a CASE with
    # one arm per object, evaluated for every object it updates, so the work
    # grows with the square of the batch; a full batch's SQL text is the same
    # for every batch, so its compiled plan is reused.
    bulk_update_batch_size = 100

    def bulk_batch_size(self, fields, objs) -> int:
        # bulk_update() passes the primary key twice (the WHEN arms and the
        # WHERE pk IN), then the fields it sets; inserts and deletions go in
        # one command, whatever their size.
        if len(fields) > 2 and fields[0] is fields[1] and getattr(fields[0], "primary_key", False):
            return max(1, min(len(objs), self.bulk_update_batch_size))
        return max(1, len(objs))

    def bulk_insert_sql(self, fields, placeholder_rows) -> str:
        rows = ", ".join("(%s)" % ", ".join(row) for row in placeholder_rows)
        return "VALUES " + rows

    def return_insert_columns(self, fields):
        if not fields:
            return "", ()
        columns = [
            "%s.%s" % (self.quote_name(f.model._meta.db_table), self.quote_name(f.column))
            for f in fields
        ]
        return "RETURNING %s" % ", ".join(columns), ()

    def fetch_returned_insert_columns(self, cursor, returning_params):
        return cursor.fetchone()

    def fetch_returned_insert_rows(self, cursor):
        return cursor.fetchall()

    def on_conflict_suffix_sql(self, fields, on_conflict, update_fields, unique_fields):
        # The executor turns both into MongoDB upserts, in and out of
        # transactions (executor.Executor._upsert).
        if on_conflict == OnConflict.IGNORE:
            return "ON CONFLICT DO NOTHING"
        if on_conflict == OnConflict.UPDATE:
            return "ON CONFLICT(%s) DO UPDATE SET %s" % (
                ", ".join(map(self.quote_name, unique_fields)),
                ", ".join(f"{f} = EXCLUDED.{f}" for f in map(self.quote_name, update_fields)),
            )
        return super().on_conflict_suffix_sql(fields, on_conflict, update_fields, unique_fields)

    def prepare_join_on_clause(self, lhs_table, lhs_field, rhs_table, rhs_field):
        lhs_expr, rhs_expr = super().prepare_join_on_clause(
            lhs_table, lhs_field, rhs_table, rhs_field
        )
        # BSON comparison never converts: a GenericRelation's CharField
        # object_id ('2') equals no integer id (2). Cast the joined column
        # to the other side's type, as Django's PostgreSQL backend does.
        # Two db_type() calls cost more than the rest of the join's SQL: the
        # answer is kept per pair of fields (bounded: fields of the models).
        key = (lhs_field, rhs_field)
        cast = self._join_casts.get(key)
        if cast is None:
            cast = lhs_field.db_type(self.connection) != rhs_field.db_type(self.connection)
            if len(self._join_casts) >= _QUOTED_NAMES_CAPACITY:
                self._join_casts.clear()
            self._join_casts[key] = cast
        if cast:
            rhs_expr = Cast(rhs_expr, lhs_field)
        return lhs_expr, rhs_expr

    def last_insert_id(self, cursor, table_name, pk_name):
        return cursor.lastrowid

    def lookup_cast(self, lookup_type, internal_type=None):
        if lookup_type in PATTERN_LOOKUPS and internal_type == "JSONField":
            # SQL databases match the JSON text; MongoDB has no operator that
            # writes a document as JSON text.
            raise NotSupportedError(
                f"{lookup_type} on a whole JSONField is not supported (MongoDB cannot write "
                f"a document as JSON text); use it on a key: field__key__{lookup_type}"
            )
        # Pattern lookups on numbers, dates... compare their text, as SQL
        # databases do (filter(id__startswith=2)).
        if lookup_type in PATTERN_LOOKUPS and internal_type not in TEXT_FIELDS:
            return "CAST(%s AS text)"
        return "%s"

    def last_executed_query(self, cursor, sql, params):
        # What the cursor really ran (an execute_wrapper may rewrite the SQL).
        if getattr(cursor, "last_sql", None) is not None:
            sql, params = cursor.last_sql, cursor.last_params
        text = sql
        if params:
            from .cursor import positional
            from .schema import sql_literal

            if isinstance(params, Mapping):
                try:
                    sql, params = positional(sql, params)
                except database.ProgrammingError:
                    params = None  # a marker without a value: the statement failed
            if params:
                # Not `sql % params`: a `%` inside a quoted name (a JSON key) is text.
                text = interpolate(sql, [sql_literal(p) for p in params])
            else:
                text = sql
        if self.connection.settings_dict.get("SHOW_COMMANDS"):
            text = f"{text}\n{_command_comment(sql)}"
        return text

    def regex_lookup(self, lookup_type: str) -> str:
        return "%s ~ %s" if lookup_type == "regex" else "%s ~* %s"

    # -- dates and times -----------------------------------------------------------
    # PostgreSQL's spelling: EXTRACT, DATE_TRUNC, AT TIME ZONE and CAST, which
    # the compiler translates to MongoDB date operators. Stored datetimes are
    # UTC; `x AT TIME ZONE %s` gives the wall-clock time in that zone.

    def _convert_sql_to_tz(self, sql, params, tzname):
        if tzname and settings.USE_TZ:
            db_tzname = self.connection.timezone_name
            if tzname == db_tzname:
                return sql, params
            if db_tzname != "UTC":
                # Stored values are wall-clock times in the database's TIME_ZONE.
                return f"CONVERT_TZ({sql}, %s, %s)", (
                    *params, self._prepare_tzname(db_tzname), self._prepare_tzname(tzname),
                )
            return f"{sql} AT TIME ZONE %s", (*params, self._prepare_tzname(tzname))
        return sql, params

    def _prepare_tzname(self, tzname):
        # "UTC+05:00" (a fixed-offset zone) → "+05:00", MongoDB's spelling.
        name, sign, offset = split_tzname_delta(tzname)
        if offset:
            return f"{sign}{offset}"
        return name

    def date_extract_sql(self, lookup_type, sql, params):
        if lookup_type == "week_day":
            # Django counts Sunday=1 ... Saturday=7.
            return f"(EXTRACT(DOW FROM {sql}) + 1)", params
        part = _EXTRACT_PARTS.get(lookup_type)
        if part is None:
            raise ValueError(f"Invalid lookup type: {lookup_type!r}")
        return f"EXTRACT({part} FROM {sql})", params

    def datetime_extract_sql(self, lookup_type, sql, params, tzname):
        sql, params = self._convert_sql_to_tz(sql, params, tzname)
        return self.time_extract_sql(lookup_type, sql, params)

    def time_extract_sql(self, lookup_type, sql, params):
        if lookup_type == "second":
            # Whole seconds (EXTRACT(SECOND) includes the fraction).
            return f"EXTRACT(SECOND FROM DATE_TRUNC('second', {sql}))", params
        return self.date_extract_sql(lookup_type, sql, params)

    def _trunc_sql(self, lookup_type, sql, params, tzname):
        if lookup_type not in _TRUNC_UNITS:
            raise DataError(f"Invalid lookup type: {lookup_type!r}")
        sql, params = self._convert_sql_to_tz(sql, params, tzname)
        return f"DATE_TRUNC('{lookup_type}', {sql})", params

    def date_trunc_sql(self, lookup_type, sql, params, tzname=None):
        return self._trunc_sql(lookup_type, sql, params, tzname)

    def datetime_trunc_sql(self, lookup_type, sql, params, tzname):
        return self._trunc_sql(lookup_type, sql, params, tzname)

    def time_trunc_sql(self, lookup_type, sql, params, tzname=None):
        return self._trunc_sql(lookup_type, sql, params, tzname)

    def combine_expression(self, connector, sub_expressions):
        # `^` and `#` mean different things in different SQL dialects.
        if connector == "^":
            return "POWER(%s)" % ", ".join(sub_expressions)
        if connector == "#":
            return "BITXOR(%s)" % ", ".join(sub_expressions)
        return super().combine_expression(connector, sub_expressions)

    # -- durations (stored as integer microseconds) -----------------------------

    def format_for_duration_arithmetic(self, sql):
        # Date arithmetic counts milliseconds (BSON dates' precision).
        return f"({sql} / 1000)"

    def combine_duration_expression(self, connector, sub_expressions):
        if connector in ("*", "/"):
            # duration * number, duration / number: a duration, so in the
            # stored microseconds (undo format_for_duration_arithmetic).
            sub_expressions = [_strip_ms(s) for s in sub_expressions]
        elif connector not in ("+", "-"):
            raise DatabaseError(f"Invalid connector for timedelta: {connector}.")
        return super().combine_duration_expression(connector, sub_expressions)

    def subtract_temporals(self, internal_type, lhs, rhs):
        (lhs_sql, lhs_params), (rhs_sql, rhs_params) = lhs, rhs
        params = (*lhs_params, *rhs_params)
        if internal_type == "TimeField":
            # Times are "HH:MM:SS[.ffffff]" strings: seconds since midnight.
            diff = f"(EXTRACT(EPOCH FROM {lhs_sql}) - EXTRACT(EPOCH FROM {rhs_sql}))"
            return f"CAST(ROUND({diff} * 1000000) AS bigint)", params
        # Dates subtract to milliseconds.
        return f"(({lhs_sql} - {rhs_sql}) * 1000)", params

    def datetime_cast_date_sql(self, sql, params, tzname):
        sql, params = self._convert_sql_to_tz(sql, params, tzname)
        return f"CAST({sql} AS date)", params

    def datetime_cast_time_sql(self, sql, params, tzname):
        sql, params = self._convert_sql_to_tz(sql, params, tzname)
        return f"CAST({sql} AS time)", params

    def sql_flush(self, style, tables, *, reset_sequences=False, allow_cascade=False):
        statements = [
            "%s %s %s;" % (style.SQL_KEYWORD("DELETE"), style.SQL_KEYWORD("FROM"),
                           style.SQL_FIELD(self.quote_name(table)))
            for table in tables
        ]
        if reset_sequences and tables:
            statements.append("-- reset sequences: " + ",".join(tables))
        return statements

    def sequence_reset_by_name_sql(self, style, sequences):
        # MySQL's statement (the compiler reads it): the next id is 1, or the
        # one after the largest id present.
        return [
            "%s %s %s %s = 1;" % (
                style.SQL_KEYWORD("ALTER"), style.SQL_KEYWORD("TABLE"),
                style.SQL_FIELD(self.quote_name(sequence_info["table"])),
                style.SQL_FIELD("AUTO_INCREMENT"),
            )
            for sequence_info in sequences
        ]

    @django_errors
    def execute_sql_flush(self, sql_list):
        # Flushing is a bulk delete per collection; counters are reset here
        # because SQL has no statement for "reset this __schema__ counter".
        reset = [s for s in sql_list if s.startswith("-- reset sequences: ")]
        deletes = [s for s in sql_list if s not in reset]
        super().execute_sql_flush(deletes)
        if reset:
            db = self.connection.connection.database
            for table in reset[0].removeprefix("-- reset sequences: ").split(","):
                sequences.reset(db, table, None)

    # -- values to the database -------------------------------------------------

    def adapt_datefield_value(self, value):
        if value is None:
            return None
        return datetime.datetime(value.year, value.month, value.day)

    def adapt_datetimefield_value(self, value):
        if value is None or hasattr(value, "resolve_expression"):
            return value
        if timezone.is_aware(value):
            if not settings.USE_TZ:
                raise ValueError(
                    "djongo backend does not support timezone-aware datetimes when USE_TZ is False."
                )
            # Stored naive, in the database's TIME_ZONE (UTC unless set).
            value = timezone.make_naive(value, self.connection.timezone)
        return value

    def adapt_timefield_value(self, value):
        if value is None or hasattr(value, "resolve_expression"):
            return value
        if timezone.is_aware(value):
            raise ValueError("djongo backend does not support timezone-aware times.")
        return value.isoformat()

    def adapt_decimalfield_value(self, value, max_digits=None, decimal_places=None):
        if value is None:
            return None
        return Decimal128(value)

    def adapt_integerfield_value(self, value, internal_type):
        return value

    def adapt_json_value(self, value, encoder):
        # Stored as native BSON, not JSON text; the encoder decides what the
        # value is (a datetime becomes its string, as on every backend).
        text = json.dumps(value, cls=encoder)
        try:
            return json_values.JSONValue(json.loads(text))
        except json.JSONDecodeError as exc:
            raise DataError(f"the JSONField's encoder produced invalid JSON: {exc}") from None

    # -- values from the database ------------------------------------------------

    # The converter of each internal type whose stored form Django does not
    # read as is, by method name (built once, not per column of each query).
    _CONVERTERS = {
        "DateField": "convert_datefield_value",
        "TimeField": "convert_timefield_value",
        "DecimalField": "convert_decimalfield_value",
        "UUIDField": "convert_uuidfield_value",
        "BooleanField": "convert_booleanfield_value",
        "DurationField": "convert_duration_microseconds",
        "JSONField": "convert_jsonfield_value",
    }

    def get_db_converters(self, expression):
        converters = super().get_db_converters(expression)
        # Numbers need none: rows read Decimal128 as Decimal (both clients'
        # codecs), which Django's int()/float() output conversion accepts.
        internal_type = expression.output_field.get_internal_type()
        if internal_type == "DateTimeField":
            # Stored datetimes are naive UTC; with USE_TZ they are read in the
            # connection's time zone. Decided once per query, not per value.
            if settings.USE_TZ:
                converters.append(_made_aware(self.connection.timezone))
            return converters
        name = self._CONVERTERS.get(internal_type)
        if name is not None:
            converters.append(getattr(self, name))
        return converters

    def convert_duration_microseconds(self, value, expression, connection):
        # Whole microseconds (duration * decimal gives a Decimal128).
        if isinstance(value, Decimal128):
            value = value.to_decimal()
        if isinstance(value, decimal.Decimal):
            return int(value.to_integral_value())
        return value

    def convert_datefield_value(self, value, expression, connection):
        if isinstance(value, datetime.datetime):
            return value.date()
        return value

    def convert_timefield_value(self, value, expression, connection):
        if isinstance(value, str):
            return datetime.time.fromisoformat(value)
        if isinstance(value, datetime.datetime):
            # A date expression given a TimeField output (DATE_TRUNC of a datetime).
            return value.time()
        return value

    def convert_decimalfield_value(self, value, expression, connection):
        if isinstance(value, Decimal128):
            value = value.to_decimal()
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            value = decimal.Decimal(str(value))
        # A stored column keeps its declared places, as SQL databases return
        # it; a computed value (an aggregate, an expression) keeps its own.
        places = getattr(expression.output_field, "decimal_places", None)
        if (isinstance(value, decimal.Decimal) and places is not None and value.is_finite()
                and isinstance(expression, Col)):
            value = value.quantize(decimal.Decimal(1).scaleb(-places), context=_DECIMALS)
        return value

    def convert_jsonfield_value(self, value, expression, connection):
        # JSONField.from_db_value decodes JSON text with the field's decoder.
        return json_values.from_stored(value)

    def convert_uuidfield_value(self, value, expression, connection):
        if isinstance(value, str):
            return uuid.UUID(value)
        return value

    def convert_booleanfield_value(self, value, expression, connection):
        if isinstance(value, int) and not isinstance(value, bool):
            return bool(value)
        return value


@functools.cache
def _made_aware(tz: datetime.tzinfo) -> Callable[[Any, Any, Any], Any]:
    """The DateTimeField converter under USE_TZ: a naive datetime (stored
    UTC) gets the connection's time zone ``tz``, as ``timezone.make_aware``
    gives it."""

    def convert(value, expression, connection):
        if isinstance(value, datetime.datetime) and value.utcoffset() is None:
            return value.replace(tzinfo=tz)
        return value

    return convert


def _command_comment(sql: str) -> str:
    """What *sql* compiles to, as a SQL comment: the plan of MongoDB commands,
    parameters as ``{"$param": i}`` slots (their values are in the SQL above)."""
    from bson import json_util

    from . import database
    from .cursor import compile_sql

    try:
        plan = compile_sql(sql)
    except database.Error as exc:
        return f"/* MongoDB: not compiled: {str(exc).replace('*/', '* /')} */"
    # A stored string may hold '*/'; JSON lets '/' be written '\\/'.
    shown = json_util.dumps(plan).replace("*/", "*\\/")
    return f"/* MongoDB: {shown} */"
