"""djongo.models: ArrayField, ArrayReferenceField, JSONField, GenericObjectIdField."""

import pytest
from bson import ObjectId
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import ProtectedError

from tests.fieldsapp.models import Article, Author, Event, Memo, Person, Post

pytestmark = pytest.mark.django_db


def names(qs):
    return sorted(str(x) for x in qs)


# -- ArrayField --------------------------------------------------------------------

@pytest.fixture
def posts():
    Post.objects.create(headline="Abbey Road", authors=[
        Author(name="Paul", email="paul@example.com"),
        Author(name="John", email="john@example.com"),
    ])
    Post.objects.create(headline="Sticky Fingers", authors=[
        {"name": "Mick", "email": "mick@example.com"},
    ])
    Post.objects.create(headline="Silence", authors=[])


def test_array_field_is_stored_as_an_array_of_subdocuments(posts, mongo_db):
    stored = mongo_db["fieldsapp_post"].find_one({"headline": "Abbey Road"})
    assert stored["authors"] == [
        {"name": "Paul", "email": "paul@example.com"},
        {"name": "John", "email": "john@example.com"},
    ]
    post = Post.objects.get(headline="Abbey Road")
    assert [(a.name, a.email) for a in post.authors] == [
        ("Paul", "paul@example.com"), ("John", "john@example.com")]


def test_lookups_inside_arrays_of_embedded_documents(posts):
    assert names(Post.objects.filter(authors={"name": "Paul"})) == ["Abbey Road"]
    assert names(Post.objects.filter(authors__name="Mick")) == ["Sticky Fingers"]
    assert names(Post.objects.filter(authors__name__startswith="J")) == ["Abbey Road"]
    assert names(Post.objects.filter(authors__email__icontains="MICK@")) == ["Sticky Fingers"]
    assert names(Post.objects.filter(authors__startswith={"name": "Pa"})) == ["Abbey Road"]
    assert "Sticky Fingers" in names(Post.objects.exclude(authors__name="Paul"))
    assert names(Post.objects.filter(authors=[])) == ["Silence"]


def test_array_items_are_validated_with_their_fields():
    post = Post(headline="x", authors=[Author(name="Ok", email="ok@example.com"),
                                       Author(name="", email="not-an-email")])
    with pytest.raises(ValidationError) as info:
        post.full_clean()
    assert info.value.message_dict["authors"] == [
        "item 2: name: This field cannot be blank.",
        "item 2: email: Enter a valid email address.",
    ]


def test_saving_a_changed_array(posts):
    post = Post.objects.get(headline="Sticky Fingers")
    post.authors.append(Author(name="Keith", email="keith@example.com"))
    post.save()
    assert [a.name for a in Post.objects.get(pk=post.pk).authors] == ["Mick", "Keith"]
    Post.objects.filter(pk=post.pk).update(authors=[Author(name="Ron", email="r@example.com")])
    assert [a.name for a in Post.objects.get(pk=post.pk).authors] == ["Ron"]


def formset_data(prefix, items, extra_blank=True, delete=()):
    data = {f"{prefix}-TOTAL_FORMS": str(len(items) + extra_blank),
            f"{prefix}-INITIAL_FORMS": "0"}
    for i, item in enumerate(items):
        for key, value in item.items():
            data[f"{prefix}-{i}-{key}"] = value
        if i in delete:
            data[f"{prefix}-{i}-DELETE"] = "on"
    return data


def test_admin_renders_the_array_as_nested_forms(admin_client, posts):
    post = Post.objects.get(headline="Abbey Road")
    page = admin_client.get(f"/admin/fieldsapp/post/{post.pk}/change/").content.decode()
    assert 'name="authors-TOTAL_FORMS" value="3"' in page  # two items and a blank one
    assert 'name="authors-0-name" value="Paul"' in page
    assert 'name="authors-1-email" value="john@example.com"' in page
    assert 'name="authors-2-name"' in page and 'name="authors-0-DELETE"' in page


def test_admin_adds_edits_and_deletes_array_items(admin_client):
    response = admin_client.post("/admin/fieldsapp/post/add/", {
        "headline": "Let It Be",
        **formset_data("authors", [{"name": "Paul", "email": "paul@example.com"},
                                   {"name": "George", "email": "george@example.com"}]),
    })
    assert response.status_code == 302, response.content.decode()
    post = Post.objects.get(headline="Let It Be")
    assert [a.name for a in post.authors] == ["Paul", "George"]

    response = admin_client.post(f"/admin/fieldsapp/post/{post.pk}/change/", {
        "headline": "Let It Be",
        **formset_data("authors", [{"name": "Paul", "email": "paul@example.com"},
                                   {"name": "George", "email": "george@example.com"},
                                   {"name": "Ringo", "email": "ringo@example.com"}],
                       delete={0}),
    })
    assert response.status_code == 302, response.content.decode()
    assert [a.name for a in Post.objects.get(pk=post.pk).authors] == ["George", "Ringo"]


