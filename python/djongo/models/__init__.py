"""``from djongo import models``: Django's models plus MongoDB's shapes."""

from django.db.models import *  # noqa: F403
from django.db.models import __all__ as _django_all

from .fields import ArrayField, EmbeddedField, ObjectIdField
from .manager import DjongoManager

__all__ = [*_django_all, "ArrayField", "DjongoManager", "EmbeddedField", "ObjectIdField"]
