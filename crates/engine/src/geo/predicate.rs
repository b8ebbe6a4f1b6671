//! The geo query operators on a field: `$geoWithin`, `$geoIntersects`,
//! `$near` and `$nearSphere`, parsed once and tested against each value the
//! field's path reaches.
//!
//! Geometry on the sphere: distances (`$near`, `$centerSphere`) are
//! georust `geo`'s haversine great-circle distances on a sphere of
//! MongoDB's radius; containment and intersection for `$geometry` are
//! [`super::sphere`]'s, with great-circle edges as MongoDB's S2 draws them
//! (a polygon across the antimeridian or around a pole is the small region
//! it encloses; a strict-winding "big polygon" is the region on its left).
//! `$box`, `$polygon` and `$center` are flat in MongoDB too, and use `geo`'s
//! planar predicates.
use super::shape::{self, Shape};
use super::sphere::{self, SphericalPolygon, SphericalShape};
use crate::{EngineError, Result};
use bson::{Bson, Document};
use geo::{
    BoundingRect, Closest, Coord, Distance, Euclidean, Geometry, HaversineClosestPoint, HaversineMeasure, Intersects, LineString,
    Point, Polygon, Rect, Relate,
};

/// MongoDB's radius of the earth (`kRadiusOfEarthInMeters`).
pub const EARTH_RADIUS_METERS: f64 = 6_378_100.0;

const SPHERE: HaversineMeasure = HaversineMeasure::new(EARTH_RADIUS_METERS);

/// A region `$geoWithin` tests against.
#[derive(Debug, Clone)]
pub enum Region {
    /// `$geometry`: a GeoJSON Polygon or MultiPolygon on the sphere
    /// (`strict`: MongoDB's strict-winding CRS, a big polygon).
    Sphere { geometry: Geometry<f64>, polygons: Vec<SphericalPolygon>, strict: bool },
    /// `$centerSphere: [[x, y], radians]`.
    CenterSphere { center: Point<f64>, radians: f64 },
    /// `$box: [[x1, y1], [x2, y2]]` (flat).
    Box(Rect<f64>),
    /// `$polygon: [[x, y], ...]` (flat).
    Polygon(Polygon<f64>),
    /// `$center: [[x, y], r]` (flat, in coordinate units).
    Center { center: Point<f64>, radius: f64 },
}

/// `$near`/`$nearSphere`: a point and an optional distance band.
#[derive(Debug, Clone)]
pub struct Near {
    pub point: Point<f64>,
    /// The query point was a legacy pair: distances are in radians, else meters.
    pub radians: bool,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

#[derive(Debug, Clone)]
pub enum GeoQuery {
    Within(Region),
    /// `$geoIntersects` with a `$geometry` (`strict` as for `$geoWithin`).
    Intersects { geometry: Geometry<f64>, shape: SphericalShape, strict: bool },
    Near(Near),
}

fn bad(message: impl Into<String>) -> EngineError {
    EngineError::bad_value(message)
}

fn number(b: &Bson) -> Option<f64> {
    crate::num::Num::from_bson(b).map(|n| n.to_f64())
}

fn point_arg(b: &Bson, what: &str) -> Result<Point<f64>> {
    let parsed = match b {
        Bson::Array(items) if items.len() == 2 => shape::legacy_point(items).ok().flatten(),
        Bson::Document(d) if d.len() == 2 => shape::legacy_point(&d.values().cloned().collect::<Vec<_>>()).ok().flatten(),
        _ => None,
    };
    parsed.ok_or_else(|| bad(format!("Point must only contain numeric elements in {what}")))
}

impl GeoQuery {
    /// Parses `op: value` where `op` is one of the geo operators; `siblings`
    /// is the whole operator document (legacy `$near` takes
    /// `$maxDistance`/`$minDistance` beside it).
    pub fn parse(op: &str, value: &Bson, siblings: &Document) -> Result<GeoQuery> {
        match op {
            "$geoWithin" | "$within" => Ok(GeoQuery::Within(parse_region(value)?)),
            "$geoIntersects" => {
                let (geometry, strict) = match value {
                    Bson::Document(d) => match d.get("$geometry") {
                        Some(Bson::Document(g)) => shape::parse_query_geometry(g).map_err(bad)?,
                        _ => return Err(bad("$geoIntersects not followed by a $geometry object")),
                    },
                    _ => return Err(bad("$geoIntersects not followed by a $geometry object")),
                };
                let shape = SphericalShape::new(&geometry, strict);
                Ok(GeoQuery::Intersects { geometry, shape, strict })
            }
            "$near" | "$nearSphere" => Ok(GeoQuery::Near(parse_near(value, siblings)?)),
            other => Err(bad(format!("unknown geo operator {other}"))),
        }
    }

