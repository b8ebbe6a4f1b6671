"""djongo.models.indexes: MongoDB's index options through Meta.indexes and migrations."""

from __future__ import annotations

import pytest
from django.db import NotSupportedError, connection
from django.db.models import Q
from djongo.models import (
    CompoundIndex,
    HashedIndex,
    MongoIndex,
    TextIndex,
    TTLIndex,
    WildcardIndex,
)

from tests.blogapp.models import Author, Entry


def _indexes(collection: str) -> dict[str, dict]:
    connection.ensure_connection()
    return {i["name"]: dict(i) for i in connection.mongo_database[collection].list_indexes()}


@pytest.mark.django_db(transaction=True, databases=["default", "standalone"])
@pytest.mark.usefixtures("default_server")   # embedded, and a standalone djongo-server
def test_ttl_and_sparse_indexes_are_created_and_dropped_by_the_schema_editor():
    ttl = TTLIndex(fields=["pub_date"], expire_after_seconds=3600, name="entry_pub_ttl",
                   sparse=True)
    sparse = MongoIndex(fields=["email", "-rank"], name="author_email_sparse", sparse=True)
    with connection.schema_editor() as editor:
        editor.add_index(Entry, ttl)
        editor.add_index(Author, sparse)
    made = _indexes("blogapp_entry")["entry_pub_ttl"]
    assert made["key"] == {"pub_date": 1}
    assert made["expireAfterSeconds"] == 3600 and made["sparse"] is True
    made = _indexes("blogapp_author")["author_email_sparse"]
    assert made["key"] == {"email": 1, "rank": -1} and made["sparse"] is True
    assert "expireAfterSeconds" not in made
    with connection.schema_editor() as editor:
        editor.remove_index(Entry, ttl)
        editor.remove_index(Author, sparse)
    assert "entry_pub_ttl" not in _indexes("blogapp_entry")
    assert "author_email_sparse" not in _indexes("blogapp_author")


def test_migrations_write_them_back_as_djongo_indexes():
    index = TTLIndex(fields=["pub_date"], expire_after_seconds=60, name="entry_pub_ttl")
    path, args, kwargs = index.deconstruct()
    assert path == "djongo.models.TTLIndex"
    assert kwargs == {"fields": ["pub_date"], "name": "entry_pub_ttl", "expire_after_seconds": 60}
    assert TTLIndex(**kwargs) == index
    assert TTLIndex(**{**kwargs, "expire_after_seconds": 61}) != index
    assert MongoIndex(fields=["a"], name="x", hidden=True).deconstruct()[2]["hidden"] is True


@pytest.mark.parametrize("kwargs", [
    {"fields": ["a", "b"], "expire_after_seconds": 1},
    {"fields": ["a"], "expire_after_seconds": -1},
    {"fields": ["a"], "expire_after_seconds": 2**31},
    {"fields": ["a"], "expire_after_seconds": "soon"},
    {"fields": ["a"], "expire_after_seconds": True},
])
def test_bad_ttl_indexes_are_refused_when_declared(kwargs):
    with pytest.raises(ValueError, match="TTLIndex"):
        TTLIndex(name="bad", **kwargs)


@pytest.mark.django_db(databases=["default", "standalone"])
@pytest.mark.usefixtures("default_server")
def test_an_unknown_index_option_is_refused_not_dropped():
    with connection.cursor() as cursor, pytest.raises(NotSupportedError, match="colour"):
        cursor.execute('CREATE INDEX "ix" ON "blogapp_entry" ("headline") WITH ("colour" = 1)')


def _add_and_remove(model, index):
    """Runs ``AddIndex`` forwards, returns what listIndexes shows and
    get_constraints reports, then runs it backwards."""
    from django.apps import apps
    from django.db import migrations
    from django.db.migrations.state import ProjectState

    operation = migrations.AddIndex(model._meta.model_name, index)
    before = ProjectState.from_apps(apps)
    after = before.clone()
    operation.state_forwards(model._meta.app_label, after)
    with connection.schema_editor() as editor:
        operation.database_forwards(model._meta.app_label, editor, before, after)
    try:
        listed = _indexes(model._meta.db_table)[index.name]
        with connection.cursor() as cursor:
            introspected = connection.introspection.get_constraints(cursor, model._meta.db_table)
    finally:
        with connection.schema_editor() as editor:
            operation.database_backwards(model._meta.app_label, editor, after, before)
    assert index.name not in _indexes(model._meta.db_table)
    return listed, introspected[index.name]


@pytest.mark.django_db(transaction=True)
def test_compound_index_with_directions_unique_partial_filter_and_collation():
    index = CompoundIndex(fields=["author", "-pub_date"], unique=True, name="entry_author_date",
                          condition=Q(n_comments__gt=0), collation={"locale": "simple"})
    listed, introspected = _add_and_remove(Entry, index)
    assert listed["key"] == {"author_id": 1, "pub_date": -1}
    assert listed["unique"] is True
    assert listed["collation"] == {"locale": "simple"}
    # Django's condition, and SQL's rule that rows with a NULL key are not unique.
    assert {"n_comments": {"$gt": 0}} in listed["partialFilterExpression"]["$and"]
    assert introspected["columns"] == ["author_id", "pub_date"]
    assert introspected["orders"] == ["ASC", "DESC"]
    assert introspected["unique"] is True and introspected["type"] == "idx"
    # A language's collation on an index (docs/collations.md).
    french = CompoundIndex(fields=["headline"], name="entry_fr",
                           collation={"locale": "fr", "strength": 1})
    listed, _ = _add_and_remove(Entry, french)
    assert listed["collation"] == {"locale": "fr", "strength": 1}


