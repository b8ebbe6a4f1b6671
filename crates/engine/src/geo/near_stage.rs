//! The `$geoNear` aggregation stage: documents ordered by distance from a
//! point, each with its distance (and optionally the location used).
//!
//! The server resolves which field to measure (the `key` option, or the
//! collection's only 2dsphere index) and feeds the documents that match the
//! stage's `query`; this module does the rest.
use super::predicate::{Near, EARTH_RADIUS_METERS};
use super::shape;
use crate::{path, EngineError, Result};
use bson::{Bson, Document};

/// A parsed `$geoNear` specification.
#[derive(Debug, Clone)]
pub struct GeoNear {
    pub near: Near,
    pub distance_field: Vec<String>,
    pub include_locs: Option<Vec<String>>,
    pub query: Document,
    pub distance_multiplier: f64,
    pub key: Option<String>,
}

fn bad(message: impl Into<String>) -> EngineError {
    EngineError::bad_value(message)
}

fn number(b: &Bson) -> Option<f64> {
    crate::num::Num::from_bson(b).map(|n| n.to_f64())
}

impl GeoNear {
    pub fn parse(spec: &Bson) -> Result<GeoNear> {
        let Bson::Document(d) = spec else {
            return Err(EngineError::location(10065, "$geoNear must take a nested object"));
        };
        let mut near_value = None;
        let mut distance_field = None;
        let mut include_locs = None;
        let mut query = Document::new();
        let mut multiplier = 1.0;
        let mut key = None;
        let mut min = None;
        let mut max = None;
        for (k, v) in d {
            match k.as_str() {
                "near" => near_value = Some(v.clone()),
                "distanceField" => match v {
                    Bson::String(s) if !s.is_empty() => distance_field = Some(path::split(s)),
                    Bson::String(_) => return Err(bad("FieldPath cannot be constructed with empty string")),
                    _ => return Err(EngineError::location(16606, "$geoNear requires that the 'distanceField' option is a String")),
                },
                "includeLocs" => match v {
                    Bson::String(s) if !s.is_empty() => include_locs = Some(path::split(s)),
                    Bson::String(_) => return Err(bad("FieldPath cannot be constructed with empty string")),
                    _ => return Err(EngineError::location(16607, "$geoNear requires that 'includeLocs' option is a String")),
                },
                "query" => match v {
                    Bson::Document(q) => query = q.clone(),
                    _ => return Err(EngineError::type_mismatch("query must be an object")),
                },
                "distanceMultiplier" => match number(v) {
                    Some(m) if m >= 0.0 => multiplier = m,
                    Some(_) => return Err(bad("distanceMultiplier must be nonnegative")),
                    None => return Err(EngineError::type_mismatch("distanceMultiplier must be a number")),
                },
                "key" => match v {
                    Bson::String(s) if !s.is_empty() => key = Some(s.clone()),
                    Bson::String(_) => return Err(bad("$geoNear parameter 'key' cannot be the empty string")),
                    other => {
                        return Err(EngineError::type_mismatch(format!(
                            "$geoNear parameter 'key' must be of type string but found type: {}",
                            crate::types::type_name(other)
                        )))
                    }
                },
                "minDistance" | "maxDistance" => {
                    let n = number(v).ok_or_else(|| EngineError::type_mismatch(format!("$geoNear requires ${k} to evaluate to a number")))?;
                    if n < 0.0 {
                        return Err(bad(format!("{k} must be nonnegative")));
                    }
                    if k == "minDistance" {
                        min = Some(n);
                    } else {
                        max = Some(n);
                    }
                }
                // Accepted for compatibility; with a 2dsphere index MongoDB
                // always measures on the sphere.
                "spherical" | "uniqueDocs" => {}
                // Options of the old geoNear command, refused by number.
                "collation" => {
                    return Err(EngineError::location(
                        40227,
                        "$geoNear does not accept the 'collation' parameter. Instead, specify a collation for the entire aggregation command.",
                    ))
                }
                "limit" => return Err(EngineError::location(50858, "$geoNear no longer supports the 'limit' parameter. Use a $limit stage instead.")),
                "num" => return Err(EngineError::location(50857, "$geoNear no longer supports the 'num' parameter. Use a $limit stage instead.")),
                "start" => return Err(EngineError::location(50856, "$geoNear no longer supports the 'start' argument.")),
                other => return Err(bad(format!("Unknown argument to $geoNear: {other}"))),
            }
        }
        let near_value = near_value.ok_or_else(|| EngineError::location(5860400, "$geoNear requires a 'near' argument"))?;
        if !matches!(near_value, Bson::Document(_) | Bson::Array(_)) {
            return Err(EngineError::location(5860401, "$geoNear requires near argument to be a GeoJSON object or a legacy point(array)"));
        }
        // Optional from MongoDB 8.1 on; the 7.0 this engine answers as
        // requires it.
        let distance_field = distance_field.ok_or_else(|| EngineError::location(16606, "$geoNear requires a 'distanceField' option as a String"))?;
        let point = shape::parse_query_point(&near_value).map_err(bad)?;
        let geo::Geometry::Point(p) = point.geometry else {
            return Err(bad("$geoNear 'near' must be a point"));
        };
        Ok(GeoNear {
            near: Near { point: p, radians: point.legacy, min, max },
            distance_field,
            include_locs,
            query,
            distance_multiplier: multiplier,
            key,
        })
    }

