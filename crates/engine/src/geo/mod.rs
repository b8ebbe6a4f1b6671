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
pub mod sphere;

pub use near_stage::GeoNear;
pub use predicate::{GeoQuery, Near, EARTH_RADIUS_METERS};
pub use shape::Shape;

/// The geo operators a field's operator document may hold.
pub fn is_geo_operator(op: &str) -> bool {
    matches!(op, "$geoWithin" | "$within" | "$geoIntersects" | "$near" | "$nearSphere")
}

/// Where a filter asks for proximity (`{field: {$near | $nearSphere: ...}}`):
/// the field and the parsed operator, checked as mongod's canonical query
/// checks it (query/canonical_query.cpp, `isValid`): at most one proximity
/// clause anywhere in the filter ("Too many geoNear expressions", 2), and
/// that one at the top level or directly under the top-level `$and`, once
/// nested `$and`s are flattened and one-clause `$and`/`$or`s unwrapped as
/// mongod's optimizer does ("geoNear must be top-level expr", 2). Under
/// `$nor`, `$not` or `$elemMatch`, or beside other clauses of an `$or`, it
/// is not top level.
pub fn find_near(filter: &bson::Document) -> crate::Result<Option<(String, Near)>> {
    let mut found = Vec::new();
    collect_near(filter, Level::Top, 0, &mut found)?;
    match found.len() {
        0 => Ok(None),
        1 => {
            let (field, near, level) = found.remove(0);
            if level != Level::Top {
                return Err(crate::EngineError::bad_value("geoNear must be top-level expr"));
            }
            Ok(Some((field, near)))
        }
        _ => Err(crate::EngineError::bad_value("Too many geoNear expressions")),
    }
}

/// Where a clause sits, for the top-level rule above.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Top,
    Nested,
}

/// Filters deeper than this are refused by the filter parser anyway; the
/// walk stops here rather than recurse without bound.
const MAX_DEPTH: usize = 200;

fn collect_near(filter: &bson::Document, level: Level, depth: usize, out: &mut Vec<(String, Near, Level)>) -> crate::Result<()> {
    use bson::Bson;
    if depth > MAX_DEPTH {
        return Ok(());
    }
    for (k, v) in filter {
        match (k.as_str(), v) {
            ("$and" | "$or", Bson::Array(items)) => {
                // `$and` keeps its clauses at its own level; so does an
                // `$or` of one clause (the optimizer unwraps it).
                let inner = if k == "$and" || items.len() == 1 { level } else { Level::Nested };
                for item in items {
                    if let Bson::Document(d) = item {
                        collect_near(d, inner, depth + 1, out)?;
                    }
                }
            }
            ("$nor", Bson::Array(items)) => {
                for item in items {
                    if let Bson::Document(d) = item {
                        collect_near(d, Level::Nested, depth + 1, out)?;
                    }
                }
            }
            (field, Bson::Document(ops)) if !field.starts_with('$') => collect_near_ops(field, ops, level, depth, out)?,
            _ => {}
        }
    }
    Ok(())
}

/// One field's operator document: `$near`/`$nearSphere` itself, or the
/// filters `$not` and `$elemMatch` hold (whose clauses are not top level).
fn collect_near_ops(field: &str, ops: &bson::Document, level: Level, depth: usize, out: &mut Vec<(String, Near, Level)>) -> crate::Result<()> {
    use bson::Bson;
    if let Some((op, arg)) = ops.iter().find(|(op, _)| *op == "$near" || *op == "$nearSphere") {
        if let GeoQuery::Near(n) = GeoQuery::parse(op, arg, ops)? {
            out.push((field.to_string(), n, level));
        }
        return Ok(());
    }
    for (op, arg) in ops {
        match (op.as_str(), arg) {
            ("$not", Bson::Document(inner)) => collect_near_ops(field, inner, Level::Nested, depth + 1, out)?,
            ("$elemMatch", Bson::Document(inner)) => {
                if inner.keys().next().is_some_and(|k| k.starts_with('$') && !matches!(k.as_str(), "$and" | "$or" | "$nor")) {
                    collect_near_ops(field, inner, Level::Nested, depth + 1, out)?;
                } else {
                    collect_near(inner, Level::Nested, depth + 1, out)?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Whether a proximity operator appears anywhere in `filter`.
fn mentions_near(filter: &bson::Document, depth: usize) -> bool {
    use bson::Bson;
    if depth > MAX_DEPTH {
        return false;
    }
    filter.iter().any(|(k, v)| match v {
        _ if k == "$near" || k == "$nearSphere" || k == "$geoNear" => true,
        Bson::Document(d) => mentions_near(d, depth + 1),
        Bson::Array(items) => items.iter().any(|i| matches!(i, Bson::Document(d) if mentions_near(d, depth + 1))),
        _ => false,
    })
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

/// mongod's refusal of a proximity operator where the query language is
/// parsed without proximity (a `$match` stage, `$geoNear`'s `query`, a
/// collection validator): expression_parser.cpp's error 5626500.
pub fn near_not_allowed() -> crate::EngineError {
    crate::EngineError::location(5626500, "$geoNear, $near, and $nearSphere are not allowed in this context")
}

/// `$match` in a pipeline (and the other contexts of [`near_not_allowed`])
/// may not ask for proximity, wherever in the filter it does.
pub fn refuse_near(filter: &bson::Document) -> crate::Result<()> {
    if mentions_near(filter, 0) {
        return Err(near_not_allowed());
    }
    Ok(())
}
