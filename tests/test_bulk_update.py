"""bulk_update(): one UPDATE per batch whose CASE arms the compiler turns into
a lookup by primary key (tests/../crates/compiler lower/expr.rs)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.models import F
from django.test.utils import CaptureQueriesContext

from tests.blogapp.models import Author


@pytest.fixture
def authors():
    return Author.objects.bulk_create([Author(name=f"a{i}", rank=i) for i in range(250)])


def ranks() -> dict[str, int]:
    return dict(Author.objects.values_list("name", "rank"))


@pytest.mark.django_db
def test_each_object_gets_its_own_values_in_batches(authors):
    for a in authors:
        a.rank = 1000 + a.rank
        a.email = None if a.rank % 2 else f"{a.name}@example.com"
    with CaptureQueriesContext(connection) as queries:
        assert Author.objects.bulk_update(authors, ["rank", "email"]) == 250
    updates = [q for q in queries.captured_queries if q["sql"].startswith("UPDATE")]
    assert len(updates) == 3  # batches of bulk_update_batch_size (100)
    assert ranks() == {f"a{i}": 1000 + i for i in range(250)}
    emails = dict(Author.objects.values_list("name", "email"))
    assert emails["a1"] is None and emails["a2"] == "a2@example.com"


@pytest.mark.django_db
def test_a_duplicate_counts_once_and_the_first_value_wins(authors):
    first, second = Author.objects.get(name="a3"), Author.objects.get(name="a3")
    first.rank, second.rank = 31, 32
    others = authors[10:20]
    for a in others:
        a.rank = -1
    assert Author.objects.bulk_update([first, *others, second], ["rank"]) == 11
    assert ranks()["a3"] == 31 and ranks()["a10"] == -1


@pytest.mark.django_db
def test_values_that_look_like_operators_stay_strings(authors):
    for a in authors[:12]:
        a.name = "$gt"  # a string from a form, never an operator
    authors[0].name = '{"$ne": null}'
    Author.objects.bulk_update(authors[:12], ["name"])
    names = sorted(Author.objects.filter(pk__in=[a.pk for a in authors[:12]])
                   .values_list("name", flat=True))
    assert names == ["$gt"] * 11 + ['{"$ne": null}']


@pytest.mark.django_db
def test_expressions_in_the_values_still_work(authors):
    for a in authors[:20]:
        a.rank = F("rank") + 5
    Author.objects.bulk_update(authors[:20], ["rank"])
    assert [ranks()[f"a{i}"] for i in (0, 19, 20)] == [5, 24, 20]
