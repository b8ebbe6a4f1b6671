//! 2dsphere indexes: which fields are geo fields, the keys a document gives
//! them (validating its GeoJSON, as mongod refuses a write it cannot index),
//! and which index answers `$near`/`$nearSphere`/`$geoNear`.
//!
//! An entry's key is the quadtree cell enclosing the shape
//! (`djongo_engine::geo::cells`). A geo predicate on an index's first field
//! becomes a scan of the cells covering the predicate's bounding box (and
//! their ancestors); the documents found are then tested exactly.
use crate::catalog::{CollectionMeta, IndexSpec};
use crate::error::{CmdResult, CommandError};
use crate::keyenc::{encode_one, prefix_end};
use crate::plan::bounds::{KeySpan, ScanBounds};
use bson::{Bson, Document};
use djongo_engine::geo::{cells, shape};

pub const TWO_D_SPHERE: &str = "2dsphere";
/// The 2dsphere index version djongo's engine writes (MongoDB 3.2+).
pub const INDEX_VERSION: i32 = 3;

pub fn is_geo_direction(dir: &Bson) -> bool {
    matches!(dir, Bson::String(s) if s == TWO_D_SPHERE)
}

pub fn is_geo_index(ix: &IndexSpec) -> bool {
    ix.key.values().any(is_geo_direction)
}

/// The keys of one geo field of `doc`: one cell per shape (an array of
/// shapes gives several). `None` when the field is missing or null.
pub fn field_keys(doc: &Document, field: &str) -> CmdResult<Option<Vec<Bson>>> {
    let path = djongo_engine::path::split(field);
    let mut keys = Vec::new();
    let mut present = false;
    for value in djongo_engine::path::query_values(doc, &path).into_iter().flatten() {
        let shapes: Vec<&Bson> = match value {
            Bson::Null | Bson::Undefined => continue,
            Bson::Array(items) if shape::legacy_point(items).ok().flatten().is_none() => items.iter().collect(),
            other => vec![other],
        };
        for s in shapes {
            present = true;
            let parsed = shape::parse_indexed(s).map_err(|reason| cant_extract(doc, &reason))?;
            keys.push(Bson::Int64(cells::enclosing_cell(&parsed.geometry)));
        }
    }
    Ok(present.then_some(keys))
}

fn cant_extract(doc: &Document, reason: &str) -> CommandError {
    CommandError::new(
        16755,
        "Location16755",
        format!("Can't extract geo keys: {}  {reason}", crate::index::shell_repr(&Bson::Document(doc.clone()))),
    )
}

/// The 2dsphere field that answers a `$near` on `field`: error 291 when the
/// collection has none, as mongod's planner reports it.
pub fn require_near_index(meta: &CollectionMeta, field: &str) -> CmdResult<()> {
    let indexed = meta.indexes.iter().any(|ix| !ix.is_hidden() && ix.key.get(field).is_some_and(is_geo_direction));
    if indexed {
        return Ok(());
    }
    Err(CommandError::new(
        291,
        "NoQueryExecutionPlans",
        format!(
            "error processing query: ns={} Tree: GEONEAR field={field}\n planner returned error :: caused by :: unable to find index for $geoNear query",
            meta.ns()
        ),
    ))
}

/// The field `$geoNear` measures: its `key`, which must be a 2dsphere
/// field, or the collection's only one.
pub fn geo_near_key(meta: &CollectionMeta, key: Option<&str>) -> CmdResult<String> {
    let fields: Vec<&str> = meta
        .indexes
        .iter()
        .filter(|ix| !ix.is_hidden())
        .flat_map(|ix| ix.key.iter().filter(|(_, d)| is_geo_direction(d)).map(|(f, _)| f.as_str()))
        .collect();
    match key {
        Some(k) if fields.contains(&k) => Ok(k.to_string()),
        Some(k) => Err(CommandError::new(
            27,
            "IndexNotFound",
            format!("$geoNear requires a 2d or 2dsphere index on key '{k}', but none was found"),
        )),
        None => match fields.as_slice() {
            [] => Err(CommandError::new(27, "IndexNotFound", "$geoNear requires a 2d or 2dsphere index, but none were found")),
            [one] => Ok(one.to_string()),
            _ => Err(CommandError::new(
                27,
                "IndexNotFound",
                format!("There is more than one 2dsphere index on {}; unsure which to use for $geoNear", meta.ns()),
            )),
        },
    }
}

/// The bounds of a scan of geo index `ix` for `filter`: the cell ranges
/// covering the box of a geo predicate on the index's first field, or an
/// unused (whole-index) scan when there is none. Never exact: the shapes
/// found are tested against the predicate afterwards.
pub fn scan_bounds(ix: &IndexSpec, filter: &Document) -> CmdResult<ScanBounds> {
    let Some((field, dir)) = ix.key.iter().next() else { return Ok(ScanBounds::unbounded()) };
    if !is_geo_direction(dir) {
        return Ok(ScanBounds::unbounded());
    }
    let Some(region) = djongo_engine::geo::region_of(filter, field)? else {
        return Ok(ScanBounds::unbounded());
    };
    let ranges = cells::covering_ranges(region);
    let spans: Vec<KeySpan> = ranges
        .iter()
        .map(|(lo, hi)| KeySpan { lo: encode_one(&Bson::Int64(*lo)), hi: prefix_end(&encode_one(&Bson::Int64(*hi))) })
        .collect();
    let label = match region {
        Some(r) => format!(
            "{} quadtree cell ranges covering [{}, {}] x [{}, {}]",
            ranges.len(),
            r.min().x,
            r.max().x,
            r.min().y,
            r.max().y
        ),
        None => "[MinKey, MaxKey] (unbounded geo predicate)".to_string(),
    };
    let mut labels = Document::new();
    for (f, _) in ix.key.iter() {
        labels.insert(f.clone(), vec![Bson::String(if f == field { label.clone() } else { "[MinKey, MaxKey]".to_string() })]);
    }
    Ok(ScanBounds { spans, single_value_fields: 0, used_fields: 1, exact: false, whole_keys: false, labels: labels.into() })
}
