"""Models whose collections carry validators: CHECK constraints, and a $jsonSchema
generated from the model (djongo.models.JSONSchemaValidation)."""

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db.models import F, Q
from djongo import models


class Product(models.Model):
    name = models.CharField(max_length=20)
    price = models.DecimalField(max_digits=8, decimal_places=2)
    discounted_price = models.DecimalField(max_digits=8, decimal_places=2, null=True)
    stock = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(price__gt=0), name="price_gt_0"),
            models.CheckConstraint(condition=Q(price__gt=F("discounted_price")),
                                   name="price_gt_discount"),
        ]


class Address(models.Model):
    city = models.CharField(max_length=30)
    zip_code = models.CharField(max_length=5, null=True, blank=True)

    class Meta:
        abstract = True


class Tag(models.Model):
    label = models.CharField(max_length=10)

    class Meta:
        abstract = True


class Article(models.Model):
    title = models.CharField(max_length=30)
    status = models.CharField(max_length=10, default="draft",
                              choices=[("draft", "Draft"), ("live", "Live")])
    rating = models.IntegerField(null=True, blank=True,
                                 validators=[MinValueValidator(1), MaxValueValidator(5)])
    address = models.EmbeddedField(model_container=Address, null=True, blank=True)
    tags = models.ArrayField(model_container=Tag, null=True, blank=True)
    published = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.JSONSchemaValidation(),
            models.CheckConstraint(condition=Q(rating__gte=1), name="rating_at_least_1"),
        ]
