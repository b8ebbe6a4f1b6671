"""Raw SQL through cursor.execute(), and the errors a user sees for bad input."""

import pytest
from django.db import NotSupportedError, ProgrammingError, connection

from tests.blogapp.models import Author

pytestmark = pytest.mark.django_db


@pytest.fixture
def authors():
    for name, rank in [("Ann", 3), ("Bob", 1), ("Cid", 2)]:
        Author.objects.create(name=name, rank=rank)


def test_hand_written_select_returns_rows(authors):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT name, rank FROM blogapp_author WHERE rank >= %s ORDER BY rank DESC", [2]
        )
        assert cursor.fetchall() == [("Ann", 3), ("Cid", 2)]
        assert [d[0] for d in cursor.description] == ["name", "rank"]


def test_hand_written_aggregate(authors):
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM blogapp_author WHERE name LIKE 'B%'")
        assert cursor.fetchone() == (1,)


def test_select_star_returns_the_stored_fields(authors):
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM blogapp_author WHERE rank > %s ORDER BY name", [1])
        columns = [d[0] for d in cursor.description]
        rows = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
    assert "_id" not in columns
    assert [(r["name"], r["rank"]) for r in rows] == [("Ann", 3), ("Cid", 2)]
    assert [a.name for a in Author.objects.raw("SELECT * FROM blogapp_author")] == [
        "Ann", "Bob", "Cid"]


def test_select_star_over_a_join_names_the_limit():
    with connection.cursor() as cursor, pytest.raises(NotSupportedError, match="SELECT \\*"):
        cursor.execute("SELECT * FROM blogapp_entry INNER JOIN blogapp_author "
                       "ON (blogapp_entry.author_id = blogapp_author.id)")


def test_raw_queryset(authors):
    names = [a.name for a in Author.objects.raw(
        "SELECT id, name FROM blogapp_author WHERE rank < %s ORDER BY name", [3])]
    assert names == ["Bob", "Cid"]


def test_malformed_sql_is_a_programming_error():
    with connection.cursor() as cursor, pytest.raises(ProgrammingError) as info:
        cursor.execute("SELEC name FROM blogapp_author")
    assert "SELEC" in str(info.value) or "line" in str(info.value).lower()


def test_unsupported_construct_names_itself():
    with connection.cursor() as cursor, pytest.raises(NotSupportedError) as info:
        cursor.execute("SELECT name FROM blogapp_author a FULL OUTER JOIN blogapp_entry e "
                       "ON e.author_id = a.id")
    assert "FULL OUTER JOIN" in str(info.value)


def test_wrong_parameter_count_is_a_programming_error():
    with connection.cursor() as cursor, pytest.raises(ProgrammingError):
        cursor.execute("SELECT name FROM blogapp_author WHERE rank = %s", [1, 2])


def _insert_two_rows_one_taken():
    """ON CONFLICT DO NOTHING with a row whose email is taken: only the other is inserted."""
    Author.objects.create(name="Ann", email="ann@example.com")
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO blogapp_author (name, email, rank) VALUES (%s, %s, 0), (%s, %s, 0) "
            "ON CONFLICT DO NOTHING", ["dup", "ann@example.com", "new", "new@example.com"])
        assert cursor.rowcount == 1
    assert sorted(Author.objects.values_list("name", flat=True)) == ["Ann", "new"]


@pytest.mark.django_db(transaction=True)
def test_insert_on_conflict_do_nothing_skips_duplicates_in_autocommit():
    _insert_two_rows_one_taken()


def test_insert_on_conflict_do_nothing_skips_duplicates_in_a_transaction():
    # The transaction goes on (MongoDB aborts one on a duplicate key error):
    # the SELECT after the INSERT runs in it.
    _insert_two_rows_one_taken()
