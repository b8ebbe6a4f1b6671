"""Django's own models.JSONField on djongo: native BSON in, SQL's answers out.

Values are stored as BSON documents, arrays, strings and numbers (queryable
by any MongoDB tool), JSON null is told apart from SQL NULL, and every
lookup and transform Django has answers as it does on SQLite/PostgreSQL.
"""

from __future__ import annotations

import datetime
import decimal
import uuid

import pytest
from bson.min_key import MinKey
from django.db import DataError, NotSupportedError, connection
from django.db.models import Count, F, JSONField, OuterRef, Subquery, Value
from django.db.models.fields.json import KT, KeyTextTransform, KeyTransform
from django.db.models.functions import Cast, JSONObject

from tests.fieldsapp.models import Record

pytestmark = pytest.mark.django_db

VALUES = {
    "sql_null": None,
    "empty_list": [],
    "empty_doc": {},
    "small": {"a": "b", "c": 14},
    "big": {
        "a": "b", "c": 14, "d": ["e", {"f": "g"}], "h": True, "i": False, "j": None,
        "k": {"l": "m"}, "n": [None, True, False], "o": '"quoted"', "p": 4.2,
    },
    "list": [1, [2]],
    "flags": {"k": True, "l": False, "foo": "bax"},
    "nested": {"foo": "bar", "baz": {"a": "b", "c": "d"}, "bar": ["foo", "bar"],
               "bax": {"foo": "bar"}},
    "text": "yes",
    "number": 7,
}


@pytest.fixture
def records():
    return {name: Record.objects.create(name=name, value=value) for name, value in VALUES.items()}


def names(queryset) -> list[str]:
    return sorted(queryset.values_list("name", flat=True))


def stored(mongo_db, name: str):
    return mongo_db["fieldsapp_record"].find_one({"name": name})["value"]


def test_values_are_stored_as_native_bson(records, mongo_db):
    assert stored(mongo_db, "nested")["baz"] == {"a": "b", "c": "d"}
    assert stored(mongo_db, "list") == [1, [2]]
    assert stored(mongo_db, "text") == "yes"
    assert stored(mongo_db, "number") == 7
    assert stored(mongo_db, "big")["j"] is None
    # Another MongoDB client queries inside it.
    assert mongo_db["fieldsapp_record"].find_one({"value.baz.c": "d"})["name"] == "nested"


def test_values_round_trip(records):
    for name, value in VALUES.items():
        assert Record.objects.get(name=name).value == value


def test_json_null_is_not_sql_null(mongo_db):
    json_null = Record.objects.create(name="json", value=Value(None, JSONField()))
    Record.objects.create(name="sql", value=None)
    assert stored(mongo_db, "json") == MinKey()
    assert stored(mongo_db, "sql") is None
    assert names(Record.objects.filter(value=None)) == ["json"]
    assert names(Record.objects.filter(value=Value(None, JSONField()))) == ["json"]
    assert names(Record.objects.filter(value__isnull=True)) == ["sql"]
    assert names(Record.objects.filter(value__isnull=False)) == ["json"]
    json_null.refresh_from_db()
    assert json_null.value is None
    Record.objects.filter(name="sql").update(value=Value(None, JSONField()))
    assert names(Record.objects.filter(value=None)) == ["json", "sql"]


def test_exact_compares_whole_values(records):
    assert names(Record.objects.filter(value={})) == ["empty_doc"]
    assert names(Record.objects.filter(value=[])) == ["empty_list"]
    assert names(Record.objects.filter(value={"a": "b", "c": 14})) == ["small"]
    # An array holding the value is not the value (MongoDB's own {$eq} would match it).
    assert names(Record.objects.filter(value=1)) == []
    assert names(Record.objects.filter(value="yes")) == ["text"]


