"""``from djongo import models``: Django's models plus MongoDB's shapes.

``JSONField`` here is djongo's (a value stored as a BSON document, queryable
by key), as in Djongo; Django's own is ``django.db.models.JSONField``.
"""

from django.db.models import *  # noqa: F403
from django.db.models import __all__ as _django_all

from .bulk import BulkWrite
from .fields import ArrayField, EmbeddedField, GenericObjectIdField, JSONField, ObjectIdField
from .geo import Distance, GeoPoint, PointField
from .indexes import (
    CompoundIndex,
    HashedIndex,
    MongoIndex,
    TextIndex,
    TTLIndex,
    TwoDSphereIndex,
    WildcardIndex,
)
from .manager import Concerns, DjongoManager, DjongoQuerySet
from .references import ArrayReferenceField
from .schema_validation import JSONSchemaValidation
from .search import TextScore, TextSearch

__all__ = [
    *_django_all, "ArrayField", "ArrayReferenceField", "BulkWrite", "Concerns", "Distance",
    "DjongoManager", "DjongoQuerySet", "EmbeddedField", "GenericObjectIdField", "GeoPoint",
    "JSONField", "JSONSchemaValidation", "MongoIndex", "ObjectIdField", "PointField", "TTLIndex",
    "CompoundIndex", "TextIndex", "HashedIndex", "WildcardIndex", "TwoDSphereIndex", "TextSearch",
    "TextScore",
]
