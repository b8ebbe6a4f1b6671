"""Column collations (``db_collation``) and ``Collate()`` as MongoDB collations.

A collation name is a BCP 47 language tag with Unicode collation keywords,
as PostgreSQL's ICU collations are named, or ``"simple"`` (code point order,
MongoDB's default). It maps one to one onto MongoDB's collation document
(https://www.mongodb.com/docs/manual/reference/collation/)::

    "und-u-ks-level2"   {"locale": "root", "strength": 2}    case-insensitive
    "sv"                {"locale": "sv"}
    "de-u-co-phonebk"   {"locale": "de@collation=phonebook"}
    "en-u-kn-true"      {"locale": "en", "numericOrdering": True}

MongoDB gives a collation to an operation, not to a field. So each
statement runs under one collation: the one its compared columns have (each
column's is recorded in ``__schema__``) or the one it names with
``COLLATE``. The compiler lists both (``plan::collation``); ``choose`` picks
the operation's collation, and refuses a statement whose string comparisons
would need two, rather than compare some of them under the wrong one.
See docs/collations.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from django.db import NotSupportedError

SIMPLE = "simple"

# Unicode collation keywords (UTS #35) → MongoDB's collation options.
_STRENGTHS = {"level1": 1, "level2": 2, "level3": 3, "level4": 4, "identic": 5}
_BOOLEANS = {"true": True, "false": False}
_KEYWORDS: dict[str, tuple[str, dict[str, object]]] = {
    "ks": ("strength", _STRENGTHS),
    "kc": ("caseLevel", _BOOLEANS),
    "kn": ("numericOrdering", _BOOLEANS),
    "kf": ("caseFirst", {"upper": "upper", "lower": "lower", "false": "off"}),
    "ka": ("alternate", {"shifted": "shifted", "noignore": "non-ignorable"}),
    "kv": ("maxVariable", {"punct": "punct", "space": "space"}),
}
# BCP 47 collation types (`-u-co-`) as ICU's locale keywords name them.
_TYPES = {"phonebk": "phonebook", "trad": "traditional", "dict": "dictionary",
          "gb2312": "gb2312han"}

# Column types whose values are never strings, so no collation changes how
# they compare (records' "type", from DatabaseWrapper.data_types).
_NOT_TEXT = ("integer", "bigint", "smallint", "serial", "bigserial", "smallserial", "bool",
             "boolean", "date", "datetime", "timestamp", "decimal", "numeric", "real",
             "double", "float", "blob", "bytea", "objectid")


def to_mongo(name: str) -> dict | None:
    """MongoDB's collation document for ``name``; ``None`` for ``"simple"``.

    Raises ``NotSupportedError`` for a name that is no collation.
    """
    if name == SIMPLE:
        return None
    head, _, extension = name.partition("-u-")
    subtags = head.replace("_", "-").split("-")
    if not subtags[0].isalpha() or not all(s.isalnum() for s in subtags):
        raise NotSupportedError(
            _invalid(name, "a BCP 47 language tag such as 'sv' or 'und-u-ks-level2'"))
    locale = "_".join([subtags[0].lower(), *subtags[1:]])
    if locale == "und":
        locale = "root"
    options: dict[str, object] = {}
    words = extension.lower().split("-") if extension else []
    for key, value in zip(words[::2], words[1::2], strict=False):
        if key == "co" and value.isalnum():
            locale = f"{locale}@collation={_TYPES.get(value, value)}"
            continue
        option, values = _KEYWORDS.get(key, (None, {}))
        if option is None or value not in values:
            raise NotSupportedError(_invalid(name, f"unknown collation keyword '-{key}-{value}'"))
        options[option] = values[value]
    if len(words) % 2:
        raise NotSupportedError(_invalid(name, f"the keyword '-{words[-1]}' has no value"))
    return {"locale": locale, **options}


def _invalid(name: str, why: str) -> str:
    return f"collation {name!r} is not one djongo knows: {why} (docs/collations.md)"


def is_text(column_type: str | None) -> bool:
    """Whether a column of this recorded type may hold strings (an unknown
    type may)."""
    return column_type is None or not column_type.lower().startswith(_NOT_TEXT)


def choose(names: Iterable[str], columns: Iterable[tuple[str, str]],
           collation_of: Callable[[str, str], str | None],
           type_of: Callable[[str, str], str | None]) -> dict | None:
    """The collation document of a statement's operations, or ``None`` (simple).

    ``names`` are the collations the statement names (``COLLATE``);
    ``columns`` the ``(table, column)`` it compares bare, each compared under
    its own collation (``collation_of``; ``None``: simple). Every comparison
    of strings must have the same one: MongoDB takes one per operation.
    """
    wanted: dict[str, list[str]] = {}
    for name in names:
        wanted.setdefault(name, []).append(f"COLLATE {name!r}")
    columns = list(columns)
    collated = [(t, c, collation_of(t, c)) for t, c in columns]
    for table, column, collation in collated:
        if collation is not None and collation != SIMPLE:
            wanted.setdefault(collation, []).append(f'"{table}"."{column}"')
    if not wanted:
        return None
    for table, column, collation in collated:
        if (collation is None or collation == SIMPLE) and is_text(type_of(table, column)):
            wanted.setdefault(SIMPLE, []).append(f'"{table}"."{column}"')
    if len(wanted) > 1:
        uses = "; ".join(f"{name!r} for {', '.join(where)}"
                         for name, where in sorted(wanted.items()))
        raise NotSupportedError(
            "a statement compares strings under one collation on MongoDB (it takes one per "
            f"operation), and this one needs several: {uses}. Give the columns one collation, "
            "or name it with Collate() on each (docs/collations.md)")
    (name,) = wanted
    return to_mongo(name)
