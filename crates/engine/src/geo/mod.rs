//! Geospatial semantics: GeoJSON and legacy shapes, the geo query operators
//! and the `$geoNear` stage, on top of georust `geo`.
//!
//! What needs a 2dsphere index (`$near`, `$nearSphere`, `$geoNear`) is
//! decided by the server, which owns the catalog; this module only says
//! what a shape is and what a query means for one.
pub mod cells;
pub mod near_stage;
pub mod predicate;
pub mod shape;

pub use near_stage::GeoNear;
pub use predicate::{GeoQuery, Near, EARTH_RADIUS_METERS};
pub use shape::Shape;

/// The geo operators a field's operator document may hold.
pub fn is_geo_operator(op: &str) -> bool {
    matches!(op, "$geoWithin" | "$within" | "$geoIntersects" | "$near" | "$nearSphere")
}

/// Where a filter asks for proximity (`{field: {$near | $nearSphere: ...}}`
/// at its top level or under `$and`): the field and the parsed operator.
/// MongoDB allows one such clause per query and none under `$or`/`$nor`/`$not`.
pub fn find_near(filter: &bson::Document) -> crate::Result<Option<(String, Near)>> {
    let mut found = Vec::new();
    collect_near(filter, true, &mut found)?;
    match found.len() {
        0 => Ok(None),
        1 => Ok(found.pop()),
        _ => Err(crate::EngineError::bad_value("Too many geoNear expressions")),
    }
}

fn collect_near(filter: &bson::Document, top: bool, out: &mut Vec<(String, Near)>) -> crate::Result<()> {
    use bson::Bson;
    for (k, v) in filter {
        match (k.as_str(), v) {
            ("$and", Bson::Array(items)) => {
                for item in items {
                    if let Bson::Document(d) = item {
                        collect_near(d, top, out)?;
                    }
                }
            }
            ("$or" | "$nor", Bson::Array(items)) => {
                for item in items {
                    if let Bson::Document(d) = item {
                        collect_near(d, false, out)?;
                    }
                }
            }
            (field, Bson::Document(ops)) if !field.starts_with('$') => {
                for (op, arg) in ops {
                    if op == "$near" || op == "$nearSphere" {
                        if !top {
                            return Err(crate::EngineError::bad_value("geoNear must be top-level expr"));
                        }
                        if let GeoQuery::Near(n) = GeoQuery::parse(op, arg, ops)? {
                            out.push((field.to_string(), n));
                        }
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// The box a geo predicate on `field` (at the filter's top level or under
/// `$and`) confines its matches to: `None` when there is no such
/// predicate, `Some(None)` when there is one but it bounds nothing.
pub fn region_of(filter: &bson::Document, field: &str) -> crate::Result<Option<Option<geo::Rect<f64>>>> {
    use bson::Bson;
    for (k, v) in filter {
        match (k.as_str(), v) {
            ("$and", Bson::Array(items)) => {
                for item in items {
                    if let Bson::Document(d) = item {
                        if let Some(found) = region_of(d, field)? {
                            return Ok(Some(found));
                        }
                    }
                }
            }
            (f, Bson::Document(ops)) if f == field => {
                for (op, arg) in ops {
                    if is_geo_operator(op) {
                        return Ok(Some(GeoQuery::parse(op, arg, ops)?.bounding_box()));
                    }
                }
            }
            _ => {}
        }
    }
    Ok(None)
}

/// `$match` in a pipeline (and other non-find contexts) may not ask for
/// proximity: MongoDB's "not allowed in this context" (224).
pub fn refuse_near(filter: &bson::Document) -> crate::Result<()> {
    if find_near(filter)?.is_some() {
        return Err(crate::EngineError::new(
            224,
            "QueryFeatureNotAllowed",
            "$geoNear, $near, and $nearSphere are not allowed in this context",
        ));
    }
    Ok(())
}
