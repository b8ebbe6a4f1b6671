"""MongoDB-shaped fields: embedded documents, arrays of them, ObjectId keys."""

from __future__ import annotations

import json
from typing import Any

from bson import Decimal128, ObjectId
from bson.errors import InvalidId
from django import forms
from django.core import checks
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.base import ModelState
from django.db.models.fields import AutoFieldMixin
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from ..binding import to_bson


def _embedded_fields(model_container: type[models.Model]) -> list[models.Field]:
    return [
        f for f in model_container._meta.concrete_fields
        if not isinstance(f, (models.AutoField, ObjectIdField))
    ]


def make_instance(model_container: type[models.Model], values: dict[str, Any]) -> models.Model:
    """An instance of ``model_container`` from a stored sub-document.

    Containers are usually abstract models, which Django refuses to
    instantiate, so the instance is assembled without calling ``__init__``.
    A field missing from the document takes its default.
    """
    instance = model_container.__new__(model_container)
    instance._state = ModelState()
    instance._state.adding = False
    for field in _embedded_fields(model_container):
        if field.attname in values:
            value = values[field.attname]
        elif field.name in values:
            value = values[field.name]
        else:
            value = field.get_default()
        if isinstance(value, Decimal128):
            value = value.to_decimal()
        setattr(instance, field.attname, field.to_python(value))
    return instance


def _allow_instantiation(model_container: type[models.Model]) -> None:
    """Lets ``Blog(name=...)`` build an embedded value, as it did with Djongo.

    Django 4+ refuses to instantiate abstract models; an abstract model used
    as a container gets a constructor that assembles the instance the same
    way stored documents are read. Concrete subclasses keep Django's own.
    """
    if not model_container._meta.abstract or "__init__" in vars(model_container):
        return
    django_init = model_container.__init__

    def __init__(self, *args, **kwargs):
        if not type(self)._meta.abstract:
            django_init(self, *args, **kwargs)
            return
        if args:
            raise TypeError(f"{type(self).__name__}() takes field values as keywords only")
        names = {f.attname for f in _embedded_fields(type(self))} | {
            f.name for f in _embedded_fields(type(self))}
        unknown = set(kwargs) - names
        if unknown:
            raise TypeError(
                f"{type(self).__name__}() got unexpected field(s): {', '.join(sorted(unknown))}")
        filled = make_instance(type(self), kwargs)
        self.__dict__.update(filled.__dict__)

    model_container.__init__ = __init__


class EmbeddedWidget(forms.MultiWidget):
    """One labelled input per field of the embedded model."""

    def __init__(self, widgets, labels, attrs=None):
        self.labels = labels
        super().__init__(widgets, attrs)

    def decompress(self, value):
        if value is None:
            return [None] * len(self.widgets)
        if isinstance(value, dict):
            return list(value.values())
        return [getattr(value, name, None) for name in self.field_names]

    def render(self, name, value, attrs=None, renderer=None):
        context = self.get_context(name, value, attrs)
        rows = []
        for label, subwidget in zip(self.labels, context["widget"]["subwidgets"], strict=True):
            widget = self.widgets[len(rows)]
            html = widget.render(
                subwidget["name"], subwidget["value"], subwidget["attrs"], renderer
            )
            rows.append((subwidget["attrs"].get("id", ""), label, html))
        return format_html(
            '<div class="djongo-embedded">{}</div>',
            format_html_join(
                "", '<div class="form-row"><label for="{}">{}:</label> {}</div>',
                ((i, lbl, mark_safe(h)) for i, lbl, h in rows),
            ),
        )


class EmbeddedFormField(forms.MultiValueField):
    def __init__(self, model_container, **kwargs):
        self.model_container = model_container
        model_fields = _embedded_fields(model_container)
        fields, labels = [], []
        for model_field in model_fields:
            form_field = model_field.formfield() or forms.CharField(required=False)
            fields.append(form_field)
            labels.append(str(model_field.verbose_name).capitalize())
        widget = EmbeddedWidget([f.widget for f in fields], labels)
        widget.field_names = [f.attname for f in model_fields]
        self.field_names = widget.field_names
        kwargs.pop("max_length", None)
        super().__init__(fields=fields, widget=widget, require_all_fields=False, **kwargs)

    def compress(self, data_list):
        if not data_list or all(v in (None, "") for v in data_list):
            return None
        return make_instance(self.model_container, dict(zip(self.field_names, data_list,
                                                           strict=True)))


