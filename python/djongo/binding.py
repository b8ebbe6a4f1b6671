"""Binding statement parameters into a plan's slots (docs/plan-format.md).

Parameters are values, never operators: a slot is replaced by the
parameter's BSON form and the result is not walked again, so a string like
``{"$gt": ""}`` from a web form stays a string.

``Binder`` is ``djongo._core.Binder`` (the compiler's own ``bind`` module):
the embedded store's client binds plans in Rust, and the pymongo path gets
the same bound values back as Python objects. ``to_bson`` is the same
conversion for values the backend writes itself (defaults, records).
"""

from __future__ import annotations

import datetime
import decimal
import uuid
from typing import Any

from bson import Decimal128
from django.db.utils import DataError as DjangoDataError

from . import json_values
from ._core import Binder
from .json_values import JSONValue

__all__ = ["Binder", "MAX_NESTING", "decimal128_bid", "to_bson"]

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


def decimal128_bid(value: decimal.Decimal) -> bytes:
    """The Decimal128 encoding of ``value``, rounded to 34 digits (used by the
    Rust conversion of parameters)."""
    return Decimal128(_DECIMAL_CONTEXT.create_decimal(value)).bid
