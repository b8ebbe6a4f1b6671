"""Django's GeneratedField: the server computes it whenever a row is written
(INSERT, UPDATE, upserts, and rows already there when the column is added)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.models import F

from tests.fieldsapp.models import Rectangle

pytestmark = pytest.mark.django_db


def areas() -> list[tuple[str, int, str]]:
    return list(Rectangle.objects.order_by("name").values_list("name", "area", "label"))


def test_computed_on_insert_and_returned():
    r = Rectangle.objects.create(name="A", width=2, height=3)
    assert r.area == 6  # RETURNING gives the computed value
    Rectangle.objects.bulk_create([Rectangle(name="B", width=1, height=1),
                                   Rectangle(name="C", width=4, height=5)])
    assert areas() == [("A", 6, "a"), ("B", 1, "b"), ("C", 20, "c")]


def test_recomputed_on_update_and_save():
    r = Rectangle.objects.create(name="A", width=2, height=3)
    Rectangle.objects.filter(pk=r.pk).update(width=F("width") + 1)
    assert areas() == [("A", 9, "a")]
    r.refresh_from_db()
    r.height, r.name = 10, "Big"
    r.save()
    r.refresh_from_db()
    assert (r.area, r.label) == (30, "big")
    assert list(Rectangle.objects.filter(area__gt=20).values_list("name", flat=True)) == ["Big"]


def test_recomputed_on_upserts():
    Rectangle.objects.create(name="A", width=2, height=3)
    Rectangle.objects.bulk_create([Rectangle(name="A", width=5, height=5),
                                   Rectangle(name="N", width=1, height=2)],
                                  update_conflicts=True, unique_fields=["name"],
                                  update_fields=["width", "height"])
    assert areas() == [("A", 25, "a"), ("N", 2, "n")]


@pytest.mark.django_db(transaction=True)
def test_added_column_is_computed_for_existing_rows():
    Rectangle.objects.create(name="A", width=2, height=3)
    table = '"fieldsapp_rectangle"'
    with connection.cursor() as cursor:
        cursor.execute(f'ALTER TABLE {table} ADD COLUMN "half_perimeter" integer '
                       'GENERATED ALWAYS AS (("width" + "height")) STORED')
        try:
            cursor.execute(f'SELECT "half_perimeter" FROM {table}')
            assert cursor.fetchall() == [(5,)]
            # The same connection's next UPDATE knows the new column.
            cursor.execute(f'UPDATE {table} SET "width" = 10')
            cursor.execute(f'SELECT "half_perimeter" FROM {table}')
            assert cursor.fetchall() == [(13,)]
        finally:
            cursor.execute(f'ALTER TABLE {table} DROP COLUMN "half_perimeter"')
