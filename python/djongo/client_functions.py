"""SQL functions MongoDB has no operator for, computed by the backend.

MD5() and the SHA*() hashes, CHR() and ORD() on a column of the outermost
SELECT list as the rows arrive (the plan's ``post``), and compared with a
constant in its WHERE (the plan's ``post_filter``: the rows are kept or
dropped as they arrive, crates/compiler/src/lower/client.rs says when). Of a constant they are
computed when the statement is bound (an ``$apply`` slot,
crates/compiler/src/bind/functions.rs, with the same rules); the compiler
refuses them anywhere else (crates/compiler/src/lower/client.rs).
"""

from __future__ import annotations

import hashlib
import operator
from collections.abc import Callable, Iterator
from typing import Any

from .database import DataError


def _text(value: Any) -> bytes:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, bool):
        value = "true" if value else "false"
    return str(value).encode("utf-8")


def _hash(algorithm: str) -> Callable[[Any], str]:
    def digest(value: Any) -> str:
        return hashlib.new(algorithm, _text(value)).hexdigest()

    return digest


def _chr(value: Any) -> str:
    try:
        return chr(int(value))
    except (TypeError, ValueError, OverflowError):
        raise DataError(f"CHR(): {value!r} is not a code point") from None


def _ord(value: Any) -> int:
    text = value if isinstance(value, str) else str(value)
    return ord(text[0]) if text else 0


def _code_prefix(value: Any) -> str:
    # What ORD() of a string compares as: '' for 0 (an empty string's ORD).
    return "" if int(value) == 0 else _chr(value)


FUNCTIONS: dict[str, Callable[[Any], Any]] = {
    **{name: _hash(name) for name in ("md5", "sha1", "sha224", "sha256", "sha384", "sha512")},
    "chr": _chr,
    "ord": _ord,
    "code_prefix": _code_prefix,
}


def apply(name: str, value: Any) -> Any:
    """``name(value)``; SQL NULL in, SQL NULL out."""
    if value is None:
        return None
    try:
        function = FUNCTIONS[name]
    except KeyError:
        raise DataError(f"unknown function {name!r} in the plan") from None
    return function(value)


def post_process(rows: Iterator[tuple], post: list) -> Iterator[tuple]:
    """Rows with the functions of the plan's ``post`` applied to their columns."""
    steps = [(int(i), name) for i, name in post]
    for row in rows:
        values = list(row)
        for i, name in steps:
            values[i] = apply(name, values[i])
        yield tuple(values)


COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq, "ne": operator.ne, "lt": operator.lt,
    "le": operator.le, "gt": operator.gt, "ge": operator.ge,
}


def _holds(condition: dict, row: tuple) -> bool:
    """``apply(row[column]) op value``; a NULL on either side is not TRUE."""
    value = apply(condition["apply"], row[int(condition["column"])])
    constant = condition["value"]
    if value is None or constant is None:
        return False
    try:
        return COMPARISONS[condition["op"]](value, constant)
    except TypeError:
        raise DataError(
            f"{condition['apply'].upper()}() compared with {constant!r}, "
            f"a value of another type") from None


def post_filter(rows: Iterator[tuple], conditions: list[dict], hidden: int) -> Iterator[tuple]:
    """The rows for which every condition holds, without the ``hidden``
    trailing columns that the conditions read."""
    for row in rows:
        if all(_holds(c, row) for c in conditions):
            yield tuple(row[:-hidden])
