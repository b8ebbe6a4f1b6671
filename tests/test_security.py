"""No way in through the ORM, no way down through SQL (issue 13).

User strings are data: a JSON key, a dict key of a lookup, a value never
becomes SQL, a field path or an operator. NULL compares as SQL says. No
statement crashes the process, and every failure is a Django DatabaseError.
docs/engine-robustness.md lists the limits these tests reach.
"""

from __future__ import annotations

import re
import threading
import uuid

import pytest
from django.db import DatabaseError, DataError, NotSupportedError, ProgrammingError, connection
from django.db.models import JSONField, Value
from django.db.models.fields.json import KeyTextTransform
from django.db.models.fields.json import KeyTransform as DjangoKeyTransform
from django.db.models.lookups import Exact
from djongo import _core
from djongo.models.fields import KeyTransform
from djongo.operations import DatabaseOperations, quote_identifier
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.blogapp.models import Entry
from tests.fieldsapp.models import Event, Record

pytestmark = pytest.mark.django_db

# Hypothesis runs many examples inside one test's transaction: each example
# tags its rows with a fresh kind and deletes them at the end.
PROPERTY = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])

# Any text but NUL (BSON keys are C strings: tested on its own below).
KEYS = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)),
               max_size=20)


def kinds(queryset) -> list[str]:
    return sorted(queryset.values_list("kind", flat=True))


def rows(sql: str, params=()) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


# -- 1. JSON keys --------------------------------------------------------------------

def test_a_json_key_holding_sql_is_one_key():
    key = '"x" IS NULL OR "x"'
    Event.objects.create(kind="plain", data={"x": 1})
    Event.objects.create(kind="literal", data={key: 1})
    Event.objects.create(kind="none", data={})
    assert kinds(Event.objects.filter(**{f"data__{key}": 1})) == ["literal"]


def test_order_by_a_json_key_holding_sql_sorts_by_that_key():
    key = '"x" ASC, "kind" DESC, "x"'
    Event.objects.create(kind="a", data={key: 2, "x": 1})
    Event.objects.create(kind="b", data={key: 1, "x": 2})
    Event.objects.create(kind="c", data={key: 3, "x": 0})
    ordered = Event.objects.order_by(f"data__{key}").values_list("kind", flat=True)
    assert list(ordered) == ["b", "a", "c"]


def test_a_dotted_json_key_is_one_key_not_a_path():
    Event.objects.create(kind="dotted", data={"owner.name": "Ann"})
    Event.objects.create(kind="nested", data={"owner": {"name": "Ann"}})
    assert kinds(Event.objects.filter(**{"data__owner.name": "Ann"})) == ["dotted"]
    assert kinds(Event.objects.filter(data__owner__name="Ann")) == ["nested"]


def test_a_dollar_json_key_is_one_key_not_an_operator():
    Event.objects.create(kind="dollar", data={"$ne": 5, "$where": "1"})
    Event.objects.create(kind="other", data={"a": 5})
    assert kinds(Event.objects.filter(**{"data__$ne": 5})) == ["dollar"]
    assert kinds(Event.objects.filter(**{"data__$where": "1"})) == ["dollar"]
    assert kinds(Event.objects.filter(**{"data__$ne__isnull": True})) == ["other"]
    assert kinds(Event.objects.order_by("data__$ne", "kind")) == ["dollar", "other"]


def test_a_key_with_dots_inside_a_non_document_reads_as_null():
    Event.objects.create(kind="list", data=[1, 2])
    Event.objects.create(kind="scalar", data=5)
    Event.objects.create(kind="doc", data={"a.b": 1})
    assert kinds(Event.objects.filter(**{"data__a.b": 1})) == ["doc"]
    assert kinds(Event.objects.filter(**{"data__a.b__isnull": True})) == ["list", "scalar"]


def test_a_json_key_with_a_nul_character_cannot_be_stored():
    with pytest.raises(DataError):
        Event.objects.create(kind="nul", data={"a\x00b": 1})


