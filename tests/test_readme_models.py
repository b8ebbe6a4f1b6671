"""README's ``## djongo.models`` section, run as printed.

Every ```python block of the section is read from README.md and executed
verbatim, statement by statement, in a fresh app registry (``tests.readmeapp``):
once a statement defines a concrete model, its collection is created; an
expression statement's value is kept (a queryset is evaluated) so that the
block's harness below can check what a user would see. The harness supplies
only what a block takes for granted (objects it names, imports, data) and never
replaces a line of it. A block without a harness fails, so a new example in
the README cannot go unrun.
"""

from __future__ import annotations

import ast
import contextlib
import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.db.models import Model, QuerySet
from django.test.utils import isolate_apps
from djongo import models

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_blocks() -> list[str]:
    """The python blocks of README's djongo.models section, in order."""
    text = README.read_text(encoding="utf-8")
    start = text.index("\n## djongo.models\n")
    end = text.index("\n## ", start + 1)
    return re.findall(r"```python\n(.*?)```", text[start:end], re.S)


@dataclass
class Run:
    """What a block left: its namespace, its expression values, its output."""

    ns: dict[str, Any]
    values: list[Any] = field(default_factory=list)
    output: str = ""


@dataclass
class Harness:
    before: str = ""                                   # run first, in the block's namespace
    after_class: dict[str, str] = field(default_factory=dict)   # run once the class is defined
    needs: tuple[str, ...] = ()                        # blocks (by key) run first, same registry
    check: Callable[[Run], None] = lambda run: None


def _value(v: Any) -> Any:
    return list(v) if isinstance(v, QuerySet) else v


def _run_block(source: str, ns: dict[str, Any], harness: Harness, created: list) -> Run:
    run = Run(ns)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        if harness.before:
            exec(harness.before, ns)
        for statement in ast.parse(source).body:
            if isinstance(statement, ast.Expr):
                code = compile(ast.Expression(statement.value), "README.md", "eval")
                run.values.append(_value(eval(code, ns)))
                continue
            exec(compile(ast.Module([statement], []), "README.md", "exec"), ns)
            if isinstance(statement, ast.ClassDef):
                model = ns[statement.name]
                concrete = isinstance(model, type) and issubclass(model, Model)
                if concrete and not model._meta.abstract:
                    with connection.schema_editor() as editor:
                        editor.create_model(model)
                    created.append(model)
                if statement.name in harness.after_class:
                    exec(harness.after_class[statement.name], ns)
    run.output = out.getvalue()
    return run


def _key(block: str) -> str:
    return block.strip().splitlines()[0]


# -- what each block needs and what a user sees --------------------------------

def _check_embedded(run: Run) -> None:
    by_prefix, nested = run.values[1], run.values[2]
    assert [e.headline for e in by_prefix] == [e.headline for e in nested] == ["Love"]
    assert nested[0].blog.name == "Beatles Blog"


def _check_array(run: Run) -> None:
    by_item, by_lookup = run.values[1], run.values[2]
    assert len(by_item) == len(by_lookup) == 1
    assert by_lookup[0].authors[0].email == "paul@example.com"


def _check_array_reference(run: Run) -> None:
    ns = run.ns
    _, by_ref, by_name, referencing = run.values      # add() returns None
    assert by_ref == by_name == referencing == [ns["article"]]
    assert {p.name for p in ns["article"].contributors.all()} == {"Paul", "John", "Mick"}


def _check_manager(run: Run) -> None:
    ns = run.ns
    entry = ns["Entry"]
    from django.test import RequestFactory
    view = ns["EntryView"]()
    view.setup(RequestFactory().get("/"), path="Love")
    assert [d["headline"] for d in view.get_object()] == ["Love"]
    raw = entry.objects.mongo_find_one({"headline": "Direct"})
    assert raw["blog"] == {"name": "Raw"}
    assert entry.objects.mongo_find_one({"headline": "Love"})["blog"]["tagline"] == "..."
    assert "headline_1" in entry.objects.mongo_index_information()


def _check_raw_aggregate(run: Run) -> None:
    assert run.output.splitlines() == ["Busy Mick 14", "Quiet enough Ann 10"]


def _indexes(model) -> dict[str, dict]:
    collection = connection.mongo_database[model._meta.db_table]
    return {i["name"]: dict(i) for i in collection.list_indexes()}


def _check_index_kinds(run: Run) -> None:
    found = _indexes(run.ns["Session"])
    assert found["session_ttl"]["expireAfterSeconds"] == 3600
    assert found["email_rank"]["key"] == {"email": 1, "rank": -1}
    assert found["email_rank"]["sparse"] is True


def _check_text_search(run: Run) -> None:
    without_shop, phrase, spanish, by_score = ([a.subject for a in v] for v in run.values)
    assert sorted(without_shop) == ["coffee", "coffee and cream"]
    assert phrase == ["Coffee Shopping"]
    assert spanish == ["Café Con Leche"]
    assert by_score[0] == "Coffee Shopping"


