"""SQL functions MongoDB has no operator for, computed by the backend.

MD5() and the SHA*() hashes, CHR() and ORD() on a column of the outermost
SELECT list as the rows arrive (the plan's ``post``). Of a constant they are
computed when the statement is bound (an ``$apply`` slot,
crates/compiler/src/bind/functions.rs, with the same rules); the compiler
refuses them anywhere else (crates/compiler/src/lower/client.rs).
"""

from __future__ import annotations

import hashlib
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
