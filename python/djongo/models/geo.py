"""Points on the earth: ``PointField``, its geo lookups and ``Distance``.

A ``PointField`` stores a GeoJSON Point (``{"type": "Point", "coordinates":
[lng, lat]}``), the shape MongoDB's 2dsphere indexes and geo operators read;
in Python its value is a :class:`GeoPoint` ``(lng, lat)`` tuple. Distances
are in meters, on MongoDB's sphere (radius 6 378 100 m).

Lookups (their values are data: a shape is sent as a parameter under
``$geometry``/``$centerSphere``, never as operators)::

    Place.objects.filter(location__near=((2.35, 48.85), 5000))      # within 5 km
    Place.objects.filter(location__geo_within=[(0, 0), (3, 6), (6, 1)])
    Place.objects.filter(location__geo_within=((2.35, 48.85), 5000)) # a circle
    Place.objects.filter(location__geo_intersects={"type": "Polygon", ...})
    Place.objects.annotate(d=Distance("location", (2.35, 48.85))).order_by("d")

``near`` selects the points within the distance (``$geoWithin`` with
``$centerSphere``, which needs no index and works in counts and joins);
order by ``Distance`` for nearest first.
"""

from __future__ import annotations

import math
from numbers import Real
from typing import Any, NamedTuple

from django import forms
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import FloatField, Func, Lookup, Value

from .fields import JSONField

# MongoDB's radius of the earth (kRadiusOfEarthInMeters).
EARTH_RADIUS_METERS = 6_378_100.0


class GeoPoint(NamedTuple):
    """A point as (longitude, latitude) in degrees, GeoJSON's order."""

    lng: float
    lat: float

    def geojson(self) -> dict[str, Any]:
        return {"type": "Point", "coordinates": [self.lng, self.lat]}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, Real):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def parse_point(value: Any) -> GeoPoint:
    """A :class:`GeoPoint` from ``(lng, lat)``, ``[lng, lat]``, a GeoJSON
    Point dict or ``"lng, lat"`` text; ``ValidationError`` otherwise or when
    out of range (longitude -180..180, latitude -90..90)."""
    if isinstance(value, dict):
        if value.get("type") != "Point":
            raise ValidationError("Enter a GeoJSON Point.", code="invalid_point")
        value = value.get("coordinates")
    elif isinstance(value, str):
        value = [part.strip() for part in value.split(",")]
        try:
            value = [float(part) for part in value]
        except ValueError:
            raise ValidationError("Enter a point as longitude, latitude.",
                                  code="invalid_point") from None
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ValidationError("Enter a point as (longitude, latitude).", code="invalid_point")
    lng, lat = (_number(v) for v in value)
    if lng is None or lat is None:
        raise ValidationError("A point's coordinates must be numbers.", code="invalid_point")
    if not -180 <= lng <= 180 or not -90 <= lat <= 90:
        raise ValidationError(
            "Longitude must be within -180..180 and latitude within -90..90 "
            "(got %(lng)s, %(lat)s).",
            code="out_of_range", params={"lng": lng, "lat": lat})
    return GeoPoint(lng, lat)


def _meters(value: Any, what: str) -> float:
    number = _number(value)
    if number is None or number < 0:
        raise ValueError(f"{what} must be a non-negative number of meters, not {value!r}.")
    return number


class PointFormField(forms.CharField):
    """A point typed as ``lng, lat``."""

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, (list, tuple)) and len(value) == 2:
            return f"{value[0]}, {value[1]}"
        return value

    def to_python(self, value: Any) -> GeoPoint | None:
        value = super().to_python(value)
        if value in self.empty_values:
            return None
        return parse_point(value)


