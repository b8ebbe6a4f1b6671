"""Exceptions a djongo user may catch by name, as with the original Djongo."""

from __future__ import annotations

from typing import Any

from django.db.utils import DatabaseError


class MigrationError(DatabaseError):
    """A stored document lacks a field its model declares (``ENFORCE_SCHEMA: True``).

    A subclass of ``django.db.DatabaseError`` (not of the DB-API module's
    class), so Django's error wrapper lets it through unchanged and it can be
    caught as either.
    """

    def __init__(self, collection: str, document_id: Any, field: str) -> None:
        self.collection = collection
        self.document_id = document_id
        self.field = field
        super().__init__(
            f"document {document_id!r} in collection {collection!r} has no field {field!r} "
            "(ENFORCE_SCHEMA is on): migrate the stored data, or set ENFORCE_SCHEMA to False "
            "to read missing fields as None"
        )
