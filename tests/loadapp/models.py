"""What the multi-process load tests write: items each client owns and updates,
and accounts that money moves between in atomic() blocks."""

from django.db import models


class Item(models.Model):
    owner = models.CharField(max_length=40)
    seq = models.IntegerField()
    qty = models.IntegerField(default=0)


class Account(models.Model):
    name = models.CharField(max_length=40, unique=True)
    balance = models.IntegerField()


class Transfer(models.Model):
    # Unique: a transfer retried after an error it did commit would collide.
    tag = models.CharField(max_length=60, unique=True)
    src = models.CharField(max_length=40)
    dst = models.CharField(max_length=40)
    amount = models.IntegerField()