@pytest.mark.django_db(transaction=True)
def test_text_hashed_and_wildcard_indexes_through_migrations_and_introspection():
    text = TextIndex(fields=["headline", "body_text"], weights={"headline": 10},
                     default_language="spanish", name="entry_search")
    listed, introspected = _add_and_remove(Entry, text)
    assert listed["key"] == {"_fts": "text", "_ftsx": 1}
    assert listed["weights"] == {"body_text": 1, "headline": 10}
    assert listed["default_language"] == "spanish"
    assert introspected["type"] == TextIndex.suffix == "text"
    assert introspected["columns"] == ["body_text", "headline"]
    assert introspected["options"]["weights"] == {"body_text": 1, "headline": 10}

    hashed = HashedIndex(fields=["name"], name="author_name_h")
    listed, introspected = _add_and_remove(Author, hashed)
    assert listed["key"] == {"name": "hashed"}
    assert (introspected["type"], introspected["columns"]) == ("hashed", ["name"])

    wildcard = WildcardIndex(fields=["blog"], name="entry_blog_w")
    listed, introspected = _add_and_remove(Entry, wildcard)
    assert listed["key"] == {"blog.$**": 1}
    assert (introspected["type"], introspected["columns"]) == ("wildcard", ["blog"])

    whole = WildcardIndex(name="entry_all", wildcard_projection={"body_text": 0})
    listed, introspected = _add_and_remove(Entry, whole)
    assert listed["key"] == {"$**": 1}
    assert listed["wildcardProjection"] == {"body_text": 0}
    assert introspected["type"] == "wildcard"


@pytest.mark.django_db(transaction=True)
def test_ttl_indexes_show_their_expiry_in_introspection():
    listed, introspected = _add_and_remove(
        Entry, TTLIndex(fields=["pub_date"], expire_after_seconds=90, name="entry_ttl"))
    assert introspected["options"] == {"expireAfterSeconds": 90}


@pytest.mark.django_db(transaction=True)
def test_hashed_indexes_serve_lookups():
    with connection.schema_editor() as editor:
        editor.add_index(Author, HashedIndex(fields=["name"], name="author_name_h"))
    try:
        Author.objects.create(name="Ada", rank=1)
        Author.objects.create(name="Grace", rank=2)
        assert list(Author.objects.filter(name="Grace").values_list("rank", flat=True)) == [2]
        plan = Author.objects.filter(name="Grace").explain()
        assert "author_name_h" in plan
    finally:
        with connection.schema_editor() as editor:
            editor.remove_index(Author, HashedIndex(fields=["name"], name="author_name_h"))


@pytest.mark.parametrize("make", [
    lambda: TextIndex(fields=["a"], weights={"b": 2}, name="x"),
    lambda: TextIndex(fields=["a"], weights={"a": 0}, name="x"),
    lambda: TextIndex(fields=["-a"], name="x"),
    lambda: HashedIndex(fields=["a", "b"], name="x"),
    lambda: WildcardIndex(fields=["a", "b"], name="x"),
    lambda: WildcardIndex(fields=["a"], wildcard_projection={"b": 1}, name="x"),
    lambda: WildcardIndex(),
    lambda: CompoundIndex(fields=["a"], collation="fr", name="x"),
])
def test_bad_index_declarations_are_refused(make):
    with pytest.raises(ValueError):
        make()


def test_the_index_classes_deconstruct_for_migrations():
    for index in [
        CompoundIndex(fields=["a", "-b"], unique=True, collation={"locale": "fr"}, name="c"),
        TextIndex(fields=["a", "b"], weights={"a": 3}, default_language="french",
                  language_override="lang", name="t"),
        HashedIndex(fields=["a"], name="h"),
        WildcardIndex(fields=["a"], name="w"),
        WildcardIndex(wildcard_projection={"a": 1}, name="w2"),
    ]:
        path, args, kwargs = index.deconstruct()
        assert path == f"djongo.models.{type(index).__name__}"
        assert type(index)(*args, **kwargs) == index
    assert TextIndex(fields=["a"], weights={"a": 3}, name="t") != TextIndex(fields=["a"], name="t")


# -- indexes on expressions (Index(Lower("name")), UniqueConstraint(Upper(...))) ---------


def _describe(table: str) -> list[str]:
    with connection.cursor() as cursor:
        return [c.name for c in connection.introspection.get_table_description(cursor, table)]


def _constraints(table: str) -> dict[str, dict]:
    with connection.cursor() as cursor:
        return connection.introspection.get_constraints(cursor, table)


