"""The models of the ORM benchmark (benches/orm), whose query shapes
tests/test_query_plans.py checks the planner serves from indexes."""

from django.db import models


class Writer(models.Model):
    name = models.CharField(max_length=100)


class Post(models.Model):
    writer = models.ForeignKey(Writer, on_delete=models.CASCADE)
    headline = models.CharField(max_length=200, db_index=True)
    n = models.IntegerField(db_index=True)
    rating = models.FloatField(db_index=True)
    at = models.DateTimeField(db_index=True)
    body = models.TextField()