class EmbeddedField(models.Field):
    """A model stored as a sub-document of its parent's document.

    ``Entry.objects.filter(blog={'name': 'Beatles Blog'})`` and the other
    lookups accept a dict, matched field by field; ``blog__name__startswith``
    reaches into the sub-document.
    """

    description = "An embedded document"

    def __init__(self, model_container: type[models.Model] | None = None,
                 model_form_class=None, model_form_kwargs=None, *args, **kwargs):
        self.model_container = model_container
        self.model_form_class = model_form_class
        self.model_form_kwargs = model_form_kwargs or {}
        if isinstance(model_container, type) and issubclass(model_container, models.Model):
            _allow_instantiation(model_container)
        super().__init__(*args, **kwargs)

    def check(self, **kwargs):
        errors = super().check(**kwargs)
        if not (isinstance(self.model_container, type)
                and issubclass(self.model_container, models.Model)):
            errors.append(checks.Error(
                "EmbeddedField needs model_container: a Model class (usually abstract).",
                obj=self, id="djongo.E001",
            ))
        return errors

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs["model_container"] = self.model_container
        return name, "djongo.models.EmbeddedField", args, kwargs

    def db_type(self, connection):
        return "embedded"

    def get_internal_type(self):
        return "EmbeddedField"

    def to_python(self, value):
        if value is None or isinstance(value, self.model_container):
            return value
        if isinstance(value, str):
            value = json.loads(value)
        if isinstance(value, dict):
            return make_instance(self.model_container, value)
        raise ValidationError(f"{value!r} is not a {self.model_container.__name__} document")

    def from_db_value(self, value, expression, connection):
        return self.to_python(value)

    def get_prep_value(self, value):
        if value is None or isinstance(value, dict):
            return value
        if isinstance(value, self.model_container):
            return {
                f.attname: f.get_prep_value(getattr(value, f.attname))
                for f in _embedded_fields(self.model_container)
            }
        return value

    def pre_save(self, model_instance, add):
        # Django refuses model instances as UPDATE values for non-relation
        # fields, so the row gets the sub-document, not the instance.
        return self.get_prep_value(getattr(model_instance, self.attname))

    def get_db_prep_value(self, value, connection, prepared=False):
        if isinstance(value, self.model_container):
            return {
                f.attname: to_bson(f.get_db_prep_value(getattr(value, f.attname), connection))
                for f in _embedded_fields(self.model_container)
            }
        if isinstance(value, dict):
            return to_bson(value)
        return value

    def validate(self, value, model_instance):
        super().validate(value, model_instance)
        if value is None:
            return
        # The parent model reports errors per field as a list, so each
        # sub-field's messages are listed under the embedded field, named.
        errors = []
        for field in _embedded_fields(self.model_container):
            try:
                setattr(value, field.attname,
                        field.clean(getattr(value, field.attname), value))
            except ValidationError as exc:
                errors.extend(
                    ValidationError(f"{field.verbose_name}: {message}", code="invalid")
                    for message in exc.messages
                )
        if errors:
            raise ValidationError(errors)

    def value_to_string(self, obj):
        return json.dumps(self.get_prep_value(self.value_from_object(obj)), default=str)

    def formfield(self, **kwargs):
        defaults = {"form_class": EmbeddedFormField, "model_container": self.model_container}
        defaults.update(kwargs)
        return super().formfield(**defaults)

    def get_transform(self, name):
        transform = super().get_transform(name)
        if transform is not None:
            return transform
        if self.model_container is not None:
            names = {f.name for f in _embedded_fields(self.model_container)}
            if name in names:
                return SubFieldTransformFactory(name, self.model_container)
        return None


