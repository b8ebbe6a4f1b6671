"""``inspectdb`` for MongoDB databases Django did not create.

Django's command with three changes: the module imports ``from djongo
import models`` (Django's models plus djongo's fields, so ``ObjectIdField``
and djongo's ``JSONField`` resolve); the document key keeps its name, as
Djongo's models write it (``_id = models.ObjectIdField()``); and a field the
sample saw with several types says so in a comment. Collections without
djongo's schema record are described from a sample of their documents
(``--sample-size``).
"""

from __future__ import annotations

from django.core.management.base import CommandError
from django.core.management.commands.inspectdb import Command as InspectDbCommand
from django.db import connections

from ...introspection import DEFAULT_SAMPLE_SIZE


class Command(InspectDbCommand):
    help = InspectDbCommand.help + (
        " Collections Django did not create are described from a sample of their documents."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument(
            "--sample-size", type=int, default=DEFAULT_SAMPLE_SIZE,
            help="documents read to describe a collection that has no schema record "
                 f"(default {DEFAULT_SAMPLE_SIZE})",
        )

    def handle_inspection(self, options):
        if options["sample_size"] < 1:
            raise CommandError("--sample-size must be at least 1")
        introspection = connections[options["database"]].introspection
        is_djongo = connections[options["database"]].vendor == "djongo"
        if is_djongo:
            introspection.sample_size = options["sample_size"]
        for line in super().handle_inspection(options):
            if is_djongo and line == "from django.db import models":
                yield "from djongo import models"
            else:
                yield line

    def normalize_col_name(self, col_name, used_column_names, is_relation):
        if col_name == "_id" and "_id" not in used_column_names:
            # The document key, named as in Djongo's models; Django would
            # rename it field_id because of the leading underscore.
            return "_id", {}, []
        return super().normalize_col_name(col_name, used_column_names, is_relation)

    def get_field_type(self, connection, table_name, row):
        field_type, params, notes = super().get_field_type(connection, table_name, row)
        note = getattr(row, "note", None)
        if note:
            notes = [*notes, note]
        return field_type, params, notes
