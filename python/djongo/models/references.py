"""``ArrayReferenceField``: many references kept in the document as an array of ids.

Djongo's alternative to ``ManyToManyField``: no join table; the referencing
document holds the referenced primary keys in one array field, named like a
foreign key's column (``authors_id``), as Djongo stored it.

* ``entry.authors`` is a related manager: ``all()``, ``filter()``, ``add()``,
  ``remove()``, ``clear()``, ``set()``, ``create()``. Its writes are single
  atomic MongoDB updates (``$addToSet``, ``$pull``, ``$set``) on the owning
  document, run in the connection's session, so inside ``atomic()`` they
  belong to the transaction. SQL has no operator for "add to an array without
  duplicates", and a read-modify-write through ``UPDATE`` would lose
  concurrent additions.
* ``Entry.objects.filter(authors=a)`` / ``authors__in=[...]`` match documents
  whose array holds such an id (MongoDB's array matching, through the
  ordinary SQL path); ``authors__name='Paul'`` filters through the referenced
  model with an ``IN (SELECT ...)`` subquery.
* The reverse side (``author.entry_set`` or ``related_name``) lists the
  referencing objects.
* Deleting a referenced object removes its id from every array, as deleting
  a ``ManyToManyField`` target deletes its links (``CASCADE`` on the
  join table). ``on_delete=PROTECT`` refuses the delete instead, and
  ``DO_NOTHING`` leaves the ids in place.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django import forms
from django.core import checks
from django.db import connections, models, router
from django.db.models import signals
from django.db.models.fields.related import lazy_related_operation
from django.db.models.lookups import In, Lookup


class ArrayReferenceField(models.Field):
    """Many references to ``to``, stored as an array of its primary keys."""

    description = "An array of references"
    empty_strings_allowed = False

    def __init__(self, to: type[models.Model] | str, on_delete=None,
                 related_name: str | None = None, *args, **kwargs) -> None:
        self.to = to
        self.on_delete = on_delete
        self.related_name = related_name
        self.target_model: type[models.Model] | None = None
        kwargs.setdefault("default", list)
        super().__init__(*args, **kwargs)

    # -- where the value lives ------------------------------------------------

    def get_attname(self) -> str:
        return f"{self.name}_id"

    def contribute_to_class(self, cls, name, private_only=False):
        super().contribute_to_class(cls, name, private_only=private_only)
        setattr(cls, name, ArrayReferenceDescriptor(self))
        lazy_related_operation(self._resolve_target, cls, self.to, field=self)

    def _resolve_target(self, model, target, field) -> None:
        self.target_model = target
        if model._meta.abstract or model._meta.swapped:
            return
        accessor = self.related_name or f"{model._meta.model_name}_set"
        if accessor != "+" and not hasattr(target, accessor):
            setattr(target, accessor, ReverseArrayReferenceDescriptor(self))
        uid = f"djongo-array-reference:{model._meta.label}.{self.name}"
        if self.on_delete is models.PROTECT:
            signals.pre_delete.connect(self._protect, sender=target, weak=False,
                                       dispatch_uid=uid)
        elif self.on_delete is not models.DO_NOTHING:
            signals.post_delete.connect(self._unlink, sender=target, weak=False,
                                        dispatch_uid=uid)

    def check(self, **kwargs):
        errors = super().check(**kwargs)
        if isinstance(self.to, str) and self.target_model is None:
            errors.append(checks.Error(
                f"ArrayReferenceField {self.name!r} refers to {self.to!r}, which is not "
                "an installed model.", obj=self, id="djongo.E003",
            ))
        return errors

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        if kwargs.get("default") is list:
            del kwargs["default"]
        kwargs["to"] = (self.target_model._meta.label if self.target_model is not None
                        else self.to)
        if self.on_delete is not None:
            kwargs["on_delete"] = self.on_delete
        if self.related_name is not None:
            kwargs["related_name"] = self.related_name
        return name, "djongo.models.ArrayReferenceField", args, kwargs

    def db_type(self, connection):
        return "list"

    def get_internal_type(self):
        return "ArrayReferenceField"

    # -- values ---------------------------------------------------------------

    @property
    def _target_pk(self) -> models.Field:
        if self.target_model is None:
            raise ValueError(f"the model {self.to!r} of {self.name!r} is not loaded yet")
        return self.target_model._meta.pk

    def id_of(self, value: Any) -> Any:
        """The primary key a value refers to: a model instance's, or the value itself."""
        if isinstance(value, models.Model):
            if self.target_model is not None and not isinstance(value, self.target_model):
                raise TypeError(f"{self.name!r} refers to {self.target_model.__name__}, "
                                f"not {type(value).__name__}")
            if value.pk is None:
                raise ValueError(f"{value!r} must be saved before it can be referenced")
            return value.pk
        return self._target_pk.to_python(value)

    def ids_of(self, values: Iterable[Any] | None) -> list[Any]:
        ids: list[Any] = []
        for value in values or ():
            pk = self.id_of(value)
            if pk not in ids:
                ids.append(pk)
        return ids

    def to_python(self, value):
        if value is None:
            return []
        if isinstance(value, (list, tuple, set, models.QuerySet)):
            return self.ids_of(value)
        return [self.id_of(value)]

    def from_db_value(self, value, expression, connection):
        if value is None:
            return []
        if isinstance(value, list):
            return [self._target_pk.to_python(v) for v in value]
        return value

    def get_prep_value(self, value):
        # A lookup's right-hand side is one reference (filter(authors=a))
        # or, whole-field, a list of them.
        if value is None or hasattr(value, "resolve_expression"):
            return value
        if isinstance(value, (list, tuple, set, models.QuerySet)):
            return self.ids_of(value)
        return self.id_of(value)

    def get_db_prep_value(self, value, connection, prepared=False):
        if not prepared:
            value = self.get_prep_value(value)
        pk = self._target_pk
        if isinstance(value, list):
            return [pk.get_db_prep_value(v, connection, prepared=True) for v in value]
        if value is None:
            return None
        return pk.get_db_prep_value(value, connection, prepared=True)

    def value_to_string(self, obj):
        return [str(v) for v in self.value_from_object(obj) or []]

    def save_form_data(self, instance, data):
        setattr(instance, self.attname, self.ids_of(data))

    def formfield(self, **kwargs):
        defaults = {
            "form_class": forms.ModelMultipleChoiceField,
            "queryset": self.target_model._default_manager.all(),
        }
        defaults.update(kwargs)
        # Field.formfield would add choices for a non-relation; a
        # ModelMultipleChoiceField takes its queryset instead.
        return super().formfield(**defaults)

    # -- filtering through the referenced model ---------------------------------

    def get_transform(self, name):
        transform = super().get_transform(name)
        if transform is not None or self.target_model is None:
            return transform
        opts = self.target_model._meta
        if name == "pk":
            name = opts.pk.name
        try:
            target_field = opts.get_field(name)
        except models.FieldDoesNotExist:
            return None
        if not target_field.concrete:
            return None
        return _ReferencedFieldFactory(self, target_field)

    # -- deletion of a referenced object ----------------------------------------

    def _owner_collection(self, using: str):
        return connections[using].mongo_database[self.model._meta.db_table]

    def _session(self, using: str):
        return connections[using].connection.session_for_statement()

    def _protect(self, sender, instance, using, **kwargs) -> None:
        db = router.db_for_write(self.model, instance=instance) or using
        referencing = self.model._base_manager.using(db).filter(**{self.name: instance.pk})
        if referencing.exists():
            raise models.ProtectedError(
                f"Cannot delete some instances of model {sender.__name__!r} because they "
                f"are referenced through the protected ArrayReferenceField "
                f"'{self.model.__name__}.{self.name}'",
                set(referencing),
            )

    def _unlink(self, sender, instance, using, **kwargs) -> None:
        db = router.db_for_write(self.model, instance=instance) or using
        connection = connections[db]
        connection.ensure_connection()
        pk = self._target_pk.get_db_prep_value(instance.pk, connection, prepared=True)
        self._owner_collection(db).update_many(
            {self.column: pk}, {"$pull": {self.column: pk}}, session=self._session(db),
        )


