"""TextSearch / TextScore through the ORM, on a model whose Meta.indexes has a
TextIndex; expectations from MongoDB's $text manual page."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, NotSupportedError
from django.db.models import Q
from djongo.models import TextScore, TextSearch

from tests.blogapp.models import Article, Author

SUBJECTS = ["coffee", "Coffee Shopping", "Baking a cake", "baking", "Café Con Leche", "Сырники",
            "coffee and cream", "Cafe con Leche"]


@pytest.fixture
def articles(db):
    for i, subject in enumerate(SUBJECTS, start=1):
        Article.objects.create(subject=subject, views=i * 10)


def subjects(queryset) -> set[str]:
    return set(queryset.values_list("subject", flat=True))


@pytest.mark.usefixtures("articles")
def test_text_search_finds_what_mongodb_finds():
    assert subjects(Article.objects.filter(TextSearch("coffee"))) == {
        "coffee", "Coffee Shopping", "coffee and cream"}
    assert subjects(Article.objects.filter(TextSearch("coffee -shop"))) == {
        "coffee", "coffee and cream"}
    assert subjects(Article.objects.filter(TextSearch('"coffee shop"'))) == {"Coffee Shopping"}
    assert subjects(Article.objects.filter(TextSearch("leche", language="es"))) == {
        "Café Con Leche", "Cafe con Leche"}
    assert subjects(Article.objects.filter(TextSearch("Coffee", case_sensitive=True))) == {
        "Coffee Shopping"}
    assert subjects(Article.objects.filter(TextSearch("CAFÉ", diacritic_sensitive=True))) == {
        "Café Con Leche"}
    # Combined with other conditions, counted.
    assert Article.objects.filter(TextSearch("coffee"), views__gt=10).count() == 2
    assert Article.objects.filter(TextSearch("coffee")).count() == 3


@pytest.mark.usefixtures("articles")
def test_the_score_orders_the_results():
    found = list(Article.objects.filter(TextSearch("coffee shop"))
                 .annotate(score=TextScore()).order_by("-score", "subject"))
    assert [(a.subject, a.score) for a in found] == [
        ("Coffee Shopping", 1.5), ("coffee", 1.0), ("coffee and cream", 0.75)]
    best = (Article.objects.filter(TextSearch("baking cake")).annotate(score=TextScore())
            .order_by("-score").values_list("subject", flat=True).first())
    assert best == "Baking a cake"


@pytest.mark.usefixtures("articles")
def test_a_search_string_is_data():
    assert list(Article.objects.filter(TextSearch('{"$gt": ""}'))) == []
    assert list(Article.objects.filter(TextSearch("'); DROP TABLE x; --"))) == []


@pytest.mark.django_db
def test_errors_are_django_errors():
    with pytest.raises(DatabaseError, match="text index required"):
        list(Author.objects.filter(TextSearch("ada")))
    with pytest.raises(NotSupportedError, match="MONGO_TEXT_SEARCH"):
        list(Article.objects.exclude(TextSearch("coffee")))
    with pytest.raises(DatabaseError):
        list(Article.objects.filter(Q(TextSearch("coffee")) | Q(views=1)))
    with pytest.raises(TypeError):
        TextSearch(5)