def test_a_json_key_holding_percent_s_is_text_in_the_logged_query():
    from django.test.utils import CaptureQueriesContext

    Event.objects.create(kind="pct", data={"%s": 1, "50%%": 2})
    with CaptureQueriesContext(connection) as captured:
        assert kinds(Event.objects.filter(**{"data__%s": 1}).filter(kind="pct")) == ["pct"]
        assert kinds(Event.objects.filter(**{"data__50%%": 2})) == ["pct"]
    # The logged SQL has the parameters in place and the key as written.
    assert '"%s" = 1' in captured.captured_queries[0]["sql"]
    assert "\"50%%\" = 2" in captured.captured_queries[1]["sql"]


LOOKUPS = set(KeyTransform.get_lookups())


@settings(PROPERTY)
@given(key=KEYS, value=st.one_of(st.text(max_size=10), st.integers(-5, 5)))
@example(key='"x" IS NULL OR "x"', value=1)
@example(key="$gt", value="")
@example(key="a.b", value=1)
@example(key="", value=1)
@example(key=".", value=1)
@example(key="$", value=1)
@example(key="%s", value=1)
@example(key="other", value=1)
def test_any_json_key_round_trips_and_selects_only_its_rows(key, value):
    tag = uuid.uuid4().hex
    Event.objects.create(kind=tag, data={key: value, "other": value})
    Event.objects.create(kind=tag, data={"other": value})
    mine = Event.objects.filter(kind=tag)
    assert [e.data for e in mine.order_by("id")] == [{key: value, "other": value},
                                                       {"other": value}]
    matching = mine.filter(Exact(KeyTransform(key, "data"), value))
    expected = [{key: value, "other": value}] + ([{"other": value}] if key == "other" else [])
    assert [e.data for e in matching.order_by("id")] == expected
    assert mine.filter(Exact(KeyTransform(key, "data"), "no such value")).count() == 0
    # A key named as a lookup (`in`, `isnull`...) is that lookup in a keyword filter.
    if "__" not in key and key and key not in connection.operators and key not in LOOKUPS:
        assert mine.filter(**{f"data__{key}": value}).count() == len(expected)
    mine.delete()


# -- 1b. keys of Django's own JSONField (docs/jsonfield.md) ---------------------------

@settings(PROPERTY)
@given(key=KEYS, value=st.one_of(st.text(max_size=10), st.integers(-5, 5), st.none(),
                                 st.lists(st.integers(0, 3), max_size=2)))
@example(key='test") = \'"a"\' OR 1 = 1 OR ("d', value="x")
@example(key="$gt", value="")
@example(key="a.b", value=1)
@example(key="", value=1)
@example(key="%s", value=1)
@example(key="%%", value=None)
@example(key="0", value=1)
@example(key="-1", value=None)
@example(key=" 1", value="x")
@example(key="'", value=1)
@example(key="other", value=1)
def test_any_key_of_a_json_field_is_one_key(key, value):
    tag = uuid.uuid4().hex
    Record.objects.create(name=tag, value={key: value, "other": 1})
    Record.objects.create(name=tag, value={"other": 1})
    Record.objects.create(name=tag, value=[value])
    mine = Record.objects.filter(name=tag)
    assert [r.value for r in mine.order_by("id")] == [{key: value, "other": 1}, {"other": 1},
                                                      [value]]
    with_key = 1 + (key == "other")
    assert mine.filter(value__has_key=key).count() == with_key
    assert mine.filter(value__has_keys=[key, "other"]).count() == with_key
    assert mine.filter(value__has_any_keys=[key, "nope"]).count() == with_key
    assert mine.filter(**{"value__contains": {key: value}}).count() \
        == 1 + (key == "other" and value == 1)
    # A key transform of an integer is an array index (Django's JSON paths):
    # it reads the one-element array, not the object.
    try:
        index = int(key)
    except ValueError:
        index = None
    if index is None:
        found = 1 + (key == "other" and value == 1)
    else:
        found = int(index in (0, -1))
    exact = mine.filter(Exact(DjangoKeyTransform(key, "value"), Value(value, JSONField())))
    assert exact.count() == found
    texts = mine.annotate(t=KeyTextTransform(key, "value")).exclude(t=None)
    assert texts.count() == (0 if value is None else found)
    mine.delete()


