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

from .database import ProgrammingError

# Decimal128 carries 34 significant digits; Django's DecimalField allows fewer.
_DECIMAL_CONTEXT = decimal.Context(prec=34)


def to_bson(value: Any) -> Any:
    """The BSON-encodable form of a Python parameter value."""
    if value is None or isinstance(value, (bool, int, float, str, bytes)):
        return value
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
    if isinstance(value, dict):
        return {str(k): to_bson(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_bson(v) for v in value]
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
            return {key: self.bind(value) for key, value in node.items()}
        if isinstance(node, list):
            return [self.bind(item) for item in node]
        return node

    def _param(self, slot: dict[str, Any]) -> Any:
        index = slot["$param"]
        try:
            value = self.params[index]
        except IndexError:
            raise ProgrammingError(
                f"the statement uses parameter {index + 1} but {len(self.params)} were given"
            ) from None
        if slot.get("like"):
            return like_to_regex(value)
        if slot.get("negate"):
            # LAG(x, %s): MongoDB's $shift takes the offset as a constant.
            if not isinstance(value, int) or isinstance(value, bool):
                raise ProgrammingError(f"LAG/LEAD offset must be an integer, not {value!r}")
            return -value
        return to_bson(value)

    def _subquery(self, slot: dict[str, Any]) -> Any:
        rows = self.subquery_results[slot["$subquery"]]
        if slot.get("exists"):
            return bool(rows)
        if slot.get("scalar"):
            if len(rows) > 1:
                raise ProgrammingError("a scalar subquery returned more than one row")
            return rows[0][slot.get("column", 0)] if rows else None
        return [row[0] for row in rows]
