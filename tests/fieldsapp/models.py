"""Djongo's MongoDB fields, modelled on the examples of Djongo's field pages."""

from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import F
from django.db.models import GeneratedField as DjangoGeneratedField
from django.db.models import JSONField as DjangoJSONField
from django.db.models.functions import Lower
from djongo import models


class Author(models.Model):
    name = models.CharField(max_length=200)
    email = models.EmailField()

    class Meta:
        abstract = True

    def __str__(self):
        return self.name


class Post(models.Model):
    """ArrayField: the authors are embedded, as an array of sub-documents."""

    headline = models.CharField(max_length=255)
    authors = models.ArrayField(model_container=Author, blank=True)
    objects = models.DjongoManager()

    def __str__(self):
        return self.headline


class Person(models.Model):
    name = models.CharField(max_length=200)
    email = models.EmailField(blank=True)

    def __str__(self):
        return self.name


class Article(models.Model):
    """ArrayReferenceField: the document holds the people's ids in an array."""

    headline = models.CharField(max_length=255)
    contributors = models.ArrayReferenceField(to=Person, on_delete=models.CASCADE)
    reviewers = models.ArrayReferenceField(to="fieldsapp.Person", on_delete=models.PROTECT,
                                           related_name="reviewed", blank=True)
    objects = models.DjongoManager()

    def __str__(self):
        return self.headline


class Event(models.Model):
    """JSONField and GenericObjectIdField."""

    kind = models.CharField(max_length=50)
    data = models.JSONField(default=dict, blank=True)
    source = models.GenericObjectIdField(null=True, blank=True)


class Record(models.Model):
    """Django's own JSONField (not Djongo's): SQL semantics over native BSON."""

    name = models.CharField(max_length=50, blank=True)
    value = DjangoJSONField(null=True, blank=True)
    extra = DjangoJSONField(default=dict, encoder=DjangoJSONEncoder)

    def __str__(self):
        return self.name


class Rectangle(models.Model):
    """Django's GeneratedField: computed by the server whenever a row is written."""

    name = models.CharField(max_length=50, unique=True)
    width = models.IntegerField()
    height = models.IntegerField()
    area = DjangoGeneratedField(expression=F("width") * F("height"),
                                output_field=models.IntegerField(), db_persist=True)
    label = DjangoGeneratedField(expression=Lower("name"),
                                 output_field=models.CharField(max_length=50), db_persist=False)

    def __str__(self):
        return self.name


class Memo(models.Model):
    """CharField without max_length: a varchar without a limit."""

    text = models.CharField()


class Place(models.Model):
    """A named place, as in the MongoDB manual's geospatial examples."""

    name = models.CharField(max_length=100)
    category = models.CharField(max_length=40, blank=True)
    location = models.PointField(null=True, blank=True)

    class Meta:
        indexes = [models.TwoDSphereIndex(fields=["location"], name="place_location_geo")]

    def __str__(self):
        return self.name
