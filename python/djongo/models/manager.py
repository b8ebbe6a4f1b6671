"""``DjongoManager``: a Django manager with pymongo's collection API beside it."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from typing import Any

from django.db import connections, models
from pymongo.collection import Collection

from .. import concerns
from ..cursor import translate_errors


class Concerns:
    """A model's read concern, write concern and read preference, sent with every
    command the ORM runs for it (outside transactions; djongo.concerns)::

        class Entry(models.Model):
            concerns = models.Concerns(read_concern="majority",
                                       write_concern={"w": "majority", "wtimeout": 5000},
                                       read_preference="primaryPreferred")

    Values are MongoDB's (a level or ``{"level": ...}``; ``{"w", "j", "wtimeout"}``;
    a mode or ``{"mode", "tags", "maxStalenessSeconds"}``), checked by the server.
    Subclasses inherit them.
    """

    def __init__(self, *, read_concern: str | dict | None = None,
                 write_concern: dict | None = None,
                 read_preference: str | dict | None = None) -> None:
        self.options = concerns.options(read_concern, write_concern, read_preference)

    def contribute_to_class(self, cls, name: str) -> None:
        setattr(cls, name, self)
        setattr(cls, concerns.MODEL_ATTRIBUTE, self)

    def __repr__(self) -> str:
        return f"<Concerns {self.options}>"


class DjongoQuerySet(models.QuerySet):
    def with_options(self, *, read_concern: str | dict | None = None,
                     write_concern: dict | None = None,
                     read_preference: str | dict | None = None) -> DjongoQuerySet:
        """This queryset with its own read concern, write concern or read
        preference (each given one replaces the model's ``Concerns``)::

            Entry.objects.with_options(read_concern="majority").filter(...)
            Entry.objects.with_options(write_concern={"w": 1, "j": True}).update(...)
        """
        clone = self._chain()
        mine = concerns.options(read_concern, write_concern, read_preference)
        before = getattr(clone.query, concerns.QUERY_ATTRIBUTE, None)
        setattr(clone.query, concerns.QUERY_ATTRIBUTE, mine.over(before))
        return clone

    # Django writes these through queries of its own (an InsertQuery for
    # create(), a Collector's DeleteQuery for delete(), save() in
    # update_or_create()), not through this queryset's query: the values of
    # with_options() go with them in djongo.concerns.requested, and with the
    # commit of the atomic block Django opens for them (for_transaction).

    @contextmanager
    def _options_in_effect(self) -> Iterator[None]:
        own = getattr(self.query, concerns.QUERY_ATTRIBUTE, None)
        if own is None:
            yield
            return
        token = concerns.requested.set((self.model, own))
        # A transaction opened from here on is the method's own (the user's
        # atomic block, if any, keeps the concerns it started with).
        opens_own = not connections[self.db].in_atomic_block
        transaction_token = (concerns.for_transaction.set(concerns.of_query(self.query))
                             if opens_own else None)
        try:
            yield
        finally:
            if transaction_token is not None:
                concerns.for_transaction.reset(transaction_token)
            concerns.requested.reset(token)

    def create(self, **kwargs: Any) -> models.Model:
        with self._options_in_effect():
            return super().create(**kwargs)

    create.alters_data = True

    def bulk_create(self, *args: Any, **kwargs: Any) -> list[models.Model]:
        with self._options_in_effect():
            return super().bulk_create(*args, **kwargs)

    bulk_create.alters_data = True

    def get_or_create(self, *args: Any, **kwargs: Any) -> tuple[models.Model, bool]:
        with self._options_in_effect():
            return super().get_or_create(*args, **kwargs)

    get_or_create.alters_data = True

    def update_or_create(self, *args: Any, **kwargs: Any) -> tuple[models.Model, bool]:
        with self._options_in_effect():
            return super().update_or_create(*args, **kwargs)

    update_or_create.alters_data = True

    def delete(self) -> tuple[int, dict[str, int]]:
        with self._options_in_effect():
            return super().delete()

    delete.alters_data = True
    delete.queryset_only = True


class DjongoManager(models.Manager.from_queryset(DjongoQuerySet)):
    """``Entry.objects.mongo_aggregate([...])`` calls ``Collection.aggregate``.

    Any pymongo ``Collection`` method is reachable with the ``mongo_`` prefix,
    on the model's collection in the manager's database. Inside
    ``transaction.atomic()`` the call joins the connection's transaction, so
    it sees (and its writes belong to) that transaction.
    """

    def raw_aggregate(self, pipeline: Sequence[dict[str, Any]],
                      using: str | None = None) -> RawAggregate:
        """Model instances from an aggregation pipeline on the model's collection.

        Each document the pipeline returns becomes an instance: keys that are
        the model's columns fill its fields (through the same converters as
        a query's rows), fields the documents lack are deferred (read from
        the database when first used, by primary key), and other keys become
        attributes, as ``Manager.raw()`` treats extra columns.
        ``Entry.objects.raw_aggregate([{"$match": ...}, {"$addFields":
        {"score": ...}}])``.
        """
        return RawAggregate(self.model, list(pipeline), using or self.db)

    @property
    def mongo_collection(self):
        """The model's pymongo collection, with the model's ``Concerns`` (pymongo
        leaves them out inside a transaction, whose own apply)."""
        return _with_concerns(
            connections[self.db].mongo_database[self.model._meta.db_table], self.model)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("mongo_") and name != "mongo_collection":
            method = name.removeprefix("mongo_")
            attribute = getattr(self.mongo_collection, method, None)
            # An unknown name on a pymongo Collection is a sub-collection,
            # which is "callable" only to raise TypeError.
            if not callable(attribute) or isinstance(attribute, Collection):
                raise AttributeError(f"pymongo's Collection has no method {method!r}")
            return partial(_in_transaction, connections[self.db].connection, attribute)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")


def _with_concerns(collection: Collection, model: type[models.Model]) -> Collection:
    declared = getattr(model, concerns.MODEL_ATTRIBUTE, None)
    if declared is None:
        return collection
    return collection.with_options(**declared.options.pymongo())


def _in_transaction(connection, method, *args, **kwargs):
    session = connection.session_for_statement()
    if session is not None:
        kwargs.setdefault("session", session)
    return method(*args, **kwargs)


class RawAggregate:
    """The lazy result of ``raw_aggregate``: the pipeline runs each time it is iterated."""

    def __init__(self, model: type[models.Model], pipeline: list[dict[str, Any]],
                 using: str) -> None:
        self.model = model
        self.pipeline = pipeline
        self.db = using

    def using(self, alias: str) -> RawAggregate:
        return RawAggregate(self.model, self.pipeline, alias)

    def __repr__(self) -> str:
        return f"<RawAggregate on {self.model._meta.db_table}: {self.pipeline!r}>"

    def __iter__(self) -> Iterator[models.Model]:
        connection = connections[self.db]
        connection.ensure_connection()
        collection = _with_concerns(connection.mongo_database[self.model._meta.db_table],
                                    self.model)
        # Per column: its field's place (Model.from_db wants values in field
        # order), the field, and the converters a query applies to it.
        columns = {field.column: (place, field, *_converters(field, connection))
                   for place, field in enumerate(self.model._meta.concrete_fields)}
        # pymongo's errors as the driver's (translate_errors), then as Django's.
        with connection.wrap_database_errors, translate_errors(None):
            documents = _in_transaction(connection.connection, collection.aggregate, self.pipeline)
            for document in documents:
                yield self._instance(document, columns, connection)

    def _instance(self, document: dict[str, Any], columns, connection):
        found, extra = {}, {}
        for key, value in document.items():
            if key not in columns:
                if key != "_id":
                    # MongoDB's own key is not an attribute unless a field names it.
                    extra[key] = value
                continue
            place, field, column, functions = columns[key]
            for convert in functions:
                value = convert(value, column, connection)
            found[place] = (field.attname, value)
        ordered = [found[place] for place in sorted(found)]
        instance = self.model.from_db(self.db, [n for n, _ in ordered], [v for _, v in ordered])
        for key, value in extra.items():
            setattr(instance, key, value)
        return instance


def _converters(field: models.Field, connection) -> tuple[Any, list]:
    """What a query applies to this column's values: the backend's, then the field's."""
    column = field.get_col(field.model._meta.db_table)
    return column, [*connection.ops.get_db_converters(column),
                    *column.get_db_converters(connection)]
