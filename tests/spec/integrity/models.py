# Djongo's "Integrity checks" example, as printed; Address is the validators example's.
from djongo import models

from tests.spec.validators.models import Address


class Entry(models.Model):
    _id = models.ObjectIdField()
    address = models.EmbeddedField(model_container=Address,
                                   null=False,
                                   blank=False)