def _check_places(run: Run) -> None:
    created, *queries = run.values
    assert created.location == (-73.97, 40.77)
    near, square, circle, line, by_distance = ([p.name for p in v] for v in queries)
    assert sorted(near) == ["Central Park", "Sara D. Roosevelt Park"]
    assert sorted(square) == ["Central Park", "Sara D. Roosevelt Park"]
    assert circle == ["Central Park"]
    assert line == ["Central Park"]                  # the line's end
    # No location, no distance: NULL first, as every NULL on djongo.
    assert by_distance == ["Nowhere", "Sara D. Roosevelt Park", "Central Park", "Polo Grounds"]


def _check_bulk_write(run: Run) -> None:
    assert run.values == [(3, 1, 1)]
    item = run.ns["Item"]
    assert sorted(item.objects.values_list("sku", "qty")) == [
        ("old", 10), ("sku-0", 0), ("sku-1", 1), ("sku-2", 2)]


def _check_concerns(run: Run) -> None:
    created, listed, updated = run.values
    ledger = run.ns["Ledger"]
    assert listed == [created]
    assert updated == 1
    assert ledger.objects.get(pk=1).amount == 6


HARNESSES: dict[str, Harness] = {
    "class Blog(models.Model):": Harness(check=_check_embedded),
    "class Author(models.Model):": Harness(check=_check_array),
    "class Person(models.Model):": Harness(
        after_class={"Article": "paul, john, mick = (Person.objects.create(name=n)"
                                " for n in ('Paul', 'John', 'Mick'))"},
        check=_check_array_reference),
    "class EntryView(DetailView):": Harness(
        before="from django.views.generic import DetailView",
        needs=("class Blog(models.Model):",),
        check=_check_manager),
    "for entry in Entry.objects.raw_aggregate([": Harness(
        before=(
            "from tests.blogapp.models import Author, Entry\n"
            "mick = Author.objects.create(name='Mick')\n"
            "ann = Author.objects.create(name='Ann')\n"
            "blog = {'name': 'Beatles Blog', 'tagline': '...'}\n"
            "Entry.objects.create(blog=blog, headline='Busy', author=mick, n_comments=7)\n"
            "Entry.objects.create(blog=blog, headline='Quiet enough', author=ann, n_comments=5)\n"
            "Entry.objects.create(blog=blog, headline='Silent', author=ann, n_comments=1)\n"),
        check=_check_raw_aggregate),
    "class Session(models.Model):": Harness(check=_check_index_kinds),
    "from djongo.models import TextScore, TextSearch": Harness(
        after_class={"Article": (
            "for subject, views in [('coffee', 50), ('Coffee Shopping', 5), ('Baking a cake', 90),"
            " ('Café Con Leche', 200), ('coffee and cream', 10), ('Cafe con Leche', 5)]:\n"
            "    Article.objects.create(subject=subject, views=views)\n")},
        check=_check_text_search),
    "class Place(models.Model):": Harness(
        after_class={"Place": (
            "Place.objects.create(name='Sara D. Roosevelt Park', location=(-73.9928, 40.7193))\n"
            "Place.objects.create(name='Polo Grounds', location=(-73.9375, 40.8303))\n"
            "Place.objects.create(name='Nowhere')\n")},
        check=_check_places),
    "with BulkWrite(ordered=False) as bulk:           # using=\"default\", models=None (all)":
        Harness(before=("from djongo.models import BulkWrite\n"
                        "from tests.writeapp.models import Item\n"
                        "Item.objects.create(sku='old', qty=1)\n"
                        "Item.objects.create(sku='gone', qty=1)\n"),
                check=_check_bulk_write),
    "class Ledger(models.Model):": Harness(check=_check_concerns),
}

BLOCKS = {_key(b): b for b in readme_blocks()}


def test_every_block_of_the_section_has_a_harness():
    assert BLOCKS, "README.md has no djongo.models examples?"
    assert sorted(set(BLOCKS) - set(HARNESSES)) == []
    stale = sorted(set(HARNESSES) - set(BLOCKS))
    assert stale == [], "a harness for a block no longer in the README"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("key", list(HARNESSES))
def test_readme_example(key):
    harness = HARNESSES[key]
    created: list = []
    with isolate_apps("tests.readmeapp"):
        ns: dict[str, Any] = {"__name__": "tests.readmeapp.models", "models": models}
        try:
            for needed in harness.needs:
                _run_block(BLOCKS[needed], ns, HARNESSES[needed], created)
            run = _run_block(BLOCKS[key], ns, harness, created)
            harness.check(run)
        finally:
            with connection.schema_editor() as editor:
                for model in reversed(created):
                    editor.delete_model(model)
