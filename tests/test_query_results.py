"""Query results that Django's own suite once caught wrong: each asserts the rows a user sees."""

import pytest
from django.db.models import Exists, F, Max, OuterRef, Q, Subquery
from django.db.models.functions import Upper
from django.db.models.lookups import LessThan

from tests.blogapp.models import Author, Entry

pytestmark = pytest.mark.django_db


@pytest.fixture
def entries():
    ann = Author.objects.create(name="Ann", rank=2)
    bob = Author.objects.create(name="Bob", rank=1)
    rows = [("A", None, 10), ("B", None, 3), ("C", ann, 0), ("D", bob, 7)]
    for headline, author, n in rows:
        Entry.objects.create(
            blog={"name": "b", "tagline": "t"}, headline=headline, author=author, n_comments=n,
        )
    return {"ann": ann, "bob": bob}


def headlines(qs):
    return [e.headline for e in qs]


def test_nulls_last_on_a_selected_column(entries):
    # ORDER BY "author_id" ASC NULLS LAST: the column is also an output column.
    qs = Entry.objects.order_by(F("author").asc(nulls_last=True), "headline")
    assert headlines(qs) == ["C", "D", "A", "B"]
    assert headlines(qs.reverse()) == ["B", "A", "D", "C"]
    qs = Entry.objects.order_by(F("author").desc(nulls_last=True), "headline")
    assert headlines(qs) == ["D", "C", "A", "B"]


def test_nulls_first_on_a_selected_column(entries):
    qs = Entry.objects.order_by(F("author").desc(nulls_first=True), "headline")
    assert headlines(qs) == ["A", "B", "D", "C"]
    assert headlines(qs.reverse()) == ["C", "D", "B", "A"]


def test_nulls_last_on_an_expression_across_a_join(entries):
    qs = Entry.objects.order_by(Upper("author__name").asc(nulls_last=True), "headline")
    assert headlines(qs) == ["C", "D", "A", "B"]
    qs = Entry.objects.annotate(up=Upper("author__name"))
    qs = qs.order_by(F("up").desc(nulls_last=True), "headline")
    assert headlines(qs) == ["D", "C", "A", "B"]


def test_nulls_last_in_a_union(entries):
    qs = Entry.objects.filter(n_comments__gt=5).values_list("author", flat=True)
    qs = qs.union(Entry.objects.filter(n_comments__lte=5).values_list("author", flat=True))
    ordered = qs.order_by(F("author").asc(nulls_last=True))
    assert list(ordered) == [entries["ann"].pk, entries["bob"].pk, None]


def test_boolean_subquery_compared_with_a_boolean_expression(entries):
    # A subquery selecting a condition, on the left of `=`.
    inner = Entry.objects.filter(pk=OuterRef("pk")).values(lesser=LessThan(F("n_comments"), 5))
    qs = Entry.objects.annotate(few=Subquery(inner)).filter(few=LessThan(F("n_comments"), 1))
    assert sorted(headlines(qs)) == ["A", "C", "D"]


def test_aggregate_filtered_on_exists_annotations(entries):
    # The aggregate runs over a derived table whose columns are conditions.
    result = Entry.objects.annotate(
        has_author=Exists(Author.objects.filter(pk=OuterRef("author"))),
        top_author=Exists(Author.objects.filter(pk=OuterRef("author"), rank=2)),
    ).aggregate(m=Max("n_comments", filter=Q(has_author=True, top_author=False)))
    assert result == {"m": 7}


def test_raw_select_from_a_derived_select_star(entries):
    qs = Entry.objects.raw(
        "SELECT id, headline FROM (SELECT * FROM blogapp_entry WHERE author_id IS NOT NULL) sq"
        " ORDER BY headline"
    )
    assert headlines(qs) == ["C", "D"]


@pytest.fixture
def ranked_entries():
    # (headline, n_comments, rating): two pairs of ties on n_comments.
    for headline, n, rating in [("A", 5, 1.0), ("B", 5, 2.0), ("C", 3, None), ("D", 9, 4.0),
                                ("E", 3, 5.0)]:
        Entry.objects.create(blog={"name": "b", "tagline": "t"}, headline=headline,
                             n_comments=n, rating=rating)


def test_window_functions_follow_sql_semantics(ranked_entries):
    from django.db.models import Sum, Window
    from django.db.models.functions import DenseRank, Lag, Rank, RowNumber

    by_comments = {"order_by": F("n_comments").asc()}
    rows = Entry.objects.annotate(
        rank=Window(Rank(), **by_comments),
        dense=Window(DenseRank(), **by_comments),
        number=Window(RowNumber(), order_by=[F("n_comments").asc(), F("headline").asc()]),
        # SQL's default frame with ORDER BY includes the current row's peers.
        running=Window(Sum("n_comments"), **by_comments),
        previous=Window(Lag("headline"), order_by=F("headline").asc()),
    ).order_by("headline").values_list("headline", "rank", "dense", "number", "running", "previous")
    assert list(rows) == [
        ("A", 3, 2, 3, 16, None),
        ("B", 3, 2, 4, 16, "A"),
        ("C", 1, 1, 1, 6, "B"),
        ("D", 5, 3, 5, 25, "C"),
        ("E", 1, 1, 2, 6, "D"),
    ]


