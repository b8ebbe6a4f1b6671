"""What djongo's management commands share: the models they work on, and the counters."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from django.apps import apps
from django.core.management.base import CommandError, OutputWrapper
from django.db import connections, router
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Field, IntegerField, Model
from django.db.models.fields import AutoFieldMixin

from .. import sequences


def djongo_connection(alias: str) -> BaseDatabaseWrapper:
    if alias not in connections.settings:
        raise CommandError(f"No database {alias!r} in settings.DATABASES.")
    connection = connections[alias]
    if connection.vendor != "djongo":
        raise CommandError(
            f"The database {alias!r} uses {connection.display_name}, not djongo."
        )
    return connection


def selected_models(labels: Sequence[str], aliases: Iterable[str]) -> list[type[Model]]:
    """The models named by ``app_label`` / ``app_label.ModelName`` (all when none).

    Only models with a table of their own that ``migrate`` would create on
    every one of ``aliases``: concrete, managed, and allowed by the routers.
    Many-to-many tables Django creates by itself are included.
    """
    if labels:
        chosen: list[type[Model]] = []
        for label in labels:
            try:
                if "." in label:
                    chosen.append(apps.get_model(label))
                else:
                    chosen.extend(apps.get_app_config(label).get_models(include_auto_created=True))
            except LookupError as exc:
                raise CommandError(f"Unknown app or model {label!r}.") from exc
    else:
        chosen = list(apps.get_models(include_auto_created=True))
    aliases = list(aliases)
    models = []
    for model in dict.fromkeys(chosen):
        opts = model._meta
        if opts.proxy or not opts.managed or opts.swapped:
            continue
        if all(router.allow_migrate_model(alias, model) for alias in aliases):
            models.append(model)
    return models


def integer_auto_field(model: type[Model]) -> Field | None:
    """The field ``__schema__`` keeps a counter for (ObjectId keys have none)."""
    field = model._meta.auto_field
    if isinstance(field, AutoFieldMixin) and isinstance(field, IntegerField):
        return field
    return None


def repair_counters(connection: BaseDatabaseWrapper, models: Iterable[type[Model]],
                    dry_run: bool = False) -> tuple[list[sequences.Repair], int]:
    """Brings each model's counter up to its data; returns the changes and how many were checked."""
    db = connection.mongo_database
    # Inside atomic() the counters change with the transaction.
    session = connection.connection.session_for_statement()
    present = set(db.list_collection_names())
    changes = []
    checked = 0
    for model in models:
        field = integer_auto_field(model)
        table = model._meta.db_table
        if field is None or table not in present:
            continue
        checked += 1
        change = sequences.repair(db, table, field.column, dry_run=dry_run,
                                  session=session)
        if change is not None and not dry_run:
            connection.connection.wrote_schema_of(table)
        if change is not None:
            changes.append(change)
    return changes, checked


def report_repairs(out: OutputWrapper, changes: list[sequences.Repair], checked: int,
                   dry_run: bool) -> None:
    verb = "would be" if dry_run else "was"
    for change in changes:
        where = f"{change.collection}.{change.field}"
        if change.before is None:
            out.write(f"{where}: counter {verb} created at {change.after}")
            continue
        if change.field_names_before is not None:
            out.write(f"{where}: counter field_names {change.field_names_before} "
                      f"{verb} set to {[change.field]}")
        if change.after != change.before:
            out.write(f"{where}: counter {verb} raised from {change.before} to {change.after}")
    if not changes:
        out.write(f"All {checked} counters are at or above the largest id in their collection.")
    elif dry_run:
        out.write(f"{len(changes)} of {checked} counters would change (dry run: nothing written).")
    else:
        out.write(f"{len(changes)} of {checked} counters repaired.")
