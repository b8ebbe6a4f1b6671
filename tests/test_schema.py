"""What migrate leaves in MongoDB: collections, indexes and __schema__ counters."""

import pytest

pytestmark = pytest.mark.django_db


def test_migrate_created_collections_for_contrib_and_app(mongo_db):
    names = set(mongo_db.list_collection_names())
    for expected in ["auth_user", "auth_group", "auth_permission", "django_content_type",
                     "django_session", "django_admin_log", "django_migrations",
                     "blogapp_author", "blogapp_entry", "blogapp_entry_contributors"]:
        assert expected in names


def test_schema_entries_have_djongo_shape(mongo_db):
    from django.db import connection

    from tests.blogapp.models import Author

    author = Author.objects.create(name="x")
    # Ids are taken outside the test's transaction (so that a rollback never hands
    # one out twice); its snapshot predates them, so read the counter outside it.
    committed = connection.connection.database["__schema__"]
    entry = committed.find_one({"name": "blogapp_author"})
    assert entry["auto"]["field_names"] == ["id"]
    assert entry["auto"]["seq"] >= author.pk >= 1
    assert mongo_db["__schema__"].find_one({"name": "django_migrations"}) is not None


def test_unique_constraints_are_partial_unique_indexes(mongo_db):
    indexes = {i["name"]: i for i in mongo_db["auth_user"].list_indexes()}
    username = [i for i in indexes.values() if list(i["key"]) == ["username"]]
    assert username and username[0]["unique"]
    assert "partialFilterExpression" in username[0]
    together = [i for i in mongo_db["auth_permission"].list_indexes()
                if list(i["key"]) == ["content_type_id", "codename"]]
    assert together and together[0]["unique"]


@pytest.mark.django_db(transaction=True)
def test_adding_a_not_null_column_with_default_fills_existing_documents(mongo_db):
    """Third-party migrations' ADD COLUMN ... DEFAULT ... NOT NULL (a Djongo failure)."""
    from django.db import connection, models

    from tests.blogapp.models import Author

    Author.objects.create(name="before")
    field = models.IntegerField(default=42)
    field.set_attributes_from_name("karma")
    with connection.schema_editor() as editor:
        editor.add_field(Author, field)
    stored = mongo_db["blogapp_author"].find_one({"name": "before"})
    assert stored["karma"] == 42
    with connection.schema_editor() as editor:
        editor.remove_field(Author, field)
    assert "karma" not in mongo_db["blogapp_author"].find_one({"name": "before"})


def test_explicit_ids_from_loaddata_raise_the_counter(mongo_db):
    from django.core import serializers

    from tests.blogapp.models import Author

    data = '[{"model": "blogapp.author", "pk": 77, "fields": {"name": "loaded", "rank": 0}}]'
    for obj in serializers.deserialize("json", data):
        obj.save()
    # The counter is a sequence, outside the test's transaction: earlier tests
    # may have moved it past 77, never back.
    assert Author.objects.create(name="after load").id > 77


@pytest.mark.django_db(transaction=True)
def test_expression_db_default_is_evaluated_by_the_server(mongo_db):
    """db_default=Now() / Lower(...): existing rows and later inserts get the value."""
    import datetime

    from django.db import connection, models
    from django.db.models.functions import Lower, Now

    from tests.blogapp.models import Author

    before = Author.objects.create(name="before")
    stamped = models.DateTimeField(db_default=Now())
    stamped.set_attributes_from_name("stamped")
    slug = models.CharField(max_length=20, db_default=Lower(models.Value("DJONGO")))
    slug.set_attributes_from_name("slug")
    stamped.model = slug.model = Author
    try:
        with connection.schema_editor() as editor:
            editor.add_field(Author, stamped)
            editor.add_field(Author, slug)
        existing = mongo_db["blogapp_author"].find_one({"name": "before"})
        assert isinstance(existing["stamped"], datetime.datetime)
        assert existing["slug"] == "djongo"
        # An insert that leaves both columns out (as Django does for db_default).
        with connection.cursor() as cursor:
            cursor.execute('INSERT INTO "blogapp_author" ("name", "rank") VALUES (%s, %s)',
                           ["after", 0])
        after = mongo_db["blogapp_author"].find_one({"name": "after"})
        assert after["slug"] == "djongo"
        assert after["stamped"] >= existing["stamped"]
        # A row of defaults only (DatabaseFeatures.insert_test_table_with_defaults).
        with connection.cursor() as cursor:
            cursor.execute(connection.features.insert_test_table_with_defaults.format(
                "blogapp_author"))
        bare = mongo_db["blogapp_author"].find_one({"name": {"$exists": False}})
        assert bare["slug"] == "djongo" and bare["id"] > after["id"]
    finally:
        with connection.schema_editor() as editor:
            editor.remove_field(Author, slug)
            editor.remove_field(Author, stamped)
    assert before.pk is not None


