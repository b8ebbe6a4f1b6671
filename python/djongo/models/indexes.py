"""MongoDB's own index kinds for ``Meta.indexes``, created and dropped by migrations.

* ``MongoIndex``: Django's ``Index`` with MongoDB's ``sparse`` and ``hidden``.
* ``TTLIndex``: MongoDB deletes a document once the date in its indexed field
  is ``expire_after_seconds`` old (the embedded engine's TTL monitor does so
  every 60 s, as mongod's).
* ``CompoundIndex``: per-field directions, ``unique``, ``sparse``, a partial
  filter from a ``Q`` (``condition``) and a ``collation``.
* ``TextIndex``: a text index over string fields, for ``$text`` searches
  (``djongo.models.TextSearch``), with per-field ``weights``.
* ``HashedIndex``: equality lookups by a hash of the value.
* ``WildcardIndex``: every path under a field, or the whole document.
* ``TwoDSphereIndex``: GeoJSON locations (``djongo.models.PointField``) for
  ``$near``/``$geoNear`` and the geo lookups.

Each is written to SQL as ``CREATE INDEX ... WITH (...)``, its kind as
``WITH (kind = 'text' | 'hashed' | 'wildcard' | '2dsphere')``, which the
compiler turns into MongoDB's key pattern and ``createIndexes``
(crates/compiler/src/plan/build/ddl.rs; it still reads ``USING "2dsphere"``,
which djongo wrote for ``TwoDSphereIndex`` before).
"""

from __future__ import annotations

import json
from typing import Any

from django.db.models import Index

# The largest expireAfterSeconds MongoDB accepts.
MAX_EXPIRE_AFTER_SECONDS = 2**31 - 1


