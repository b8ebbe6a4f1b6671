"""Every example of Djongo's documentation (/work/shared/spec 001, 002, 004), run as printed.

The models are in tests/spec/<example>/models.py, copied from the pages. Where a
page shows a fragment (a query, a view), the fragment appears here verbatim
inside a test that supplies the data and checks what a user would see.
"""

import logging

import pytest
from bson import ObjectId
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db import IntegrityError, connection
from django.test import RequestFactory

from tests.spec.embedded.models import Blog, Entry
from tests.spec.embedded.views import EntryView
from tests.spec.validators.models import Address

pytestmark = pytest.mark.django_db


@pytest.fixture
def beatles(db):
    Entry.objects.create(blog=Blog(name="Beatles Blog", tagline="All you need"),
                         headline="Love")
    Entry.objects.create(blog={"name": "Beatles Fans", "tagline": "Help!"}, headline="Help")
    Entry.objects.create(blog=Blog(name="Stones", tagline="Paint it"), headline="Black")


# -- 001/004: settings --------------------------------------------------------

def test_the_one_line_settings_block():
    """DATABASES = {'default': {'ENGINE': 'djongo', 'NAME': 'your-db-name'}}"""
    from tests.test_settings import wrapper_for

    wrapper = wrapper_for({
        'ENGINE': 'djongo',
        'NAME': 'your-db-name',
        'DATA_DIR': connection.settings_dict['DATA_DIR'],
    }, alias="one-line")
    try:
        with wrapper.cursor() as cursor:
            cursor.execute("SELECT 1")
            assert cursor.fetchall() == [(1,)]
        assert wrapper.mongo_database.name == "your-db-name"
    finally:
        wrapper.close()


def test_name_cannot_be_left_empty():
    """002: "NAME ... This field cannot be left empty."""
    from djongo.base import DatabaseWrapper

    with pytest.raises(ImproperlyConfigured, match="NAME"):
        DatabaseWrapper({'ENGINE': 'djongo', 'NAME': ''}).get_connection_params()


def test_the_full_settings_block_reaches_pymongo(monkeypatch):
    """002's settings block, placeholders and 'propogate' typo included."""
    from djongo import server

    calls = []

    class Recorder:
        def __init__(self, **kwargs):
            calls.append(kwargs)

        def get_database(self, name, **kwargs):
            return None

    monkeypatch.setattr(server, "MongoClient", Recorder)
    monkeypatch.setattr(server, "_clients", {})
    port_number = 27017
    DATABASES = {
        'default': {
            'ENGINE': 'djongo',
            'NAME': 'your-db-name',
            'ENFORCE_SCHEMA': False,
            'CLIENT': {
                'host': 'host-name or ip address',
                'port': port_number,
                'username': 'db-username',
                'password': 'password',
                'authSource': 'db-name',
                'authMechanism': 'SCRAM-SHA-1'
            },
            'LOGGING': {
                'version': 1,
                'loggers': {
                    'djongo': {
                        'level': 'DEBUG',
                        'propogate': False,
                    }
                },
            },
        }
    }
    from djongo.base import DatabaseWrapper

    saved = logging.getLogger("djongo").level
    wrapper = DatabaseWrapper(DATABASES['default'], alias="spec-002")
    try:
        params = wrapper.get_connection_params()
        assert params["enforce_schema"] is False
        wrapper.get_new_connection(params)
        assert logging.getLogger("djongo").level == logging.DEBUG
    finally:
        logging.getLogger("djongo").setLevel(saved)
    calls[0].pop("event_listeners")
    assert calls == [DATABASES['default']['CLIENT']]


# -- 002/004: EmbeddedField, admin, queries -------------------------------------

def test_querying_embedded_fields(beatles):
    entries = Entry.objects.filter(blog__startswith={'name': 'Beatles'})
    assert sorted(e.headline for e in entries) == ["Help", "Love"]


def test_querying_embedded_fields_by_nested_lookup(beatles):
    entries = Entry.objects.filter(blog__name__startswith='Beatles')
    assert sorted(e.headline for e in entries) == ["Help", "Love"]
    assert [e.blog.tagline for e in Entry.objects.filter(blog__name='Stones')] == ["Paint it"]


def test_embedded_blog_is_a_subdocument(beatles, mongo_db):
    stored = mongo_db["spec_embedded_entry"].find_one({"headline": "Love"})
    assert stored["blog"] == {"name": "Beatles Blog", "tagline": "All you need"}