def test_key_and_index_transforms_at_any_depth(records):
    assert names(Record.objects.filter(value__a="b")) == ["big", "small"]
    assert names(Record.objects.filter(value__k__l="m")) == ["big"]
    assert names(Record.objects.filter(value__d__1__f="g")) == ["big"]
    assert names(Record.objects.filter(value__1__0=2)) == ["list"]
    assert names(Record.objects.filter(value__0=1)) == ["list"]
    assert names(Record.objects.filter(value__d__0="e")) == ["big"]
    assert names(Record.objects.filter(value__k={"l": "m"})) == ["big"]
    assert names(Record.objects.filter(value__c__gt=2)) == ["big", "small"]
    assert names(Record.objects.filter(value__c__in=[14, 15])) == ["big", "small"]
    assert names(Record.objects.filter(value__bar__in=[["foo", "bar"]])) == ["nested"]
    # An array element does not match a key, nor a scalar an array holding it.
    assert names(Record.objects.filter(value__bar="foo")) == []


def test_a_key_holding_null_is_not_a_missing_key(records):
    assert names(Record.objects.filter(value__j=None)) == ["big"]
    assert names(Record.objects.filter(value__j__isnull=False)) == ["big"]
    assert "big" not in names(Record.objects.filter(value__j__isnull=True))
    assert names(Record.objects.exclude(value__j=None)) == []
    assert Record.objects.get(name="big").value["j"] is None
    assert Record.objects.filter(name="big").values_list("value__j", flat=True).get() is None


def test_has_key_has_keys_has_any_keys(records):
    assert names(Record.objects.filter(value__has_key="a")) == ["big", "small"]
    assert names(Record.objects.filter(value__has_key="j")) == ["big"]
    assert names(Record.objects.filter(value__has_keys=["a", "c", "h"])) == ["big"]
    assert names(Record.objects.filter(value__has_any_keys=["c", "l"])) == ["big", "flags", "small"]
    assert names(Record.objects.filter(value__baz__has_key="c")) == ["nested"]
    assert names(Record.objects.filter(value__d__1__has_key="f")) == ["big"]
    assert names(Record.objects.filter(value__has_key=F("value__baz__a"))) == ["nested"]


def test_key_text_transform_and_text_lookups(records):
    assert names(Record.objects.filter(value__foo__icontains="AR")) == ["nested"]
    assert names(Record.objects.filter(value__foo__istartswith="B")) == ["flags", "nested"]
    assert names(Record.objects.filter(value__foo__regex=r"^ba[rx]$")) == ["flags", "nested"]
    assert names(Record.objects.annotate(t=KT("value__bax__foo")).filter(t="bar")) == ["nested"]
    assert names(Record.objects.filter(value__o='"quoted"')) == ["big"]
    texts = Record.objects.filter(name="big").annotate(t=KeyTextTransform("a", "value"))
    assert texts.values_list("t", flat=True).get() == "b"


def test_contains_and_contained_by(records):
    def contains(value):
        return names(Record.objects.filter(value__contains=value))

    assert contains({}) == ["big", "empty_doc", "flags", "nested", "small"]
    assert contains({"baz": {"a": "b"}}) == ["nested"]
    assert contains({"d": [{"f": "g"}]}) == ["big"]
    assert contains({"d": ["e"]}) == ["big"]
    assert contains({"n": [None, True]}) == ["big"]
    assert contains({"j": None}) == ["big"]
    assert contains([1]) == ["list"]
    assert contains([[2]]) == ["list"]
    assert contains(1) == ["list"]
    assert contains("yes") == ["text"]
    assert names(Record.objects.filter(value__bar__contains="bar")) == ["nested"]
    assert names(Record.objects.filter(value__contained_by={"a": "b", "c": 14, "h": True})) \
        == ["empty_doc", "small"]
    assert names(Record.objects.filter(value__baz__contained_by={"a": "b", "c": "d", "e": 1})) \
        == ["nested"]
    assert names(Record.objects.filter(value__contained_by=[1, [2, 3], 4])) \
        == ["empty_list", "list"]


def test_a_pattern_lookup_on_the_whole_value_says_it_is_unsupported(records):
    with pytest.raises(NotSupportedError, match="on a key"):
        list(Record.objects.filter(value__icontains="bax"))


