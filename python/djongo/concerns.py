"""Read concern, write concern and read preference, per model and per queryset.

A model declares them with ``djongo.models.Concerns`` (a class attribute:
Django refuses unknown ``Meta`` options, and concerns are no schema that a
migration would track); a queryset of a ``DjongoManager`` overrides them with
``with_options()``. The backend's SQL compilers (``djongo.compiler``) put the
statement's options in ``current`` while it runs, and the executor adds them
to the commands it sends: ``readConcern`` and ``$readPreference`` to reads,
``writeConcern`` to writes.

The values are MongoDB's, sent as given: the server decides what is valid
and refuses the rest with its own error codes (the embedded engine as mongod
does). Inside a transaction (``atomic()``) a command takes the
transaction's concerns, as MongoDB's drivers do, so the model's are not sent.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

#: The attribute of a model class that holds its ``Concerns``.
MODEL_ATTRIBUTE = "_djongo_concerns"
#: The attribute of a Django ``Query`` that holds ``with_options()``'s values.
QUERY_ATTRIBUTE = "djongo_options"


@dataclass(frozen=True)
class Options:
    """Documents as they go into a command (None: the server's default)."""

    read_concern: dict[str, Any] | None = None
    write_concern: dict[str, Any] | None = None
    read_preference: dict[str, Any] | None = None

    def over(self, base: Options | None) -> Options:
        """These options, each missing one taken from ``base``."""
        if base is None:
            return self
        return Options(
            read_concern=self.read_concern if self.read_concern is not None
            else base.read_concern,
            write_concern=self.write_concern if self.write_concern is not None
            else base.write_concern,
            read_preference=self.read_preference if self.read_preference is not None
            else base.read_preference,
        )

    def for_read(self) -> dict[str, Any] | None:
        fields = {}
        if self.read_concern is not None:
            fields["readConcern"] = self.read_concern
        if self.read_preference is not None:
            fields["$readPreference"] = self.read_preference
        return fields or None

    def for_write(self) -> dict[str, Any] | None:
        return {"writeConcern": self.write_concern} if self.write_concern is not None else None

    def transaction(self) -> dict[str, Any]:
        """``ClientSession.start_transaction`` arguments: the write concern,
        which the transaction's commit carries."""
        return {k: v for k, v in self.pymongo().items() if k == "write_concern"}

    def pymongo(self) -> dict[str, Any]:
        """``Collection.with_options`` arguments for a server reached through pymongo."""
        from pymongo.read_concern import ReadConcern
        from pymongo.read_preferences import make_read_preference, read_pref_mode_from_name
        from pymongo.write_concern import WriteConcern

        kwargs: dict[str, Any] = {}
        if self.read_concern is not None:
            kwargs["read_concern"] = ReadConcern(**_snake(self.read_concern, {"level": "level"}))
        if self.write_concern is not None:
            kwargs["write_concern"] = WriteConcern(**_snake(
                self.write_concern, {"w": "w", "j": "j", "wtimeout": "wtimeout",
                                     "fsync": "fsync"}))
        if self.read_preference is not None:
            pref = dict(self.read_preference)
            mode = pref.pop("mode", None)
            if not isinstance(mode, str):
                raise ValueError(f"read_preference needs a mode, not {mode!r}")
            args = _snake(pref, {"tags": "tag_sets", "maxStalenessSeconds": "max_staleness",
                                 "hedge": "hedge"})
            kwargs["read_preference"] = make_read_preference(
                read_pref_mode_from_name(mode), args.get("tag_sets"),
                args.get("max_staleness", -1))
        return kwargs


def _snake(document: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    unknown = set(document) - set(names)
    if unknown:
        raise ValueError(f"pymongo has no option for {', '.join(sorted(unknown))}")
    return {names[k]: v for k, v in document.items()}


def options(read_concern: str | dict | None = None, write_concern: dict | None = None,
            read_preference: str | dict | None = None) -> Options:
    """Options from the forms a user writes: a read concern level or
    document, a write concern document, a read preference mode or document."""
    if isinstance(read_concern, str):
        read_concern = {"level": read_concern}
    if isinstance(read_preference, str):
        read_preference = {"mode": read_preference}
    for name, value in (("read_concern", read_concern), ("write_concern", write_concern),
                        ("read_preference", read_preference)):
        if value is not None and not isinstance(value, dict):
            raise TypeError(f"{name} must be a dict (or, except write_concern, a str), "
                            f"not {type(value).__name__}")
    return Options(read_concern=_copy(read_concern), write_concern=_copy(write_concern),
                   read_preference=_copy(read_preference))


def _copy(value: dict | None) -> dict | None:
    return dict(value) if value is not None else None


def of_query(query) -> Options | None:
    """The options a Django ``Query`` runs with: its queryset's
    ``with_options()`` over its model's ``Concerns``."""
    own = getattr(query, QUERY_ATTRIBUTE, None)
    inner = getattr(query, "inner_query", None)
    if own is None and inner is not None:
        # count() and aggregate() wrap the queryset's query in an AggregateQuery.
        own = getattr(inner, QUERY_ATTRIBUTE, None)
    model = getattr(query, "model", None)
    if own is None and model is not None:
        own = _requested_for(model)
    declared = getattr(model, MODEL_ATTRIBUTE, None) if model is not None else None
    base = declared.options if declared is not None else None
    return own.over(base) if own is not None else base


#: The options of the statement that runs now (set by djongo.compiler).
current: ContextVar[Options | None] = ContextVar("djongo_concerns", default=None)

#: ``with_options()`` of a queryset method that saves or deletes through
#: queries Django builds anew (``create()``, ``bulk_create()``, ``delete()``
#: of a queryset with cascades...): the model they were given for, and the values.
requested: ContextVar[tuple[type, Options] | None] = ContextVar(
    "djongo_requested_concerns", default=None)


#: The options for a transaction that a queryset method opens itself (Django
#: runs ``bulk_create()``, ``get_or_create()``, ``delete()``... in an atomic
#: block of their own): its statements send no concerns, as in every
#: transaction, and its commit carries the write concern.
for_transaction: ContextVar[Options | None] = ContextVar(
    "djongo_transaction_concerns", default=None)


def _requested_for(model: type) -> Options | None:
    """The options ``requested`` for ``model``'s rows: the model itself or, for
    a multi-table child, one of the parents its rows are saved in. Other
    models written meanwhile (a cascade, a signal handler) keep their own."""
    entry = requested.get()
    if entry is None:
        return None
    wanted, options = entry
    return options if isinstance(wanted, type) and issubclass(wanted, model) else None
