"""A table's foreign keys: the embedded engine's ``foreignKeys`` collection option.

Each constraint of a referencing collection is one entry::

    {"name": "book_author_id_fk", "field": "author_id",
     "references": "author", "referencedField": "id"}

The engine enforces them for every writer (docs/foreign-keys.md): the schema
editor's ``ALTER TABLE ... ADD CONSTRAINT ... FOREIGN KEY`` becomes a
``collMod`` that sets the list, introspection reads it back from
``listCollections``, and ``check_constraints`` runs the checks a
transaction owes before it commits (the engine's ``checkForeignKeys``).
MongoDB has no such option: there ``supports_foreign_keys`` is off and Django
never asks for one.
"""

from __future__ import annotations

from dataclasses import dataclass

from pymongo.client_session import ClientSession
from pymongo.database import Database

OPTION = "foreignKeys"


@dataclass(frozen=True)
class ForeignKey:
    name: str
    field: str
    references: str
    referenced_field: str

    @classmethod
    def from_spec(cls, spec: dict) -> ForeignKey:
        return cls(spec["name"], spec["field"], spec["references"], spec["referencedField"])

    def spec(self) -> dict:
        return {"name": self.name, "field": self.field, "references": self.references,
                "referencedField": self.referenced_field}


def _options(db: Database, table: str, session: ClientSession | None) -> dict:
    infos = list(db.list_collections(filter={"name": table}, session=session))
    return infos[0].get("options", {}) if infos else {}


def read(db: Database, table: str, session: ClientSession | None) -> list[ForeignKey]:
    """The foreign keys of ``table``."""
    return [ForeignKey.from_spec(s) for s in _options(db, table, session).get(OPTION) or []]


def read_all(db: Database, session: ClientSession | None) -> dict[str, list[ForeignKey]]:
    """The foreign keys of every collection of ``db`` that has some."""
    found: dict[str, list[ForeignKey]] = {}
    for info in db.list_collections(session=session):
        specs = (info.get("options") or {}).get(OPTION)
        if specs:
            found[info["name"]] = [ForeignKey.from_spec(s) for s in specs]
    return found


def write(db: Database, table: str, fks: list[ForeignKey],
          session: ClientSession | None) -> None:
    """Replaces the foreign keys of ``table``; the engine checks the rows
    present against the constraints added (``IntegrityError``)."""
    db.command({"collMod": table, OPTION: [fk.spec() for fk in fks]}, session=session)


def add(db: Database, table: str, fk: ForeignKey, session: ClientSession | None) -> None:
    fks = read(db, table, session)
    if any(f.name == fk.name for f in fks):
        from .database import ProgrammingError

        raise ProgrammingError(f"constraint {fk.name!r} of {table!r} already exists")
    write(db, table, [*fks, fk], session)


def drop(db: Database, table: str, name: str, session: ClientSession | None) -> bool:
    """Drops the foreign key ``name`` of ``table``; whether there was one."""
    fks = read(db, table, session)
    kept = [f for f in fks if f.name != name]
    if len(kept) == len(fks):
        return False
    write(db, table, kept, session)
    return True


def drop_field(db: Database, table: str, column: str, session: ClientSession | None) -> None:
    """Before ``column`` of ``table`` is dropped: its foreign keys go (as in
    PostgreSQL), and those referring to it (Django drops them first)."""
    for name, fks in read_all(db, session).items():
        kept = [f for f in fks if not (name == table and f.field == column)
                and not (f.references == table and f.referenced_field == column)]
        if len(kept) != len(fks):
            write(db, name, kept, session)


def rename_field(db: Database, table: str, old: str, new: str,
                 session: ClientSession | None) -> None:
    """After ``table.old`` was renamed to ``new``: the constraints naming it
    follow (as in SQL)."""
    for name, fks in read_all(db, session).items():
        renamed = [ForeignKey(
            f.name,
            new if name == table and f.field == old else f.field,
            f.references,
            new if f.references == table and f.referenced_field == old else f.referenced_field,
        ) for f in fks]
        if renamed != fks:
            write(db, name, renamed, session)