def test_admin_reports_an_invalid_item_next_to_it(admin_client):
    response = admin_client.post("/admin/fieldsapp/post/add/", {
        "headline": "Bad",
        **formset_data("authors", [{"name": "Paul", "email": "nope"}]),
    })
    assert response.status_code == 200
    page = response.content.decode()
    assert "item 1: email: Enter a valid email address." in page
    assert 'name="authors-0-email" value="nope"' in page
    assert not Post.objects.filter(headline="Bad").exists()


# -- ArrayReferenceField -------------------------------------------------------------

@pytest.fixture
def people():
    return {n: Person.objects.create(name=n) for n in ("Paul", "John", "Mick")}


def test_references_are_stored_as_an_array_of_ids(people, mongo_db):
    article = Article.objects.create(headline="Beatles",
                                     contributors=[people["Paul"], people["John"]])
    stored = mongo_db["fieldsapp_article"].find_one({"headline": "Beatles"})
    assert stored["contributors_id"] == [people["Paul"].pk, people["John"].pk]
    assert names(Article.objects.get(pk=article.pk).contributors.all()) == ["John", "Paul"]


def test_related_manager_add_remove_clear_set_create(people, mongo_db):
    article = Article.objects.create(headline="Mix")
    assert list(article.contributors.all()) == []
    article.contributors.add(people["Paul"], people["Mick"])
    article.contributors.add(people["Paul"])  # no duplicates
    assert names(article.contributors.all()) == ["Mick", "Paul"]
    article.contributors.remove(people["Mick"])
    assert names(Article.objects.get(pk=article.pk).contributors.all()) == ["Paul"]
    article.contributors.set([people["John"], people["Mick"]])
    assert names(article.contributors.all()) == ["John", "Mick"]
    ringo = article.contributors.create(name="Ringo")
    assert names(Article.objects.get(pk=article.pk).contributors.all()) == [
        "John", "Mick", "Ringo"]
    assert article.contributors.filter(name__startswith="R").get() == ringo
    article.contributors.clear()
    assert mongo_db["fieldsapp_article"].find_one({"_id": {"$exists": True},
                                                   "headline": "Mix"})["contributors_id"] == []


def test_filtering_through_references(people):
    a = Article.objects.create(headline="A", contributors=[people["Paul"], people["John"]])
    Article.objects.create(headline="B", contributors=[people["Mick"]])
    assert names(Article.objects.filter(contributors=people["Paul"])) == ["A"]
    assert names(Article.objects.filter(contributors=people["Mick"].pk)) == ["B"]
    assert names(Article.objects.filter(contributors__in=[people["John"], people["Mick"]])) == [
        "A", "B"]
    assert names(Article.objects.filter(contributors__name="Mick")) == ["B"]
    assert names(Article.objects.filter(contributors__name__startswith="J")) == ["A"]
    assert names(Article.objects.filter(contributors__id=people["Paul"].id)) == ["A"]
    assert names(Article.objects.exclude(contributors__name="Paul")) == ["B"]
    assert names(people["Paul"].article_set.all()) == ["A"]
    assert a.contributors.count() == 2


def test_reverse_accessor_with_related_name(people):
    article = Article.objects.create(headline="R", contributors=[people["Paul"]])
    article.reviewers.add(people["Mick"])
    assert names(people["Mick"].reviewed.all()) == ["R"]
    assert names(people["Paul"].reviewed.all()) == []


def test_deleting_a_referenced_object_removes_its_id(people):
    article = Article.objects.create(headline="D", contributors=[people["Paul"], people["John"]])
    people["Paul"].delete()
    assert Article.objects.get(pk=article.pk).contributors_id == [people["John"].pk]
    assert Article.objects.count() == 1


def test_protect_refuses_to_delete_a_referenced_object(people):
    article = Article.objects.create(headline="P", contributors=[people["John"]])
    article.reviewers.add(people["Mick"])
    # The check runs inside the delete's transaction: a nested atomic() keeps
    # the surrounding one usable.
    with pytest.raises(ProtectedError), transaction.atomic():
        people["Mick"].delete()
    assert Person.objects.filter(pk=people["Mick"].pk).exists()