class PointField(models.Field):
    """A (longitude, latitude) point stored as a GeoJSON Point. Index it with
    ``TwoDSphereIndex(fields=[...])`` for ``$near``/``$geoNear`` queries."""

    description = "A point (longitude, latitude) stored as a GeoJSON Point"
    empty_strings_allowed = False

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        return name, "djongo.models.PointField", args, kwargs

    def db_type(self, connection):
        return "json"

    def get_internal_type(self):
        return "DjongoPointField"

    def to_python(self, value: Any) -> GeoPoint | None:
        if value is None:
            return None
        return parse_point(value)

    def from_db_value(self, value, expression, connection):
        if value is None:
            return None
        try:
            return parse_point(value)
        except ValidationError:
            return value  # not a point (written by other code): shown as stored

    def get_prep_value(self, value: Any) -> Any:
        if value is None or hasattr(value, "as_sql"):
            return value
        return parse_point(value).geojson()

    def value_to_string(self, obj) -> str:
        value = self.value_from_object(obj)
        return "" if value is None else f"{value[0]}, {value[1]}"

    def formfield(self, **kwargs):
        return super().formfield(**{"form_class": PointFormField, **kwargs})


def _query_point(value: Any) -> list[float]:
    try:
        point = parse_point(value)
    except ValidationError as e:
        raise ValueError(f"Invalid point {value!r}: {e.messages[0]}") from None
    return [point.lng, point.lat]


def _ring(points: Any) -> list[list[float]]:
    ring = [_query_point(p) for p in points]
    if ring and ring[0] != ring[-1]:
        ring.append(ring[0])
    return ring


class _GeoLookup(Lookup):
    """A geo lookup: the right-hand side is a shape (data), prepared here
    and sent as parameters; expressions are not accepted."""

    prepare_rhs = False
    can_use_none_as_rhs = False

    def get_prep_lookup(self):
        if hasattr(self.rhs, "resolve_expression"):
            raise TypeError(f"{self.lookup_name} takes a shape, not an expression.")
        return self.shape(self.rhs)

    def shape(self, value: Any) -> tuple[str, list[Any]]:
        raise NotImplementedError

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        function, params = self.rhs
        placeholders = ", ".join(["%s"] * len(params))
        return f"{function}({lhs}, {placeholders})", (*lhs_params, *params)


def _circle(value: Any) -> tuple[str, list[Any]] | None:
    """``(center, radius_m)``: a circle on the sphere, or None if not one."""
    if (isinstance(value, (list, tuple)) and len(value) == 2
            and _number(value[1]) is not None and not isinstance(value[0], Real)):
        center = _query_point(value[0])
        return "GEO_WITHIN_SPHERE", [center, _meters(value[1], "The radius") / EARTH_RADIUS_METERS]
    return None


def _geojson(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict) or not isinstance(value.get("type"), str):
        raise ValueError(f"Expected a GeoJSON geometry dict, not {value!r}.")
    return value


@PointField.register_lookup
class NearLookup(_GeoLookup):
    """``location__near=(point, meters)``: points within that distance."""

    lookup_name = "near"

    def shape(self, value):
        circle = _circle(value)
        if circle is None:
            raise ValueError("near takes (point, max_distance_in_meters).")
        return circle


@PointField.register_lookup
class GeoWithinLookup(_GeoLookup):
    """``location__geo_within=``: a GeoJSON Polygon/MultiPolygon dict, a list
    of (lng, lat) vertices (closed for you), or ``(center, radius_m)``."""

    lookup_name = "geo_within"

    def shape(self, value):
        circle = _circle(value)
        if circle is not None:
            return circle
        if isinstance(value, dict):
            return "GEO_WITHIN", [_geojson(value)]
        if isinstance(value, (list, tuple)) and len(value) >= 3:
            return "GEO_WITHIN", [{"type": "Polygon", "coordinates": [_ring(value)]}]
        raise ValueError("geo_within takes a GeoJSON polygon, a list of (lng, lat) "
                         "vertices or (center, radius_in_meters).")


@PointField.register_lookup
class GeoIntersectsLookup(_GeoLookup):
    """``location__geo_intersects=``: any GeoJSON geometry dict."""

    lookup_name = "geo_intersects"

    def shape(self, value):
        return "GEO_INTERSECTS", [_geojson(value)]


class Distance(Func):
    """``Distance("location", (lng, lat))``: great-circle meters from a
    stored point to ``point`` (NULL where the field is empty); use it in
    ``annotate``, ``order_by`` and filters."""

    function = "GEO_DISTANCE"
    output_field = FloatField()

    def __init__(self, expression: Any, point: Any, **extra: Any) -> None:
        super().__init__(expression, Value(_query_point(point), output_field=JSONField()), **extra)