@given(key=st.text(st.characters(blacklist_categories=("Cs",)), max_size=30))
@example(key='a") OR 1=1 --')
@example(key="' OR '1'='1")
@example(key="%s%%")
def test_a_key_in_a_json_path_compiles_to_one_literal_key(key):
    from django.db.models.fields.json import compile_json_path
    from djongo.json_lookups import path_literal

    try:
        int(key)
        return  # an integer is an array index (Django's JSON paths)
    except ValueError:
        pass
    # As the JSONField lookups write it: the key JSON-quoted in a SQL string
    # literal, its quotes and % doubled.
    sql = f'SELECT JSON_EXTRACT("t"."v", {path_literal(compile_json_path([key]))}) FROM "t"'
    plan = _core.compile_uncached(sql)
    assert plan["params"] == 0
    text = repr(plan["projection"])
    assert repr({"$literal": key}) in text
    assert text.count("$getField") == 2


# -- 2. and 3. dict keys and values of EmbeddedField lookups ------------------------

@pytest.fixture
def entries():
    Entry.objects.create(blog={"name": "Beatles Blog", "tagline": "All the latest"}, headline="a")
    Entry.objects.create(blog={"name": "Pop Blog", "tagline": "Pop"}, headline="b")


def test_a_dict_key_holding_sql_is_one_key(entries):
    assert Entry.objects.filter(blog={'"name" IS NOT NULL OR "name"': "z"}).count() == 0
    assert Entry.objects.filter(blog={"name": "Pop Blog"}).count() == 1


def test_a_nested_dict_is_a_value_never_an_operator_or_a_path(entries):
    assert Entry.objects.filter(blog={"name": {"$ne": None}}).count() == 0
    assert Entry.objects.filter(blog={"name": {"$gt": ""}}).count() == 0
    assert Entry.objects.filter(blog={"name.first": "Beatles Blog"}).count() == 0
    assert Entry.objects.filter(blog__startswith={"name": "Beatles"}).count() == 1


def test_a_dict_value_none_means_is_null(entries):
    Entry.objects.create(blog={"name": None, "tagline": "t"}, headline="c")
    assert list(Entry.objects.filter(blog={"name": None}).values_list("headline", flat=True)) \
        == ["c"]
    with pytest.raises(ValueError):
        list(Entry.objects.filter(blog__gt={"name": None}))


@settings(PROPERTY)
@given(key=KEYS, value=st.one_of(st.text(max_size=10), st.integers(-2**63, 2**63 - 1), st.none(),
                                 st.dictionaries(KEYS, st.text(max_size=5), max_size=2)))
def test_any_dict_key_and_value_select_only_matching_entries(key, value):
    tag = uuid.uuid4().hex
    stored = [{"name": "Beatles Blog", "tagline": tag}, {"name": None, "tagline": tag}]
    for blog in stored:
        Entry.objects.create(blog=blog, headline=tag)
    found = Entry.objects.filter(headline=tag, blog={key: value}).count()
    # SQL reads a missing key as NULL: `{key: None}` matches it too.
    expected = sum(1 for blog in stored if blog.get(key) == value)
    assert found == expected
    Entry.objects.filter(headline=tag).delete()


@settings(PROPERTY)
@given(value=st.text(st.characters(blacklist_categories=("Cs",)), max_size=30))
def test_any_text_value_round_trips_and_selects_only_its_row(value):
    tag = uuid.uuid4().hex
    Event.objects.create(kind=tag, data={"v": value})
    Entry.objects.create(blog={"name": value, "tagline": ""}, headline=value, body_text=tag)
    assert Event.objects.get(kind=tag).data == {"v": value}
    assert list(Entry.objects.filter(body_text=tag).values_list("headline", flat=True)) == [value]
    assert Entry.objects.filter(body_text=tag, headline=value).count() == 1
    assert Entry.objects.filter(body_text=tag, blog={"name": value}).count() == 1
    assert Event.objects.filter(kind=tag, data__v=value).count() == 1
    Event.objects.filter(kind=tag).delete()
    Entry.objects.filter(body_text=tag).delete()