class _ManagerDescriptor:
    """A class attribute giving each instance a related manager."""

    def __init__(self, field: ArrayReferenceField) -> None:
        self.field = field
        self._manager_class = None

    def __get__(self, instance, owner=None):
        if instance is None:
            return self
        # Built on first use: the related model may not be loaded before.
        if self._manager_class is None:
            self._manager_class = self.make_manager_class(self.field)
        return self._manager_class(instance)

    @staticmethod
    def make_manager_class(field: ArrayReferenceField):
        raise NotImplementedError


class ReverseArrayReferenceDescriptor(_ManagerDescriptor):
    """``author.entry_set``: the objects whose array refers to an instance."""

    @staticmethod
    def make_manager_class(field: ArrayReferenceField):
        return _reverse_manager_class(field)


class ArrayReferenceDescriptor(_ManagerDescriptor):
    """``entry.authors``: the related manager; assigning a list sets the ids."""

    @staticmethod
    def make_manager_class(field: ArrayReferenceField):
        return _forward_manager_class(field)

    def __set__(self, instance, value) -> None:
        instance.__dict__[self.field.attname] = self.field.ids_of(value)


def _forward_manager_class(field: ArrayReferenceField):
    base = field.target_model._default_manager.__class__

    class ArrayReferenceManager(base):
        """The objects an instance refers to, and the writes that change its array."""

        def __init__(self, instance: models.Model) -> None:
            super().__init__()
            self.instance = instance
            self.model = field.target_model
            self.field = field

        def _ids(self) -> list[Any]:
            ids = getattr(self.instance, field.attname)
            if ids is None:
                ids = []
                setattr(self.instance, field.attname, ids)
            return ids

        def get_queryset(self):
            queryset = super().get_queryset()
            db = self._db or router.db_for_read(self.model, instance=self.instance)
            queryset = queryset.using(db)
            ids = self._ids()
            return queryset.filter(pk__in=ids) if ids else queryset.none()

        def _update(self, update: dict) -> None:
            owner = self.instance
            if owner.pk is None:
                raise ValueError(
                    f"{owner!r} needs a primary key before its {field.name!r} "
                    "references can be changed: save it first"
                )
            db = router.db_for_write(type(owner), instance=owner)
            connection = connections[db]
            connection.ensure_connection()
            key = owner._meta.pk
            connection.mongo_database[owner._meta.db_table].update_one(
                {key.column: key.get_db_prep_value(owner.pk, connection)},
                update,
                session=connection.connection.session_for_statement(),
            )

        def _stored(self, ids: list[Any]) -> list[Any]:
            db = router.db_for_write(type(self.instance), instance=self.instance)
            return field.get_db_prep_value(ids, connections[db], prepared=True)

        def add(self, *objs) -> None:
            new = field.ids_of(objs)
            if not new:
                return
            self._update({"$addToSet": {field.column: {"$each": self._stored(new)}}})
            ids = self._ids()
            ids.extend(pk for pk in new if pk not in ids)

        add.alters_data = True

        def remove(self, *objs) -> None:
            gone = field.ids_of(objs)
            if not gone:
                return
            self._update({"$pull": {field.column: {"$in": self._stored(gone)}}})
            setattr(self.instance, field.attname, [pk for pk in self._ids() if pk not in gone])

        remove.alters_data = True

        def clear(self) -> None:
            self._update({"$set": {field.column: []}})
            setattr(self.instance, field.attname, [])

        clear.alters_data = True

        def set(self, objs, *, clear: bool = False) -> None:
            ids = field.ids_of(objs)
            self._update({"$set": {field.column: self._stored(ids)}})
            setattr(self.instance, field.attname, ids)

        set.alters_data = True

        def create(self, **kwargs):
            db = router.db_for_write(self.model, instance=self.instance)
            obj = self.model._default_manager.db_manager(db).create(**kwargs)
            self.add(obj)
            return obj

        create.alters_data = True

    return ArrayReferenceManager


