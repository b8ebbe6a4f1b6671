"""The ORM basics, each through the real path: SQL → Rust compiler → pymongo → engine."""

import datetime

import pytest
from django.db import IntegrityError, connection
from django.db.models import Q

from tests.blogapp.models import Author, Blog, Comment, Document, Entry, Topic

pytestmark = pytest.mark.django_db


def blog(name, tagline="t"):
    return {"name": name, "tagline": tagline}


@pytest.fixture
def authors():
    return {
        name: Author.objects.create(name=name, email=f"{name.lower()}@example.com", rank=rank)
        for name, rank in [("Ann", 3), ("Bob", 1), ("Cid", 2)]
    }


@pytest.fixture
def entries(authors):
    rows = [
        ("Beatles Blog", "Let it be", "Ann", 10, datetime.date(2024, 1, 5)),
        ("Beatles Fans", "Yesterday", "Bob", 3, datetime.date(2024, 2, 1)),
        ("Rolling Stones", "Paint it black", "Ann", 0, datetime.date(2023, 12, 24)),
        ("Jazz Corner", "So what", "Cid", 7, None),
        ("Jazz Corner", "Take five", None, 5, datetime.date(2024, 3, 3)),
    ]
    made = []
    for blog_name, headline, author, n, date in rows:
        made.append(Entry.objects.create(
            blog=blog(blog_name), headline=headline, n_comments=n, pub_date=date,
            author=authors[author] if author else None,
        ))
    return made


def headlines(qs):
    return sorted(e.headline for e in qs)


def test_create_assigns_increasing_integer_ids(authors):
    ids = [a.id for a in authors.values()]
    assert all(isinstance(i, int) for i in ids)
    assert ids == sorted(ids) and len(set(ids)) == 3


def test_get_returns_the_row_with_its_embedded_document(entries):
    entry = Entry.objects.get(headline="Yesterday")
    assert entry.blog.name == "Beatles Fans"
    assert entry.author.name == "Bob"
    assert entry.pub_date == datetime.date(2024, 2, 1)
    with pytest.raises(Entry.DoesNotExist):
        Entry.objects.get(headline="nope")


@pytest.mark.parametrize("lookup,value,expected", [
    ("headline__exact", "So what", ["So what"]),
    ("headline__iexact", "so WHAT", ["So what"]),
    ("headline__contains", "it", ["Let it be", "Paint it black"]),
    ("headline__icontains", "IT", ["Let it be", "Paint it black"]),
    ("headline__startswith", "Take", ["Take five"]),
    ("headline__in", ["So what", "Yesterday", "zzz"], ["So what", "Yesterday"]),
    ("n_comments__gt", 5, ["Let it be", "So what"]),
    ("n_comments__gte", 5, ["Let it be", "So what", "Take five"]),
    ("n_comments__lt", 3, ["Paint it black"]),
    ("n_comments__lte", 3, ["Paint it black", "Yesterday"]),
    ("pub_date__isnull", True, ["So what"]),
    ("author__isnull", True, ["Take five"]),
    ("n_comments__range", (3, 7), ["So what", "Take five", "Yesterday"]),
    ("pub_date__range", (datetime.date(2024, 1, 1), datetime.date(2024, 2, 28)),
     ["Let it be", "Yesterday"]),
])
def test_filter_lookups(entries, lookup, value, expected):
    assert headlines(Entry.objects.filter(**{lookup: value})) == expected


def test_like_wildcards_in_values_are_literal(entries):
    Entry.objects.create(blog=blog("x"), headline="100% sure_thing")
    assert headlines(Entry.objects.filter(headline__contains="0% s")) == ["100% sure_thing"]
    assert headlines(Entry.objects.filter(headline__contains="e_t")) == ["100% sure_thing"]
    assert not Entry.objects.filter(headline__contains="%x").exists()


def test_exclude_keeps_sql_null_semantics(entries):
    # exclude(author__name="Ann") keeps the entry without author: SQL NOT IN semantics
    assert headlines(Entry.objects.exclude(n_comments__gt=4)) == [
        "Paint it black", "Yesterday"]
    assert headlines(Entry.objects.exclude(author__name="Ann")) == [
        "So what", "Take five", "Yesterday"]


def test_q_objects_with_or_and_not(entries):
    qs = Entry.objects.filter(Q(n_comments=0) | Q(headline__startswith="Take"))
    assert headlines(qs) == ["Paint it black", "Take five"]
    qs = Entry.objects.filter(~Q(blog={"name": "Jazz Corner"}) & Q(n_comments__lt=10))
    assert headlines(qs) == ["Paint it black", "Yesterday"]


def test_order_by_slicing_and_reverse(entries):
    ordered = list(Entry.objects.order_by("-n_comments").values_list("n_comments", flat=True))
    assert ordered == [10, 7, 5, 3, 0]
    assert [e.n_comments for e in Entry.objects.order_by("n_comments")[1:3]] == [3, 5]
    assert Entry.objects.order_by("n_comments")[4].n_comments == 10


