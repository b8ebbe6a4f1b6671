"""Geospatial: PointField, TwoDSphereIndex, the geo lookups and Distance,
through the ORM and migrations, with the MongoDB manual's example places."""

from __future__ import annotations

import pytest
from django import forms
from django.core.exceptions import ValidationError
from django.db import DatabaseError, connection, migrations
from django.db.migrations.state import ProjectState
from djongo.models import Distance, GeoPoint, TwoDSphereIndex

from tests.fieldsapp.models import Place

# The manual's $geoNear / $near example collection (coordinates in New York).
CENTRAL_PARK = (-73.97, 40.77)
ROOSEVELT_PARK = (-73.9928, 40.7193)
POLO_GROUNDS = (-73.9375, 40.8303)


@pytest.fixture
def places(db):
    Place.objects.bulk_create([
        Place(name="Central Park", category="Parks", location=CENTRAL_PARK),
        Place(name="Sara D. Roosevelt Park", category="Parks", location=ROOSEVELT_PARK),
        Place(name="Polo Grounds", category="Stadiums", location=POLO_GROUNDS),
        Place(name="Nowhere"),
    ])


def _indexes(collection: str) -> dict[str, dict]:
    connection.ensure_connection()
    return {i["name"]: dict(i) for i in connection.mongo_database[collection].list_indexes()}


def names(queryset) -> list[str]:
    return [p.name for p in queryset]


@pytest.mark.django_db
def test_the_model_index_is_a_2dsphere_index_and_introspected_as_one():
    made = _indexes("fieldsapp_place")["place_location_geo"]
    assert made["key"] == {"location": "2dsphere"}
    assert made["2dsphereIndexVersion"] == 3
    with connection.cursor() as cursor:
        found = connection.introspection.get_constraints(cursor, "fieldsapp_place")
    assert found["place_location_geo"]["columns"] == ["location"]
    assert found["place_location_geo"]["type"] == TwoDSphereIndex.suffix == "2dsphere"


@pytest.mark.django_db(transaction=True)
def test_migrations_remove_and_add_a_2dsphere_index():
    index = TwoDSphereIndex(fields=["location"], name="place_location_geo")
    path, args, kwargs = index.deconstruct()
    assert path == "djongo.models.TwoDSphereIndex"
    assert kwargs == {"fields": ["location"], "name": "place_location_geo"}
    assert TwoDSphereIndex(**kwargs) == index
    state = ProjectState.from_apps(Place._meta.apps)
    operation = migrations.RemoveIndex("place", "place_location_geo")
    new_state = state.clone()
    operation.state_forwards("fieldsapp", new_state)
    with connection.schema_editor() as editor:
        operation.database_forwards("fieldsapp", editor, state, new_state)
    assert "place_location_geo" not in _indexes("fieldsapp_place")
    with connection.schema_editor() as editor:
        operation.database_backwards("fieldsapp", editor, new_state, state)
    made = _indexes("fieldsapp_place")["place_location_geo"]
    assert made["key"] == {"location": "2dsphere"}


@pytest.mark.django_db(transaction=True)
def test_the_index_sql_names_its_kind_with_and_the_older_using_is_still_read():
    # The one spelling djongo writes: WITH (kind = '2dsphere'), as for the
    # other kinds (docs/plan-format.md).
    index = TwoDSphereIndex(fields=["location"], name="place_loc_sql")
    with connection.schema_editor(collect_sql=True) as editor:
        sql = str(index.create_sql(Place, editor))
    assert sql == ('CREATE INDEX "place_loc_sql" ON "fieldsapp_place" ("location") '
                   'WITH ("kind" = \'2dsphere\')')
    # A migration's RunSQL written with the spelling djongo used before.
    with connection.cursor() as cursor:
        cursor.execute('CREATE INDEX "legacy_loc" ON "geo_legacy_sql" USING "2dsphere" ("loc")')
    try:
        assert _indexes("geo_legacy_sql")["legacy_loc"]["key"] == {"loc": "2dsphere"}
    finally:
        connection.mongo_database.drop_collection("geo_legacy_sql")