def test_reference_writes_join_the_transaction(people):
    article = Article.objects.create(headline="T", contributors=[people["Paul"]])
    with pytest.raises(RuntimeError), transaction.atomic():
        article.contributors.add(people["Mick"])
        assert names(Article.objects.get(pk=article.pk).contributors.all()) == [
            "Mick", "Paul"]
        raise RuntimeError("roll back")
    assert Article.objects.get(pk=article.pk).contributors_id == [people["Paul"].pk]


def test_admin_edits_references_with_a_multiple_choice(admin_client, people):
    response = admin_client.post("/admin/fieldsapp/article/add/", {
        "headline": "Admin", "contributors": [people["Paul"].pk, people["Mick"].pk],
    })
    assert response.status_code == 302, response.content.decode()
    article = Article.objects.get(headline="Admin")
    assert names(article.contributors.all()) == ["Mick", "Paul"]
    page = admin_client.get(f"/admin/fieldsapp/article/{article.pk}/change/").content.decode()
    assert f'<option value="{people["Paul"].pk}" selected>Paul</option>' in page


# -- JSONField and GenericObjectIdField ---------------------------------------------

def test_json_field_is_a_native_document_with_key_lookups(mongo_db):
    Event.objects.create(kind="a", data={"owner": {"name": "Ann", "age": 31}, "tags": ["x", "y"]})
    Event.objects.create(kind="b", data={"owner": {"name": "Bob", "age": 25}, "tags": ["z"]})
    Event.objects.create(kind="c", data=[1, 2, 3])
    stored = mongo_db["fieldsapp_event"].find_one({"kind": "a"})
    assert stored["data"] == {"owner": {"name": "Ann", "age": 31}, "tags": ["x", "y"]}
    assert Event.objects.get(kind="c").data == [1, 2, 3]

    def kinds(**lookup):
        return sorted(Event.objects.filter(**lookup).values_list("kind", flat=True))

    assert kinds(data__owner__name="Ann") == ["a"]
    assert kinds(data__owner__age__gt=30) == ["a"]
    assert kinds(data__owner__name__startswith="B") == ["b"]
    assert kinds(data__tags="z") == ["b"]
    assert kinds(data__owner__isnull=True) == ["c"]
    assert kinds(data={"owner": {"name": "Bob", "age": 25}, "tags": ["z"]}) == ["b"]


def test_generic_objectid_field():
    ref = ObjectId()
    event = Event.objects.create(kind="ref", source=str(ref))
    assert Event.objects.get(pk=event.pk).source == ref
    assert Event.objects.filter(source=ref).count() == 1
    with pytest.raises(ValidationError):
        Event(kind="bad", source="not-an-id").full_clean()


def test_admin_edits_json_and_objectid_fields(admin_client):
    ref = ObjectId()
    response = admin_client.post("/admin/fieldsapp/event/add/", {
        "kind": "admin", "data": '{"owner": {"name": "Ann"}, "n": [1, 2]}', "source": str(ref),
    })
    assert response.status_code == 302, response.content.decode()
    event = Event.objects.get(kind="admin")
    assert (event.data, event.source) == ({"owner": {"name": "Ann"}, "n": [1, 2]}, ref)
    response = admin_client.post("/admin/fieldsapp/event/add/", {
        "kind": "no-source", "data": "{}", "source": "",
    })
    assert response.status_code == 302, response.content.decode()
    assert Event.objects.get(kind="no-source").source is None
    response = admin_client.post("/admin/fieldsapp/event/add/", {
        "kind": "bad", "data": "{}", "source": "zzzzzzzzzzzzzzzzzzzzzzzz",
    })
    assert response.status_code == 200 and "is not a valid ObjectId" in response.content.decode()


# -- CharField without max_length -------------------------------------------------

def test_a_char_field_without_max_length_has_no_limit():
    from django.core import checks
    from django.db import connection

    assert not [e for e in Memo.check(databases=["default"]) if e.level >= checks.ERROR]
    memo = Memo.objects.create(text="x" * 10_000)
    assert Memo.objects.get(pk=memo.pk).text == "x" * 10_000
    with connection.cursor() as cursor:
        description = connection.introspection.get_table_description(cursor, "fieldsapp_memo")
    text = next(c for c in description if c.name == "text")
    assert connection.introspection.get_field_type(text.type_code, text) == "CharField"
    assert text.internal_size is None
