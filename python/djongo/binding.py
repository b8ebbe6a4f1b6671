"""Binding statement parameters into a plan's slots (docs/plan-format.md).

Parameters are values, never operators: a slot is replaced by the
parameter's BSON form and the result is not walked again, so a string like
``{"$gt": ""}`` from a web form stays a string.
"""

from __future__ import annotations

import datetime
import decimal
import re
import uuid
from collections.abc import Sequence
from typing import Any

from bson import Decimal128
from django.db.utils import DataError as DjangoDataError

from . import client_functions, json_values
from .database import DataError, ProgrammingError
from .json_values import JSONValue

# Decimal128 carries 34 significant digits; Django's DecimalField allows fewer.
_DECIMAL_CONTEXT = decimal.Context(prec=34)


# MongoDB stores documents nested at most 100 levels deep.
MAX_NESTING = 100


def to_bson(value: Any, depth: int = 0) -> Any:
    """The BSON-encodable form of a Python parameter value.

    Dict keys become strings; a value nested deeper than MongoDB stores
    raises ``DataError`` (django.db's) rather than exhausting the stack.
    """
    if value is None or isinstance(value, (bool, int, float, str, bytes)):
        return value
    if isinstance(value, JSONValue):
        # A JSONField's value: JSON null is MinKey, not SQL NULL.
        return json_values.to_stored(value.value, lambda v: to_bson(v, depth))
    if isinstance(value, datetime.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(datetime.UTC).replace(tzinfo=None)
        return value
    if isinstance(value, datetime.date):
        return datetime.datetime(value.year, value.month, value.day)
    if isinstance(value, datetime.time):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return (value.days * 86400 + value.seconds) * 1_000_000 + value.microseconds
    if isinstance(value, decimal.Decimal):
        return Decimal128(_DECIMAL_CONTEXT.create_decimal(value))
    if isinstance(value, uuid.UUID):
        return value.hex
    if isinstance(value, (memoryview, bytearray)):
        return bytes(value)
    if isinstance(value, (dict, list, tuple, set, frozenset)):
        if depth >= MAX_NESTING:
            raise DjangoDataError(f"a value nested more than {MAX_NESTING} levels deep "
                                  "(MongoDB's limit)")
        if isinstance(value, dict):
            return {str(k): to_bson(v, depth + 1) for k, v in value.items()}
        return [to_bson(v, depth + 1) for v in value]
    return value


def like_to_regex(pattern: Any) -> str:
    """A SQL LIKE pattern (escape character ``\\``) as an anchored regular expression."""
    if not isinstance(pattern, str):
        pattern = str(pattern)
    out = ["^"]
    chars = iter(pattern)
    for char in chars:
        if char == "\\":
            out.append(re.escape(next(chars, "\\")))
        elif char == "%":
            out.append(".*")
        elif char == "_":
            out.append(".")
        else:
            out.append(re.escape(char))
    out.append("$")
    return "".join(out)


class _Unknown(ProgrammingError):
    """A comparison met a NULL bound late: in SQL it is UNKNOWN, never TRUE.

    Raised by a ``null_unknown`` slot bound to None (and by a ``NOT IN``
    subquery that returned a NULL); caught where the query language can drop
    the condition: an ``$or`` branch, an ``$in`` item, or a whole filter,
    which then selects nothing.
    """


# A filter that matches no document (what the compiler writes for FALSE).
NEVER: dict[str, Any] = {"$expr": False}


class Binder:
    """Replaces the slots of one plan with one statement's values."""

    def __init__(self, params: Sequence[Any], subquery_results: Sequence[Any] = ()) -> None:
        self.params = params
        self.subquery_results = subquery_results

    def bind(self, node: Any) -> Any:
        if isinstance(node, dict):
            if "$param" in node:
                return self._param(node)
            if "$subquery" in node:
                return self._subquery(node)
            if "$jsonContains" in node:
                return self._json_contains(node["$jsonContains"])
            if "$apply" in node:
                return client_functions.apply(node["$apply"], self.bind(node["arg"]))
            out = {}
            for key, value in node.items():
                if key == "$match":
                    out[key] = self.bind_filter(value)
                elif key == "$or" and isinstance(value, list):
                    out[key] = self._bind_or(value)
                elif key == "$in" and isinstance(value, list):
                    out[key] = self._bind_in(value)
                else:
                    out[key] = self.bind(value)
            if "$limit" in node and out.get("$limit") == 0 and len(out) == 1:
                # MongoDB refuses `$limit: 0`; SQL's LIMIT 0 selects nothing.
                return {"$match": dict(NEVER)}
            return out
        if isinstance(node, list):
            return [self.bind(item) for item in node]
        return node

    def bind_filter(self, node: Any) -> Any:
        """A query-language filter; one made UNKNOWN by a NULL selects nothing."""
        try:
            return self.bind(node)
        except _Unknown:
            return dict(NEVER)

    def _bind_or(self, branches: list) -> list:
        kept = []
        for branch in branches:
            try:
                kept.append(self.bind(branch))
            except _Unknown:
                continue
        if not kept:
            raise _Unknown
        return kept

    def _bind_in(self, items: list) -> list:
        # `x IN (1, NULL)` is TRUE exactly when `x IN (1)` is.
        kept = []
        for item in items:
            try:
                kept.append(self.bind(item))
            except _Unknown:
                continue
        return kept

    def _param(self, slot: dict[str, Any]) -> Any:
        index = slot["$param"]
        try:
            value = self.params[index]
        except IndexError:
            raise ProgrammingError(
                f"the statement uses parameter {index + 1} but {len(self.params)} were given"
            ) from None
        if value is None:
            if slot.get("null_unknown"):
                raise _Unknown
            return None
        clause = slot.get("count")
        if clause:
            # LIMIT / OFFSET: PostgreSQL's rules (pymongo would read a
            # negative limit as "one batch").
            if isinstance(value, bool) or not isinstance(value, int):
                raise ProgrammingError(f"{clause} must be an integer, not {value!r}")
            if value < 0:
                raise DataError(f"{clause} must not be negative")
            return value
        if slot.get("like"):
            return like_to_regex(value)
        if slot.get("json"):
            return json_values.parameter(value, to_bson)
        if slot.get("negate"):
            # LAG(x, %s): MongoDB's $shift takes the offset as a constant.
            if not isinstance(value, int) or isinstance(value, bool):
                raise ProgrammingError(f"LAG/LEAD offset must be an integer, not {value!r}")
            return -value
        return to_bson(value)

    def _json_contains(self, spec: dict[str, Any]) -> Any:
        """JSON_CONTAINS with one side known: an expression expanded over it."""
        value = spec["value"]
        if isinstance(value, dict) and "$literal" in value:
            value = value["$literal"]
        else:
            value = self.bind(value)
        return json_values.contains(self.bind(spec["expr"]), value, spec["value_is"])

    def _subquery(self, slot: dict[str, Any]) -> Any:
        rows = self.subquery_results[slot["$subquery"]]
        if slot.get("exists"):
            return bool(rows)
        if slot.get("scalar"):
            if len(rows) > 1:
                raise ProgrammingError("a scalar subquery returned more than one row")
            value = rows[0][slot.get("column", 0)] if rows else None
            if value is None and slot.get("null_unknown"):
                raise _Unknown
            return value
        values = [row[0] for row in rows]
        nulls = slot.get("nulls")
        if nulls == "skip":
            return [v for v in values if v is not None]
        if nulls == "unknown" and any(v is None for v in values):
            raise _Unknown
        return values
