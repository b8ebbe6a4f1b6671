"""Date and datetime literals in CHECK constraints and partial index
conditions compare as dates (the schema editor writes them as
CAST('...' AS date), which the compiler folds into a BSON date)."""

import datetime

import pytest
from django.db import IntegrityError, connection, transaction
from django.test import override_settings

from tests.writeapp.models import Booking

pytestmark = pytest.mark.django_db

UTC = datetime.UTC


def test_a_check_with_a_date_compares_dates():
    Booking.objects.create(room="a", day=datetime.date(2020, 1, 1))
    with pytest.raises(IntegrityError, match="booking_from_2020"), transaction.atomic():
        Booking.objects.create(room="a", day=datetime.date(2019, 12, 31))
    Booking.objects.create(room="b", day=datetime.date(2021, 1, 1),
                           at=datetime.datetime(2099, 12, 31, 23, 59, tzinfo=UTC))
    with pytest.raises(IntegrityError, match="booking_before_2100"), transaction.atomic():
        Booking.objects.create(room="c", day=datetime.date(2021, 1, 1),
                               at=datetime.datetime(2100, 1, 1, tzinfo=UTC))
    assert Booking.objects.count() == 2


def test_a_partial_index_condition_with_a_date_compares_dates():
    # Past bookings of a room may repeat; only one booking from 2030 on.
    Booking.objects.create(room="a", day=datetime.date(2025, 5, 1))
    Booking.objects.create(room="a", day=datetime.date(2025, 5, 2))
    Booking.objects.create(room="a", day=datetime.date(2030, 1, 1))
    with pytest.raises(IntegrityError), transaction.atomic():
        Booking.objects.create(room="a", day=datetime.date(2031, 1, 1))
    indexes = {i["name"]: i for i in connection.connection.database["writeapp_booking"]
               .list_indexes(session=connection.connection.session_for_statement())}
    condition = indexes["booking_one_future_per_room"]["partialFilterExpression"]
    assert datetime.datetime(2030, 1, 1) in _values(condition)


def _values(document):
    if isinstance(document, dict):
        for value in document.values():
            yield from _values(value)
    elif isinstance(document, list):
        for value in document:
            yield from _values(value)
    else:
        yield document


def test_datetimes_read_back_in_the_connections_time_zone():
    # Stored as naive UTC; read aware under USE_TZ (in the connection's time
    # zone), naive without it, NULL as None, as on Django's other backends.
    at = datetime.datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=UTC)
    Booking.objects.create(room="a", day=datetime.date(2024, 5, 6), at=at)
    Booking.objects.create(room="b", day=datetime.date(2024, 5, 6), at=None)
    read = dict(Booking.objects.values_list("room", "at"))
    assert read == {"a": at, "b": None}
    assert read["a"].tzinfo is connection.timezone
    assert Booking.objects.get(room="a").at == at
    with override_settings(USE_TZ=False):
        naive = Booking.objects.get(room="a").at
    assert naive == at.replace(tzinfo=None) and naive.tzinfo is None