# -- quote_name and the compiler's identifiers -------------------------------------

@given(name=st.one_of(st.text(max_size=30), st.text(alphabet='"ab.', max_size=12)))
@example(name='"x" IS NULL OR "x"')
@example(name='"a"."b"')
@example(name='"a"" OR ""b"')
def test_quote_name_never_lets_a_name_leave_its_quotes(name):
    quoted = DatabaseOperations(connection).quote_name(name)
    plan = _core.compile_uncached(f'SELECT "t".{quoted} FROM "t"')
    assert plan["params"] == 0
    if quoted != name:
        # Quoted here: exactly one name, the one given.
        assert plan["columns"] == [name]
    else:
        # Kept as it came: already quoted names, each one's quotes doubled.
        parts = re.findall(r'"((?:[^"]|"")*)"', name)
        assert '".'.join(f'"{p}' for p in parts) + '"' == name
        assert plan["columns"] == [parts[-1].replace('""', '"')]


@given(name=st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)),
                    max_size=30))
def test_quote_identifier_is_one_key_in_where_and_order_by(name):
    key = quote_identifier(name)
    plan = _core.compile_uncached(
        f'SELECT "t"."id" FROM "t" WHERE "t"."data".{key} = %s ORDER BY "t"."data".{key}')
    assert plan["params"] == 1
    text = repr(plan)
    if plan["op"] == "find" and plan["filter"]:
        assert list(plan["filter"]) == [f"data.{name}"]
    else:
        assert "$getField" in text


# -- 4. NULL compares as UNKNOWN -----------------------------------------------------

@pytest.fixture
def scored():
    Entry.objects.create(blog={"name": "x", "tagline": ""}, headline="one", rating=1.0)
    Entry.objects.create(blog={"name": "x", "tagline": ""}, headline="none", rating=None)
    Entry.objects.create(blog={"name": "x", "tagline": ""}, headline="two", rating=2.0)


T = '"blogapp_entry"'


@pytest.mark.parametrize("condition, params, expected", [
    (f"{T}.\"rating\" = %s", [None], []),
    (f"{T}.\"rating\" <> %s", [None], []),
    (f"{T}.\"rating\" < %s", [None], []),
    (f"{T}.\"rating\" >= %s", [None], []),
    (f"{T}.\"rating\" IN (%s)", [None], []),
    (f"{T}.\"rating\" IN (%s, %s)", [None, 1.0], ["one"]),
    (f"{T}.\"rating\" NOT IN (%s, %s)", [None, 1.0], []),
    (f"{T}.\"rating\" BETWEEN %s AND %s", [None, 5.0], []),
    (f"{T}.\"rating\" NOT BETWEEN %s AND %s", [None, 1.5], ["two"]),
    (f"{T}.\"headline\" LIKE %s", [None], []),
    (f"{T}.\"headline\" NOT LIKE %s", [None], []),
    (f"NOT ({T}.\"rating\" = %s)", [None], []),
    (f"({T}.\"rating\" = %s OR {T}.\"rating\" IS NULL)", [None], ["none"]),
    (f"{T}.\"rating\" = %s", [1.0], ["one"]),
    (f"{T}.\"rating\" <> %s", [1.0], ["two"]),
    # Computed sides compare in $expr, with the same answers.
    (f"({T}.\"rating\" + 0) = %s", [None], []),
    (f"({T}.\"rating\" + 0) <> %s", [None], []),
    (f"UPPER({T}.\"headline\") NOT IN (%s, %s)", [None, "ONE"], []),
    (f"UPPER({T}.\"headline\") LIKE %s", [None], []),
    (f"{T}.\"rating\" = (SELECT U0.\"rating\" FROM {T} U0 WHERE U0.\"headline\" = 'none')", [],
     []),
    (f"{T}.\"rating\" IN (SELECT U0.\"rating\" FROM {T} U0)", [], ["one", "two"]),
    (f"{T}.\"rating\" NOT IN (SELECT U0.\"rating\" FROM {T} U0 WHERE U0.\"headline\" <> 'one')",
     [], []),
    # A row value with a NULL is in no set; the others compare value by value.
    (f"({T}.\"headline\", {T}.\"rating\") IN (SELECT U0.\"headline\", U0.\"rating\" FROM {T} U0)",
     [], ["one", "two"]),
    (f"({T}.\"headline\", {T}.\"rating\") IN (SELECT U0.\"headline\", U0.\"rating\" + 1 "
     f"FROM {T} U0)", [], []),
    (f"({T}.\"headline\", {T}.\"rating\") IN (SELECT %s, 2)", ["two"], ["two"]),
])
def test_null_compares_as_unknown(scored, condition, params, expected):
    sql = f'SELECT {T}."headline" FROM {T} WHERE {condition} ORDER BY 1'
    assert [r[0] for r in rows(sql, params)] == expected