def test_djongo_manager_behaves_as_the_usual_manager(beatles):
    p_key = Entry.objects.get(headline="Help").pk
    post = Entry.objects.get(pk=p_key)
    assert (post.headline, post.blog.name) == ("Help", "Beatles Fans")


def test_entry_view_get_object_as_printed(beatles):
    view = EntryView()
    view.setup(RequestFactory().get("/entries/Help"), path="Help")
    index = view.get_object()
    assert [(d["headline"], d["blog"]["name"]) for d in index] == [("Help", "Beatles Fans")]
    assert isinstance(index[0]["_id"], ObjectId)


def test_entry_view_renders(beatles):
    response = EntryView.as_view(template_name="spec_embedded/entry_detail.html")(
        RequestFactory().get("/entries/Love"), path="Love")
    response.render()
    assert b"<h1>Love</h1><p>Beatles Blog</p>" in response.content


def test_mongo_insert_one_instead_of_save(beatles):
    Entry.objects.mongo_insert_one({"id": 99, "headline": "Direct",
                                    "blog": {"name": "Raw", "tagline": "pymongo"}})
    assert Entry.objects.get(headline="Direct").blog.name == "Raw"


def test_mongo_aggregate_on_the_collection(beatles):
    counts = {d["_id"]: d["n"] for d in Entry.objects.mongo_aggregate([
        {"$group": {"_id": {"$substrCP": ["$blog.name", 0, 7]}, "n": {"$sum": 1}}},
    ])}
    assert counts == {"Beatles": 2, "Stones": 1}


def test_admin_adds_an_entry_with_its_embedded_blog(admin_client):
    response = admin_client.get("/admin/spec_embedded/entry/add/")
    assert response.status_code == 200
    assert b'name="blog_0"' in response.content and b'name="blog_1"' in response.content
    response = admin_client.post("/admin/spec_embedded/entry/add/", {
        "blog_0": "Beatles Blog", "blog_1": "Yeah yeah yeah", "headline": "From the admin",
    })
    assert response.status_code == 302, response.content
    entry = Entry.objects.get(headline="From the admin")
    assert (entry.blog.name, entry.blog.tagline) == ("Beatles Blog", "Yeah yeah yeah")
    response = admin_client.get(f"/admin/spec_embedded/entry/{entry.pk}/change/")
    assert b"Yeah yeah yeah" in response.content


# -- 001: validators and integrity checks ---------------------------------------

def test_script_injection_validator_rejects():
    from tests.spec.validators.models import Entry as AddressEntry

    entry = AddressEntry(address=Address(city="Pune",
                                         homepage="https://example.com/<script>alert(1)"))
    with pytest.raises(ValidationError) as info:
        entry.full_clean()
    assert any("Script injection in https://example.com/<script>" in m
               for m in info.value.message_dict["address"])


def test_valid_address_is_saved_with_an_objectid_key(mongo_db):
    from tests.spec.validators.models import Entry as AddressEntry

    entry = AddressEntry(address=Address(city="Pune", homepage="https://example.com/"))
    entry.full_clean()
    entry.save()
    assert isinstance(entry._id, ObjectId)
    stored = mongo_db["spec_validators_entry"].find_one({"_id": entry._id})
    assert stored["address"] == {"city": "Pune", "homepage": "https://example.com/"}
    assert AddressEntry.objects.get(pk=entry.pk).address.city == "Pune"


def test_script_injection_is_rejected_by_the_admin_form():
    from django.forms import modelform_factory

    from tests.spec.validators.models import Entry as AddressEntry

    form = modelform_factory(AddressEntry, fields="__all__")(
        {"address_0": "Pune", "address_1": "https://example.com/<script>"})
    assert not form.is_valid()
    assert "Script injection" in str(form.errors["address"])


def test_integrity_checks_never_store_a_missing_embedded_value(mongo_db):
    from tests.spec.integrity.models import Entry as StrictEntry

    with pytest.raises(ValidationError) as info:
        StrictEntry(address=None).full_clean()
    assert info.value.message_dict["address"] == ["This field cannot be null."]
    with pytest.raises(IntegrityError, match="NOT NULL"):
        StrictEntry.objects.create(address=None)
    assert mongo_db["spec_integrity_entry"].count_documents({}) == 0


# -- 001: nested queries ----------------------------------------------------------

