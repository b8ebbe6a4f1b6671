"""JSON values as Django's JSONField stores them, and JSON containment.

A JSONField holds native BSON: a JSON object is a document, an array an
array, a string a string (not JSON text), so any MongoDB tool can query it.
SQL NULL is BSON null, as in every column; a JSON ``null`` standing for a
whole column value is MinKey, which no JSON value maps to (inside a document
a JSON null is BSON null). The compiler reads paths the same way
(crates/compiler/src/lower/json.rs).

``DatabaseOperations.adapt_json_value`` wraps each JSON value Django sends in
a ``JSONValue``, so the binder tells it from text: where a JSON function
expects a JSON value, a plain ``str`` parameter is JSON text, as SQL's JSON
functions read it (``RawSQL('%s', ['{"x": 1}'])``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from bson.min_key import MinKey
from django.db.utils import DataError, NotSupportedError


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


def parameter(value: Any, to_bson: Callable[[Any], Any]) -> Any:
    """A parameter where a JSON function expects a JSON value."""
    if isinstance(value, JSONValue):
        return to_stored(value.value, to_bson)
    if isinstance(value, str):
        try:
            return to_stored(json.loads(value), to_bson)
        except json.JSONDecodeError as exc:
            raise DataError(f"not valid JSON text: {exc}") from None
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


# -- containment -----------------------------------------------------------
#
# JSON_CONTAINS(container, candidate), MySQL's rules (as Django documents
# ``contains``): a candidate object is contained in a container object when
# each of its keys is there with a value containing the candidate's; a
# candidate array when each element is contained in some element of the
# container array; any other candidate in an array when it is contained in
# some element; scalars when they are equal. One side is a value known when
# the statement is bound; the expression is expanded over its structure, so
# it runs in the server (on MongoDB too) however deep the value is. On the
# other, computed side an array met where the value is not one is searched
# one level deep.


def _lit(value: Any) -> dict:
    return {"$literal": value}


def _type_is(expr: Any, name: str) -> dict:
    return {"$eq": [{"$type": expr}, name]}


def _and(parts: list) -> Any:
    parts = [p for p in parts if p is not True]
    if not parts:
        return True
    return parts[0] if len(parts) == 1 else {"$and": parts}


def _or(parts: list) -> Any:
    if not parts:
        return False
    return parts[0] if len(parts) == 1 else {"$or": parts}


def _any(array: Any, name: str, cond: Any) -> dict:
    return {"$anyElementTrue": [{"$map": {"input": array, "as": name, "in": cond}}]}


def _all(array: Any, name: str, cond: Any) -> dict:
    return {"$allElementsTrue": [{"$map": {"input": array, "as": name, "in": cond}}]}


class _Names:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> str:
        self.count += 1
        return f"jc{self.count}"


def contains(expr: Any, value: Any, value_is: str) -> Any:
    """An aggregation expression: whether the computed JSON value ``expr``
    contains the known ``value`` (``value_is == "contained"``) or is
    contained in it (``"container"``). NULL on either side gives NULL."""
    if value is None:
        return None
    if _depth(value) > MAX_CONTAINS_DEPTH:
        raise NotSupportedError(
            f"contains / contained_by with a value nested more than {MAX_CONTAINS_DEPTH} levels "
            "deep (its expression would nest deeper than MongoDB accepts)")
    names = _Names()
    var = names()
    body = (_contains_value(f"$${var}", value, names) if value_is == "contained"
            else _contained_in_value(f"$${var}", value, names))
    return {"$let": {"vars": {var: expr}, "in": {"$cond": [
        {"$eq": [{"$ifNull": [f"$${var}", None]}, None]}, None, body]}}}


#: Deepest contains / contained_by value: each level nests the expression
#: about 10 levels, and MongoDB accepts commands nested at most 200 deep.
MAX_CONTAINS_DEPTH = 16


def _depth(value: Any) -> int:
    depth, level = 0, [value]
    while level:
        level = [v for item in level
                 for v in (item.values() if isinstance(item, dict)
                           else item if isinstance(item, list) else ())]
        depth += 1
    return depth - 1


def _is_json_null(expr: Any) -> dict:
    return {"$in": [{"$type": expr}, ["null", "minKey"]]}


def _scalar_equal(expr: Any, value: Any) -> Any:
    if isinstance(value, MinKey) or value is None:
        return _is_json_null(expr)
    return {"$eq": [expr, _lit(value)]}


def _each(expr: str, names: _Names, test: Callable[[str], Any], combine: str) -> dict:
    """``test`` over the elements of ``expr`` if it is an array, else over
    ``expr`` alone, combined by ``$anyElementTrue`` / ``$allElementsTrue``:
    one expansion of ``test`` serves both cases, so the expression grows
    with the value, never exponentially."""
    element = names()
    candidates = {"$cond": [{"$isArray": expr}, expr, [expr]]}
    return {combine: [{"$map": {"input": candidates, "as": element,
                                "in": test(f"$${element}")}}]}


def _contains_value(x: str, value: Any, names: _Names) -> Any:
    """``x`` (a variable reference) contains the known ``value``."""
    if isinstance(value, list):
        element = names()
        direct = _and([_any(x, element, _contains_value(f"$${element}", item, names))
                       for item in value])
        return {"$cond": [{"$isArray": x}, direct, False]}
    # A non-array value is contained in an array when it is in some element.
    return _each(x, names, lambda e: _contains_direct(e, value, names), "$anyElementTrue")


def _contains_direct(x: str, value: Any, names: _Names) -> Any:
    if isinstance(value, dict):
        parts = []
        for key, item in value.items():
            field = names()
            got = {"$getField": {"field": _lit(key), "input": x}}
            parts.append({"$let": {"vars": {field: got}, "in": _and([
                {"$ne": [{"$type": got}, "missing"]},
                _contains_value(f"$${field}", item, names),
            ])}})
        return {"$cond": [_type_is(x, "object"), _and(parts), False]}
    return _scalar_equal(x, value)


def _contained_in_value(y: str, value: Any, names: _Names) -> Any:
    """``y`` (a variable reference) is contained in the known ``value``."""
    if isinstance(value, list):
        # Each element of an array y, or y itself, in some element of value.
        return _each(y, names, lambda e: _or([_contained_direct(e, item, names)
                                              for item in value]), "$allElementsTrue")
    return _contained_direct(y, value, names)


def _contained_direct(y: str, value: Any, names: _Names) -> Any:
    if isinstance(value, dict):
        pair = names()
        branches = [
            {"case": {"$eq": [f"$${pair}.k", _lit(key)]},
             "then": _contained_in_value(f"$${pair}.v", item, names)}
            for key, item in value.items()
        ]
        each_key = {"$switch": {"branches": branches, "default": False}} if branches else False
        return {"$cond": [_type_is(y, "object"),
                          _all({"$objectToArray": y}, pair, each_key), False]}
    if isinstance(value, list):
        return _contained_in_value(y, value, names)
    return _scalar_equal(y, value)
