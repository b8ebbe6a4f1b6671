"""MongoDB-shaped fields: embedded documents, arrays of them, ObjectId keys."""

from __future__ import annotations

import functools
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
from ..operations import quote_identifier


@functools.cache
def _embedded_fields(model_container: type[models.Model]) -> tuple[models.Field, ...]:
    # Asked for every sub-document read or written; a model's fields are fixed
    # once its class exists, and the isinstance() check against AutoField
    # (a metaclass check) is not free.
    return tuple(
        f for f in model_container._meta.concrete_fields
        if not isinstance(f, (models.AutoField, ObjectIdField))
    )


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
    if model_container.__str__ is models.Model.__str__:
        # Model.__str__ shows the primary key, which a container has none of.
        def __str__(self):
            values = ", ".join(f"{f.name}={getattr(self, f.attname, None)!r}"
                               for f in _embedded_fields(type(self)))
            return f"{type(self).__name__}({values})"

        model_container.__str__ = __str__


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
        # Decompressed first: Widget.get_context formats the value with
        # str(), which a container model without __str__ cannot do.
        if not isinstance(value, (list, tuple)):
            value = self.decompress(value)
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


class _ContainerField(models.Field):
    """A field whose values are instances of ``model_container`` (usually an
    abstract model): what EmbeddedField and ArrayField share."""

    #: The public class a migration names (also for subclasses, as before
    #: they shared this code) and the system check's id when model_container
    #: is not a Model class.
    public_name = ""
    container_check_id = ""

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
                f"{self.public_name} needs model_container: a Model class (usually abstract).",
                obj=self, id=self.container_check_id,
            ))
        return errors

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs["model_container"] = self.model_container
        return name, f"djongo.models.{self.public_name}", args, kwargs