@pytest.mark.django_db(transaction=True)
def test_a_unique_expression_constraint_holds_for_inserts_updates_and_rows_present():
    from django.db import IntegrityError
    from django.db.models import UniqueConstraint
    from django.db.models.functions import Lower

    Author.objects.create(name="Ann", email="ann@x")
    Author.objects.create(name="Bob", email="bob@x")
    constraint = UniqueConstraint(Lower("name").desc(), "rank", name="author_lower_name_uq")
    with connection.schema_editor() as editor:
        editor.add_constraint(Author, constraint)
    try:
        found = _constraints("blogapp_author")["author_lower_name_uq"]
        assert found["unique"] is True
        assert found["columns"] == [None, "rank"] and found["orders"] == ["DESC", "ASC"]
        # The hidden field is no column of the table, nor of SELECT *.
        assert _describe("blogapp_author") == ["id", "name", "email", "rank"]
        with connection.cursor() as cursor:
            cursor.execute('SELECT * FROM "blogapp_author" ORDER BY "id"')
            assert [c[0] for c in cursor.description] == ["id", "name", "email", "rank"]
        with pytest.raises(IntegrityError):
            Author.objects.create(name="ANN", email="ann2@x")
        Author.objects.create(name="ANN", email="ann3@x", rank=1)  # another rank: allowed
        with pytest.raises(IntegrityError):
            Author.objects.filter(name="Bob").update(name="ann")
        Author.objects.filter(name="Bob").update(name="Carl")
        with pytest.raises(IntegrityError):
            Author.objects.create(name="carl", email="carl@x")
        assert sorted(Author.objects.values_list("name", flat=True)) == ["ANN", "Ann", "Carl"]
    finally:
        with connection.schema_editor() as editor:
            editor.remove_constraint(Author, constraint)
    assert "author_lower_name_uq" not in _constraints("blogapp_author")
    # Its hidden field went with it: the same names may repeat again.
    raw = connection.mongo_database["blogapp_author"].find_one({"name": "Ann"})
    assert not any(key.startswith("__djongo_index__") for key in raw)
    Author.objects.create(name="ann", email="ann4@x")


@pytest.mark.django_db(transaction=True)
def test_an_expression_index_over_duplicates_is_refused_and_leaves_nothing():
    from django.db import IntegrityError
    from django.db.models import UniqueConstraint
    from django.db.models.functions import Upper

    Author.objects.create(name="ann", email="a@x")
    Author.objects.create(name="ANN", email="b@x")
    constraint = UniqueConstraint(Upper("name"), name="author_upper_uq")
    with pytest.raises(IntegrityError), connection.schema_editor() as editor:
        editor.add_constraint(Author, constraint)
    assert "author_upper_uq" not in _constraints("blogapp_author")
    for raw in connection.mongo_database["blogapp_author"].find():
        assert not any(key.startswith("__djongo_index__") for key in raw)
    Author.objects.create(name="Ann", email="c@x")  # no stale hidden column to compute


@pytest.mark.django_db(transaction=True)
def test_an_expression_index_is_dropped_with_a_column_it_reads():
    with connection.cursor() as cursor:
        cursor.execute('CREATE INDEX "author_rank_idx" ON "blogapp_author" ((("rank" * 2)))')
        assert _constraints("blogapp_author")["author_rank_idx"]["columns"] == [None]
        cursor.execute('ALTER TABLE "blogapp_author" DROP COLUMN "rank"')
        try:
            assert "author_rank_idx" not in _constraints("blogapp_author")
            assert _describe("blogapp_author") == ["id", "name", "email"]
        finally:
            cursor.execute('ALTER TABLE "blogapp_author" ADD COLUMN "rank" integer DEFAULT 0')


@pytest.mark.django_db
@pytest.mark.parametrize("key", ["(RANDOM())", "(NOW())"])
def test_an_index_on_a_non_deterministic_expression_is_refused(key):
    with connection.cursor() as cursor, pytest.raises(NotSupportedError, match="non-deterministic"):
        cursor.execute(f'CREATE INDEX "ix" ON "blogapp_author" ({key})')


@pytest.mark.django_db(transaction=True)
def test_an_expression_index_follows_a_renamed_column():
    from django.db import IntegrityError

    with connection.cursor() as cursor:
        cursor.execute(
            'CREATE UNIQUE INDEX "author_lname_uq" ON "blogapp_author" ((LOWER("name")))')
        cursor.execute('ALTER TABLE "blogapp_author" RENAME COLUMN "name" TO "full_name"')
        try:
            cursor.execute('INSERT INTO "blogapp_author" ("full_name", "rank") VALUES (%s, 0)',
                           ["Ann"])
            with pytest.raises(IntegrityError):
                cursor.execute('INSERT INTO "blogapp_author" ("full_name", "rank") VALUES (%s, 0)',
                               ["ANN"])
        finally:
            cursor.execute('DROP INDEX "author_lname_uq"')
            cursor.execute('ALTER TABLE "blogapp_author" RENAME COLUMN "full_name" TO "name"')
            cursor.execute('DELETE FROM "blogapp_author"')
