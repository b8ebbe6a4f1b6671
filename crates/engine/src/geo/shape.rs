//! Geometries from BSON: GeoJSON objects and legacy coordinate pairs, with
//! the validation MongoDB's `GeoParser` applies (coordinate bounds, closed
//! rings of at least four positions, rings that do not self-intersect, holes
//! inside their shell).
//!
//! Coordinates are `(x, y) = (longitude, latitude)` in degrees, as GeoJSON
//! writes them. The returned [`Shape`] says whether it came from a legacy
//! pair, since `$near`/`$geoNear` then measure distance in radians instead
//! of meters.
use bson::{Bson, Document};
use geo::{
    Coord, Geometry, GeometryCollection, LineString, MultiLineString, MultiPoint, MultiPolygon, Point, Polygon,
};

/// Nested GeometryCollections deeper than this are refused, so a hostile
/// document cannot recurse without bound.
const MAX_COLLECTION_DEPTH: usize = 16;

/// A parsed geometry and where it came from.
#[derive(Debug, Clone)]
pub struct Shape {
    pub geometry: Geometry<f64>,
    /// A legacy coordinate pair (`[x, y]` or `{a: x, b: y}`) rather than GeoJSON.
    pub legacy: bool,
}

/// Why a value is not a geometry, worded as MongoDB words it.
pub type ShapeError = String;

/// A stored value as a 2dsphere index reads it: a GeoJSON object (a
/// document with a `type` string) or a legacy pair. `Ok(None)` when the
/// value is neither shape-like at all (a string, a number...).
pub fn parse_stored(value: &Bson) -> Result<Option<Shape>, ShapeError> {
    match value {
        Bson::Document(d) if d.contains_key("type") => parse_geojson(d).map(|g| Some(Shape { geometry: g, legacy: false })),
        Bson::Document(d) => Ok(legacy_point_of_doc(d)?.map(|p| Shape { geometry: Geometry::Point(p), legacy: true })),
        Bson::Array(items) => Ok(legacy_point(items)?.map(|p| Shape { geometry: Geometry::Point(p), legacy: true })),
        _ => Ok(None),
    }
}

/// Like [`parse_stored`], for an indexed field: anything that is not a
/// valid geometry is an error (MongoDB's "Can't extract geo keys").
pub fn parse_indexed(value: &Bson) -> Result<Shape, ShapeError> {
    match parse_stored(value)? {
        Some(Shape { geometry: Geometry::Point(p), legacy: true }) if !(-180.0..=180.0).contains(&p.x()) || !(-90.0..=90.0).contains(&p.y()) => {
            Err(format!("longitude/latitude is out of bounds, lng: {} lat: {}", p.x(), p.y()))
        }
        Some(shape) => Ok(shape),
        None => Err(format!("Point must be an array or object, instead got type {}", crate::types::type_name(value))),
    }
}

/// A GeoJSON geometry object (`{type: "Polygon", coordinates: [...]}`).
pub fn parse_geojson(d: &Document) -> Result<Geometry<f64>, ShapeError> {
    parse_geojson_at(d, 0)
}

fn parse_geojson_at(d: &Document, depth: usize) -> Result<Geometry<f64>, ShapeError> {
    let kind = match d.get("type") {
        Some(Bson::String(s)) => s.as_str(),
        _ => return Err("unknown GeoJSON type: the 'type' field must be a string".to_string()),
    };
    check_crs(d)?;
    if kind == "GeometryCollection" {
        if depth >= MAX_COLLECTION_DEPTH {
            return Err(format!("GeometryCollection nested deeper than {MAX_COLLECTION_DEPTH} levels"));
        }
        let Some(Bson::Array(items)) = d.get("geometries") else {
            return Err("GeometryCollection geometries must be an array".to_string());
        };
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            let Bson::Document(g) = item else {
                return Err("Element of geometries is not an object".to_string());
            };
            out.push(parse_geojson_at(g, depth + 1)?);
        }
        return Ok(Geometry::GeometryCollection(GeometryCollection(out)));
    }
    let coords = match d.get("coordinates") {
        Some(Bson::Array(a)) => a,
        _ => return Err(format!("{kind} must have a 'coordinates' array")),
    };
    Ok(match kind {
        "Point" => Geometry::Point(Point(position(coords)?)),
        "LineString" => Geometry::LineString(line_string(coords)?),
        "Polygon" => Geometry::Polygon(polygon(coords)?),
        "MultiPoint" => {
            if coords.is_empty() {
                return Err("MultiPoint coordinates must have at least 1 element".to_string());
            }
            Geometry::MultiPoint(MultiPoint(each_array(coords, "MultiPoint")?.into_iter().map(|c| position(c).map(Point)).collect::<Result<_, _>>()?))
        }
        "MultiLineString" => {
            if coords.is_empty() {
                return Err("MultiLineString coordinates must have at least 1 element".to_string());
            }
            Geometry::MultiLineString(MultiLineString(each_array(coords, "MultiLineString")?.into_iter().map(|c| line_string(c)).collect::<Result<_, _>>()?))
        }
        "MultiPolygon" => {
            if coords.is_empty() {
                return Err("MultiPolygon coordinates must have at least 1 element".to_string());
            }
            Geometry::MultiPolygon(MultiPolygon(each_array(coords, "MultiPolygon")?.into_iter().map(|c| polygon(c)).collect::<Result<_, _>>()?))
        }
        other => return Err(format!("unknown GeoJSON type: {other}")),
    })
}