def test_window_functions_over_grouped_rows(entries):
    from django.db.models import Count, Sum, Window
    from django.db.models.functions import Rank

    Entry.objects.create(blog={"name": "b", "tagline": "t"}, headline="E",
                         author=entries["ann"], n_comments=4)
    # GROUP BY the author: the windows rank and span the groups, not the entries.
    rows = Author.objects.annotate(
        comments=Sum("entries__n_comments"),
        n_entries=Count("entries"),
        place=Window(Rank(), order_by=F("comments").desc()),
        top_rank=Window(Max("rank")),
    ).order_by("name").values_list("name", "comments", "n_entries", "place", "top_rank")
    assert list(rows) == [("Ann", 4, 2, 2, 2), ("Bob", 7, 1, 1, 2)]


def test_aggregates_over_a_relation_per_row(entries):
    # annotate() over a reverse foreign key (the benchmark's shape): GROUP BY
    # the author, aggregates over its entries. NULL ratings are skipped, an
    # average of integers is a float, and an author without entries counts 0
    # and has NULL for everything else.
    from django.db.models import Avg, Count, Min, Sum

    Author.objects.create(name="Cy", rank=3)
    for headline, rating, n in [("E", 2.5, 4), ("F", None, 5), ("G", 4.0, 6)]:
        Entry.objects.create(blog={"name": "b", "tagline": "t"}, headline=headline,
                             author=entries["ann"], n_comments=n, rating=rating)
    rows = Author.objects.annotate(
        n=Count("entries"), rated=Count("entries__rating"), avg=Avg("entries__rating"),
        avg_comments=Avg("entries__n_comments"), total=Sum("entries__rating"),
        low=Min("entries__rating"), high=Max("entries__n_comments"),
    ).order_by("name").values_list("name", "n", "rated", "avg", "avg_comments", "total",
                                   "low", "high")
    assert list(rows) == [
        ("Ann", 4, 2, 3.25, 3.75, 6.5, 2.5, 6),
        ("Bob", 1, 0, None, 7.0, None, None, 7),
        ("Cy", 0, 0, None, None, None, None, None),
    ]


def test_range_frames_with_offsets_count_sort_key_units(ranked_entries):
    from django.db.models import Sum, Window
    from django.db.models.expressions import ValueRange

    # n_comments: C 3, E 3, A 5, B 5, D 9. A frame holds the rows whose key
    # is within the offsets of the current row's key, peers included.
    rows = Entry.objects.annotate(
        near=Window(Sum("n_comments"), order_by=F("n_comments").asc(),
                    frame=ValueRange(start=-2, end=0)),
        # Descending: PRECEDING means larger keys.
        above=Window(Sum("n_comments"), order_by=F("n_comments").desc(),
                     frame=ValueRange(start=-4, end=0)),
    ).order_by("headline").values_list("headline", "near", "above")
    assert list(rows) == [("A", 16, 19), ("B", 16, 19), ("C", 6, 16), ("D", 9, 9), ("E", 6, 16)]


def test_filtering_on_a_window_function(ranked_entries):
    from django.db.models import Window
    from django.db.models.functions import Rank

    top = Entry.objects.annotate(
        rank=Window(Rank(), order_by=F("n_comments").desc()),
    ).filter(rank__lte=3).order_by("headline")
    assert headlines(top) == ["A", "B", "D"]


def test_a_window_sum_over_no_values_is_null(ranked_entries):
    from django.db.models import Sum, Window

    # Each row alone in its frame; C's rating is NULL, so its SUM is NULL (not 0).
    from django.db.models.expressions import RowRange

    rows = Entry.objects.annotate(
        own=Window(Sum("rating"), order_by=F("headline").asc(), frame=RowRange(0, 0)),
    ).order_by("headline").values_list("headline", "own")
    assert list(rows) == [("A", 1.0), ("B", 2.0), ("C", None), ("D", 4.0), ("E", 5.0)]


def test_window_frames_exclude_the_current_row_its_group_or_its_ties(ranked_entries):
    from django.db.models import Count, Sum, Window
    from django.db.models.expressions import RowRange, ValueRange, WindowFrameExclusion

    # Sorted by n_comments: C 3, E 3 | A 5, B 5 | D 9; ratings A 1, B 2, C NULL, D 4, E 5.
    def whole(exclusion):
        return Window(Sum("rating"), order_by=F("n_comments").asc(),
                      frame=ValueRange(start=None, end=None, exclusion=exclusion))

    rows = Entry.objects.annotate(
        others=whole(WindowFrameExclusion.CURRENT_ROW),
        other_groups=whole(WindowFrameExclusion.GROUP),
        no_ties=whole(WindowFrameExclusion.TIES),
        everyone=whole(WindowFrameExclusion.NO_OTHERS),
        # SQL's default RANGE frame (up to the last peer), without the peers.
        before=Window(Max("rating"), order_by=F("n_comments").asc(),
                      frame=ValueRange(end=0, exclusion=WindowFrameExclusion.GROUP)),
        neighbours=Window(Count("rating"), order_by=F("headline").asc(),
                          frame=RowRange(-1, 1, exclusion=WindowFrameExclusion.CURRENT_ROW)),
    ).order_by("headline").values_list("headline", "others", "other_groups", "no_ties",
                                       "everyone", "before", "neighbours")
    assert list(rows) == [
        ("A", 11.0, 9.0, 10.0, 12.0, 5.0, 1),
        ("B", 10.0, 9.0, 11.0, 12.0, 5.0, 1),
        ("C", 12.0, 7.0, 7.0, 12.0, None, 2),
        ("D", 8.0, 8.0, 12.0, 12.0, 5.0, 1),
        ("E", 7.0, 7.0, 12.0, 12.0, None, 1),
    ]
