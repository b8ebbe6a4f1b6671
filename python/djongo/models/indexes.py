"""MongoDB's own index kinds for ``Meta.indexes``, created and dropped by migrations.

``TTLIndex`` is the first: MongoDB deletes a document once the date in its
indexed field is ``expire_after_seconds`` old (the embedded engine's TTL
monitor does so every 60 s, as mongod's). ``TwoDSphereIndex`` indexes
GeoJSON locations (``djongo.models.PointField``) for ``$near``/``$geoNear``.
"""

from __future__ import annotations

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

    def create_sql(self, model, schema_editor, using="", **kwargs):
        options = self.mongo_options()
        if options and schema_editor.connection.vendor == "djongo":
            with_clause = ", ".join(
                f"{schema_editor.quote_name(k)} = {_literal(v)}" for k, v in options.items())
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
            kwargs["sql"] = template.replace('%(table)s (', '%(table)s USING "2dsphere" (', 1)
        return super().create_sql(model, schema_editor, using=using, **kwargs)

    def deconstruct(self):
        path, args, kwargs = super().deconstruct()
        return path.replace("djongo.models.indexes", "djongo.models"), args, kwargs


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    return str(int(value))