    /// Measures each document's `key` field, keeps those within the distance
    /// band, and returns them nearest first with the distance (times the
    /// multiplier) in `distanceField`. Documents without a geometry there
    /// are left out, as an index would leave them out.
    pub fn apply(&self, key: &str, docs: Vec<Document>) -> Result<Vec<Document>> {
        let key_path = path::split(key);
        let mut measured: Vec<(f64, Document)> = Vec::new();
        for mut doc in docs {
            let Some((distance, location)) = nearest(&self.near, &doc, &key_path) else { continue };
            if !self.near.accepts(distance) {
                continue;
            }
            path::set(&mut doc, &self.distance_field, Bson::Double(distance * self.distance_multiplier))?;
            if let Some(locs) = &self.include_locs {
                path::set(&mut doc, locs, location)?;
            }
            measured.push((distance, doc));
        }
        measured.sort_by(|a, b| a.0.total_cmp(&b.0));
        Ok(measured.into_iter().map(|(_, d)| d).collect())
    }
}

/// The distance from `near` to the closest shape at `key_path` in `doc`,
/// and that shape; `None` when the field holds no shape.
pub fn nearest(near: &Near, doc: &Document, key_path: &[String]) -> Option<(f64, Bson)> {
    let mut best: Option<(f64, Bson)> = None;
    for value in path::query_values(doc, key_path).into_iter().flatten() {
        for candidate in candidates(value) {
            if let Ok(Some(s)) = shape::parse_stored(candidate) {
                let d = near.distance_to(&s.geometry);
                if best.as_ref().is_none_or(|(b, _)| d < *b) {
                    best = Some((d, candidate.clone()));
                }
            }
        }
    }
    best
}

/// The geometries a value holds: itself, or the elements of an array of
/// geometries (a legacy pair is one geometry, not two numbers).
fn candidates(value: &Bson) -> Vec<&Bson> {
    match value {
        Bson::Array(items) if shape::legacy_point(items).ok().flatten().is_none() => items.iter().collect(),
        other => vec![other],
    }
}

