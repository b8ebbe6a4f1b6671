//! Proximity queries: a find with `$near`/`$nearSphere` (results nearest
//! first) and an aggregate that starts with `$geoNear`. Both need a 2dsphere
//! index on the field, as in MongoDB; the shapes themselves are measured by
//! `djongo_engine::geo`.
use crate::catalog::CollectionMeta;
use crate::error::CmdResult;
use crate::geo_index;
use crate::plan;
use crate::storage::Tables;
use bson::{doc, Bson, Document};
use djongo_engine::expr::Vars;
use djongo_engine::geo::{near_stage, GeoNear};
use djongo_engine::sort::SortSpec;

/// A find whose filter has a `$near`: the matching documents ordered by
/// distance (a `sort` given with it orders them again, stably), then paged.
pub fn find_near(
    tables: &Tables<'_>,
    meta: &CollectionMeta,
    filter: &Document,
    sort: Option<&Document>,
    skip: usize,
    limit: usize,
) -> CmdResult<Vec<Document>> {
    let Some((field, near)) = djongo_engine::geo::find_near(filter)? else {
        return Ok(Vec::new());
    };
    geo_index::require_near_index(meta, &field)?;
    let docs = plan::find(tables, meta, &plan::Query::filter(filter))?;
    let path = djongo_engine::path::split(&field);
    let mut measured: Vec<(f64, Document)> = docs
        .into_iter()
        .map(|d| (near_stage::nearest(&near, &d, &path).map_or(f64::INFINITY, |(m, _)| m), d))
        .collect();
    measured.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut docs: Vec<Document> = measured.into_iter().map(|(_, d)| d).collect();
    if let Some(s) = sort {
        SortSpec::parse(s)?.sort(&mut docs);
    }
    let mut docs: Vec<Document> = docs.into_iter().skip(skip).collect();
    if limit > 0 {
        docs.truncate(limit);
    }
    Ok(docs)
}

pub fn leads_with_geo_near(pipeline: &[Document]) -> bool {
    pipeline.first().is_some_and(|s| s.len() == 1 && s.contains_key("$geoNear"))
}

/// Runs the leading `$geoNear` of `pipeline` (and removes it): the
/// documents its `query` selects, measured and ordered by distance.
pub fn geo_near_input(tables: &Tables<'_>, meta: &CollectionMeta, pipeline: &mut Vec<Document>, vars: &Vars) -> CmdResult<Vec<Document>> {
    let stage = pipeline.remove(0);
    let spec = stage.get("$geoNear").cloned().unwrap_or(Bson::Null);
    let geo_near = GeoNear::parse(&spec)?;
    let key = geo_index::geo_near_key(meta, geo_near.key.as_deref())?;
    let query = super::let_vars::bind_filter(geo_near.query.clone(), Some(vars));
    if djongo_engine::geo::find_near(&query)?.is_some() {
        return Err(crate::error::CommandError::bad_value("$geoNear query must not contain $near or $nearSphere"));
    }
    // With a maxDistance the key's index narrows the scan, as for $near.
    let query = match geo_near.near.max {
        Some(max) => {
            let (x, y) = (geo_near.near.point.x(), geo_near.near.point.y());
            let band = if geo_near.near.radians {
                doc! {"$nearSphere": [x, y], "$maxDistance": max}
            } else {
                doc! {"$nearSphere": {"$geometry": {"type": "Point", "coordinates": [x, y]}, "$maxDistance": max}}
            };
            doc! {"$and": [query, {key.as_str(): band}]}
        }
        None => query,
    };
    let docs = plan::find(tables, meta, &plan::Query::filter(&query))?;
    Ok(geo_near.apply(&key, docs)?)
}
