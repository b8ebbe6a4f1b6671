"""Models copied from a SQL database into MongoDB by ``manage.py copydata``."""

from django.db import models


class Publisher(models.Model):
    name = models.CharField(max_length=100, unique=True)


class Tag(models.Model):
    label = models.SlugField(primary_key=True)


class Book(models.Model):
    title = models.CharField(max_length=200)
    publisher = models.ForeignKey(Publisher, on_delete=models.CASCADE, related_name="books")
    # A value that a plain save() would overwrite: copying must keep the source's.
    updated = models.DateTimeField(auto_now=True)
    price = models.DecimalField(max_digits=8, decimal_places=2, null=True)
    tags = models.ManyToManyField(Tag, blank=True)
    sequel_of = models.OneToOneField("self", null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="prequel")