/// MongoDB's strict-winding CRS: a polygon's inside is on the left of its
/// ring, whatever its size (a "big polygon", for queries only).
const STRICT_WINDING: &str = "urn:x-mongodb:crs:strictwinding:EPSG:4326";

/// A query's `$geometry`, and whether it names the strict-winding CRS (only
/// a Polygon of one ring may, as in mongod's geo/geoparser.cpp).
pub fn parse_query_geometry(d: &Document) -> Result<(Geometry<f64>, bool), ShapeError> {
    let strict = matches!(d.get("crs"), Some(Bson::Document(c))
        if matches!(c.get("properties"), Some(Bson::Document(p)) if p.get_str("name").ok() == Some(STRICT_WINDING)));
    if !strict {
        return Ok((parse_geojson(d)?, false));
    }
    if d.get_str("type").ok() != Some("Polygon") {
        return Err("only polygon supported with strict winding order".to_string());
    }
    if let Ok(rings) = d.get_array("coordinates") {
        if rings.len() != 1 {
            return Err(format!("Only one simple loop is allowed in a big polygon, instead provided {} loops", rings.len()));
        }
    }
    let mut plain = d.clone();
    plain.remove("crs");
    Ok((parse_geojson(&plain)?, true))
}

/// MongoDB accepts only the WGS84 CRS names (and its own strict-winding
/// CRS in query polygons, read by [`parse_query_geometry`]; a stored shape
/// may not use it).
fn check_crs(d: &Document) -> Result<(), ShapeError> {
    let Some(crs) = d.get("crs") else { return Ok(()) };
    let name = match crs {
        Bson::Document(c) => match (c.get("type"), c.get("properties")) {
            (Some(Bson::String(t)), Some(Bson::Document(p))) if t == "name" => match p.get("name") {
                Some(Bson::String(n)) => n.as_str(),
                _ => return Err("crs.properties.name must be a string".to_string()),
            },
            _ => return Err("GeoJSON CRS must be an object of type \"name\" with properties".to_string()),
        },
        _ => return Err("GeoJSON CRS must be an object".to_string()),
    };
    match name {
        "urn:ogc:def:crs:OGC:1.3:CRS84" | "EPSG:4326" => Ok(()),
        STRICT_WINDING => Err("strict winding order is only supported for queries with a Polygon".to_string()),
        other => Err(format!("Unknown CRS name: {other}")),
    }
}

fn each_array<'a>(items: &'a [Bson], what: &str) -> Result<Vec<&'a Vec<Bson>>, ShapeError> {
    items
        .iter()
        .map(|b| match b {
            Bson::Array(a) => Ok(a),
            _ => Err(format!("{what} coordinates must be an array of arrays")),
        })
        .collect()
}

fn number(b: &Bson) -> Option<f64> {
    match b {
        Bson::Double(f) => Some(*f),
        Bson::Int32(i) => Some(f64::from(*i)),
        Bson::Int64(i) => Some(*i as f64),
        Bson::Decimal128(d) => d.to_string().parse().ok(),
        _ => None,
    }
}

/// One GeoJSON position: `[lng, lat]` (a third, altitude value is allowed
/// and ignored, as MongoDB does), within the sphere's bounds.
fn position(items: &[Bson]) -> Result<Coord<f64>, ShapeError> {
    if items.len() < 2 {
        return Err("Point must only contain numeric elements and have at least 2 of them".to_string());
    }
    let (Some(x), Some(y)) = (number(&items[0]), number(&items[1])) else {
        return Err("Point must only contain numeric elements".to_string());
    };
    if items.iter().skip(2).any(|b| number(b).is_none()) {
        return Err("Point must only contain numeric elements".to_string());
    }
    if !(-180.0..=180.0).contains(&x) || !(-90.0..=90.0).contains(&y) {
        return Err(format!("longitude/latitude is out of bounds, lng: {x} lat: {y}"));
    }
    Ok(Coord { x, y })
}