class EmbeddedField(_ContainerField):
    """A model stored as a sub-document of its parent's document.

    ``Entry.objects.filter(blog={'name': 'Beatles Blog'})`` and the other
    lookups accept a dict, matched field by field; ``blog__name__startswith``
    reaches into the sub-document.
    """

    description = "An embedded document"

    public_name = "EmbeddedField"
    container_check_id = "djongo.E001"

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
                # Not code="invalid": a ModelForm would replace the message
                # with its form field's own "invalid" text.
                errors.extend(
                    ValidationError(f"{field.verbose_name}: {message}", code="invalid_sub_field")
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
        return super().get_transform(name) or _sub_field_transform(self.model_container, name)


def _sub_field_transform(model_container, name: str):
    """``blog__name``: the container's field ``name``, inside the stored document."""
    if model_container is None:
        return None
    if name in {f.name for f in _embedded_fields(model_container)}:
        return SubFieldTransformFactory(name, model_container)
    return None


class SubField(models.Transform):
    """``"table"."blog"."name"``: a field inside an embedded document."""

    def __init__(self, key: str, container, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.key = key
        self.container = container

    def as_sql(self, compiler, connection):
        lhs, params = compiler.compile(self.lhs)
        return f"{lhs}.{quote_identifier(self.key)}", params

    @property
    def output_field(self):
        return self.container._meta.get_field(self.key)


class SubFieldTransformFactory:
    def __init__(self, key: str, container):
        self.key = key
        self.container = container

    def __call__(self, *args, **kwargs):
        return SubField(self.key, self.container, *args, **kwargs)


class DictLookupMixin:
    """A lookup whose right-hand side may be a dict of sub-field values.

    Each key becomes a condition on ``"table"."field"."key"``, joined by AND,
    with the lookup's own operator: ``blog__startswith={'name': 'Beatles'}``
    matches entries whose blog name starts with "Beatles". Keys and values
    are data: a key is one quoted name whatever it holds (``.``, ``$``,
    quotes), and a value is compared as a whole, so a nested dict is a
    sub-document to equal, never a path or an operator (``{'name': {'$ne':
    None}}`` matches a name that *is* that document). ``{'name': None}``
    means "name is NULL", as ``filter(name=None)`` does.
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
        for key, value in self.rhs.items():
            column = f"{lhs_sql}.{quote_identifier(str(key))}"
            if value is None:
                if self.lookup_name not in ("exact", "iexact"):
                    raise ValueError("Cannot use None as a query value")
                conditions.append(f"{column} IS NULL")
                continue
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
        ArrayField.register_lookup(lookup)



class ArrayItemForm(forms.Form):
    """One embedded document of an ``ArrayField`` in a form.

    Besides the form fields' own checks, each value goes through its model
    field's ``clean`` (validators such as Djongo's ``script_injection``
    example, choices, blank), so errors show next to the item's input.
    """

    model_container: type[models.Model]

    def clean(self):
        cleaned = super().clean()
        for field in _embedded_fields(self.model_container):
            if field.name in self.errors or field.name not in cleaned:
                continue
            try:
                cleaned[field.name] = field.clean(cleaned[field.name], None)
            except ValidationError as exc:
                self.add_error(field.name, exc)
        return cleaned


def _item_form_class(model_container: type[models.Model],
                     model_form_class: type[forms.BaseForm] | None) -> type[forms.BaseForm]:
    if model_form_class is not None:
        return model_form_class
    attrs: dict[str, Any] = {"model_container": model_container}
    for field in _embedded_fields(model_container):
        attrs[field.name] = field.formfield() or forms.CharField(required=False)
    return type(f"{model_container.__name__}ItemForm", (ArrayItemForm,), attrs)


class ArrayFormData:
    """What an ``ArrayWidget`` reads from a submitted form: the formset's data."""

    def __init__(self, prefix: str, data, files) -> None:
        self.prefix = prefix
        self.data = data
        self.files = files

    def formset(self, formset_class, initial=None):
        return formset_class(self.data, self.files, prefix=self.prefix, initial=initial)


def _item_dict(item: Any, form_class) -> dict[str, Any]:
    if isinstance(item, dict):
        return item
    return {name: getattr(item, name, None) for name in form_class.base_fields}


class ArrayWidget(forms.Widget):
    """A formset: one sub-form per array item, a delete box each, one blank item to add."""

    def __init__(self, formset_class, attrs=None) -> None:
        self.formset_class = formset_class
        super().__init__(attrs)

    def formset_for(self, name: str, value):
        if isinstance(value, ArrayFormData):
            return value.formset(self.formset_class)
        items = value if isinstance(value, (list, tuple)) else []
        form_class = self.formset_class.form
        return self.formset_class(prefix=name,
                                  initial=[_item_dict(item, form_class) for item in items])

    def render(self, name, value, attrs=None, renderer=None):
        formset = self.formset_for(name, value)
        items = format_html_join(
            "", '<fieldset class="djongo-array-item module aligned">{}</fieldset>',
            ((form.as_div(),) for form in formset),
        )
        return format_html(
            '<div class="djongo-array" id="{}">{}{}{}</div>',
            (attrs or {}).get("id", name), formset.management_form,
            formset.non_form_errors(), items,
        )

    def value_from_datadict(self, data, files, name):
        return ArrayFormData(name, data, files)

    def value_omitted_from_data(self, data, files, name):
        return f"{name}-TOTAL_FORMS" not in data

    def id_for_label(self, id_):
        first = next(iter(self.formset_class.form.base_fields), None)
        return f"{id_}-0-{first}" if id_ and first else id_


class ArrayFormField(forms.Field):
    """Edits a list of embedded documents as a formset of the container's fields."""

    def __init__(self, model_container: type[models.Model], model_form_class=None,
                 **kwargs) -> None:
        self.model_container = model_container
        self.item_form = _item_form_class(model_container, model_form_class)
        self.formset_class = forms.formset_factory(self.item_form, extra=1, can_delete=True)
        kwargs.pop("max_length", None)
        kwargs["widget"] = ArrayWidget(self.formset_class)
        super().__init__(**kwargs)

    def _items(self, value) -> list[models.Model]:
        if isinstance(value, ArrayFormData):
            formset = value.formset(self.formset_class)
            if not formset.is_valid():
                raise ValidationError(_formset_messages(formset), code="invalid")
            return [
                make_instance(self.model_container, form.cleaned_data)
                for form in formset.forms
                if form.has_changed() and not formset._should_delete_form(form)
            ]
        if value in self.empty_values:
            return []
        if isinstance(value, str):
            value = json.loads(value)
        return [item if isinstance(item, self.model_container)
                else make_instance(self.model_container, item) for item in value]

    def clean(self, value):
        items = self._items(value)
        if not items and self.required:
            raise ValidationError(self.error_messages["required"], code="required")
        self.run_validators(items)
        return items

    def has_changed(self, initial, data) -> bool:
        if self.disabled:
            return False
        if isinstance(data, ArrayFormData):
            initial_dicts = [_item_dict(item, self.item_form) for item in initial or []]
            return data.formset(self.formset_class, initial=initial_dicts).has_changed()
        return super().has_changed(initial, data)


def _formset_messages(formset) -> list[str]:
    messages = [str(m) for m in formset.non_form_errors()]
    for index, errors in enumerate(formset.errors, start=1):
        for name, field_errors in errors.items():
            label = "" if name == "__all__" else f"{name}: "
            messages.extend(f"item {index}: {label}{m}" for m in field_errors)
    return messages


class ArrayField(_ContainerField):
    """A list of ``model_container`` instances, stored as an array of sub-documents.

    ``Entry.objects.filter(authors={'name': 'Paul'})`` and
    ``authors__name__startswith='Pa'`` match entries having such an item.
    The admin edits the list as a formset of the container's fields.
    """

    description = "A list of embedded documents"
    empty_strings_allowed = False

    public_name = "ArrayField"
    container_check_id = "djongo.E002"

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

    def get_prep_value(self, value):
        if isinstance(value, (list, tuple)):
            item = self._item_field()
            return [item.get_prep_value(v) for v in value]
        return value

    def get_db_prep_value(self, value, connection, prepared=False):
        if value is None:
            return None
        if isinstance(value, dict):
            return to_bson(value)
        item = self._item_field()
        return [item.get_db_prep_value(v, connection, prepared) for v in value]

    def validate(self, value, model_instance):
        super().validate(value, model_instance)
        if not value:
            return
        item_field = self._item_field()
        errors = []
        for index, item in enumerate(value, start=1):
            if isinstance(item, dict):
                item = make_instance(self.model_container, item)
            try:
                item_field.validate(item, model_instance)
            except ValidationError as exc:
                errors.extend(ValidationError(f"item {index}: {m}", code="invalid_item")
                              for m in exc.messages)
        if errors:
            raise ValidationError(errors)

    def value_to_string(self, obj):
        item = self._item_field()
        value = self.value_from_object(obj) or []
        return json.dumps([item.get_prep_value(v) for v in value], default=str)

    def formfield(self, **kwargs):
        defaults = {
            "form_class": ArrayFormField,
            "model_container": self.model_container,
            "model_form_class": self.model_form_class,
        }
        defaults.update(kwargs)
        return super().formfield(**defaults)

    def get_transform(self, name):
        return super().get_transform(name) or _sub_field_transform(self.model_container, name)


class ObjectIdMixin:
    """Values are MongoDB ObjectIds; a 24-hex-digit string is accepted for one."""

    description = "A MongoDB ObjectId"
    empty_strings_allowed = False

    def db_type(self, connection):
        return "objectid"

    def rel_db_type(self, connection):
        return "objectid"

    def to_python(self, value):
        if value is None or isinstance(value, ObjectId):
            return value
        if value == "":
            # An empty form input: no ObjectId.
            return None
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

    def value_to_string(self, obj):
        value = self.value_from_object(obj)
        return None if value is None else str(value)


class ObjectIdField(ObjectIdMixin, AutoFieldMixin, models.Field):
    """A primary key holding MongoDB's ObjectId, generated on insert.

    Used as ``_id = models.ObjectIdField()``; the column is ``_id``, the
    document's own key.
    """

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("primary_key", True)
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs.pop("primary_key", None)
        return name, "djongo.models.ObjectIdField", args, kwargs

    def get_internal_type(self):
        return "ObjectIdField"


class GenericObjectIdField(ObjectIdMixin, models.Field):
    """An ObjectId that is not the primary key: a reference kept by hand, say."""

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        return name, "djongo.models.GenericObjectIdField", args, kwargs

    def get_internal_type(self):
        return "GenericObjectIdField"

    def formfield(self, **kwargs):
        defaults = {"form_class": forms.CharField, "max_length": 24, "min_length": 24}
        defaults.update(kwargs)
        return super().formfield(**defaults)


class JSONField(models.Field):
    """A dict or list (or any JSON value) stored as a BSON document or array.

    Djongo's JSONField: unlike Django's, the value is not serialized to text,
    so ``data__owner__name='Ann'`` and ``data__tags='x'`` query inside it
    (``"data"."owner"."name"``, MongoDB's dotted paths; an array matches when
    any element does).
    """

    description = "A JSON document"
    empty_strings_allowed = False

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        return name, "djongo.models.JSONField", args, kwargs

    def db_type(self, connection):
        return "json"

    def get_internal_type(self):
        return "DjongoJSONField"

    def from_db_value(self, value, expression, connection):
        if isinstance(value, Decimal128):
            return value.to_decimal()
        return value

    def get_prep_value(self, value):
        return value

    def get_db_prep_value(self, value, connection, prepared=False):
        if hasattr(value, "as_sql"):
            return value
        return _json_to_bson(value)

    def value_to_string(self, obj):
        return json.dumps(self.value_from_object(obj), default=str)

    def formfield(self, **kwargs):
        defaults = {"form_class": forms.JSONField}
        defaults.update(kwargs)
        return super().formfield(**defaults)

    def get_transform(self, name):
        return super().get_transform(name) or KeyTransformFactory(name)


def _json_to_bson(value: Any) -> Any:
    return to_bson(value)


class KeyTransform(models.Transform):
    """``data__key``: a key inside a JSONField's document (or an array index).

    The key is data: any string is one literal key, quoted as one name (a
    ``.`` in it is no path, a leading ``$`` no operator; see
    docs/engine-robustness.md for how such keys are matched).
    """

    def __init__(self, key: str, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.key = key

    def as_sql(self, compiler, connection):
        lhs, params = compiler.compile(self.lhs)
        return f"{lhs}.{quote_identifier(str(self.key))}", params

    @property
    def output_field(self):
        return JSONField()


class KeyTransformFactory:
    def __init__(self, key: str):
        self.key = key

    def __call__(self, *args, **kwargs):
        return KeyTransform(self.key, *args, **kwargs)


_register_dict_lookups()
