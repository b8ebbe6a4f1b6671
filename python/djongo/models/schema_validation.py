"""Server-side ``$jsonSchema`` validation generated from a model's fields.

A model opts in with a constraint in its ``Meta`` (Django allows no new
``Meta`` attributes, and a constraint is what migrations already track)::

    class Article(models.Model):
        title = models.CharField(max_length=100)
        class Meta:
            constraints = [models.JSONSchemaValidation()]

and a database with its ``SCHEMA_VALIDATION`` setting (``True``, or a dict
with ``validationLevel``/``validationAction``). ``migrate`` then installs the
schema as (part of) the collection's validator, and the schema editor
regenerates it whenever a migration adds, removes, alters or renames a field
of the model, so the next migration after a model change changes the
validator. A write that breaks it raises ``IntegrityError`` naming the field.
"""

from __future__ import annotations

import decimal
from collections.abc import Iterable
from typing import Any

from bson import Decimal128
from django.core import checks, validators
from django.db import models
from django.db.models.constraints import BaseConstraint

from ..binding import to_bson

LEVELS = ("strict", "moderate", "off")
ACTIONS = ("error", "warn")

# The BSON types djongo stores for each kind of field (binding.to_bson and
# DatabaseOperations.adapt_*): Python ints are int or long, dates are BSON
# dates, times ISO strings, UUIDs hex strings, durations microseconds.
INTEGER = ["int", "long"]
BSON_TYPES: dict[str, list[str]] = {
    **dict.fromkeys(["AutoField", "BigAutoField", "SmallAutoField", "IntegerField",
                     "BigIntegerField", "SmallIntegerField", "PositiveIntegerField",
                     "PositiveBigIntegerField", "PositiveSmallIntegerField",
                     "DurationField"], INTEGER),
    "FloatField": ["double"],
    "DecimalField": ["decimal"],
    "BooleanField": ["bool"],
    **dict.fromkeys(["CharField", "TextField", "SlugField", "EmailField", "URLField",
                     "FilePathField", "FileField", "ImageField", "GenericIPAddressField",
                     "IPAddressField", "UUIDField", "TimeField"], ["string"]),
    "DateField": ["date"],
    "DateTimeField": ["date"],
    "BinaryField": ["binData"],
    "ObjectIdField": ["objectId"],
    "GenericObjectIdField": ["objectId"],
    "EmbeddedField": ["object"],
    "ArrayField": ["array"],
    "ArrayReferenceField": ["array"],
}

# Positive*Field: also checked by their column CHECK constraints.
NON_NEGATIVE = {"PositiveIntegerField", "PositiveBigIntegerField", "PositiveSmallIntegerField"}


class JSONSchemaValidation(BaseConstraint):
    """Asks for the model's ``$jsonSchema`` to be installed as its collection's validator
    (on the databases whose ``SCHEMA_VALIDATION`` setting enables it).

    ``validation_level`` (``"strict"``, ``"moderate"``, ``"off"``) and
    ``validation_action`` (``"error"``, ``"warn"``) override the database's.
    """

    def __init__(self, *, name: str = "%(app_label)s_%(class)s_json_schema",
                 validation_level: str | None = None, validation_action: str | None = None,
                 violation_error_code=None, violation_error_message=None) -> None:
        if validation_level is not None and validation_level not in LEVELS:
            raise ValueError(f"validation_level must be one of {', '.join(LEVELS)}")
        if validation_action is not None and validation_action not in ACTIONS:
            raise ValueError(f"validation_action must be one of {', '.join(ACTIONS)}")
        self.validation_level = validation_level
        self.validation_action = validation_action
        super().__init__(name=name, violation_error_code=violation_error_code,
                         violation_error_message=violation_error_message)

    # Nothing in SQL: djongo's schema editor installs the schema itself, and
    # other backends have nothing to do.
    def constraint_sql(self, model, schema_editor):
        return None

    def create_sql(self, model, schema_editor):
        return None

    def remove_sql(self, model, schema_editor):
        return None

    def validate(self, model, instance, exclude=None, using=None):
        # The fields' own validation (full_clean) checks what the schema
        # holds; the server enforces it on every write.
        return None

    def _check(self, model, connection):
        if connection.vendor != "djongo" or enabled(connection.settings_dict):
            return []
        return [checks.Warning(
            f"{model._meta.label} asks for JSON schema validation, but the database "
            f"{connection.alias!r} does not enable it (its SCHEMA_VALIDATION setting), "
            f"so no validator is installed there.",
            obj=model, id="djongo.W001",
        )]

    def deconstruct(self):
        _, args, kwargs = super().deconstruct()
        if self.validation_level is not None:
            kwargs["validation_level"] = self.validation_level
        if self.validation_action is not None:
            kwargs["validation_action"] = self.validation_action
        return "djongo.models.JSONSchemaValidation", args, kwargs

    def __eq__(self, other):
        if isinstance(other, JSONSchemaValidation):
            return self.deconstruct() == other.deconstruct()
        return NotImplemented

    def __repr__(self):
        return f"<{self.__class__.__name__}: name={self.name!r}>"


# -- settings ----------------------------------------------------------------------------