def test_null_in_a_case_condition_is_not_true(scored):
    sql = (f'SELECT {T}."headline", CASE WHEN {T}."rating" = %s THEN 1 ELSE 0 END '
           f'FROM {T} ORDER BY 1')
    assert rows(sql, [None]) == [("none", 0), ("one", 0), ("two", 0)]


def test_the_orm_still_means_is_null_by_none(scored):
    assert list(Entry.objects.filter(rating=None).values_list("headline", flat=True)) == ["none"]
    assert sorted(Entry.objects.exclude(rating=None).values_list("headline", flat=True)) \
        == ["one", "two"]


# -- 5. no input crashes the process --------------------------------------------------

def test_a_long_union_chain_compiles():
    plan = _core.compile_uncached(" UNION ".join(["SELECT 1"] * 450))
    assert plan["op"] == "aggregate"


def test_the_orm_unions_five_hundred_querysets():
    Event.objects.create(kind="u", data={})
    qs = Event.objects.filter(kind="u").values_list("kind", flat=True)
    assert list(qs.union(*[qs] * 500)) == ["u"]
    assert len(list(qs.union(*[qs] * 500, all=True))) == 501


@pytest.mark.parametrize("sql, error, text", [
    (" UNION ".join(["SELECT 1"] * 5000), NotSupportedError, "UNION"),
    ("SELECT " + "(" * 5000 + "1" + ")" * 5000, NotSupportedError, "levels deep"),
    ("SELECT " + "(" * 100 + "1" + ")" * 100, ProgrammingError, "nesting is too deep"),
    ('SELECT "t"."a" FROM "t" WHERE ' + " OR ".join(['"t"."a" = 1'] * 50000), NotSupportedError,
     "levels deep"),
    ("SELECT " + " + ".join(["1"] * 100000), NotSupportedError, "levels deep"),
    ("SELECT 1 WHERE " + "NOT " * 12000 + "TRUE", NotSupportedError, "levels deep"),
])
def test_deep_or_long_statements_get_an_error_naming_the_limit(sql, error, text):
    with pytest.raises(error, match=text), connection.cursor() as cursor:
        cursor.execute(sql)


def test_a_huge_in_list_gets_a_result():
    Event.objects.create(kind="in", data={})
    assert Event.objects.filter(pk__in=range(-50000, 0)).count() == 0
    assert Event.objects.filter(kind__in=["in", *map(str, range(20000))]).count() == 1


def test_the_compiler_is_safe_on_a_thread_with_a_small_stack():
    statements = [
        " UNION ".join(["SELECT 1"] * 800),
        'SELECT "t"."a" FROM "t" WHERE ' + " OR ".join(['"t"."a" = %s'] * 4000),
        "SELECT " + "(" * 60 + "1" + ")" * 60,
        "SELECT " + " + ".join(["1"] * 9000),
        "SELECT " + "(" * 5000 + "1" + ")" * 5000,
    ]
    outcomes: list[str] = []

    def run():
        for sql in statements:
            try:
                _core.compile_uncached(sql)
                outcomes.append("ok")
            except _core.CompileError:
                outcomes.append("error")

    previous = threading.stack_size(256 * 1024)
    try:
        thread = threading.Thread(target=run)
        thread.start()
        thread.join()
    finally:
        threading.stack_size(previous)
    assert outcomes == ["ok", "ok", "ok", "error", "error"]