    /// Whether any of the values a path reaches satisfies the operator.
    /// Values that are not geometries never match (as in MongoDB).
    pub fn matches_any(&self, values: &[Option<&Bson>]) -> bool {
        values.iter().flatten().any(|v| self.matches_value(v))
    }

    fn matches_value(&self, value: &Bson) -> bool {
        if let Ok(Some(shape)) = shape::parse_stored(value) {
            if self.matches_shape(&shape) {
                return true;
            }
        }
        // An array of geometries (a multikey location field).
        match value {
            Bson::Array(items) if shape::legacy_point(items).ok().flatten().is_none() => items
                .iter()
                .any(|item| matches!(shape::parse_stored(item), Ok(Some(s)) if self.matches_shape(&s))),
            _ => false,
        }
    }

    pub fn matches_shape(&self, shape: &Shape) -> bool {
        match self {
            GeoQuery::Within(region) => region.covers(&shape.geometry),
            GeoQuery::Intersects { shape: query, .. } => query.intersects(&SphericalShape::new(&shape.geometry, false)),
            GeoQuery::Near(near) => near.accepts(near.distance_to(&shape.geometry)),
        }
    }
}

impl GeoQuery {
    /// A (lng, lat) box that every shape the operator accepts meets, for
    /// narrowing an index scan; `None` when the operator is unbounded (a
    /// `$near` without `$maxDistance`).
    pub fn bounding_box(&self) -> Option<Rect<f64>> {
        let b = match self {
            GeoQuery::Within(region) => region.bounding_box(),
            GeoQuery::Intersects { geometry, strict, .. } => sphere::bounding_box(geometry, *strict),
            GeoQuery::Near(n) => n.max.and_then(|max| cap_box(n.point, if n.radians { max } else { max / EARTH_RADIUS_METERS })),
        }?;
        // A hair wider, so rounding never loses a shape on the edge.
        let pad = 1e-9;
        Some(Rect::new(
            Coord { x: (b.min().x - pad).max(-180.0), y: (b.min().y - pad).max(-90.0) },
            Coord { x: (b.max().x + pad).min(180.0), y: (b.max().y + pad).min(90.0) },
        ))
    }
}

impl Region {
    fn bounding_box(&self) -> Option<Rect<f64>> {
        match self {
            Region::Sphere { geometry, strict, .. } => sphere::bounding_box(geometry, *strict),
            Region::CenterSphere { center, radians } => cap_box(*center, *radians),
            Region::Box(r) => Some(*r),
            Region::Polygon(p) => p.bounding_rect(),
            Region::Center { center, radius } => Some(Rect::new(
                Coord { x: center.x() - radius, y: center.y() - radius },
                Coord { x: center.x() + radius, y: center.y() + radius },
            )),
        }
    }
}

/// The (lng, lat) box of the spherical cap of angular radius `radians`
/// around `center`; the whole longitude range when it reaches a pole or
/// crosses the antimeridian.
fn cap_box(center: Point<f64>, radians: f64) -> Option<Rect<f64>> {
    use std::f64::consts::{FRAC_PI_2, PI};
    if !radians.is_finite() || radians >= PI {
        return None;
    }
    let lat = center.y().to_radians();
    let (lo, hi) = (lat - radians, lat + radians);
    let (y0, y1) = (lo.max(-FRAC_PI_2).to_degrees(), hi.min(FRAC_PI_2).to_degrees());
    let whole = Some(Rect::new(Coord { x: -180.0, y: y0 }, Coord { x: 180.0, y: y1 }));
    if lo <= -FRAC_PI_2 || hi >= FRAC_PI_2 {
        return whole;
    }
    let ratio = radians.sin() / lat.cos();
    if ratio >= 1.0 {
        return whole;
    }
    let dlng = ratio.asin().to_degrees();
    let (x0, x1) = (center.x() - dlng, center.x() + dlng);
    if x0 < -180.0 || x1 > 180.0 {
        return whole;
    }
    Some(Rect::new(Coord { x: x0, y: y0 }, Coord { x: x1, y: y1 }))
}

fn parse_region(value: &Bson) -> Result<Region> {
    let Bson::Document(d) = value else {
        return Err(bad("$geoWithin not followed by an object"));
    };
    let Some((name, arg)) = d.iter().next() else {
        return Err(bad("$geoWithin needs a shape"));
    };
    match name.as_str() {
        "$geometry" => {
            let Bson::Document(g) = arg else {
                return Err(bad("$geometry must be a GeoJSON object"));
            };
            let (geometry, strict) = shape::parse_query_geometry(g).map_err(bad)?;
            let polygons: Vec<SphericalPolygon> = match &geometry {
                Geometry::Polygon(p) => SphericalPolygon::new(p, strict).into_iter().collect(),
                Geometry::MultiPolygon(ps) => ps.iter().filter_map(|p| SphericalPolygon::new(p, strict)).collect(),
                _ => return Err(bad("$geoWithin $geometry must be a Polygon or MultiPolygon")),
            };
            Ok(Region::Sphere { geometry, polygons, strict })
        }
        "$centerSphere" | "$center" => {
            let Bson::Array(items) = arg else {
                return Err(bad(format!("{name} must be an array: [[x, y], radius]")));
            };
            let [center, radius] = items.as_slice() else {
                return Err(bad(format!("{name} must be an array: [[x, y], radius]")));
            };
            let center = point_arg(center, name)?;
            let radius = number(radius).filter(|r| *r >= 0.0 && r.is_finite()).ok_or_else(|| bad("radius must be a non-negative number"))?;
            if name == "$center" {
                return Ok(Region::Center { center, radius });
            }
            if !(-180.0..=180.0).contains(&center.x()) || !(-90.0..=90.0).contains(&center.y()) {
                return Err(bad(format!("longitude/latitude is out of bounds, lng: {} lat: {}", center.x(), center.y())));
            }
            Ok(Region::CenterSphere { center, radians: radius })
        }
        "$box" => {
            let Bson::Array(items) = arg else {
                return Err(bad("$box must be an array of two points"));
            };
            let [a, b] = items.as_slice() else {
                return Err(bad("$box must be an array of two points"));
            };
            let (a, b) = (point_arg(a, "$box")?, point_arg(b, "$box")?);
            Ok(Region::Box(Rect::new(a.0, b.0)))
        }
        "$polygon" => {
            let Bson::Array(items) = arg else {
                return Err(bad("$polygon must be an array of points"));
            };
            if items.len() < 3 {
                return Err(bad("Polygon must have at least 3 points"));
            }
            let mut coords: Vec<Coord<f64>> = items.iter().map(|p| point_arg(p, "$polygon").map(|p| p.0)).collect::<Result<_>>()?;
            if coords.first() != coords.last() {
                if let Some(first) = coords.first().copied() {
                    coords.push(first);
                }
            }
            Ok(Region::Polygon(Polygon::new(LineString(coords), Vec::new())))
        }
        other => Err(bad(format!("unknown geo specifier: {other}"))),
    }
}

/// A `$minDistance`/`$maxDistance`, with mongod's errors for each form
/// (matcher/expression_geo.cpp): beside a legacy point they are numbered
/// assertions (16893/16895 not a number, 16894/16896 negative); inside a
/// GeoJSON `$near` document they are BadValue, and must also be finite.
fn distance_arg(d: &Document, key: &str, legacy: bool) -> Result<Option<f64>> {
    let Some(v) = d.get(key) else { return Ok(None) };
    let (not_number, negative) = if key == "$minDistance" { (16893, 16894) } else { (16895, 16896) };
    let fail = |code: i32, what: &str| {
        let message = format!("{key} must be {what}");
        if legacy {
            EngineError::location(code, message)
        } else {
            bad(message)
        }
    };
    match number(v) {
        None => Err(fail(not_number, "a number")),
        Some(n) if n >= 0.0 && (legacy || n.is_finite()) => Ok(Some(n)),
        Some(_) => Err(fail(negative, "non-negative")),
    }
}

/// `{$near | $nearSphere: <point>, $minDistance: d, $maxDistance: d}` (a
/// legacy pair, distances in radians) or `{$near: {$geometry: <GeoJSON
/// point>, $minDistance: m, $maxDistance: m}}` (meters), as mongod's
/// GeoNearExpression parses them: the legacy form takes no other sibling
/// (34413), the GeoJSON form no sibling at all.
fn parse_near(value: &Bson, siblings: &Document) -> Result<Near> {
    if let Bson::Document(d) = value {
        if d.keys().next().is_some_and(|k| k.starts_with('$')) {
            return parse_geojson_near(d, siblings);
        }
    }
    for key in siblings.keys() {
        if !matches!(key.as_str(), "$near" | "$nearSphere" | "$minDistance" | "$maxDistance" | "$uniqueDocs") {
            return Err(EngineError::location(34413, format!("invalid argument in geo near query: {key}")));
        }
    }
    let point = shape::parse_query_point(value).map_err(bad)?;
    let Geometry::Point(p) = point.geometry else {
        return Err(bad("geo near accepts just one argument when querying for a GeoJSON point"));
    };
    // A GeoJSON point given directly (`$near: {type: "Point", ...}`)
    // measures in meters, a legacy pair in radians.
    Ok(Near {
        point: p,
        radians: point.legacy,
        min: distance_arg(siblings, "$minDistance", true)?,
        max: distance_arg(siblings, "$maxDistance", true)?,
    })
}

fn parse_geojson_near(d: &Document, siblings: &Document) -> Result<Near> {
    if let Some((key, value)) = siblings.iter().find(|(k, _)| !matches!(k.as_str(), "$near" | "$nearSphere")) {
        return Err(bad(format!(
            "geo near accepts just one argument when querying for a GeoJSON point. Extra field found: {key}: {value}"
        )));
    }
    let mut point = None;
    for (key, value) in d {
        match key.as_str() {
            "$geometry" => {
                let Bson::Document(g) = value else { continue };
                let shape = shape::parse_query_point(value)
                    .map_err(|reason| bad(format!("invalid point in geo near query $geometry argument: {g}  {reason}")))?;
                match shape.geometry {
                    Geometry::Point(p) if !shape.legacy => point = Some(p),
                    _ => return Err(bad(format!("$near requires geojson point, given {g}"))),
                }
            }
            "$minDistance" | "$maxDistance" => {}
            other => return Err(bad(format!("invalid argument in geo near query: {other}"))),
        }
    }
    let point = point.ok_or_else(|| bad("$geometry is required for geo near query"))?;
    Ok(Near { point, radians: false, min: distance_arg(d, "$minDistance", false)?, max: distance_arg(d, "$maxDistance", false)? })
}

impl Region {
    /// Whether the region contains `g` (points on the boundary included).
    pub fn covers(&self, g: &Geometry<f64>) -> bool {
        match self {
            Region::Sphere { polygons, .. } => SphericalShape::new(g, false).within(polygons),
            Region::CenterSphere { center, radians } => {
                let limit = radians * EARTH_RADIUS_METERS;
                // A cap no wider than a hemisphere is convex on the sphere,
                // so a shape lies inside it when all of its vertices do.
                all_points(g).into_iter().all(|p| SPHERE.distance(*center, p) <= limit)
            }
            // A box covers exactly the shapes whose bounding box it covers.
            Region::Box(rect) => g.bounding_rect().is_some_and(|b| {
                rect.min().x <= b.min().x && rect.min().y <= b.min().y && b.max().x <= rect.max().x && b.max().y <= rect.max().y
            }),
            Region::Polygon(poly) => covers_shape(poly, g),
            Region::Center { center, radius } => {
                all_points(g).into_iter().all(|p| Euclidean.distance(*center, p) <= *radius)
            }
        }
    }
}

/// Whether `region` (a polygon) covers `g`, boundary included. Points go
/// through point-in-polygon; other shapes through `geo`'s relate (DE-9IM),
/// which can panic on degenerate input ("topology position conflict", e.g.
/// coordinates near f64's limits in a legacy pair): such a shape is not
/// covered, rather than the panic reaching the server.
fn covers_shape<R>(region: &R, g: &Geometry<f64>) -> bool
where
    R: Relate<f64> + Intersects<Point<f64>>,
{
    match g {
        Geometry::Point(p) => region.intersects(p),
        Geometry::MultiPoint(points) => points.iter().all(|p| region.intersects(p)),
        other => std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| region.relate(other).is_covers())).unwrap_or(false),
    }
}