class SubField(models.Transform):
    """``"table"."blog"."name"``: a field inside an embedded document."""

    def __init__(self, key: str, container, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.key = key
        self.container = container

    def as_sql(self, compiler, connection):
        lhs, params = compiler.compile(self.lhs)
        return f"{lhs}.{connection.ops.quote_name(self.key)}", params

    @property
    def output_field(self):
        return self.container._meta.get_field(self.key)


class SubFieldTransformFactory:
    def __init__(self, key: str, container):
        self.key = key
        self.container = container

    def __call__(self, *args, **kwargs):
        return SubField(self.key, self.container, *args, **kwargs)


def _flatten(prefix: tuple[str, ...], value: dict) -> list[tuple[tuple[str, ...], Any]]:
    items = []
    for key, sub in value.items():
        if isinstance(sub, dict):
            items.extend(_flatten(prefix + (key,), sub))
        else:
            items.append((prefix + (key,), sub))
    return items


class DictLookupMixin:
    """A lookup whose right-hand side may be a dict of sub-field values.

    Each key becomes a condition on ``"table"."field"."key"``, joined by AND,
    with the lookup's own operator: ``blog__startswith={'name': 'Beatles'}``
    matches entries whose blog name starts with "Beatles".
    """

    pattern: str | None = None  # LIKE pattern around the escaped value

    def get_prep_lookup(self):
        if isinstance(self.rhs, dict):
            return self.rhs
        return super().get_prep_lookup()

    def as_sql(self, compiler, connection):
        if not isinstance(self.rhs, dict):
            return super().as_sql(compiler, connection)
        lhs_sql, params = compiler.compile(self.lhs)
        params = list(params)
        conditions = []
        for path, value in _flatten((), self.rhs):
            column = lhs_sql + "".join("." + connection.ops.quote_name(k) for k in path)
            if self.pattern is not None:
                value = self.pattern % connection.ops.prep_for_like_query(value)
            conditions.append(f"{column} {connection.operators[self.lookup_name] % '%s'}")
            params.append(to_bson(value))
        if not conditions:
            return "1 = 1", params
        return "(" + " AND ".join(conditions) + ")", params


def _register_dict_lookups() -> None:
    patterns = {
        "contains": "%%%s%%", "icontains": "%%%s%%",
        "startswith": "%s%%", "istartswith": "%s%%",
        "endswith": "%%%s", "iendswith": "%%%s",
        "iexact": "%s",
    }
    for base in (models.lookups.Exact, models.lookups.IExact, models.lookups.Contains,
                 models.lookups.IContains, models.lookups.StartsWith,
                 models.lookups.IStartsWith, models.lookups.EndsWith,
                 models.lookups.IEndsWith, models.lookups.GreaterThan,
                 models.lookups.GreaterThanOrEqual, models.lookups.LessThan,
                 models.lookups.LessThanOrEqual):
        lookup = type(
            f"Embedded{base.__name__}", (DictLookupMixin, base),
            {"pattern": patterns.get(base.lookup_name)},
        )
        EmbeddedField.register_lookup(lookup)


_register_dict_lookups()


class ArrayField(models.Field):
    """A list of embedded documents of ``model_container`` (Djongo's ArrayField)."""

    description = "A list of embedded documents"

    def __init__(self, model_container: type[models.Model] | None = None,
                 model_form_class=None, model_form_kwargs=None, *args, **kwargs):
        self.model_container = model_container
        self.model_form_class = model_form_class
        self.model_form_kwargs = model_form_kwargs or {}
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs["model_container"] = self.model_container
        return name, "djongo.models.ArrayField", args, kwargs

    def db_type(self, connection):
        return "list"

    def get_internal_type(self):
        return "ArrayField"

    def _item_field(self) -> EmbeddedField:
        field = EmbeddedField(model_container=self.model_container)
        field.set_attributes_from_name(self.name or "item")
        return field

    def to_python(self, value):
        if value is None:
            return value
        if isinstance(value, str):
            value = json.loads(value)
        item = self._item_field()
        return [item.to_python(v) for v in value]

    def from_db_value(self, value, expression, connection):
        return self.to_python(value)

    def get_db_prep_value(self, value, connection, prepared=False):
        if value is None:
            return None
        item = self._item_field()
        return [item.get_db_prep_value(v, connection, prepared) for v in value]

    def value_to_string(self, obj):
        item = self._item_field()
        value = self.value_from_object(obj) or []
        return json.dumps([item.get_prep_value(v) for v in value], default=str)

    def formfield(self, **kwargs):
        # Editing lists of embedded documents in forms is not built yet; the
        # admin shows the field as JSON until it is.
        defaults = {"form_class": forms.JSONField}
        defaults.update(kwargs)
        return super().formfield(**defaults)


class ObjectIdField(AutoFieldMixin, models.Field):
    """A primary key holding MongoDB's ObjectId, generated on insert.

    Used as ``_id = models.ObjectIdField()``; the column is ``_id``, the
    document's own key.
    """

    description = "A MongoDB ObjectId"
    empty_strings_allowed = False

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("primary_key", True)
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs.pop("primary_key", None)
        return name, "djongo.models.ObjectIdField", args, kwargs

    def get_internal_type(self):
        return "ObjectIdField"

    def db_type(self, connection):
        return "objectid"

    def rel_db_type(self, connection):
        return "objectid"

    def to_python(self, value):
        if value is None or isinstance(value, ObjectId):
            return value
        try:
            return ObjectId(str(value))
        except (InvalidId, TypeError) as exc:
            raise ValidationError(f"{value!r} is not a valid ObjectId") from exc

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value is None or hasattr(value, "as_sql"):
            return value
        return self.to_python(value)

    def from_db_value(self, value, expression, connection):
        return value
