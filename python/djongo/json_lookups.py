"""The SQL Django's JSONField lookups and transforms write on djongo.

Django picks ``as_<vendor>`` methods of expressions before ``as_sql``; these
are djongo's, in the dialect of SQLite and MySQL's JSON functions, which the
compiler understands:

* ``JSON_EXTRACT(x, '$."key"[0]')``: key and index transforms;
* ``JSON_UNQUOTE(...)``: ``KT()`` and the text lookups (``->>``);
* ``JSON_TYPE(x, path) IS [NOT] NULL``: ``has_key``, ``has_keys``,
  ``has_any_keys`` and ``key__isnull``;
* ``JSON_CONTAINS(container, candidate)``: ``contains``, ``contained_by``
  (Django's own SQL for them; nothing to add here).

A key is written as a JSON string inside a string literal (Django's
``compile_json_path``), never as SQL, an operator or a dotted path: the
compiler reads it back as exactly one key (crates/compiler/src/plan/build/
json.rs).
"""

from __future__ import annotations

from django.db.models.fields.json import (
    HasKeyLookup,
    HasKeyOrArrayIndex,
    JSONExact,
    KeyTextTransform,
    KeyTransform,
    KeyTransformIsNull,
    compile_json_path,
)


def path_literal(path: str) -> str:
    """A JSON path as a SQL string literal: quotes doubled, and ``%`` doubled
    as Django's parameter style wants outside parameters."""
    return "'%s'" % path.replace("'", "''").replace("%", "%%")


def key_transform(self, compiler, connection):
    lhs, params, keys = self.preprocess_lhs(compiler, connection)
    return f"JSON_EXTRACT({lhs}, {path_literal(compile_json_path(keys))})", tuple(params)


def key_text_transform(self, compiler, connection):
    sql, params = key_transform(self, compiler, connection)
    return f"JSON_UNQUOTE({sql})", params


def _has_keys(lookup, compiler, connection, test: str):
    parts, params = [], []
    for lhs_sql, lhs_params, path in lookup._as_sql_parts(compiler, connection):
        parts.append(f"JSON_TYPE({lhs_sql}, {path_literal(path)}) {test}")
        params.extend(lhs_params)
    return lookup._combine_sql_parts(parts), tuple(params)


def has_key(self, compiler, connection):
    return _has_keys(self, compiler, connection, "IS NOT NULL")


def key_isnull(self, compiler, connection):
    # key__isnull=False is has_key (a key holding JSON null has it), and an
    # integer key is also an array index, as on SQLite.
    lookup = HasKeyOrArrayIndex(self.lhs.lhs, self.lhs.key_name)
    return _has_keys(lookup, compiler, connection, "IS NULL" if self.rhs else "IS NOT NULL")


def json_exact(self, compiler, connection):
    lhs, lhs_params = self.process_lhs(compiler, connection)
    rhs, rhs_params = self.process_rhs(compiler, connection)
    if not isinstance(self.lhs, KeyTransform):
        # The whole value, compared as a value: in a filter on the bare
        # column MongoDB would also match an array holding the value.
        lhs = f"JSON_EXTRACT({lhs}, '$')"
    return f"{lhs} = {rhs}", (*lhs_params, *rhs_params)


def register() -> None:
    KeyTransform.as_djongo = key_transform
    KeyTextTransform.as_djongo = key_text_transform
    HasKeyLookup.as_djongo = has_key
    KeyTransformIsNull.as_djongo = key_isnull
    JSONExact.as_djongo = json_exact  # KeyTransformExact's too
