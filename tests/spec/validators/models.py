# Djongo's "Data security and integrity checks" example, as printed (the page's
# truncated `class Meta:` is Djongo's `abstract = True`).
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.utils.translation import gettext_lazy as _
from djongo import models


def script_injection(value):
    if value.find('<script>') != -1:
        raise ValidationError(_('Script injection in %(value)s'),
                              params={'value': value})


class Address(models.Model):
    city = models.CharField(max_length=50)
    homepage = models.URLField(validators=[URLValidator, script_injection])

    class Meta:
        abstract = True


class Entry(models.Model):
    _id = models.ObjectIdField()
    address = models.EmbeddedField(model_container=Address)
