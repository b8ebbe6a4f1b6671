//! Choosing candidate documents for a filter: a point lookup on `_id`, an
//! equality lookup on a single-field index, or a full collection scan. The
//! engine's `Filter` always has the last word, so a plan only has to return
//! a superset of the matching documents.
use crate::catalog::CollectionMeta;
use crate::error::CmdResult;
use crate::keyenc;
use crate::storage::Tables;
use bson::{Bson, Document};
use djongo_engine::Filter;

/// Values an equality predicate on one field can take, if the predicate is
/// a plain equality (`{f: v}`, `{f: {$eq: v}}`, `{f: {$in: [...]}}`) whose
/// values are simple scalars.
fn equality_values(pred: &Bson) -> Option<Vec<Bson>> {
    let scalar = |v: &Bson| {
        matches!(
            v,
            Bson::String(_) | Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) | Bson::ObjectId(_) | Bson::Boolean(_) | Bson::DateTime(_) | Bson::Binary(_)
        )
    };
    match pred {
        Bson::Document(d) => {
            if d.len() != 1 {
                return None;
            }
            match (d.keys().next().map(String::as_str), d.values().next()) {
                (Some("$eq"), Some(v)) if scalar(v) => Some(vec![v.clone()]),
                (Some("$in"), Some(Bson::Array(items))) if items.iter().all(scalar) && items.len() <= 1000 => Some(items.clone()),
                _ => None,
            }
        }
        v if scalar(v) => Some(vec![v.clone()]),
        _ => None,
    }
}

/// Documents of `meta` that may match `filter`, in `_id` order for scans.
fn candidates(tables: &Tables<'_>, meta: &CollectionMeta, filter: &Document) -> CmdResult<Vec<Document>> {
    if let Some(values) = filter.get("_id").and_then(equality_values) {
        let mut out = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for v in values {
            let key = keyenc::encode_one(&v);
            if seen.insert(key.clone()) {
                if let Some(d) = tables.get_by_id_key(meta, &key)? {
                    out.push(d);
                }
            }
        }
        return Ok(out);
    }
    for ix in &meta.indexes {
        if ix.key.len() != 1 || ix.sparse || ix.partial.is_some() {
            continue;
        }
        let Some(field) = ix.fields().next() else { continue };
        let Some(values) = filter.get(field).and_then(equality_values) else { continue };
        let mut ids: Vec<Vec<u8>> = Vec::new();
        for v in values {
            ids.extend(tables.index_lookup(meta, ix, &keyenc::encode_one(&v))?);
        }
        // Keep scan order (by _id) and drop duplicates from multikey entries.
        ids.sort();
        ids.dedup();
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(d) = tables.get_by_id_key(meta, &id)? {
                out.push(d);
            }
        }
        return Ok(out);
    }
    tables.scan(meta)
}

/// The documents of `meta` matching `filter`, stopping after `limit` matches.
pub fn matching(tables: &Tables<'_>, meta: &CollectionMeta, filter: &Document, limit: Option<usize>) -> CmdResult<Vec<Document>> {
    let parsed = Filter::parse(filter)?;
    let mut out = Vec::new();
    for doc in candidates(tables, meta, filter)? {
        if limit.is_some_and(|l| out.len() >= l) {
            break;
        }
        if filter.is_empty() || parsed.matches(&doc)? {
            out.push(doc);
        }
    }
    Ok(out)
}
