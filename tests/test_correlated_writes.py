"""Correlated subqueries where MongoDB's write commands take none: UPDATE
SET and UPDATE/DELETE WHERE (django-treebeard's fix_tree()), a correlated
derived table (django-mptt's add_related_count()), and TRIM(x, chars)."""

from __future__ import annotations

import pytest
from django.db import connection, models, transaction
from django.db.models import Count, Exists, F, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce, Trim

from tests.blogapp.models import Author, Entry


class SQCount(Subquery):
    """django-mptt's: COUNT(*) over a correlated subquery, as a derived table."""

    template = "(SELECT count(*) FROM (%(subquery)s) _count)"
    output_field = models.IntegerField()


def entries(author: Author, n: int) -> None:
    for i in range(n):
        Entry.objects.create(blog={"name": "b", "tagline": ""}, headline=f"{author.name}{i}",
                             author=author, n_comments=i)


@pytest.fixture
def authors():
    ann, bob, cid = (Author.objects.create(name=n) for n in ("ann", "bob", "cid"))
    entries(ann, 3)
    entries(bob, 1)
    return ann, bob, cid


def ranks() -> list[tuple[str, int]]:
    return list(Author.objects.order_by("name").values_list("name", "rank"))


def count_of_entries():
    return Subquery(Entry.objects.filter(author=OuterRef("pk")).values("author")
                    .annotate(c=Count("id")).values("c"))


@pytest.mark.django_db
def test_update_from_an_annotated_subquery(authors):
    updated = Author.objects.annotate(c=count_of_entries()).update(rank=Coalesce(F("c"), 0))
    assert updated == 3
    assert ranks() == [("ann", 3), ("bob", 1), ("cid", 0)]


@pytest.mark.django_db
def test_update_set_mixes_correlated_and_plain_values(authors):
    Author.objects.update(rank=5)
    Author.objects.filter(name__in=["ann", "cid"]).annotate(c=count_of_entries()).update(
        rank=Coalesce(F("c"), Value(-1)), name=F("name"))
    assert ranks() == [("ann", 3), ("bob", 5), ("cid", -1)]


@pytest.mark.django_db
def test_update_and_delete_where_a_correlated_subquery_holds(authors):
    has_many = Exists(Entry.objects.filter(author=OuterRef("pk"), n_comments__gte=2))
    assert Author.objects.filter(has_many).update(rank=9) == 1
    assert ranks() == [("ann", 9), ("bob", 0), ("cid", 0)]
    no_entries = ~Exists(Entry.objects.filter(author=OuterRef("pk")))
    assert Author.objects.filter(no_entries)._raw_delete(connection.alias) == 1
    assert [n for n, _ in ranks()] == ["ann", "bob"]


@pytest.mark.django_db(transaction=True)
def test_a_correlated_update_outside_atomic_is_one_statement(authors):
    # In autocommit it runs in a transaction of its own: read, then writes.
    with connection.cursor() as cursor:
        cursor.execute(
            'UPDATE "blogapp_author" SET "rank" = (SELECT COUNT(*) FROM "blogapp_entry" U0 '
            'WHERE U0."author_id" = "blogapp_author"."id")')
        assert cursor.rowcount == 3
    assert ranks() == [("ann", 3), ("bob", 1), ("cid", 0)]


@pytest.mark.django_db
def test_a_correlated_update_inside_atomic_rolls_back_with_it(authors):
    with pytest.raises(RuntimeError), transaction.atomic():
        Author.objects.annotate(c=count_of_entries()).update(rank=Coalesce(F("c"), 0))
        raise RuntimeError
    assert ranks() == [("ann", 0), ("bob", 0), ("cid", 0)]


@pytest.mark.django_db
def test_count_over_a_correlated_derived_table(authors):
    counted = Author.objects.annotate(
        n=SQCount(Entry.objects.filter(author=OuterRef("pk")).values("id")))
    assert sorted(counted.values_list("name", "n")) == [("ann", 3), ("bob", 1), ("cid", 0)]
    deeper = Author.objects.annotate(n=SQCount(
        Entry.objects.filter(author=OuterRef("pk"), n_comments__gte=1).values("id")[:1]))
    assert sorted(deeper.values_list("name", "n")) == [("ann", 1), ("bob", 0), ("cid", 0)]


@pytest.mark.django_db
def test_trim_of_given_characters(authors):
    Author.objects.filter(name="ann").update(name="//ann/")
    with connection.cursor() as cursor:
        cursor.execute(
            'SELECT TRIM("name", \'/\'), TRIM(LEADING \'/\' FROM "name"), RTRIM("name", %s), '
            'TRIM("name", NULL) FROM "blogapp_author" WHERE "name" LIKE \'%%ann%%\'', ["/"])
        assert cursor.fetchall() == [("ann", "ann/", "//ann", None)]
    assert Author.objects.annotate(t=Trim("name")).get(name="bob").t == "bob"


@pytest.mark.django_db
def test_correlated_not_in_reads_a_missing_field_as_null(authors):
    ann, bob, cid = authors
    # A document written outside Django, without n_comments: its value is SQL NULL,
    # so `x NOT IN (<ann's n_comments>)` can no longer be TRUE for any x.
    Entry.objects.mongo_insert_one({"id": 900, "headline": "raw", "author_id": ann.pk})
    sql = ('SELECT "name" FROM "blogapp_author" a WHERE 7 NOT IN '
           '(SELECT "n_comments" FROM "blogapp_entry" e WHERE e."author_id" = a."id") '
           'ORDER BY "name"')
    with connection.cursor() as cursor:
        cursor.execute(sql)
        assert [r[0] for r in cursor.fetchall()] == ["bob", "cid"]
    in_sql = sql.replace("NOT IN", "IN").replace("7", "0")
    with connection.cursor() as cursor:
        cursor.execute(in_sql)
        assert [r[0] for r in cursor.fetchall()] == ["ann", "bob"]
