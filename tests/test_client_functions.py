"""MD5()/SHA*(), CHR() and ORD(): MongoDB has no operator for them, so the
backend computes them where that is exact (crates/compiler/src/lower/client.rs)."""

from __future__ import annotations

import hashlib

import pytest
from django.db import NotSupportedError, connection
from django.db.models import CharField, Value
from django.db.models.functions import MD5, SHA256, Chr, Left, Ord
from django.test.utils import register_lookup

from tests.blogapp.models import Author

pytestmark = pytest.mark.django_db


@pytest.fixture
def authors():
    for name in ("Jan", "Élodie", "皇帝", ""):
        Author.objects.create(name=name)
    Author.objects.create(name="null email", email=None)


def test_hashes_in_the_select_list(authors):
    hashed = Author.objects.annotate(h=MD5("name"), s=SHA256("email")).order_by("pk")
    rows = list(hashed.values_list("name", "h", "s"))
    assert [h for _, h, _ in rows] == [hashlib.md5(n.encode()).hexdigest() for n, _, _ in rows]
    assert {s for *_, s in rows} == {None}


def test_hashes_of_constants_anywhere(authors):
    jan = hashlib.md5(b"Jan").hexdigest()
    assert Author.objects.filter(name="Jan").annotate(h=MD5(Value("Jan"))).get().h == jan
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 WHERE MD5(%s) = %s", ["Jan", jan])
        assert cursor.fetchall() == [(1,)]


def test_a_hash_of_a_column_compared_in_where_filters_the_rows(authors):
    jan, elodie = (hashlib.sha256(n.encode()).hexdigest() for n in ("Jan", "Élodie"))
    with register_lookup(CharField, SHA256):
        found = Author.objects.filter(name__sha256=jan)
        assert list(found.values_list("name", flat=True)) == ["Jan"]
        # Beside conditions the server runs, in its order, with its columns.
        assert [a.name for a in Author.objects.filter(name__sha256=elodie, rank=0)] == ["Élodie"]
        assert list(Author.objects.filter(name__sha256=elodie, rank=1)) == []
        above = Author.objects.filter(name__sha256__gt=jan).order_by("-name")
        expected = sorted((n for n in ("Jan", "Élodie", "皇帝", "", "null email")
                           if hashlib.sha256(n.encode()).hexdigest() > jan), reverse=True)
        assert list(above.values_list("name", flat=True)) == expected
    with register_lookup(CharField, MD5):
        # NULL has no hash: it compares with nothing (the "" name does).
        assert list(Author.objects.filter(email__md5__lt="g").values_list("name")) == []
        blank = hashlib.md5(b"").hexdigest()
        assert list(Author.objects.filter(name__md5=blank).values_list("name")) == [("",)]
    with connection.cursor() as cursor:
        cursor.execute('SELECT "name" FROM "blogapp_author" WHERE MD5("email") <> %s', ["x"])
        assert cursor.fetchall() == [] and len(cursor.description) == 1
        cursor.execute('SELECT "name" FROM "blogapp_author" WHERE %s = MD5("name")',
                       [hashlib.md5(b"Jan").hexdigest()])
        assert cursor.fetchall() == [("Jan",)] and len(cursor.description) == 1


def test_a_hash_of_a_column_is_refused_where_the_server_needs_it(authors):
    with register_lookup(CharField, MD5):
        # LIMIT, COUNT(*) and NOT run on the server after the WHERE.
        with pytest.raises(NotSupportedError, match="MD5"):
            list(Author.objects.filter(name__md5="x")[:1])
        with pytest.raises(NotSupportedError, match="MD5"):
            Author.objects.filter(name__md5="x").count()
        with pytest.raises(NotSupportedError, match="MD5"):
            list(Author.objects.exclude(name__md5="x"))
    with pytest.raises(NotSupportedError, match="MD5"):
        list(Author.objects.annotate(h=MD5("name")).order_by("h"))


def test_chr_and_ord(authors):
    initials = Author.objects.annotate(first=Left("name", 1))
    assert list(initials.filter(first=Chr(ord("J"))).values_list("name", flat=True)) == ["Jan"]
    assert list(initials.filter(first=Chr(ord("É"))).values_list("name", flat=True)) == ["Élodie"]
    codes = dict(Author.objects.annotate(o=Ord("name")).values_list("name", "o"))
    assert codes == {"Jan": 74, "Élodie": 201, "皇帝": 30343, "": 0, "null email": 110}
    above = Author.objects.annotate(o=Ord("name")).filter(o__gt=Ord(Value("Jan")))
    assert sorted(above.values_list("name", flat=True)) == ["null email", "Élodie", "皇帝"]
    with register_lookup(CharField, Ord):
        assert list(Author.objects.filter(name__ord=74).values_list("name", flat=True)) == ["Jan"]
        assert list(Author.objects.filter(name__ord=0).values_list("name", flat=True)) == [""]