/// Meters to radians on MongoDB's sphere (for callers converting units).
pub fn meters_to_radians(meters: f64) -> f64 {
    meters / EARTH_RADIUS_METERS
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::{bson, doc};

    fn places() -> Vec<Document> {
        // The manual's $geoNear example collection.
        vec![
            doc! {"_id": 1, "name": "Central Park", "location": {"type": "Point", "coordinates": [-73.97, 40.77]}, "category": "Parks"},
            doc! {"_id": 2, "name": "Sara D. Roosevelt Park", "location": {"type": "Point", "coordinates": [-73.9928, 40.7193]}, "category": "Parks"},
            doc! {"_id": 3, "name": "Polo Grounds", "location": {"type": "Point", "coordinates": [-73.9375, 40.8303]}, "category": "Stadiums"},
            doc! {"_id": 4, "name": "nowhere"},
        ]
    }

    #[test]
    fn manual_example_max_distance_and_query() {
        // https://www.mongodb.com/docs/manual/reference/operator/aggregation/geoNear/
        let stage = GeoNear::parse(&bson!({
            "near": {"type": "Point", "coordinates": [-73.99279, 40.719296]},
            "distanceField": "dist.calculated",
            "maxDistance": 2,
            "includeLocs": "dist.location",
            "spherical": true
        }))
        .unwrap();
        let out = stage.apply("location", places()).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].get_str("name").unwrap(), "Sara D. Roosevelt Park");
        let dist = out[0].get_document("dist").unwrap();
        assert!(dist.get_f64("calculated").unwrap() < 2.0);
        assert_eq!(dist.get_document("location").unwrap(), &doc! {"type": "Point", "coordinates": [-73.9928, 40.7193]});
    }

    #[test]
    fn min_distance_and_order() {
        let stage = GeoNear::parse(&bson!({
            "near": {"type": "Point", "coordinates": [-73.99279, 40.719296]},
            "distanceField": "dist",
            "minDistance": 2
        }))
        .unwrap();
        let out = stage.apply("location", places()).unwrap();
        let names: Vec<&str> = out.iter().map(|d| d.get_str("name").unwrap()).collect();
        assert_eq!(names, ["Central Park", "Polo Grounds"]);
        let d0 = out[0].get_f64("dist").unwrap();
        // Central Park is about 5.9 km from Sara D. Roosevelt Park.
        assert!((5_500.0..6_500.0).contains(&d0), "{d0}");
    }

    #[test]
    fn legacy_near_is_in_radians_and_multiplied() {
        let stage = GeoNear::parse(&bson!({"near": [-73.99279, 40.719296], "distanceField": "d", "distanceMultiplier": 6378.1})).unwrap();
        let out = stage.apply("location", places()).unwrap();
        let km = out[1].get_f64("d").unwrap();
        assert!((5.5..6.5).contains(&km), "{km}");
    }

    #[test]
    fn bad_specs() {
        let code = |b: Bson| GeoNear::parse(&b).unwrap_err().code;
        assert_eq!(code(bson!({"distanceField": "d"})), 5860400);
        assert_eq!(code(bson!({"near": [0, 0]})), 16606);
        assert_eq!(code(bson!({"near": [0, 0], "distanceField": 1})), 16606);
        assert_eq!(code(bson!({"near": [0, 0], "distanceField": "d", "includeLocs": 1})), 16607);
        assert_eq!(code(bson!({"near": 5, "distanceField": "d"})), 5860401);
        assert_eq!(code(bson!({"near": [0, 0], "distanceField": "d", "limit": 5})), 50858);
        assert_eq!(code(bson!({"near": [0, 0], "distanceField": "d", "num": 5})), 50857);
        assert_eq!(code(bson!({"near": [0, 0], "distanceField": "d", "start": 5})), 50856);
        assert_eq!(code(bson!({"near": [0, 0], "distanceField": "d", "collation": {}})), 40227);
        assert_eq!(code(bson!({"near": [0, 0], "distanceField": "d", "distanceMultiplier": "x"})), 14);
        assert_eq!(code(bson!({"near": [0, 0], "distanceField": "d", "distanceMultiplier": -1})), 2);
        assert_eq!(code(bson!({"near": [0, 0], "distanceField": "d", "minDistance": "x"})), 14);
        assert_eq!(code(bson!({"near": [0, 0], "distanceField": "d", "maxDistance": -1})), 2);
        assert_eq!(code(bson!({"near": [0, 0], "distanceField": "d", "bogus": 1})), 2);
        assert_eq!(code(bson!({"near": {"type": "Point", "coordinates": [500, 0]}, "distanceField": "d"})), 2);
        assert_eq!(code(bson!(5)), 10065);
    }
}