def _reverse_manager_class(field: ArrayReferenceField):
    base = field.model._default_manager.__class__

    class ReverseArrayReferenceManager(base):
        def __init__(self, instance: models.Model) -> None:
            super().__init__()
            self.instance = instance
            self.model = field.model

        def get_queryset(self):
            db = self._db or router.db_for_read(self.model, instance=self.instance)
            return super().get_queryset().using(db).filter(**{field.name: self.instance})

        def add(self, *objs) -> None:
            for obj in objs:
                getattr(obj, field.name).add(self.instance)

        add.alters_data = True

        def remove(self, *objs) -> None:
            for obj in objs:
                getattr(obj, field.name).remove(self.instance)

        remove.alters_data = True

    return ReverseArrayReferenceManager


class _ReferencedField(models.Transform):
    """``authors__name``: a field of the referenced model, reached through the array."""

    def __init__(self, array_field: ArrayReferenceField, target_field: models.Field,
                 *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.array_field = array_field
        self.target_field = target_field

    @property
    def output_field(self):
        return self.target_field

    def get_lookup(self, lookup_name):
        if self.target_field.get_lookup(lookup_name) is None:
            return None
        return type(f"Referenced{lookup_name.title()}", (_ReferencedLookup,),
                    {"lookup_name": lookup_name})

    def get_transform(self, name):
        return None

    def as_sql(self, compiler, connection):
        return compiler.compile(self.lhs)


class _ReferencedLookup(Lookup):
    """``array IN (SELECT pk FROM target WHERE <field> <lookup> %s)``.

    MongoDB's ``$in`` on an array field matches when any element is in the
    list, which is what "refers to some object matching" means.
    """

    prepare_rhs = False

    def get_prep_lookup(self):
        return self.rhs

    def as_sql(self, compiler, connection):
        transform = self.lhs
        target = transform.array_field.target_model
        matching = target._base_manager.using(compiler.using).filter(
            **{f"{transform.target_field.name}__{self.lookup_name}": self.rhs}
        ).values("pk")
        # Resolved against the outer query, the subquery gets its own aliases.
        subquery = matching.query.resolve_expression(compiler.query)
        return compiler.compile(In(transform.lhs, subquery))


class _ReferencedFieldFactory:
    def __init__(self, array_field: ArrayReferenceField, target_field: models.Field) -> None:
        self.array_field = array_field
        self.target_field = target_field

    def __call__(self, *args, **kwargs):
        return _ReferencedField(self.array_field, self.target_field, *args, **kwargs)