fn positions(items: &[Bson], what: &str) -> Result<Vec<Coord<f64>>, ShapeError> {
    each_array(items, what)?.into_iter().map(|c| position(c)).collect()
}

fn line_string(items: &[Bson]) -> Result<LineString<f64>, ShapeError> {
    let coords = positions(items, "LineString")?;
    let mut distinct = coords.clone();
    distinct.dedup();
    if distinct.len() < 2 {
        return Err(format!("GeoJSON LineString must have at least 2 vertices: {} given", distinct.len()));
    }
    Ok(LineString(coords))
}

fn ring(items: &[Bson]) -> Result<LineString<f64>, ShapeError> {
    let coords = positions(items, "Polygon")?;
    if coords.len() < 4 {
        return Err("Loop must have at least 3 different vertices and be closed (4 positions)".to_string());
    }
    if coords.first() != coords.last() {
        return Err("Loop is not closed, first vertex does not equal last vertex".to_string());
    }
    let mut distinct = coords[..coords.len() - 1].to_vec();
    distinct.sort_by(|a, b| a.x.total_cmp(&b.x).then(a.y.total_cmp(&b.y)));
    distinct.dedup();
    if distinct.len() < 3 {
        return Err("Loop must have at least 3 different vertices".to_string());
    }
    Ok(LineString(coords))
}

fn polygon(items: &[Bson]) -> Result<Polygon<f64>, ShapeError> {
    let rings = each_array(items, "Polygon")?;
    let Some((shell, holes)) = rings.split_first() else {
        return Err("Polygon has no loops".to_string());
    };
    let shell = ring(shell)?;
    let holes = holes.iter().map(|h| ring(h)).collect::<Result<Vec<_>, _>>()?;
    let poly = Polygon::new(shell, holes);
    // Validity on the sphere, where the edges are great-circle arcs: a ring
    // around a pole or across the antimeridian is a fine loop there.
    if let Some(problem) = super::sphere::polygon_problem(&poly) {
        return Err(format!("Loop is not valid: {problem}"));
    }
    Ok(poly)
}

/// A legacy pair in an array: its first two elements are numbers.
pub fn legacy_point(items: &[Bson]) -> Result<Option<Point<f64>>, ShapeError> {
    match items {
        [x, y, ..] => match (number(x), number(y)) {
            (Some(x), Some(y)) if x.is_finite() && y.is_finite() => Ok(Some(Point::new(x, y))),
            (Some(x), Some(y)) => Err(format!("longitude/latitude is out of bounds, lng: {x} lat: {y}")),
            _ => Err("Point must only contain numeric elements".to_string()),
        },
        _ => Ok(None),
    }
}

/// A legacy pair as a document (`{lng: x, lat: y}`): its first two values.
fn legacy_point_of_doc(d: &Document) -> Result<Option<Point<f64>>, ShapeError> {
    let values: Vec<Bson> = d.values().take(2).cloned().collect();
    if d.is_empty() {
        return Ok(None);
    }
    legacy_point(&values)
}

