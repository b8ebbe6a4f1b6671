"""QuerySet.explain() and cursor.execute() with pyformat (%(name)s) parameters."""

from __future__ import annotations

import json

import pytest
from django.db import ProgrammingError, connection

from tests.blogapp.models import Author

pytestmark = pytest.mark.django_db


def test_explain_shows_the_mongodb_commands_and_parameters():
    Author.objects.create(name="ann")
    text = Author.objects.filter(name="ann").explain(format="json")
    explained = json.loads(text)
    assert explained["statement"]["op"] == "find"
    assert explained["statement"]["collection"] == "blogapp_author"
    assert explained["parameters"] == ["ann"]
    assert "server" in explained
    assert Author.objects.filter(name="ann").explain()  # TEXT
    # EXPLAIN runs nothing: the author is still alone.
    assert Author.objects.count() == 1


def test_explain_refuses_unknown_formats_and_options():
    with pytest.raises(ValueError, match="Allowed formats: JSON, TEXT"):
        Author.objects.explain(format="xml")
    with pytest.raises(ValueError, match="Unknown options"):
        Author.objects.explain(analyze=True)


def test_pyformat_parameters():
    with connection.cursor() as cursor:
        cursor.execute('INSERT INTO "blogapp_author" ("name", "rank") VALUES (%(n)s, %(r)s)',
                       {"n": "it's 100%", "r": 3})
        cursor.execute('SELECT "name", \'%(n)s\' FROM "blogapp_author" WHERE "rank" = %(r)s '
                       'AND "name" = %(n)s', {"n": "it's 100%", "r": 3})
        assert cursor.fetchall() == [("it's 100%", "%(n)s")]
        cursor.executemany('UPDATE "blogapp_author" SET "rank" = %(r)s', [{"r": 4}, {"r": 5}])
        with pytest.raises(ProgrammingError, match="no value for the parameter"):
            cursor.execute('SELECT %(missing)s', {"n": 1})
    assert Author.objects.get().rank == 5
    last = connection.ops.last_executed_query(cursor, "", {})
    assert "missing" in last