fn all_points(g: &Geometry<f64>) -> Vec<Point<f64>> {
    use geo::CoordsIter;
    g.coords_iter().map(Point).collect()
}

impl Near {
    /// The distance from the query point to `g` in the query's units
    /// (meters, or radians for a legacy query point): zero when `g`
    /// contains the point, else the great-circle distance to its closest point.
    pub fn distance_to(&self, g: &Geometry<f64>) -> f64 {
        let meters = meters_between(self.point, g);
        if self.radians {
            meters / EARTH_RADIUS_METERS
        } else {
            meters
        }
    }

    pub fn accepts(&self, distance: f64) -> bool {
        self.min.is_none_or(|m| distance >= m) && self.max.is_none_or(|m| distance <= m)
    }
}

/// Great-circle distance in meters from `p` to the closest point of `g`.
pub fn meters_between(p: Point<f64>, g: &Geometry<f64>) -> f64 {
    match g {
        Geometry::Point(q) => SPHERE.distance(p, *q),
        Geometry::Polygon(poly) if sphere::point_in_polygons(p, &SphericalPolygon::new(poly, false).into_iter().collect::<Vec<_>>()) => 0.0,
        Geometry::MultiPolygon(polys) if sphere::point_in_polygons(p, &polys.iter().filter_map(|q| SphericalPolygon::new(q, false)).collect::<Vec<_>>()) => 0.0,
        Geometry::GeometryCollection(items) => items.iter().map(|i| meters_between(p, i)).fold(f64::INFINITY, f64::min),
        other => match other.haversine_closest_point(&p) {
            Closest::Intersection(_) => 0.0,
            Closest::SinglePoint(q) => SPHERE.distance(p, q),
            Closest::Indeterminate => f64::INFINITY,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::{bson, doc};

    fn query(op: &str, v: Bson) -> GeoQuery {
        GeoQuery::parse(op, &v, &Document::new()).unwrap()
    }

    fn matches(q: &GeoQuery, v: Bson) -> bool {
        q.matches_any(&[Some(&v)])
    }

    #[test]
    fn geo_within_polygon_manual_example() {
        // https://www.mongodb.com/docs/manual/reference/operator/query/geoWithin/
        let q = query("$geoWithin", bson!({"$geometry": {"type": "Polygon", "coordinates": [[[0, 0], [3, 6], [6, 1], [0, 0]]]}}));
        assert!(matches(&q, bson!({"type": "Point", "coordinates": [3, 3]})));
        assert!(!matches(&q, bson!({"type": "Point", "coordinates": [6, 6]})));
        assert!(matches(&q, bson!([3, 3])), "legacy pairs are points on the sphere");
        assert!(matches(&q, bson!({"type": "LineString", "coordinates": [[1, 1], [3, 3]]})));
        assert!(!matches(&q, bson!({"type": "LineString", "coordinates": [[1, 1], [10, 3]]})));
        assert!(!matches(&q, bson!("somewhere")));
    }

    #[test]
    fn holes_are_outside() {
        let q = query("$geoWithin", bson!({"$geometry": {"type": "Polygon", "coordinates": [
            [[0, 0], [10, 0], [10, 10], [0, 10], [0, 0]],
            [[4, 4], [6, 4], [6, 6], [4, 6], [4, 4]]
        ]}}));
        assert!(matches(&q, bson!({"type": "Point", "coordinates": [2, 2]})));
        assert!(!matches(&q, bson!({"type": "Point", "coordinates": [5, 5]})));
    }

    #[test]
    fn center_sphere_manual_example() {
        // Ten miles around (-88, 30): radius 10 / 3963.2 radians.
        let q = query("$geoWithin", bson!({"$centerSphere": [[-88, 30], 10.0 / 3963.2]}));
        assert!(matches(&q, bson!({"type": "Point", "coordinates": [-88.1, 30.05]})));
        assert!(!matches(&q, bson!({"type": "Point", "coordinates": [-88.5, 30]})));
    }

    #[test]
    fn flat_shapes() {
        let b = query("$geoWithin", bson!({"$box": [[0, 0], [100, 100]]}));
        assert!(matches(&b, bson!([100, 50])), "boundary included");
        assert!(!matches(&b, bson!([101, 50])));
        let p = query("$geoWithin", bson!({"$polygon": [[0, 0], [3, 6], [6, 0]]}));
        assert!(matches(&p, bson!([3, 2])));
        assert!(!matches(&p, bson!([0, 6])));
        let c = query("$geoWithin", bson!({"$center": [[-74, 40.74], 10]}));
        assert!(matches(&c, bson!([-70, 40])));
        assert!(!matches(&c, bson!([-60, 40])));
    }

    #[test]
    fn geo_intersects_manual_example() {
        let q = query("$geoIntersects", bson!({"$geometry": {"type": "Polygon", "coordinates": [[[0, 0], [3, 6], [6, 1], [0, 0]]]}}));
        assert!(matches(&q, bson!({"type": "LineString", "coordinates": [[-5, 3], [10, 3]]})));
        assert!(!matches(&q, bson!({"type": "LineString", "coordinates": [[-5, 10], [10, 10]]})));
        assert!(matches(&q, bson!({"type": "GeometryCollection", "geometries": [{"type": "Point", "coordinates": [20, 20]}, {"type": "Point", "coordinates": [2, 2]}]})));
    }

    #[test]
    fn near_distances_in_meters_and_radians() {
        let q = GeoQuery::parse(
            "$near",
            &bson!({"$geometry": {"type": "Point", "coordinates": [-73.9667, 40.78]}, "$minDistance": 1000, "$maxDistance": 5000}),
            &Document::new(),
        )
        .unwrap();
        // Central Park (the query point) is nearer than 1 km of itself.
        assert!(!matches(&q, bson!({"type": "Point", "coordinates": [-73.9667, 40.78]})));
        // About 2.2 km north-east.
        assert!(matches(&q, bson!({"type": "Point", "coordinates": [-73.9475, 40.7935]})));
        assert!(!matches(&q, bson!({"type": "Point", "coordinates": [-73.88, 40.78]})));
        let legacy = GeoQuery::parse("$nearSphere", &bson!([0, 0]), &doc! {"$nearSphere": [0, 0], "$maxDistance": 0.01}).unwrap();
        assert!(matches(&legacy, bson!([0.5, 0])));
        assert!(!matches(&legacy, bson!([1.0, 0])));
        let GeoQuery::Near(n) = legacy else { panic!("near") };
        let d = n.distance_to(&Geometry::Point(Point::new(1.0, 0.0)));
        assert!((d - 1f64.to_radians()).abs() < 1e-9, "{d}");
    }

    #[test]
    fn boxes_hold_what_the_operators_accept() {
        let near = GeoQuery::parse("$near", &bson!({"$geometry": {"type": "Point", "coordinates": [-73.97, 40.77]}, "$maxDistance": 5000}), &Document::new()).unwrap();
        let b = near.bounding_box().unwrap();
        // 5 km is ~0.045 degrees of latitude and ~0.059 of longitude there.
        assert!((b.max().y - 40.77 - 0.0449).abs() < 1e-3, "{b:?}");
        assert!((b.max().x + 73.97 - 0.0594).abs() < 1e-3, "{b:?}");
        let unbounded = GeoQuery::parse("$near", &bson!({"$geometry": {"type": "Point", "coordinates": [0, 0]}}), &Document::new()).unwrap();
        assert!(unbounded.bounding_box().is_none());
        let polar = query("$geoWithin", bson!({"$centerSphere": [[0, 89], 0.1]}));
        let b = polar.bounding_box().unwrap();
        assert_eq!((b.min().x, b.max().x, b.max().y), (-180.0, 180.0, 90.0));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 256, ..Default::default() })]
        /// Any coordinates, valid or not, give a result or an error, never a panic.
        #[test]
        fn arbitrary_shapes_never_panic(
            ring in proptest::collection::vec((-200.0f64..200.0, -100.0f64..100.0), 0..8),
            point in (-190.0f64..190.0, -95.0f64..95.0),
            odd in proptest::sample::select(vec![0.0, f64::NAN, f64::INFINITY, 1e308, -0.0]),
        ) {
            let mut coords: Vec<Bson> = ring.iter().map(|(x, y)| bson!([*x, *y])).collect();
            if let Some(first) = coords.first().cloned() {
                coords.push(first);
            }
            let shapes = [
                bson!({"$geometry": {"type": "Polygon", "coordinates": [coords.clone()]}}),
                bson!({"$polygon": coords.clone()}),
                bson!({"$centerSphere": [[point.0, point.1], odd]}),
                bson!({"$box": [[point.0, point.1], [odd, odd]]}),
            ];
            let values = [
                bson!({"type": "Point", "coordinates": [point.0, point.1]}),
                bson!([odd, point.1]),
                bson!({"type": "LineString", "coordinates": coords.clone()}),
                bson!({"type": "Polygon", "coordinates": [coords.clone()]}),
            ];
            for shape in &shapes {
                for op in ["$geoWithin", "$geoIntersects"] {
                    let arg = if op == "$geoIntersects" { bson!({"$geometry": {"type": "LineString", "coordinates": coords.clone()}}) } else { shape.clone() };
                    if let Ok(q) = GeoQuery::parse(op, &arg, &Document::new()) {
                        for v in &values {
                            let _ = q.matches_any(&[Some(v)]);
                        }
                        let _ = q.bounding_box();
                    }
                }
            }
            let near = bson!({"$geometry": {"type": "Point", "coordinates": [point.0, point.1]}, "$maxDistance": odd});
            if let Ok(q) = GeoQuery::parse("$near", &near, &Document::new()) {
                for v in &values {
                    let _ = q.matches_any(&[Some(v)]);
                }
                if let Some(b) = q.bounding_box() {
                    let _ = super::super::cells::covering_ranges(Some(b));
                }
            }
        }
    }

    #[test]
    fn bad_query_shapes() {
        let e = |op: &str, v: Bson| GeoQuery::parse(op, &v, &Document::new()).unwrap_err().code;
        assert_eq!(e("$geoWithin", bson!({"$geometry": {"type": "Point", "coordinates": [0, 0]}})), 2);
        assert_eq!(e("$geoWithin", bson!({"$geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [0, 0]]]}})), 2);
        assert_eq!(e("$geoWithin", bson!({"$circle": [[0, 0], 1]})), 2);
        assert_eq!(e("$near", bson!({"$geometry": {"type": "Point", "coordinates": [0, 0]}, "$maxDistance": -1})), 2);
        assert_eq!(e("$geoIntersects", bson!([0, 0])), 2);
    }
}