def test_a_2dsphere_index_takes_plain_fields():
    with pytest.raises(ValueError, match="plain field names"):
        TwoDSphereIndex(fields=["-location"], name="x")


@pytest.mark.django_db
def test_points_round_trip_as_geojson(mongo_db):
    eiffel = {"type": "Point", "coordinates": [2.2945, 48.8584]}
    place = Place.objects.create(name="Eiffel Tower", location=eiffel)
    place.refresh_from_db()
    assert place.location == GeoPoint(2.2945, 48.8584) == (2.2945, 48.8584)
    stored = mongo_db["fieldsapp_place"].find_one({"name": "Eiffel Tower"})
    assert stored["location"] == {"type": "Point", "coordinates": [2.2945, 48.8584]}


@pytest.mark.django_db
def test_near_selects_within_meters(places):
    # Sara D. Roosevelt Park is ~5.9 km from Central Park and ~12.8 km from the Polo Grounds.
    within_7km = Place.objects.filter(location__near=(ROOSEVELT_PARK, 7000)).order_by("name")
    assert names(within_7km) == ["Central Park", "Sara D. Roosevelt Park"]
    assert Place.objects.filter(location__near=(ROOSEVELT_PARK, 7000)).count() == 2
    within_100m = Place.objects.filter(location__near=(ROOSEVELT_PARK, 100))
    assert names(within_100m) == ["Sara D. Roosevelt Park"]
    # exclude() keeps the rows without a location, as Django does on every database.
    assert names(Place.objects.exclude(location__near=(ROOSEVELT_PARK, 100)).order_by("name")) == [
        "Central Park", "Nowhere", "Polo Grounds"]


@pytest.mark.django_db
def test_geo_within_a_polygon_a_vertex_list_or_a_circle(places):
    manhattan_box = [(-74.0, 40.7), (-73.95, 40.7), (-73.95, 40.8), (-74.0, 40.8)]
    expected = ["Central Park", "Sara D. Roosevelt Park"]
    within = Place.objects.filter(location__geo_within=manhattan_box).order_by("name")
    assert names(within) == expected
    ring = [list(p) for p in manhattan_box] + [list(manhattan_box[0])]
    polygon = {"type": "Polygon", "coordinates": [ring]}
    assert names(Place.objects.filter(location__geo_within=polygon).order_by("name")) == expected
    in_circle = Place.objects.filter(location__geo_within=(CENTRAL_PARK, 1000))
    assert names(in_circle) == ["Central Park"]


@pytest.mark.django_db
def test_geo_intersects(places):
    broadway = {"type": "LineString", "coordinates": [[-73.9928, 40.7193], [-73.97, 40.77]]}
    assert names(Place.objects.filter(location__geo_intersects=broadway).order_by("name")) == [
        "Central Park", "Sara D. Roosevelt Park"]


@pytest.mark.django_db
def test_ordering_by_distance(places):
    nearest = Place.objects.exclude(location=None).annotate(
        d=Distance("location", ROOSEVELT_PARK)).order_by("d")
    assert names(nearest) == ["Sara D. Roosevelt Park", "Central Park", "Polo Grounds"]
    meters = [round(p.d) for p in nearest]
    assert meters[0] < 5 and 5_500 < meters[1] < 6_500 and 12_000 < meters[2] < 13_500
    located = Place.objects.filter(location__isnull=False)
    assert names(located.order_by(Distance("location", POLO_GROUNDS))[:1]) == ["Polo Grounds"]
    # A place without a location is at no distance at all (NULL).
    nowhere = Place.objects.annotate(d=Distance("location", ROOSEVELT_PARK)).get(name="Nowhere")
    assert nowhere.d is None


