"""``manage.py copydata --from OLD``: every model's rows from another database into djongo."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, OutputWrapper
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.models import Model
from tqdm import tqdm

from .. import djongo_connection, repair_counters, report_repairs, selected_models

# Tables that `migrate` fills by itself (post_migrate), with ids of its own
# choosing: the target's rows are replaced by the source's wherever the two
# differ, so that foreign keys copied from the source point at the right rows.
MIGRATE_MADE = {"contenttypes.contenttype", "auth.permission"}


class Command(BaseCommand):
    help = (
        "Copies the rows of every model from another database in settings.DATABASES (SQLite, "
        "PostgreSQL, ...) into a djongo database that `migrate` has prepared: in batches, in "
        "dependency order, resumable (rows whose primary key is already there are skipped), "
        "then checks each model's row count and repairs the __schema__ counters."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("args", metavar="app_label[.ModelName]", nargs="*",
                            help="Limit to these apps or models (default: all).")
        parser.add_argument("--from", dest="source", required=True,
                            help="The database alias to copy from.")
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS,
                            help='The djongo database to copy into (default: "default").')
        parser.add_argument("--batch-size", type=int, default=1000,
                            help="Rows read and inserted per batch (default: 1000).")
        parser.add_argument("--no-progress", action="store_true",
                            help="Do not draw progress bars.")

    def handle(self, *labels: str, **options: Any) -> None:
        source, target = options["source"], options["database"]
        batch_size = options["batch_size"]
        verbosity = options["verbosity"]
        connection = djongo_connection(target)
        if source not in connections.settings:
            raise CommandError(f"No database {source!r} in settings.DATABASES.")
        if source == target:
            raise CommandError("--from and --database name the same database.")
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")

        models = selected_models(labels, [source, target])
        source_tables = set(connections[source].introspection.table_names())
        target_tables = set(connection.introspection.table_names())
        missing = sorted(m._meta.db_table for m in models
                         if m._meta.db_table in source_tables
                         and m._meta.db_table not in target_tables)
        if missing:
            raise CommandError(
                f"The database {target!r} has no collection for {', '.join(missing)}: "
                f"run `manage.py migrate --database {target}` first."
            )
        for model in models:
            if model._meta.db_table not in source_tables and verbosity > 0:
                self.stdout.write(f"{model._meta.label}: no table in {source!r}, skipped")
        models = [m for m in models if m._meta.db_table in source_tables]

        progress = _Progress(self.stderr)
        ordered = dependency_order(models)
        self._replace_migrate_made(
            [m for m in ordered if m._meta.label_lower in MIGRATE_MADE], source, target)
        for model in ordered:
            label = model._meta.label
            total = model._base_manager.using(source).count()
            with tqdm(total=total, desc=label, unit=" rows", file=progress, leave=True,
                      disable=options["no_progress"] or verbosity == 0) as bar:
                copied = self._copy(model, source, target, batch_size, bar)
            if verbosity > 1:
                self.stdout.write(f"{label}: {copied} copied, {total - copied} already there")

        mismatches = []
        for model in models:
            expected = model._base_manager.using(source).count()
            found = model._base_manager.using(target).count()
            if expected != found:
                mismatches.append(f"{model._meta.label}: {expected} rows in {source!r}, "
                                  f"{found} in {target!r}")
        if mismatches:
            raise CommandError("Row counts differ after copying:\n  " + "\n  ".join(mismatches))
        if verbosity > 0:
            self.stdout.write(f"Row counts match for all {len(models)} models.")

        changes, checked = repair_counters(connection, models)
        if verbosity > 0:
            report_repairs(self.stdout, changes, checked, dry_run=False)

    def _copy(self, model: type[Model], source: str, target: str, batch_size: int,
              bar: tqdm) -> int:
        """Copies the rows missing from ``target``, in primary-key order; returns how many."""
        rows = model._base_manager.using(source).order_by("pk")
        existing = model._base_manager.using(target)
        fields = model._meta.local_concrete_fields
        copied = 0
        last = None
        while True:
            # Keyset pagination: each batch is one indexed range read, however
            # far the copy has gone, and an interrupted copy starts over cheaply.
            batch = list((rows if last is None else rows.filter(pk__gt=last))[:batch_size])
            if not batch:
                return copied
            last = batch[-1].pk
            present = set(existing.filter(pk__in=[row.pk for row in batch])
                          .values_list("pk", flat=True))
            new = [row for row in batch if row.pk not in present]
            if new:
                with transaction.atomic(using=target):
                    # raw=True writes the values as read (as loaddata does):
                    # auto_now dates and file fields are not touched by pre_save.
                    existing._insert(new, fields=fields, using=target, raw=True)
                copied += len(new)
            bar.update(len(batch))

    def _replace_migrate_made(self, models: list[type[Model]], source: str,
                              target: str) -> None:
        """Empties the target's tables of ``models`` (in foreign-key order) when
        any differs from the source's, so the copy brings the source's rows."""
        def rows(model, alias):
            names = [f.attname for f in model._meta.concrete_fields]
            return list(model._base_manager.using(alias).order_by("pk").values_list(*names))

        if all(rows(m, source) == rows(m, target) for m in models):
            return
        # Referring tables first: the database may enforce the foreign keys
        # between them (permissions refer to content types). pymongo, not
        # QuerySet.delete(): a cascade would take rows of other tables.
        for model in reversed(models):
            connections[target].mongo_database[model._meta.db_table].delete_many({})
            if model._meta.label_lower == "contenttypes.contenttype":
                model.objects.clear_cache()


def dependency_order(models: list[type[Model]]) -> list[type[Model]]:
    """``models``, each after the models its foreign keys point to (cycles are cut)."""
    chosen = set(models)
    order: list[type[Model]] = []
    seen: set[type[Model]] = set()

    def visit(model: type[Model]) -> None:
        if model in seen:
            return
        seen.add(model)
        for field in model._meta.local_concrete_fields:
            related = field.related_model if field.is_relation else None
            if related in chosen and related is not model:
                visit(related)
        order.append(model)

    for model in models:
        visit(model)
    return order


class _Progress:
    """tqdm's stream: the command's stderr, without the newline and colour it adds."""

    def __init__(self, out: OutputWrapper) -> None:
        self._out = out

    def write(self, text: str) -> None:
        self._out.write(text, style_func=str, ending="")

    def flush(self) -> None:
        self._out.flush()