def test_nested_queries_with_a_sub_queryset():
    from tests.spec.nested.models import Blog as ConcreteBlog
    from tests.spec.nested.models import Entry as FkEntry

    for name in ("Cheese", "Chess club", "Music"):
        blog = ConcreteBlog.objects.create(name=name, tagline="-")
        FkEntry.objects.create(blog=blog, headline=f"on {name}")
    inner_qs = ConcreteBlog.objects.filter(name__contains='Ch').values('name')
    entries = FkEntry.objects.filter(blog__name__in=inner_qs)
    assert sorted(e.headline for e in entries) == ["on Cheese", "on Chess club"]


# -- 002: ENFORCE_SCHEMA ---------------------------------------------------------

def test_goodbye_migrations_a_new_field_needs_no_migration(mongo_db):
    """Blog version 1 documents read through version 2 of the model: None, no migration."""
    from tests.spec.nested.models import Blog as ConcreteBlog

    mongo_db["spec_nested_blog"].insert_one({"id": 7001, "name": "v1"})  # no tagline
    blog = ConcreteBlog.objects.get(id=7001)
    assert (blog.name, blog.tagline) == ("v1", None)


def test_enforce_schema_true_raises_migration_error(mongo_db, monkeypatch):
    from djongo.exceptions import MigrationError

    from tests.spec.nested.models import Blog as ConcreteBlog

    mongo_db["spec_nested_blog"].insert_one({"id": 7002, "name": "v1"})
    monkeypatch.setattr(connection.connection, "enforce_schema", True)
    with pytest.raises(MigrationError) as info:
        ConcreteBlog.objects.get(id=7002)
    assert (info.value.collection, info.value.field) == ("spec_nested_blog", "tagline")


# -- 002: the __schema__ collection ---------------------------------------------

def test_schema_collection_tracks_autoincrement(mongo_db):
    from tests.spec.nested.models import Blog as ConcreteBlog

    for i in range(3):
        ConcreteBlog.objects.create(name=f"b{i}", tagline="-")
    record = mongo_db["__schema__"].find_one({"name": "spec_nested_blog"})
    assert record["auto"]["field_names"] == ["id"]
    assert record["auto"]["seq"] >= 3


def test_mongo_prefixed_collection_methods(beatles):
    found = list(Entry.objects.mongo_find({"blog.name": {"$regex": "^Beatles"}},
                                          {"_id": 0, "headline": 1}).sort("headline"))
    assert found == [{"headline": "Help"}, {"headline": "Love"}]
    result = Entry.objects.mongo_update_many({"blog.name": "Stones"},
                                             {"$set": {"blog.tagline": "Start me up"}})
    assert result.modified_count == 1
    assert Entry.objects.get(headline="Black").blog.tagline == "Start me up"
    assert Entry.objects.mongo_count_documents({}) == 3
    with pytest.raises(AttributeError, match="no method 'not_a_method'"):
        Entry.objects.mongo_not_a_method()


@pytest.mark.django_db(transaction=True)
def test_mongo_create_index_outside_a_transaction():
    try:
        name = Entry.objects.mongo_create_index("headline", name="entry_headline")
        assert name == "entry_headline"
        assert "entry_headline" in Entry.objects.mongo_index_information()
    finally:
        Entry.objects.mongo_drop_index("entry_headline")


@pytest.fixture
def blog_collection_from_version_1():
    """spec_nested_blog as migrated before Blog gained its `tagline` (version 1)."""
    from tests.spec.nested.models import Blog as ConcreteBlog

    tagline = ConcreteBlog._meta.get_field("tagline")
    with connection.schema_editor() as editor:
        editor.remove_field(ConcreteBlog, tagline)
    yield
    connection.mongo_database["spec_nested_blog"].delete_many({})
    with connection.schema_editor() as editor:
        editor.add_field(ConcreteBlog, tagline)


@pytest.mark.django_db(transaction=True)
def test_goodbye_migrations_version_2_saves_without_migrating(blog_collection_from_version_1):
    """002: "The modified Model can be saved without running any migrations." """
    from tests.spec.nested.models import Blog as ConcreteBlog

    blog = ConcreteBlog.objects.create(name="v2", tagline="now with a tagline")
    assert ConcreteBlog.objects.get(pk=blog.pk).tagline == "now with a tagline"
    assert ConcreteBlog.objects.filter(tagline__startswith="now").count() == 1
