//! Proximity queries: a find with `$near`/`$nearSphere` (results nearest
//! first) and an aggregate that starts with `$geoNear`. Both need a 2dsphere
//! index on the field, as in MongoDB; the shapes themselves are measured by
//! `djongo_engine::geo`.
use crate::catalog::CollectionMeta;
use crate::error::{CmdResult, CommandError};
use crate::geo_index;
use crate::plan;
use crate::storage::Tables;
use bson::{doc, Bson, Document};
use djongo_engine::expr::Vars;
use djongo_engine::geo::{near_stage, GeoNear, Near};
use djongo_engine::sort::SortSpec;

/// A read whose filter has a `$near` (a find, and the documents an update,
/// a delete, a findAndModify or a count acts on): the matching documents
/// ordered by distance (a `sort` given with it orders them again, stably),
/// then skipped and limited. As in mongod, the field needs a 2dsphere index
/// (291 otherwise), and neither `$text` nor a `$natural` sort or hint can
/// go with it (2, query/canonical_query.cpp).
pub fn nearest_first(tables: &Tables<'_>, meta: &CollectionMeta, field: &str, near: &Near, query: &plan::Query) -> CmdResult<Vec<Document>> {
    check_near_query(meta, field, query)?;
    let all = plan::Query { filter: query.filter.clone(), any_order: true, ..plan::Query::default() };
    let prep = plan::Prepared::new(tables, meta, &all)?;
    let docs = plan::run(tables, &prep, |exec| exec.collect_documents())?;
    let path = djongo_engine::path::split(field);
    let mut measured: Vec<(f64, Document)> = docs
        .into_iter()
        .map(|d| (near_stage::nearest(near, &d, &path).map_or(f64::INFINITY, |(m, _)| m), d))
        .collect();
    measured.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut docs: Vec<Document> = measured.into_iter().map(|(_, d)| d).collect();
    if let Some(s) = query.sort.as_ref() {
        SortSpec::parse(s)?.sort(&mut docs);
    }
    let mut docs: Vec<Document> = docs.into_iter().skip(query.skip).collect();
    if let Some(limit) = query.limit {
        docs.truncate(limit);
    }
    Ok(docs)
}

/// What mongod checks of a query with `$near` before planning it.
pub fn check_near_query(meta: &CollectionMeta, field: &str, query: &plan::Query) -> CmdResult<()> {
    if crate::text::search::TextFilter::split(&query.filter)?.is_some() {
        return Err(CommandError::bad_value("text and geoNear not allowed in same query"));
    }
    if query.sort.as_ref().is_some_and(|s| s.contains_key("$natural")) {
        return Err(CommandError::bad_value("geoNear expression not allowed with $natural sort order"));
    }
    if matches!(&query.hint, Some(Bson::Document(h)) if h.contains_key("$natural")) {
        return Err(CommandError::bad_value("geoNear expression not allowed with $natural hint"));
    }
    geo_index::require_near_index(meta, field)
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
    // mongod parses `query` without proximity operators (5626500).
    djongo_engine::geo::refuse_near(&query)?;
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
