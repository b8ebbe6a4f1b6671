"""JSON values as Django's JSONField stores them, and JSON containment.

A JSONField holds native BSON: a JSON object is a document, an array an
array, a string a string (not JSON text), so any MongoDB tool can query it.
SQL NULL is BSON null, as in every column; a JSON ``null`` standing for a
whole column value is MinKey, which no JSON value maps to (inside a document
a JSON null is BSON null). The compiler reads paths the same way
(crates/compiler/src/lower/json.rs).

``DatabaseOperations.adapt_json_value`` wraps each JSON value Django sends in
a ``JSONValue``, so the binder (``djongo._core.Binder``) tells it from text:
where a JSON function expects a JSON value, a plain ``str`` parameter is JSON
text, as SQL's JSON functions read it (``RawSQL('%s', ['{"x": 1}'])``). JSON
containment is expanded by the binder too (crates/compiler/src/bind/json.rs).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from bson.min_key import MinKey


class JSONValue:
    """A JSON value (the result of ``json.loads``) on its way to the server."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, JSONValue) and other.value == self.value

    def __hash__(self) -> int:
        return hash(json.dumps(self.value, sort_keys=True))

    def __repr__(self) -> str:
        return f"JSONValue({self.value!r})"

    def as_json(self) -> str:
        return json.dumps(self.value)


def to_stored(value: Any, to_bson: Callable[[Any], Any]) -> Any:
    """A JSON value as stored: JSON null is MinKey at the top, BSON null inside."""
    if value is None:
        return MinKey()
    return to_bson(value)


def from_stored(value: Any) -> str | None:
    """A stored JSON value as JSON text, for JSONField.from_db_value (which
    decodes it with the field's decoder)."""
    if value is None:
        return None
    if isinstance(value, MinKey):
        return "null"
    return json.dumps(value, default=_bson_default)


def _bson_default(value: Any) -> Any:
    # Values another MongoDB client wrote: what JSON can carry of them.
    if isinstance(value, MinKey):
        return None
    to_decimal = getattr(value, "to_decimal", None)
    if to_decimal is not None:
        value = to_decimal()
    if hasattr(value, "is_finite"):
        return float(value)
    isoformat = getattr(value, "isoformat", None)
    if isoformat is not None:
        return isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return str(value)
