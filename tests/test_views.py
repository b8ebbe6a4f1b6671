"""SQL views: CREATE VIEW ... AS SELECT is a MongoDB view over the SELECT's pipeline."""

import pytest
from django.db import NotSupportedError, ProgrammingError, connection

from tests.blogapp.models import Author

pytestmark = pytest.mark.django_db(transaction=True)


def execute(sql, params=()):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if cursor.description else None


def test_a_view_reads_its_table_as_it_is_when_read():
    Author.objects.create(name="Ann", rank=2)
    execute('CREATE VIEW "author_scores" AS SELECT "name", "rank" * 10 AS "score" '
            'FROM "blogapp_author" WHERE "rank" > %s', [1])
    try:
        Author.objects.create(name="Bob", rank=3)
        Author.objects.create(name="Cid", rank=1)
        assert execute('SELECT "name", "score" FROM "author_scores" ORDER BY "name"') == [
            ("Ann", 20), ("Bob", 30)]
        assert "author_scores" in connection.introspection.table_names(include_views=True)
        assert "author_scores" not in connection.introspection.table_names()
        with pytest.raises(ProgrammingError, match="already exists"):
            execute('CREATE VIEW "author_scores" AS SELECT "name" FROM "blogapp_author"')
        with pytest.raises(ProgrammingError, match="already exists"):
            execute('CREATE VIEW "blogapp_author" AS SELECT "name" FROM "blogapp_author"')
    finally:
        execute('DROP VIEW "author_scores"')
    assert "author_scores" not in connection.introspection.table_names(include_views=True)
    execute('DROP VIEW IF EXISTS "author_scores"')
    with pytest.raises(ProgrammingError, match="no such view"):
        execute('DROP VIEW "author_scores"')


def test_a_view_whose_values_would_be_frozen_is_refused():
    # An uncorrelated subquery runs before its statement: the view would keep
    # the values of the day it was made.
    with pytest.raises(NotSupportedError, match="uncorrelated subquery"):
        execute('CREATE VIEW "v" AS SELECT "name" FROM "blogapp_author" WHERE "id" IN '
                '(SELECT "author_id" FROM "blogapp_entry")')
    assert "v" not in connection.introspection.table_names(include_views=True)
