"""The models of the ODM Performance Benchmarking specification, as django-mongodb-backend's
performance_tests/perf/models.py declares them: the same fields, the same index on
``SmallFlatModel.field1``. Only the embedded-document fields differ, each backend's own:
django-mongodb-backend's EmbeddedModelField/EmbeddedModelArrayField of an EmbeddedModel,
djongo's EmbeddedField/ArrayField of an abstract model (its documented way, from Djongo).
"""

import os

from django.db import models

OFFICIAL = os.environ["ODM_BACKEND"] == "official"

if OFFICIAL:
    from django_mongodb_backend.fields import EmbeddedModelArrayField, EmbeddedModelField
    from django_mongodb_backend.models import EmbeddedModel as _EmbeddedBase

    def embedded(container):
        return EmbeddedModelField(container)

    def embedded_array(container):
        return EmbeddedModelArrayField(container)

else:
    from djongo.models import ArrayField, EmbeddedField

    _EmbeddedBase = models.Model

    def embedded(container):
        return EmbeddedField(model_container=container)

    def embedded_array(container):
        return ArrayField(model_container=container)


class SmallFlatModel(models.Model):
    field1 = models.CharField(max_length=100)
    field2 = models.CharField(max_length=100)
    field3 = models.CharField(max_length=100)
    field4 = models.CharField(max_length=100)
    field5 = models.CharField(max_length=100)
    field6 = models.CharField(max_length=100)
    field7 = models.CharField(max_length=100)
    field8 = models.IntegerField()
    field9 = models.IntegerField()
    field10 = models.IntegerField()
    field11 = models.IntegerField()
    field12 = models.IntegerField()
    field13 = models.IntegerField()

    class Meta:
        indexes = [models.Index(fields=["field1"], name="field1_idx")]


class ForeignKeyModel(models.Model):
    name = models.CharField(max_length=100)


class SmallFlatModelFk(models.Model):
    field1 = models.CharField(max_length=100)
    field2 = models.CharField(max_length=100)
    field3 = models.CharField(max_length=100)
    field4 = models.CharField(max_length=100)
    field5 = models.CharField(max_length=100)
    field6 = models.CharField(max_length=100)
    field7 = models.CharField(max_length=100)
    field8 = models.IntegerField()
    field9 = models.IntegerField()
    field10 = models.IntegerField()
    field11 = models.IntegerField()
    field12 = models.IntegerField()
    field13 = models.IntegerField()
    field_fk = models.ForeignKey(ForeignKeyModel, on_delete=models.DO_NOTHING)


# 125 string fields, 125 integer fields and a binary image, built programmatically as the
# official models module does.
_large_flat_attrs = {"__module__": __name__, "image_field": models.BinaryField()}
for _i in range(125):
    _large_flat_attrs[f"field{_i + 1}"] = models.CharField(max_length=100)
    _large_flat_attrs[f"field{_i + 126}"] = models.IntegerField()
LargeFlatModel = type("LargeFlatModel", (models.Model,), _large_flat_attrs)


def _string_fields() -> dict:
    attrs = {"__module__": __name__, "unique_field": models.CharField(max_length=100)}
    attrs.update({f"field{i}": models.CharField(max_length=100) for i in range(1, 16)})
    return attrs


def _integer_fields() -> dict:
    attrs = {"__module__": __name__}
    attrs.update({f"field{i}": models.IntegerField() for i in range(1, 16)})
    return attrs


if OFFICIAL:
    StringEmbeddedModel = type("StringEmbeddedModel", (_EmbeddedBase,), _string_fields())
    IntegerEmbeddedModel = type("IntegerEmbeddedModel", (_EmbeddedBase,), _integer_fields())
else:
    _abstract = type("Meta", (), {"abstract": True})
    StringEmbeddedModel = type(
        "StringEmbeddedModel", (_EmbeddedBase,), {**_string_fields(), "Meta": _abstract}
    )
    IntegerEmbeddedModel = type(
        "IntegerEmbeddedModel", (_EmbeddedBase,), {**_integer_fields(), "Meta": _abstract}
    )

_nested_attrs = {"__module__": __name__}
for _i in range(1, 6):
    _nested_attrs[f"embedded_str_doc_{_i}"] = embedded(StringEmbeddedModel)
_nested_attrs["embedded_str_doc_array"] = embedded_array(StringEmbeddedModel)
for _i in range(8, 15):
    _nested_attrs[f"embedded_int_doc_{_i}"] = embedded(IntegerEmbeddedModel)
LargeNestedModel = type("LargeNestedModel", (models.Model,), _nested_attrs)
