"""Model checks a MongoDB collection needs (``manage.py check``, run by migrate and runserver)."""

from __future__ import annotations

from django.core import checks
from django.db.backends.base.validation import BaseDatabaseValidation


class DatabaseValidation(BaseDatabaseValidation):
    def check_field(self, field, **kwargs):
        """A column becomes a document's field name, and MongoDB reads a '.' in a
        name as a path into embedded documents and a leading '$' as an operator:
        such a column would be written in one place and read from another."""
        errors = super().check_field(field, **kwargs)
        column = getattr(field, "column", None)
        if column and ("." in column or column.startswith("$") or "\x00" in column):
            errors.append(checks.Error(
                f"column name {column!r} cannot be a MongoDB field name: it holds '.', "
                "starts with '$' or holds a NUL character",
                hint="Choose another db_column.",
                obj=field,
                id="djongo.E004",
            ))
        return errors