/// The point a `$near`/`$geoNear` query names: GeoJSON Point or legacy pair.
pub fn parse_query_point(value: &Bson) -> Result<Shape, ShapeError> {
    let shape = match value {
        Bson::Document(d) if d.contains_key("type") => Shape { geometry: parse_geojson(d)?, legacy: false },
        Bson::Document(d) => match legacy_point_of_doc(d)? {
            Some(p) => Shape { geometry: Geometry::Point(p), legacy: true },
            None => return Err("invalid point in geo near query".to_string()),
        },
        Bson::Array(items) => match legacy_point(items)? {
            Some(p) => Shape { geometry: Geometry::Point(p), legacy: true },
            None => return Err("invalid point in geo near query".to_string()),
        },
        _ => return Err("invalid point in geo near query".to_string()),
    };
    match shape.geometry {
        Geometry::Point(_) => Ok(shape),
        _ => Err("geo near accepts just one argument when querying for a GeoJSON point".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::{bson, doc};

    fn geo(b: Bson) -> Result<Geometry<f64>, ShapeError> {
        match b {
            Bson::Document(d) => parse_geojson(&d),
            _ => Err("not a document".into()),
        }
    }

    #[test]
    fn manual_geojson_examples_parse() {
        // https://www.mongodb.com/docs/manual/reference/geojson/
        assert!(geo(bson!({"type": "Point", "coordinates": [40, 5]})).is_ok());
        assert!(geo(bson!({"type": "LineString", "coordinates": [[40, 5], [41, 6]]})).is_ok());
        assert!(geo(bson!({"type": "Polygon", "coordinates": [[[0, 0], [3, 6], [6, 1], [0, 0]]]})).is_ok());
        let with_hole = bson!({"type": "Polygon", "coordinates": [
            [[0, 0], [3, 6], [6, 1], [0, 0]],
            [[2, 2], [3, 3], [4, 2], [2, 2]]
        ]});
        assert!(matches!(geo(with_hole), Ok(Geometry::Polygon(p)) if p.interiors().len() == 1));
        assert!(geo(bson!({"type": "MultiPoint", "coordinates": [[-73.9580, 40.8003], [-73.9498, 40.7968]]})).is_ok());
        assert!(geo(bson!({"type": "MultiLineString", "coordinates": [[[-73.96943, 40.78519], [-73.96082, 40.78095]]]})).is_ok());
        assert!(geo(bson!({"type": "MultiPolygon", "coordinates": [
            [[[-73.958, 40.8003], [-73.9498, 40.7968], [-73.9737, 40.7648], [-73.9814, 40.7681], [-73.958, 40.8003]]],
            [[[-73.958, 40.8003], [-73.9498, 40.7968], [-73.9737, 40.7648], [-73.958, 40.8003]]]
        ]})).is_ok());
        assert!(geo(bson!({"type": "GeometryCollection", "geometries": [
            {"type": "MultiPoint", "coordinates": [[-73.9580, 40.8003]]},
            {"type": "LineString", "coordinates": [[-73.96943, 40.78519], [-73.96082, 40.78095]]}
        ]})).is_ok());
    }

    #[test]
    fn invalid_geojson_is_refused_with_mongodb_reasons() {
        let e = geo(bson!({"type": "Point", "coordinates": [200, 0]})).unwrap_err();
        assert_eq!(e, "longitude/latitude is out of bounds, lng: 200 lat: 0");
        let e = geo(bson!({"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1]]]})).unwrap_err();
        assert!(e.starts_with("Loop is not closed"), "{e}");
        // A bow tie: its edges cross.
        let e = geo(bson!({"type": "Polygon", "coordinates": [[[0, 0], [2, 2], [2, 0], [0, 2], [0, 0]]]})).unwrap_err();
        assert!(e.starts_with("Loop is not valid"), "{e}");
        // A hole outside its shell.
        let e = geo(bson!({"type": "Polygon", "coordinates": [
            [[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]],
            [[5, 5], [6, 5], [6, 6], [5, 5]]
        ]})).unwrap_err();
        assert!(e.starts_with("Loop is not valid"), "{e}");
        assert!(geo(bson!({"type": "Square", "coordinates": [0, 0]})).unwrap_err().starts_with("unknown GeoJSON type"));
        assert!(geo(bson!({"type": "LineString", "coordinates": [[1, 1]]})).is_err());
        assert!(geo(bson!({"type": "Point", "coordinates": ["a", 1]})).is_err());
    }

    #[test]
    fn nested_collections_are_bounded() {
        let mut g = doc! {"type": "Point", "coordinates": [0, 0]};
        for _ in 0..40 {
            g = doc! {"type": "GeometryCollection", "geometries": [g]};
        }
        assert!(parse_geojson(&g).unwrap_err().contains("nested"));
    }

    #[test]
    fn legacy_pairs() {
        let s = parse_stored(&bson!([-73.97, 40.77])).unwrap().unwrap();
        assert!(s.legacy);
        let s = parse_stored(&bson!({"lng": -73.97, "lat": 40.77})).unwrap().unwrap();
        assert!(matches!(s.geometry, Geometry::Point(p) if p.x() == -73.97));
        assert!(parse_stored(&bson!("x")).unwrap().is_none());
        assert!(parse_indexed(&bson!("x")).is_err());
        assert!(parse_indexed(&bson!([181, 0])).unwrap_err().contains("out of bounds"));
        assert!(parse_stored(&bson!([f64::NAN, 0.0])).is_err());
        assert!(parse_stored(&bson!({"type": "Point", "coordinates": [f64::INFINITY, 0.0]})).is_err());
    }
}