# -- 6. every failure is a DatabaseError --------------------------------------------

def test_a_17_mb_update_is_a_data_error():
    event = Event.objects.create(kind="big", data={})
    with pytest.raises(DataError):
        Event.objects.filter(pk=event.pk).update(data={"blob": "x" * (17 * 1024 * 1024)})


def test_a_17_mb_insert_is_a_data_error():
    with pytest.raises(DataError):
        Event.objects.create(kind="big", data={"blob": "x" * (17 * 1024 * 1024)})


def test_lone_surrogates_are_data_errors():
    with pytest.raises(DataError):
        rows("SELECT '\ud800'")
    with pytest.raises(DataError):
        rows(f'SELECT {T}."id" FROM {T} WHERE {T}."headline" = %s', ["\udfff"])
    with pytest.raises(DataError):
        Event.objects.create(kind="\ud800", data={})


def test_sql_that_is_not_text_is_a_programming_error():
    with pytest.raises(ProgrammingError, match="str"):
        rows(b"SELECT 1")


def test_out_of_range_and_too_deep_values_are_data_errors():
    with pytest.raises(DataError):
        Event.objects.create(kind="int", data={"n": 2**70})
    deep: dict = {}
    for _ in range(500):
        deep = {"a": deep}
    with pytest.raises(DataError, match="100 levels"):
        Event.objects.create(kind="deep", data=deep)


def test_every_failure_is_a_database_error():
    statements = [("SELECT", ()), ("SELECT 1; SELECT 2", ()), ("SELECT %s", ()),
                  ("SELECT 1 LIMIT %s", ["x"]), (f"SELECT {T}.\"id\" FROM {T} WHERE ", ())]
    for sql, params in statements:
        with pytest.raises(DatabaseError):
            rows(sql, params)


# -- 7. odd SQL gets PostgreSQL's answers -------------------------------------------

def test_negative_limit_and_offset_are_data_errors(scored):
    with pytest.raises(DataError, match="LIMIT must not be negative"):
        rows(f'SELECT {T}."id" FROM {T} LIMIT -1')
    with pytest.raises(DataError, match="OFFSET must not be negative"):
        rows(f'SELECT {T}."id" FROM {T} LIMIT 1 OFFSET -2')
    with pytest.raises(DataError, match="LIMIT must not be negative"):
        rows(f'SELECT {T}."id" FROM {T} LIMIT %s', [-1])
    with pytest.raises(DataError, match="LIMIT must not be negative"):
        rows(f'SELECT DISTINCT {T}."id" FROM {T} LIMIT %s', [-1])
    assert rows(f'SELECT {T}."id" FROM {T} LIMIT %s', [0]) == []
    assert rows(f'SELECT DISTINCT {T}."id" FROM {T} LIMIT 0') == []


def test_positions_out_of_range_are_programming_errors(scored):
    with pytest.raises(ProgrammingError, match="ORDER BY position 1000 is not in select list"):
        rows(f'SELECT {T}."id" FROM {T} ORDER BY 1000')
    with pytest.raises(ProgrammingError, match="ORDER BY position 0"):
        rows(f'SELECT {T}."id" FROM {T} ORDER BY 0')
    with pytest.raises(ProgrammingError, match="GROUP BY position 2"):
        rows(f'SELECT {T}."id" FROM {T} GROUP BY 2')
    with pytest.raises(ProgrammingError, match="ORDER BY position 3"):
        rows(f'SELECT {T}."id" FROM {T} UNION SELECT {T}."id" FROM {T} ORDER BY 3')
    assert len(rows(f'SELECT {T}."headline" FROM {T} ORDER BY 1')) == 3
