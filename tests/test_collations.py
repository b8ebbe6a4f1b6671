"""``db_collation`` and ``Collate()``: MongoDB collations (docs/collations.md).

A column's collation is recorded in ``__schema__``; each statement runs under the
collation of the columns it compares, or the one it names with ``Collate()``."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, NotSupportedError, connection, models, transaction
from django.db.models import F, Value
from django.db.models.functions import Collate
from django.test.utils import isolate_apps
from djongo import collations

pytestmark = pytest.mark.django_db(transaction=True)

CI = "und-u-ks-level2"


@pytest.fixture
def people():
    """A table whose ``name`` compares case-insensitively and ``nick`` by code point."""
    with isolate_apps("tests.validationapp"):
        class Person(models.Model):
            name = models.CharField(max_length=50, db_collation=CI)
            nick = models.CharField(max_length=50, default="")
            town = models.TextField(db_collation="sv", default="")
            age = models.IntegerField(default=0)

            class Meta:
                app_label = "validationapp"

        with connection.schema_editor() as editor:
            editor.create_model(Person)
        try:
            yield Person
        finally:
            with connection.schema_editor() as editor:
                editor.delete_model(Person)


def test_a_filter_on_a_collated_column_follows_its_collation(people):
    people.objects.create(name="ANDREW", age=30)
    people.objects.create(name="Bob", age=40)
    assert people.objects.filter(name="andrew").count() == 1
    assert people.objects.filter(name__in=["BOB", "andrew"]).count() == 2
    # Other columns that are no strings do not change the statement's collation.
    assert people.objects.filter(name="Andrew", age__gt=20).exists()
    assert people.objects.filter(name="bob").update(age=41) == 1
    assert people.objects.get(name="BOB").age == 41
    assert people.objects.filter(name="ANDREW").delete()[0] == 1


def test_ordering_follows_the_column_collation(people):
    for town in ["Zürich", "Örebro", "Oslo", "Aarhus"]:
        people.objects.create(name=town, town=town)
    # Swedish sorts Ö after Z; code point order puts Ö after Z too, but "Aarhus"
    # and "Oslo" tell the two apart from German, checked next.
    assert list(people.objects.order_by("town").values_list("town", flat=True)) == [
        "Aarhus", "Oslo", "Zürich", "Örebro"]
    assert list(people.objects.order_by(Collate("town", "de")).values_list("town", flat=True)) \
        == ["Aarhus", "Örebro", "Oslo", "Zürich"]


def test_collate_in_order_by_and_filter(people):
    people.objects.create(name="a", nick="a")
    people.objects.create(name="B", nick="B")
    people.objects.create(name="c", nick="c")
    # Code points put "B" before "a"; a language collation does not.
    assert list(people.objects.order_by("nick").values_list("nick", flat=True)) == ["B", "a", "c"]
    assert list(people.objects.order_by(Collate("nick", "en")).values_list("nick", flat=True)) \
        == ["a", "B", "c"]
    assert people.objects.filter(nick=Collate(Value("b"), CI)).count() == 1
    assert people.objects.filter(nick="b").count() == 0


def test_group_by_and_distinct_follow_the_collation(people):
    for name in ["Ann", "ANN", "ann", "Bo"]:
        people.objects.create(name=name)
    assert people.objects.values("name").distinct().count() == 2
    groups = people.objects.values("name").annotate(n=models.Count("id")).order_by("name")
    assert [g["n"] for g in groups] == [3, 1]


def test_comparisons_that_need_two_collations_are_refused(people):
    people.objects.create(name="x", nick="y")
    with pytest.raises(NotSupportedError, match="one collation"):
        list(people.objects.filter(name="x", nick="y"))
    with pytest.raises(NotSupportedError, match="one collation"):
        list(people.objects.order_by("name", "nick"))
    # Collate() on one of them settles it.
    assert people.objects.filter(name="X", nick=Collate(Value("Y"), CI)).count() == 1
    # A pattern match is no comparison under a collation: MongoDB's $regex
    # compares code points.
    assert people.objects.filter(name="x", nick__startswith="y").count() == 1


def test_a_case_insensitive_unique_column_refuses_case_variants():
    # The unique index takes its column's collation: values it calls equal collide.
    with isolate_apps("tests.validationapp"):
        class Handle(models.Model):
            handle = models.CharField(max_length=20, unique=True, db_collation=CI)
            note = models.CharField(max_length=20, default="")

            class Meta:
                app_label = "validationapp"

        with connection.schema_editor() as editor:
            editor.create_model(Handle)
        try:
            Handle.objects.create(handle="Ann")
            with pytest.raises(IntegrityError), transaction.atomic():
                Handle.objects.create(handle="ANN")
            Handle.objects.create(handle="Bob")
            assert Handle.objects.get(handle="ann").handle == "Ann"
            # Upserts find their conflicts as the index does.
            Handle.objects.bulk_create([Handle(handle="aNN"), Handle(handle="Cy")],
                                       ignore_conflicts=True)
            assert sorted(Handle.objects.values_list("handle", flat=True)) == ["Ann", "Bob", "Cy"]
            Handle.objects.bulk_create([Handle(handle="BOB", note="seen")], update_conflicts=True,
                                       unique_fields=["handle"], update_fields=["note"])
            assert Handle.objects.get(handle="Bob").note == "seen"
            assert Handle.objects.count() == 3
            indexes = connection.mongo_database["validationapp_handle"].list_indexes()
            assert {"locale": "root", "strength": 2} in [i.get("collation") for i in indexes]
        finally:
            with connection.schema_editor() as editor:
                editor.delete_model(Handle)


def test_altering_the_collation_of_a_unique_column_rebuilds_its_index():
    with isolate_apps("tests.validationapp"):
        class Login(models.Model):
            login = models.CharField(max_length=20, unique=True)

            class Meta:
                app_label = "validationapp"

        with connection.schema_editor() as editor:
            editor.create_model(Login)
        try:
            Login.objects.create(login="Ann")
            Login.objects.create(login="ann")
            old = Login._meta.get_field("login")
            new = models.CharField(max_length=20, unique=True, db_collation=CI)
            new.set_attributes_from_name("login")
            new.model = Login
            # The rows present collide under the new collation: nothing changes.
            with pytest.raises(IntegrityError), connection.schema_editor() as editor:
                editor.alter_field(Login, old, new, strict=True)
            Login.objects.create(login="ANN")
            with connection.cursor() as cursor:
                described = connection.introspection.get_table_description(
                    cursor, "validationapp_login")
            assert [c.collation for c in described if c.name == "login"] == [None]
            Login.objects.filter(login__in=["ann", "ANN"]).delete()
            with connection.schema_editor() as editor:
                editor.alter_field(Login, old, new, strict=True)
            with pytest.raises(IntegrityError), transaction.atomic():
                Login.objects.create(login="aNN")
        finally:
            with connection.schema_editor() as editor:
                editor.delete_model(Login)


def test_the_collation_is_recorded_introspected_and_altered(people):
    with connection.cursor() as cursor:
        described = {c.name: c.collation for c in
                     connection.introspection.get_table_description(cursor, people._meta.db_table)}
    assert described["name"] == CI and described["town"] == "sv" and described["nick"] is None
    old = people._meta.get_field("nick")
    new = models.CharField(max_length=50, default="", db_collation=CI)
    new.set_attributes_from_name("nick")
    new.model = people
    with connection.schema_editor() as editor:
        editor.alter_field(people, old, new, strict=True)
    people.objects.create(name="z", nick="Q")
    assert people.objects.filter(nick="q").count() == 1


def test_an_unknown_collation_name_is_refused():
    with pytest.raises(NotSupportedError, match="not one djongo knows"):
        collations.to_mongo("en-u-zz-what")
    with isolate_apps("tests.validationapp"):
        class Bad(models.Model):
            name = models.CharField(max_length=5, db_collation="no such!")

            class Meta:
                app_label = "validationapp"

        with pytest.raises(NotSupportedError), connection.schema_editor() as editor:
            editor.create_model(Bad)


@pytest.mark.parametrize("name, document", [
    ("simple", None),
    ("und-u-ks-level2", {"locale": "root", "strength": 2}),
    ("sv", {"locale": "sv"}),
    ("en-US-u-kn-true-kf-upper",
     {"locale": "en_US", "numericOrdering": True, "caseFirst": "upper"}),
    ("de-u-co-phonebk", {"locale": "de@collation=phonebook"}),
    ("fr-u-ks-level1-ka-shifted", {"locale": "fr", "strength": 1, "alternate": "shifted"}),
])
def test_collation_names_map_to_mongodb_documents(name, document):
    assert collations.to_mongo(name) == document


def test_an_index_on_collate_is_an_index_with_that_collation():
    with isolate_apps("tests.validationapp"):
        class Tag(models.Model):
            label = models.CharField(max_length=20)
            slug = models.CharField(max_length=20, default="")

            class Meta:
                app_label = "validationapp"

        with connection.schema_editor() as editor:
            editor.create_model(Tag)
        try:
            unique = models.UniqueConstraint(Collate(F("label"), CI).desc(), Collate("slug", CI),
                                             name="tag_label_ci")
            with connection.schema_editor() as editor:
                editor.add_constraint(Tag, unique)
            made = {i["name"]: i for i in
                    connection.mongo_database["validationapp_tag"].list_indexes()}
            assert made["tag_label_ci"]["key"] == {"label": -1, "slug": 1}
            assert made["tag_label_ci"]["collation"] == {"locale": "root", "strength": 2}
            Tag.objects.create(label="Go", slug="x")
            with pytest.raises(IntegrityError), transaction.atomic():
                Tag.objects.create(label="GO", slug="X")
            # An index has one collation: keys under several, or over an
            # expression, are refused.
            mixed = models.Index(Collate(F("label"), CI), "slug", name="tag_mixed")
            with pytest.raises(NotSupportedError, match="one COLLATE"), \
                    connection.schema_editor() as editor:
                editor.add_index(Tag, mixed)
        finally:
            with connection.schema_editor() as editor:
                editor.delete_model(Tag)


def test_a_foreign_key_follows_the_collation_of_the_key_it_refers_to():
    """A migration altering a primary key's collation alters the columns that
    refer to it (Django does so alongside the foreign keys it drops and remakes)."""
    from django.db import migrations
    from django.db.migrations.state import ProjectState

    create = [
        migrations.CreateModel("Code", [
            ("code", models.CharField(max_length=10, primary_key=True))]),
        migrations.CreateModel("Use", [
            ("id", models.AutoField(primary_key=True)),
            ("code", models.ForeignKey("validationapp.Code", models.CASCADE))]),
    ]
    alter = migrations.AlterField(
        "Code", "code", models.CharField(max_length=10, primary_key=True, db_collation=CI))
    state = ProjectState()
    with connection.schema_editor() as editor:
        for operation in create:
            before = state.clone()
            operation.state_forwards("validationapp", state)
            operation.database_forwards("validationapp", editor, before, state)
    try:
        before = state.clone()
        alter.state_forwards("validationapp", state)
        with connection.schema_editor() as editor:
            alter.database_forwards("validationapp", editor, before, state)
        with connection.cursor() as cursor:
            described = {c.name: c.collation for c in
                         connection.introspection.get_table_description(
                             cursor, "validationapp_use")}
        assert described["code_id"] == CI
    finally:
        with connection.schema_editor() as editor:
            editor.delete_model(state.apps.get_model("validationapp", "Use"))
            editor.delete_model(state.apps.get_model("validationapp", "Code"))


def test_new_connections_share_the_process_copy_of_the_collations(people, monkeypatch):
    """Under Django's default CONN_MAX_AGE = 0 every request opens a connection:
    its first comparing statement must not read ``__schema__`` again."""
    from djongo import catalog, records

    monkeypatch.setattr(records, "FACTS_MAX_AGE", 3600.0)
    reads = []
    real = catalog.all_collated_columns
    monkeypatch.setattr(catalog, "all_collated_columns",
                        lambda *a: reads.append(1) or real(*a))
    people.objects.create(name="ANDREW")
    records.forget_facts(connection.connection)
    for _ in range(3):
        connection.close()
        assert people.objects.filter(name="andrew").count() == 1
    assert len(reads) == 1


def test_a_collation_changed_by_another_process_is_seen(people, monkeypatch):
    """Another process's migration writes ``__schema__``; this process's copy
    is read again once it is FACTS_MAX_AGE old (here: at once)."""
    from djongo import catalog, records

    people.objects.create(name="ANDREW")
    assert people.objects.filter(name="andrew").count() == 1
    monkeypatch.setattr(records, "FACTS_MAX_AGE", 0.0)
    # What the other process's ALTER FIELD records, written behind this
    # process's back (no DDL runs here, so nothing is forgotten).
    db = connection.connection.database
    catalog.set_collation(db, people._meta.db_table, "name", None, None)
    try:
        assert people.objects.filter(name="andrew").count() == 0
    finally:
        catalog.set_collation(db, people._meta.db_table, "name", CI, None)