class MongoIndex(Index):
    """An ``Index`` that also sets MongoDB index options: ``sparse`` (documents
    without the fields are left out of the index) and ``hidden`` (kept up to
    date, not used by queries)."""

    def __init__(self, *args: Any, sparse: bool = False, hidden: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sparse = bool(sparse)
        self.hidden = bool(hidden)

    def mongo_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {}
        if self.sparse:
            options["sparse"] = True
        if self.hidden:
            options["hidden"] = True
        return options

    def model_options(self, model) -> dict[str, Any]:
        """``mongo_options`` for this index on ``model`` (where field names
        become column names)."""
        return self.mongo_options()

    def create_sql(self, model, schema_editor, using="", **kwargs):
        options = self.model_options(model)
        if options and schema_editor.connection.vendor == "djongo":
            with_clause = _with_clause(options, schema_editor.quote_name)
            template = kwargs.pop("sql", None) or schema_editor.sql_create_index
            kwargs["sql"] = template.replace("%(condition)s", f" WITH ({with_clause})%(condition)s")
        return super().create_sql(model, schema_editor, using=using, **kwargs)

    def deconstruct(self):
        path, args, kwargs = super().deconstruct()
        if self.sparse:
            kwargs["sparse"] = True
        if self.hidden:
            kwargs["hidden"] = True
        return path.replace("djongo.models.indexes", "djongo.models"), args, kwargs


class TTLIndex(MongoIndex):
    """``TTLIndex(fields=["last_seen"], expire_after_seconds=3600, name="...")``:
    documents expire ``expire_after_seconds`` after the date in their field.

    One field, holding a ``DateTimeField``/``DateField`` value; documents
    whose field is missing or not a date never expire. A ``condition``
    (a partial index) limits expiry to the documents it matches.
    """

    def __init__(self, *args: Any, expire_after_seconds: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if len(self.fields) != 1 or self.expressions:
            raise ValueError("TTLIndex is on exactly one field: MongoDB expires documents "
                             "only through single-field indexes.")
        seconds = expire_after_seconds
        if (isinstance(seconds, bool) or not isinstance(seconds, int)
                or not 0 <= seconds <= MAX_EXPIRE_AFTER_SECONDS):
            raise ValueError(f"TTLIndex.expire_after_seconds must be an integer from 0 to "
                             f"{MAX_EXPIRE_AFTER_SECONDS}, not {seconds!r}.")
        self.expire_after_seconds = seconds

    def mongo_options(self) -> dict[str, Any]:
        return {"expireAfterSeconds": self.expire_after_seconds, **super().mongo_options()}

    def deconstruct(self):
        path, args, kwargs = super().deconstruct()
        kwargs["expire_after_seconds"] = self.expire_after_seconds
        return path, args, kwargs


class CompoundIndex(MongoIndex):
    """``CompoundIndex(fields=["author", "-pub_date"], unique=True, condition=Q(...),
    collation={"locale": "fr", "strength": 2}, name="...")``: an index over
    several fields, each ascending or (``-field``) descending.

    ``unique`` makes MongoDB refuse two documents with the same key (rows
    with a NULL in the key are left out, as SQL's UNIQUE does); ``condition``
    (a ``Q``) becomes the index's ``partialFilterExpression``; ``collation``
    is MongoDB's collation document.
    """

    def __init__(self, *args: Any, unique: bool = False,
                 collation: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if collation is not None and not isinstance(collation, dict):
            raise ValueError("CompoundIndex.collation must be a dict such as {'locale': 'fr'}.")
        self.unique = bool(unique)
        self.collation = collation

    def mongo_options(self) -> dict[str, Any]:
        options = super().mongo_options()
        if self.collation:
            options["collation"] = json.dumps(self.collation, sort_keys=True)
        return options

    def create_sql(self, model, schema_editor, using="", **kwargs):
        if self.unique:
            kwargs.setdefault("sql", schema_editor.sql_create_index.replace(
                "CREATE INDEX", "CREATE UNIQUE INDEX", 1))
        return super().create_sql(model, schema_editor, using=using, **kwargs)

    def deconstruct(self):
        path, args, kwargs = super().deconstruct()
        if self.unique:
            kwargs["unique"] = True
        if self.collation:
            kwargs["collation"] = self.collation
        return path, args, kwargs


class TextIndex(MongoIndex):
    """``TextIndex(fields=["headline", "body_text"], weights={"headline": 10},
    default_language="english", name="...")``: a text index, which
    ``$text`` searches (``TextSearch``) need. MongoDB allows one per
    collection.

    ``weights`` (1 to 99999, default 1) multiply a field's part of a
    document's score; ``default_language`` picks the stop words and stemmer
    ("none" for neither); ``language_override`` names the field a document
    may use to give its own language (default ``"language"``).
    """

    suffix = "text"

    def __init__(self, *args: Any, weights: dict[str, int] | None = None,
                 default_language: str | None = None, language_override: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.expressions or any(f.startswith("-") for f in self.fields):
            raise ValueError("TextIndex indexes fields by name, without directions.")
        weights = dict(weights or {})
        for field_name, weight in weights.items():
            if field_name not in self.fields:
                raise ValueError(f"TextIndex.weights names {field_name!r}, which is not one of "
                                 f"its fields {self.fields!r}.")
            if isinstance(weight, bool) or not isinstance(weight, int) or not 0 < weight < 100000:
                raise ValueError(f"TextIndex weight of {field_name!r} must be an integer from 1 "
                                 f"to 99999, not {weight!r}.")
        self.weights = weights
        self.default_language = default_language
        self.language_override = language_override

    def mongo_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"kind": "text"}
        if self.default_language:
            options["default_language"] = self.default_language
        if self.language_override:
            options["language_override"] = self.language_override
        return {**options, **super().mongo_options()}

    def model_options(self, model) -> dict[str, Any]:
        options = self.mongo_options()
        if self.weights:
            # MongoDB weighs the stored fields: model field names → columns.
            columns = {name: model._meta.get_field(name).column for name in self.weights}
            options["weights"] = json.dumps({columns[n]: w for n, w in self.weights.items()},
                                            sort_keys=True)
        return options

    def deconstruct(self):
        path, args, kwargs = super().deconstruct()
        if self.weights:
            kwargs["weights"] = self.weights
        if self.default_language:
            kwargs["default_language"] = self.default_language
        if self.language_override:
            kwargs["language_override"] = self.language_override
        return path, args, kwargs


class HashedIndex(MongoIndex):
    """``HashedIndex(fields=["email"], name="...")``: MongoDB indexes a hash of
    the field's value, which serves equality lookups (``filter(email=...)``,
    ``__in``) but not ranges or ordering. One field; the field must not hold
    arrays; a hashed index cannot be unique."""

    suffix = "hashed"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if len(self.fields) != 1 or self.fields[0].startswith("-") or self.expressions:
            raise ValueError("HashedIndex is on exactly one field, without a direction.")

    def mongo_options(self) -> dict[str, Any]:
        return {"kind": "hashed", **super().mongo_options()}


class WildcardIndex(MongoIndex):
    """``WildcardIndex(fields=["attributes"], name="...")`` indexes every path
    under an embedded/JSON field (MongoDB's ``{"attributes.$**": 1}``), so a
    lookup on any key inside it (``attributes__color="red"``) can use it.
    ``WildcardIndex(name="...")`` without fields indexes the whole document
    (``{"$**": 1}``); then ``wildcard_projection={"notes": 0}`` (or ``1``
    values) leaves fields out of it (or names the only ones in it).
    """

    suffix = "wildcard"

    def __init__(self, *args: Any, fields: Any = (),
                 wildcard_projection: dict[str, int] | None = None, **kwargs: Any) -> None:
        fields = list(fields)
        whole_document = not fields
        if whole_document and not kwargs.get("name"):
            raise ValueError("A WildcardIndex over the whole document needs a name.")
        # Django's Index wants a field; the whole document has none.
        super().__init__(*args, fields=fields or ["pk"], **kwargs)
        if whole_document:
            self.fields, self.fields_orders = [], []
        if len(self.fields) > 1 or any(f.startswith("-") for f in self.fields) or self.expressions:
            raise ValueError("WildcardIndex is on at most one field, without a direction.")
        if wildcard_projection is not None:
            if self.fields:
                raise ValueError("WildcardIndex.wildcard_projection applies only to a "
                                 "whole-document WildcardIndex (no fields).")
            if not isinstance(wildcard_projection, dict) or not wildcard_projection:
                raise ValueError("WildcardIndex.wildcard_projection must be a non-empty dict.")
        self.wildcard_projection = wildcard_projection

    def mongo_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"kind": "wildcard"}
        if self.wildcard_projection:
            options["wildcardProjection"] = json.dumps(self.wildcard_projection, sort_keys=True)
        return {**options, **super().mongo_options()}

    def create_sql(self, model, schema_editor, using="", **kwargs):
        if self.fields:
            return super().create_sql(model, schema_editor, using=using, **kwargs)
        quote = schema_editor.quote_name
        return (f"CREATE INDEX {quote(self.name)} ON {quote(model._meta.db_table)} "
                f"({quote('$**')}) WITH ({_with_clause(self.model_options(model), quote)})")

    def deconstruct(self):
        path, args, kwargs = super().deconstruct()
        if self.wildcard_projection:
            kwargs["wildcard_projection"] = self.wildcard_projection
        return path, args, kwargs


def _with_clause(options: dict[str, Any], quote) -> str:
    return ", ".join(f"{quote(k)} = {_literal(v)}" for k, v in options.items())


class TwoDSphereIndex(Index):
    """``TwoDSphereIndex(fields=["location"], name="...")``: MongoDB's
    ``2dsphere`` index on GeoJSON (``PointField``) or legacy ``[lng, lat]``
    fields, which ``$near``, ``$nearSphere`` and ``$geoNear`` require.
    Writes of a value that is not a valid shape are refused
    (``Can't extract geo keys``, a ``DatabaseError``); documents without the
    field are left out of the index (it is sparse, as MongoDB's version 3).
    """

    suffix = "2dsphere"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.expressions or any(f.startswith("-") for f in self.fields):
            raise ValueError("TwoDSphereIndex takes plain field names (no expressions, no '-').")

    def create_sql(self, model, schema_editor, using="", **kwargs):
        if schema_editor.connection.vendor == "djongo":
            template = kwargs.pop("sql", None) or schema_editor.sql_create_index
            with_clause = _with_clause({"kind": "2dsphere"}, schema_editor.quote_name)
            kwargs["sql"] = template.replace("%(condition)s", f" WITH ({with_clause})%(condition)s")
        return super().create_sql(model, schema_editor, using=using, **kwargs)

    def deconstruct(self):
        path, args, kwargs = super().deconstruct()
        return path.replace("djongo.models.indexes", "djongo.models"), args, kwargs


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, str):
        return "'%s'" % value.replace("'", "''")
    return str(int(value))
