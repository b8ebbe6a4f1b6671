"""Models for bulk writes (djongo.models.BulkWrite) and per-model concerns
(djongo.models.Concerns)."""

import datetime

from djongo import models


class Item(models.Model):
    sku = models.CharField(max_length=20, unique=True)
    qty = models.IntegerField(default=0)
    objects = models.DjongoManager()


class Note(models.Model):
    text = models.CharField(max_length=50)
    item = models.ForeignKey(Item, null=True, on_delete=models.SET_NULL)
    objects = models.DjongoManager()


class Ledger(models.Model):
    amount = models.IntegerField()

    concerns = models.Concerns(read_concern="majority",
                               write_concern={"w": "majority", "wtimeout": 5000},
                               read_preference="primaryPreferred")
    objects = models.DjongoManager()


class Majority(models.Model):
    concerns = models.Concerns(read_concern="majority",
                               write_concern={"w": "majority", "wtimeout": 5000})

    class Meta:
        abstract = True


class Audited(Majority):
    """Inherits its abstract parent's concerns."""

    reason = models.CharField(max_length=20, default="")
    objects = models.DjongoManager()


class Booking(models.Model):
    """Date literals in a CHECK and in a partial unique index's condition."""

    room = models.CharField(max_length=10)
    day = models.DateField()
    at = models.DateTimeField(null=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(day__gte=datetime.date(2020, 1, 1)),
                                   name="booking_from_2020"),
            models.CheckConstraint(
                condition=models.Q(at__lt=datetime.datetime(2100, 1, 1, tzinfo=datetime.UTC)),
                name="booking_before_2100"),
            models.UniqueConstraint(fields=["room"],
                                    condition=models.Q(day__gte=datetime.date(2030, 1, 1)),
                                    name="booking_one_future_per_room"),
        ]