def test_order_by_across_a_foreign_key(entries):
    qs = Entry.objects.filter(author__isnull=False).order_by("author__name", "-n_comments")
    assert [e.headline for e in qs] == ["Let it be", "Paint it black", "Yesterday", "So what"]


def test_count_and_exists(entries):
    assert Entry.objects.count() == 5
    assert Entry.objects.filter(n_comments__gt=100).count() == 0
    assert Entry.objects.filter(headline="So what").exists()
    assert not Entry.objects.filter(headline="Nope").exists()
    assert Author.objects.filter(entries__n_comments__gte=5).distinct().count() == 2


def test_select_related_joins_the_author(entries):
    with_author = {e.headline: e for e in Entry.objects.select_related("author")}
    assert with_author["Let it be"].author.name == "Ann"
    assert with_author["Take five"].author is None


def test_filter_across_a_foreign_key(entries):
    assert headlines(Entry.objects.filter(author__name="Ann")) == ["Let it be", "Paint it black"]
    assert headlines(Entry.objects.filter(author__rank__lt=2)) == ["Yesterday"]


def test_many_to_many(entries, authors):
    first = entries[0]
    first.contributors.add(authors["Bob"], authors["Cid"])
    assert sorted(a.name for a in first.contributors.all()) == ["Bob", "Cid"]
    assert [e.headline for e in authors["Cid"].contributed.all()] == ["Let it be"]
    assert headlines(Entry.objects.filter(contributors__name="Bob")) == ["Let it be"]
    first.contributors.remove(authors["Bob"])
    assert [a.name for a in first.contributors.all()] == ["Cid"]


def test_update_with_values_and_expressions(entries):
    from django.db.models import F

    assert Entry.objects.filter(n_comments__lt=5).update(n_comments=F("n_comments") + 1) == 2
    assert sorted(Entry.objects.values_list("n_comments", flat=True)) == [1, 4, 5, 7, 10]
    assert Entry.objects.filter(headline="So what").update(headline="So what?") == 1
    assert Entry.objects.filter(headline="So what?").exists()


def test_delete_cascades_through_the_orm(entries, authors):
    deleted, per_model = authors["Ann"].delete()
    assert per_model["blogapp.Entry"] == 2
    assert Entry.objects.count() == 3
    assert Entry.objects.filter(n_comments__gt=4).delete()[0] == 2
    assert headlines(Entry.objects.all()) == ["Yesterday"]


def test_values_and_values_list(entries):
    row = Entry.objects.filter(headline="So what").values("headline", "n_comments").get()
    assert row == {"headline": "So what", "n_comments": 7}
    names = list(Entry.objects.filter(author__isnull=False).order_by("headline")
                 .values_list("author__name", flat=True))
    assert names == ["Ann", "Ann", "Cid", "Bob"]


def test_embedded_field_query_from_the_spec(entries):
    qs = Entry.objects.filter(blog__startswith={"name": "Beatles"})
    assert headlines(qs) == ["Let it be", "Yesterday"]
    assert headlines(Entry.objects.filter(blog={"name": "Jazz Corner"})) == [
        "So what", "Take five"]
    assert headlines(Entry.objects.filter(blog__name__icontains="stones")) == ["Paint it black"]


def test_embedded_document_is_stored_as_a_subdocument(entries, mongo_db):
    stored = mongo_db["blogapp_entry"].find_one({"headline": "Let it be"})
    assert stored["blog"] == {"name": "Beatles Blog", "tagline": "t"}
    assert isinstance(stored["pub_date"], datetime.datetime)


def test_embedded_field_validates_its_fields():
    from django.core.exceptions import ValidationError

    entry = Entry(blog=Blog(name="", tagline="x"), headline="h")
    with pytest.raises(ValidationError) as info:
        entry.full_clean(exclude=["author", "pub_date", "rating"])
    assert info.value.message_dict["blog"] == ["name: This field cannot be blank."]


def test_saving_an_existing_row_updates_its_embedded_document(entries):
    entry = Entry.objects.get(headline="So what")
    entry.blog = Blog(name="Modal Jazz", tagline="kind of blue")
    entry.n_comments = 8
    entry.save()
    fresh = Entry.objects.get(pk=entry.pk)
    assert (fresh.blog.name, fresh.blog.tagline, fresh.n_comments) == (
        "Modal Jazz", "kind of blue", 8)


def test_embedded_model_instances_work_as_values():
    entry = Entry.objects.create(blog=Blog(name="Built", tagline="from a model"), headline="m")
    assert Entry.objects.get(pk=entry.pk).blog.tagline == "from a model"


def test_duplicate_unique_value_raises_integrity_error(authors):
    with pytest.raises(IntegrityError):
        Author.objects.create(name="Ann again", email="ann@example.com")


def test_unique_allows_many_nulls():
    Author.objects.create(name="No mail 1", email=None)
    Author.objects.create(name="No mail 2", email=None)
    assert Author.objects.filter(email__isnull=True).count() == 2


