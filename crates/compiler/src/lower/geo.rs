//! djongo's geospatial SQL functions → MongoDB's geo query operators and a
//! great-circle distance expression.
//!
//! `GEO_WITHIN(col, %s)`, `GEO_WITHIN_SPHERE(col, %s, %s)` and
//! `GEO_INTERSECTS(col, %s)` are predicates on one field: they become
//! `{col: {$geoWithin: {$geometry: <param>}}}` and the like, so a real
//! MongoDB and the embedded engine answer them alike. The shape is a bound
//! parameter placed under `$geometry`/`$centerSphere`: data, never an
//! operator. `GEO_DISTANCE(col, %s)` is the haversine distance in meters
//! between a stored GeoJSON Point (or legacy pair) and a point, as an
//! aggregation expression (MongoDB has no distance operator outside
//! `$geoNear`), so it can be selected, filtered and sorted on anywhere.
use bson::{doc, Bson, Document};

use super::expr::{op1, opn};
use super::{Ctx, Env};
use crate::error::{CompileError, Result};
use crate::plan::{Expr, GeoFunc};

/// MongoDB's radius of the earth in meters (`kRadiusOfEarthInMeters`).
pub(crate) const EARTH_RADIUS_METERS: f64 = 6_378_100.0;

fn slot(e: &Expr) -> Result<Bson> {
    match e {
        // A NULL shape makes the predicate UNKNOWN (selects nothing).
        Expr::Param(i) => Ok(Bson::Document(doc! { "$param": *i as i64, "null_unknown": true })),
        other => Err(CompileError::unsupported("geo function argument other than a parameter", format!("{other:?}"))),
    }
}

impl Ctx {
    /// The query-language filter for a geo predicate, `want` TRUE or FALSE.
    pub(crate) fn geo_filter(&self, env: Env, func: GeoFunc, args: &[Expr], want: bool) -> Result<Option<Document>> {
        let Some(path) = args.first().and_then(|a| self.field_path(env, a)) else {
            return Ok(None);
        };
        let cond = match (func, args) {
            (GeoFunc::Within, [_, shape]) => doc! { "$geoWithin": { "$geometry": slot(shape)? } },
            (GeoFunc::Intersects, [_, shape]) => doc! { "$geoIntersects": { "$geometry": slot(shape)? } },
            (GeoFunc::WithinSphere, [_, center, radians]) => doc! { "$geoWithin": { "$centerSphere": [slot(center)?, slot(radians)?] } },
            _ => return Ok(None),
        };
        let mut d = Document::new();
        if want {
            d.insert(path, cond);
        } else {
            // NOT: a document without a location is UNKNOWN, not TRUE.
            d.insert("$nor", vec![Bson::Document(doc! { path.clone(): cond })]);
            d.insert(path, doc! { "$ne": Bson::Null });
        }
        Ok(Some(d))
    }
}

/// `GEO_DISTANCE(point, q)` in meters: `point` a GeoJSON Point or a legacy
/// `[lng, lat]`, `q` a `[lng, lat]` array; NULL when either is missing.
pub(crate) fn distance(point: Bson, query: Bson) -> Bson {
    let coords = opn(
        "$cond",
        vec![
            op1("$isArray", point.clone()),
            point.clone(),
            op1("$getField", Bson::Document(doc! { "field": "coordinates", "input": point })),
        ],
    );
    let at = |array: &str, i: i32| opn("$arrayElemAt", vec![Bson::String(array.to_string()), Bson::Int32(i)]);
    let rad = |x: Bson| op1("$degreesToRadians", x);
    let half_sin_sq = |d: &str| opn("$pow", vec![op1("$sin", opn("$divide", vec![Bson::String(d.to_string()), Bson::Int32(2)])), Bson::Int32(2)]);
    let inner = doc! {
        "$let": {
            "vars": {
                "geo_lat1": rad(at("$$geo_p", 1)),
                "geo_lat2": rad(at("$$geo_q", 1)),
                "geo_dlat": rad(opn("$subtract", vec![at("$$geo_q", 1), at("$$geo_p", 1)])),
                "geo_dlng": rad(opn("$subtract", vec![at("$$geo_q", 0), at("$$geo_p", 0)])),
            },
            "in": opn("$multiply", vec![
                Bson::Double(2.0 * EARTH_RADIUS_METERS),
                op1("$asin", opn("$min", vec![Bson::Int32(1), op1("$sqrt", opn("$add", vec![
                    half_sin_sq("$$geo_dlat"),
                    opn("$multiply", vec![op1("$cos", Bson::String("$$geo_lat1".into())), op1("$cos", Bson::String("$$geo_lat2".into())), half_sin_sq("$$geo_dlng")]),
                ]))])),
            ]),
        }
    };
    // NULL unless both are arrays (`$min` and friends would hide a NULL).
    let both = opn("$and", vec![op1("$isArray", Bson::String("$$geo_p".into())), op1("$isArray", Bson::String("$$geo_q".into()))]);
    let guarded = opn("$cond", vec![both, Bson::Document(inner), Bson::Null]);
    Bson::Document(doc! { "$let": { "vars": { "geo_p": coords, "geo_q": query }, "in": guarded } })
}