def test_a_default_that_reads_a_column_is_refused():
    from django.db import NotSupportedError, connection

    with pytest.raises(NotSupportedError, match="column DEFAULT that reads a column"), \
            connection.cursor() as cursor:
        cursor.execute('ALTER TABLE "blogapp_author" ADD COLUMN "x" integer DEFAULT ("rank" + 1)')


@pytest.mark.django_db(transaction=True)
def test_sequence_reset_restarts_ids_and_never_reuses_one_in_use():
    from django.core.management.color import no_style
    from django.db import NotSupportedError, connection

    from tests.blogapp.models import Author

    def reset():
        sequences = connection.introspection.sequence_list()
        with connection.cursor() as cursor:
            for sql in connection.ops.sequence_reset_by_name_sql(no_style(), sequences):
                cursor.execute(sql)

    first = Author.objects.create(name="a")
    Author.objects.create(name="b")
    Author.objects.all().delete()
    reset()
    assert first.pk >= 1
    assert Author.objects.create(name="c").pk == 1
    Author.objects.create(name="d", pk=7)
    Author.objects.filter(pk=1).delete()
    reset()
    # The counter restarts after the largest id present, never below it.
    assert Author.objects.create(name="e").pk == 8
    with connection.cursor() as cursor:
        cursor.execute('ALTER TABLE "blogapp_author" AUTO_INCREMENT = 20')
    assert Author.objects.create(name="f").pk == 20
    with pytest.raises(NotSupportedError, match="AUTO_INCREMENT"), connection.cursor() as cursor:
        cursor.execute('ALTER TABLE "blogapp_author" AUTO_INCREMENT = 0')


@pytest.mark.django_db(transaction=True)
def test_a_primary_key_made_bigint_takes_its_foreign_keys_along():
    """AlterField(id → BigAutoField): the columns that refer to the key, and the
    ones that refer to those (multi-table inheritance), are bigint too."""
    from django.db import connection, migrations, models
    from django.db.migrations.state import ProjectState
    from django.test.utils import isolate_apps

    with isolate_apps("tests.blogapp") as apps:
        class Base(models.Model):
            class Meta:
                app_label = "blogapp"

        class Child(Base):
            class Meta:
                app_label = "blogapp"

        class Rider(models.Model):
            child = models.ForeignKey(Child, models.CASCADE)

            class Meta:
                app_label = "blogapp"

        def types() -> tuple[str, str, str]:
            with connection.cursor() as cursor:
                def type_of(table, column):
                    description = connection.introspection.get_table_description(cursor, table)
                    return next(c.type_code for c in description if c.name == column)

                return (type_of("blogapp_base", "id"), type_of("blogapp_child", "base_ptr_id"),
                        type_of("blogapp_rider", "child_id"))

        with connection.schema_editor() as editor:
            for model in (Base, Child, Rider):
                editor.create_model(model)
        try:
            assert types() == ("bigint", "bigint", "bigint")
            before = ProjectState.from_apps(apps)
            operation = migrations.AlterField("Base", "id", models.AutoField(primary_key=True))
            after = before.clone()
            operation.state_forwards("blogapp", after)
            with connection.schema_editor() as editor:
                operation.database_forwards("blogapp", editor, before, after)
            assert types() == ("integer", "integer", "integer")
            with connection.schema_editor() as editor:
                operation.database_backwards("blogapp", editor, after, before)
            assert types() == ("bigint", "bigint", "bigint")
        finally:
            with connection.schema_editor() as editor:
                for model in (Rider, Child, Base):
                    editor.delete_model(model)