def test_explicit_id_raises_the_counter():
    Author.objects.create(id=500, name="Explicit")
    later = Author.objects.create(name="Later")
    assert later.id > 500


def test_bulk_create_returns_ids():
    made = Author.objects.bulk_create([Author(name=f"bulk{i}") for i in range(5)])
    ids = [a.id for a in made]
    assert None not in ids and ids == sorted(ids) and len(set(ids)) == 5


def test_objectid_primary_key():
    from bson import ObjectId

    doc = Document.objects.create(title="hello")
    assert isinstance(doc.pk, ObjectId)
    assert Document.objects.get(pk=str(doc.pk)).title == "hello"


def test_mongo_pass_through_from_the_manager(entries):
    result = list(Entry.objects.mongo_aggregate([
        {"$match": {"blog.name": "Jazz Corner"}},
        {"$group": {"_id": None, "total": {"$sum": "$n_comments"}}},
    ]))
    assert result[0]["total"] == 12
    assert Entry.objects.mongo_count_documents({"n_comments": {"$gte": 5}}) == 3


@pytest.mark.django_db(databases=["default", "standalone"])
def test_raw_aggregate_returns_model_instances(default_server, entries,
                                               django_assert_num_queries):
    found = list(Entry.objects.raw_aggregate([
        {"$match": {"n_comments": {"$gte": 5}}},
        {"$addFields": {"score": {"$multiply": ["$n_comments", 2]}}},
        {"$sort": {"n_comments": -1}},
    ]))
    assert [e.headline for e in found] == ["Let it be", "So what", "Take five"]
    first = found[0]
    assert isinstance(first, Entry) and first.pk == entries[0].pk
    # Columns go through the fields' converters: a date, an embedded model, a foreign key.
    assert first.pub_date == datetime.date(2024, 1, 5)
    assert first.blog.name == "Beatles Blog"
    assert first.author.name == "Ann"
    # A key that is not a column becomes an attribute, as with Manager.raw().
    assert first.score == 20
    # Fields the pipeline left out are deferred, loaded by primary key when used.
    slim = list(Entry.objects.raw_aggregate([{"$match": {"headline": "Yesterday"}},
                                             {"$project": {"id": 1, "headline": 1}}]))
    assert slim[0].get_deferred_fields() >= {"n_comments", "pub_date"}
    with django_assert_num_queries(1):
        assert slim[0].n_comments == 3
    # Instances save like any others.
    slim[0].headline = "Yesterday (remastered)"
    slim[0].save(update_fields=["headline"])
    assert Entry.objects.get(pk=slim[0].pk).headline == "Yesterday (remastered)"


@pytest.mark.django_db(databases=["default", "standalone"])
def test_raw_aggregate_errors_are_database_errors(default_server, entries):
    from django.db import DatabaseError

    with pytest.raises(DatabaseError):
        list(Entry.objects.raw_aggregate([{"$nosuchstage": {}}]))


def test_string_parameters_are_never_operators(entries):
    assert not Entry.objects.filter(headline={"$gt": ""}).exists()
    assert not Entry.objects.filter(headline='{"$gt": ""}').exists()


def test_inserting_null_into_a_not_null_column_is_an_integrity_error():
    with pytest.raises(IntegrityError, match="NOT NULL constraint failed: blogapp_author.name"):
        Author.objects.create(name=None)


def test_updating_to_null_in_a_not_null_column_is_an_integrity_error(authors):
    with pytest.raises(IntegrityError, match="NOT NULL constraint failed: blogapp_author.name"):
        Author.objects.filter(name="Ann").update(name=None)


def test_updating_to_a_null_parameter_in_a_not_null_column_is_an_integrity_error(authors):
    # Django writes "= NULL" for None; a raw statement binds it as a parameter.
    with pytest.raises(IntegrityError, match="NOT NULL constraint failed: blogapp_author.name"):
        with connection.cursor() as cursor:
            cursor.execute('UPDATE "blogapp_author" SET "rank" = %s, "name" = %s '
                           'WHERE "name" = %s', [7, None, "Ann"])
    assert Author.objects.get(name="Ann").rank == 3


def test_generic_relation_over_a_char_object_id_joins_integer_ids():
    # Comment.object_id is a string ('2'), Topic.id an integer (2): the join
    # casts, as SQL databases convert, instead of matching nothing.
    rock, jazz = Topic.objects.create(name="rock"), Topic.objects.create(name="jazz")
    Comment.objects.create(target=jazz, text="so what")
    Comment.objects.create(target=rock, text="paint it black")
    Comment.objects.create(target=rock, text="let it be")
    assert list(Topic.objects.filter(comments__text="so what")) == [jazz]
    assert list(Topic.objects.filter(comments__text__contains="it").distinct()) == [rock]
    topics = Topic.objects.prefetch_related("comments").order_by("name")
    assert [(t.name, sorted(c.text for c in t.comments.all())) for t in topics] == [
        ("jazz", ["so what"]), ("rock", ["let it be", "paint it black"])]
