"""The benchmark's models: authors and their entries, with the indexes a Django
developer would declare (a foreign key, and db_index on the fields filtered or
sorted on)."""

from django.db import models


class Author(models.Model):
    name = models.CharField(max_length=100)

    class Meta:
        app_label = "benchapp"


class Entry(models.Model):
    author = models.ForeignKey(Author, on_delete=models.CASCADE)
    headline = models.CharField(max_length=200, db_index=True)
    n = models.IntegerField(db_index=True)
    rating = models.FloatField(db_index=True)
    at = models.DateTimeField(db_index=True)
    body = models.TextField()

    class Meta:
        app_label = "benchapp"