def check_setting(value: Any) -> str | None:
    """What is wrong with a ``SCHEMA_VALIDATION`` setting, if anything."""
    if isinstance(value, bool):
        return None
    if not isinstance(value, dict):
        return "must be True, False or a dict"
    unknown = set(value) - {"validationLevel", "validationAction"}
    if unknown:
        return f"has unknown key(s) {', '.join(sorted(unknown))}"
    if value.get("validationLevel", "strict") not in LEVELS:
        return f"validationLevel must be one of {', '.join(LEVELS)}"
    if value.get("validationAction", "error") not in ACTIONS:
        return f"validationAction must be one of {', '.join(ACTIONS)}"
    return None


def enabled(settings_dict: dict) -> bool:
    value = settings_dict.get("SCHEMA_VALIDATION", False)
    return value is True or isinstance(value, dict)


def model_constraint(model) -> JSONSchemaValidation | None:
    return next((c for c in model._meta.constraints if isinstance(c, JSONSchemaValidation)),
                None)


def level_and_action(constraint: JSONSchemaValidation, settings_dict: dict) -> tuple[str, str]:
    value = settings_dict.get("SCHEMA_VALIDATION")
    value = value if isinstance(value, dict) else {}
    return (constraint.validation_level or value.get("validationLevel", "strict"),
            constraint.validation_action or value.get("validationAction", "error"))


# -- the schema --------------------------------------------------------------------------


def json_schema(model, fields: Iterable[models.Field], connection) -> dict:
    """The ``$jsonSchema`` of ``model``'s documents with these (concrete) fields."""
    schema = object_schema(list(fields), connection)
    schema["title"] = model._meta.label
    return schema


def object_schema(fields: Iterable[models.Field], connection, embedded: bool = False) -> dict:
    """A document's schema; an embedded document keys its fields by attname."""
    properties: dict[str, dict] = {}
    required: list[str] = []
    for f in fields:
        key = f.attname if embedded else f.column
        if key is None:
            continue
        properties[key] = field_schema(f, connection)
        if not f.null and not f.has_default() and not f.has_db_default():
            required.append(key)
    schema: dict[str, Any] = {"bsonType": "object"}
    if required:
        schema["required"] = required
    if properties:
        schema["properties"] = properties
    return schema


def _types(f: models.Field) -> list[str] | None:
    target = f
    while target.is_relation and getattr(target, "target_field", None) is not None:
        target = target.target_field
    types = BSON_TYPES.get(target.get_internal_type())
    if types is None:
        return None
    return [*types, "null"] if f.null else list(types)


def _number(limit: Any) -> Any:
    if isinstance(limit, bool):
        return None
    if isinstance(limit, decimal.Decimal):
        return Decimal128(limit)
    return limit if isinstance(limit, (int, float)) else None


def field_schema(f: models.Field, connection) -> dict:
    schema: dict[str, Any] = {}
    types = _types(f)
    if types is not None:
        schema["bsonType"] = types[0] if len(types) == 1 else types
    max_length = f.max_length if isinstance(f, models.CharField) else None
    min_length = None
    minimum = 0 if f.get_internal_type() in NON_NEGATIVE else None
    maximum = None
    # The validators given to the field (not the integer ranges Django adds
    # for each column type: BSON integers have their own).
    for v in f._validators:
        if isinstance(v, validators.MinValueValidator) and not callable(v.limit_value):
            value = _number(v.limit_value)
            if value is not None and (minimum is None or value > minimum):
                minimum = value
        elif isinstance(v, validators.MaxValueValidator) and not callable(v.limit_value):
            value = _number(v.limit_value)
            if value is not None and (maximum is None or value < maximum):
                maximum = value
        elif isinstance(v, validators.MaxLengthValidator) and isinstance(v.limit_value, int):
            max_length = v.limit_value if max_length is None else min(max_length, v.limit_value)
        elif isinstance(v, validators.MinLengthValidator) and isinstance(v.limit_value, int):
            min_length = max(min_length or 0, v.limit_value)
    for keyword, value in (("maxLength", max_length), ("minLength", min_length),
                           ("minimum", minimum), ("maximum", maximum)):
        if value is not None:
            schema[keyword] = value
    if f.choices:
        values = _choice_values(f, connection)
        if values:
            schema["enum"] = values
    container = getattr(f, "model_container", None)
    if f.get_internal_type() == "EmbeddedField" and container is not None:
        # The sub-document's keywords; its type (null or not) is the field's.
        schema.update({k: v for k, v in _container_schema(container, connection).items()
                       if k != "bsonType"})
    elif f.get_internal_type() == "ArrayField" and container is not None:
        schema["items"] = _container_schema(container, connection)
    return schema


def _container_schema(container, connection) -> dict:
    from .fields import _embedded_fields

    return object_schema(_embedded_fields(container), connection, embedded=True)


def _choice_values(f: models.Field, connection) -> list | None:
    values: list = []
    for value, _label in f.flatchoices:
        try:
            stored = to_bson(f.get_db_prep_value(value, connection, prepared=False))
        except Exception:  # A choice the field cannot store: no enum rather than a wrong one.
            return None
        if stored not in values:
            values.append(stored)
    if f.null and None not in values:
        values.append(None)
    return values