def test_order_group_annotate_and_values_by_keys():
    for name, ord_ in [("a", 93), ("b", 22.1), ("c", -1), ("d", 21.9)]:
        Record.objects.create(name=name, value={"ord": ord_, "group": name in "ab"})
    ordered = Record.objects.order_by("value__ord").values_list("name", flat=True)
    assert list(ordered) == ["c", "d", "b", "a"]
    grouped = (Record.objects.values("value__group").annotate(n=Count("id"))
               .order_by("value__group"))
    assert [(g["value__group"], g["n"]) for g in grouped] == [(False, 2), (True, 2)]
    annotated = Record.objects.annotate(o=KeyTransform("ord", "value")).filter(o__lt=22)
    assert names(annotated) == ["c", "d"]
    assert sorted(Record.objects.values_list("value__ord", flat=True)) == [-1, 21.9, 22.1, 93]


def test_key_transforms_of_expressions_and_subqueries(records):
    casted = Record.objects.filter(name="big").annotate(
        key=KeyTransform("d", "value"), first=KeyTransform("0", Cast("key", JSONField())))
    assert casted.values_list("first", flat=True).get() == "e"
    sub = Record.objects.annotate(
        v=Subquery(Record.objects.filter(pk=OuterRef("pk")).values("value")),
    ).filter(v__a="b")
    assert names(sub) == ["big", "small"]


def test_json_text_parameters_are_read_as_json():
    from django.db.models.expressions import RawSQL

    Record.objects.create(name="bar", value={"foo": "bar"})
    raw = RawSQL("%s", ['{"x": {"y": "bar"}}'])
    assert names(Record.objects.filter(value__foo=KeyTransform("y", KeyTransform("x", raw)))) \
        == ["bar"]
    with pytest.raises(DataError, match="not valid JSON"):
        list(Record.objects.filter(value__foo=KeyTransform("x", RawSQL("%s", ["{nope"]))))


def test_json_object_builds_a_document(records):
    built = Record.objects.filter(name="small").annotate(
        obj=JSONObject(name="name", c=KeyTransform("c", "value"), nested=JSONObject(x=Value(1))),
    ).values_list("obj", flat=True).get()
    assert built == {"name": "small", "c": 14, "nested": {"x": 1}}


def test_bulk_update_of_json_values(records):
    objs = list(Record.objects.filter(name__in=["small", "list", "text"]).order_by("name"))
    objs[0].value, objs[1].value, objs[2].value = {"x": [1]}, None, {"n": None}
    Record.objects.bulk_update(objs, ["value"])
    assert Record.objects.get(name="list").value == {"x": [1]}
    assert names(Record.objects.filter(value__isnull=True)) == ["small", "sql_null"]
    assert names(Record.objects.filter(value__n=None)) == ["text"]


def test_the_encoder_decides_what_is_stored():
    when = datetime.datetime(2020, 1, 2, 3, 4, 5)
    tag = uuid.uuid4()
    record = Record.objects.create(name="enc", extra={"when": when, "d": decimal.Decimal("1.5"),
                                                      "id": tag})
    record.refresh_from_db()
    assert record.extra == {"when": "2020-01-02T03:04:05", "d": "1.5", "id": str(tag)}
    assert names(Record.objects.filter(extra__id=str(tag))) == ["enc"]


def test_an_encoder_producing_invalid_json_is_a_data_error():
    from unittest import mock

    from django.core.serializers.json import DjangoJSONEncoder

    with mock.patch.object(DjangoJSONEncoder, "encode", return_value="{not json"), \
            pytest.raises(DataError):
        Record.objects.create(name="bad", extra={"a": 1})


def test_introspection_reports_a_json_field():
    with connection.cursor() as cursor:
        description = connection.introspection.get_table_description(cursor, "fieldsapp_record")
    types = {c.name: connection.introspection.get_field_type(c.type_code, c) for c in description}
    assert types["value"] == "JSONField"


def test_contains_of_deep_values_grows_linearly_and_has_a_limit():
    deep: object = 1
    for _ in range(16):
        deep = {"a": [deep]}  # 32 levels of documents and arrays
    Record.objects.create(name="deep", value={"a": [{"a": [2]}]})
    assert names(Record.objects.filter(value__contains={"a": [{"a": [2]}]})) == ["deep"]
    wide = {"a": [{"a": [2]}], **{f"k{i}": i for i in range(200)}}
    assert names(Record.objects.filter(value__contained_by=wide)) == ["deep"]
    with pytest.raises(NotSupportedError, match="nested more than 16"):
        list(Record.objects.filter(value__contains=deep))
