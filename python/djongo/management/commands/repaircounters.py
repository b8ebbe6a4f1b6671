"""``manage.py repaircounters``: ``__schema__`` counters from the data present."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.db import DEFAULT_DB_ALIAS

from .. import djongo_connection, repair_counters, report_repairs, selected_models


class Command(BaseCommand):
    help = (
        "Creates or raises the __schema__ counter of every integer auto field to the largest "
        "id present in its collection, so that new rows never reuse an id (after copying "
        "collections in, mongorestore, or inserts made outside Django). Never lowers a counter."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("args", metavar="app_label[.ModelName]", nargs="*",
                            help="Limit to these apps or models (default: all).")
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS,
                            help='The djongo database to repair (default: "default").')
        parser.add_argument("--dry-run", action="store_true",
                            help="Report what would change without writing.")

    def handle(self, *labels: str, **options: Any) -> None:
        connection = djongo_connection(options["database"])
        models = selected_models(labels, [options["database"]])
        changes, checked = repair_counters(connection, models, dry_run=options["dry_run"])
        if options["verbosity"] > 0:
            report_repairs(self.stdout, changes, checked, options["dry_run"])
