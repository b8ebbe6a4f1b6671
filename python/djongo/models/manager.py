"""``DjongoManager``: a Django manager with pymongo's collection API beside it."""

from __future__ import annotations

from functools import partial
from typing import Any

from django.db import connections, models
from pymongo.collection import Collection


class DjongoManager(models.Manager):
    """``Entry.objects.mongo_aggregate([...])`` calls ``Collection.aggregate``.

    Any pymongo ``Collection`` method is reachable with the ``mongo_`` prefix,
    on the model's collection in the manager's database. Inside
    ``transaction.atomic()`` the call joins the connection's transaction, so
    it sees (and its writes belong to) that transaction.
    """

    @property
    def mongo_collection(self):
        return connections[self.db].mongo_database[self.model._meta.db_table]

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


def _in_transaction(connection, method, *args, **kwargs):
    session = connection.session_for_statement()
    if session is not None:
        kwargs.setdefault("session", session)
    return method(*args, **kwargs)