@pytest.mark.django_db
def test_shapes_are_data_not_operators(places):
    # A dict with operators where a shape goes is a (bad) shape, refused by the database.
    with pytest.raises(DatabaseError):
        shape = {"type": "Polygon", "coordinates": {"$gt": ""}}
        list(Place.objects.filter(location__geo_within=shape))
    with pytest.raises(DatabaseError):
        list(Place.objects.filter(location__geo_intersects={"type": "Nope", "$where": "1"}))


def test_bad_lookup_values_are_refused_when_the_query_is_built():
    with pytest.raises(ValueError, match="near takes"):
        Place.objects.filter(location__near=ROOSEVELT_PARK)
    with pytest.raises(ValueError, match="Invalid point"):
        Place.objects.filter(location__near=((200, 0), 10))
    with pytest.raises(ValueError, match="meters"):
        Place.objects.filter(location__near=(ROOSEVELT_PARK, -1))
    with pytest.raises(ValueError, match="Invalid point"):
        Distance("location", (0, 95))


def test_form_validation_of_coordinates():
    form_class = forms.modelform_factory(Place, fields=["name", "location"])
    form = form_class({"name": "x", "location": "200, 10"})
    assert not form.is_valid()
    assert "location" in form.errors
    form = form_class({"name": "x", "location": "two, three"})
    assert not form.is_valid()
    form = form_class({"name": "x", "location": "2.35, 48.85"})
    assert form.is_valid(), form.errors
    assert form.cleaned_data["location"] == (2.35, 48.85)
    with pytest.raises(ValidationError):
        Place(name="x", location=(0, 91)).full_clean()


@pytest.mark.django_db
def test_the_database_refuses_invalid_geojson_in_an_indexed_field(mongo_db):
    collection = mongo_db["fieldsapp_place"]
    from pymongo.errors import WriteError
    with pytest.raises(WriteError) as caught:
        bad = {"type": "Point", "coordinates": [181, 0]}
        collection.insert_one({"name": "bad", "location": bad})
    assert caught.value.code == 16755


@pytest.mark.django_db
def test_near_and_geo_near_through_pymongo(places, mongo_db):
    collection = mongo_db["fieldsapp_place"]
    point = {"type": "Point", "coordinates": list(ROOSEVELT_PARK)}
    found = collection.find({"location": {"$near": {"$geometry": point, "$maxDistance": 7000}}})
    assert [d["name"] for d in found] == ["Sara D. Roosevelt Park", "Central Park"]
    rows = list(collection.aggregate([
        {"$geoNear": {"near": point, "distanceField": "dist", "query": {"category": "Parks"}}},
    ]))
    assert [r["name"] for r in rows] == ["Sara D. Roosevelt Park", "Central Park"]
    assert rows[0]["dist"] < 1 < rows[1]["dist"]


@pytest.mark.django_db
def test_the_readme_example_runs(places):
    """README's PointField example, as printed: its model is this test app's
    Place, and each query line runs against it."""
    from pathlib import Path

    from djongo import models

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("**Places: `PointField`", 1)[1]
    block = section.split("```python\n", 1)[1].split("```", 1)[0]
    model_source, _, rest = block.partition("\n\nPlace.")
    statements = "Place." + rest
    assert 'location = models.PointField(null=True, blank=True)' in model_source
    assert 'models.TwoDSphereIndex(fields=["location"], name="place_location_geo")' in model_source
    results = []
    for line in statements.strip().splitlines():
        code = line.split("  #", 1)[0].strip()
        result = eval(code, {"models": models, "Place": Place})  # noqa: S307 - the README's own text
        results.append(list(result) if hasattr(result, "query") else result)
    near, within_box, within_circle, crossing, by_distance = (names(r) for r in results[1:])
    assert set(near) == {"Central Park", "Sara D. Roosevelt Park"}
    assert set(within_box) == {"Central Park", "Sara D. Roosevelt Park"}
    assert set(within_circle) == {"Central Park"}
    assert set(crossing) == {"Central Park"}  # the line ends on it; it misses the other park
    # NULLs sort first, as Django expects of an ascending order on djongo.
    assert by_distance[:2] == ["Nowhere", "Sara D. Roosevelt Park"]
