//! Choosing candidate documents for a filter: a point lookup on `_id`, an
//! equality lookup on the leading fields of an index, or a full collection
//! scan. The engine's `Filter` always has the last word, so a plan only has
//! to return a superset of the matching documents.
use crate::catalog::{CollectionMeta, IndexSpec};
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
    let best = meta
        .indexes
        .iter()
        .filter_map(|ix| equality_prefix(ix, filter).map(|(keys, covered)| (ix, keys, covered)))
        .max_by_key(|(ix, _, covered)| (*covered, ix.unique && *covered == ix.key.len()));
    if let Some((ix, keys, covered)) = best {
        let whole_key = covered == ix.key.len();
        let mut ids: Vec<Vec<u8>> = Vec::new();
        for key in keys {
            ids.extend(tables.index_lookup(meta, ix, &key, whole_key)?);
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

/// Lookups on `ix` that find every document `filter` can match: the encoded
/// values of the longest run of leading index fields that `filter` compares
/// for equality (one key per combination of `$in` values), and how many
/// fields that run covers. None when the index cannot serve the filter.
fn equality_prefix(ix: &IndexSpec, filter: &Document) -> Option<(Vec<Vec<u8>>, usize)> {
    let mut combos: Vec<(Vec<u8>, Document)> = vec![(Vec::new(), Document::new())];
    let mut covered = 0;
    for field in ix.fields() {
        let Some(values) = filter.get(field).and_then(equality_values) else { break };
        if combos.len() * values.len() > MAX_LOOKUPS {
            break;
        }
        combos = combos
            .iter()
            .flat_map(|(key, sample)| {
                values.iter().map(move |v| {
                    let mut key = key.clone();
                    keyenc::encode(v, &mut key);
                    let mut sample = sample.clone();
                    sample.insert(field, v.clone());
                    (key, sample)
                })
            })
            .collect();
        covered += 1;
    }
    if covered == 0 {
        return None;
    }
    if let Some(partial) = &ix.partial {
        let samples: Vec<&Document> = combos.iter().map(|(_, sample)| sample).collect();
        if !partial_admits_all(partial, &samples) {
            return None;
        }
    }
    Some((combos.into_iter().map(|(key, _)| key).collect(), covered))
}

/// At most this many point lookups for one filter; past it a scan is cheaper.
const MAX_LOOKUPS: usize = 1000;

/// Whether a partial index holds every document whose indexed fields have
/// the values of `samples`, so that an equality lookup on it misses none.
///
/// True only for the partial filters MongoDB accepts (equality, `$exists:
/// true`, `$gt`/`$gte`/`$lt`/`$lte`, `$type`) on plain fields the lookup
/// fixes: each of them holds for an array containing a value whenever it
/// holds for the value itself, so trying the values alone is enough.
/// Unique constraints that allow many NULLs are such indexes:
/// `{f: {$type: [every type but null]}}`.
fn partial_admits_all(partial: &Document, samples: &[&Document]) -> bool {
    const OPERATORS: &[&str] = &["$eq", "$gt", "$gte", "$lt", "$lte", "$type", "$exists"];
    let Some(fixed) = samples.first() else { return false };
    let simple = partial.iter().all(|(field, condition)| {
        !field.starts_with('$')
            && !field.contains('.')
            && fixed.contains_key(field)
            && match condition {
                Bson::Document(ops) => ops.iter().all(|(op, value)| {
                    OPERATORS.contains(&op.as_str()) && (op != "$exists" || matches!(value, Bson::Boolean(true)))
                }),
                _ => true,
            }
    });
    simple && samples.iter().all(|sample| partial_admits(partial, sample))
}

fn partial_admits(partial: &Document, sample: &Document) -> bool {
    Filter::parse(partial).and_then(|f| f.matches(sample)).unwrap_or(false)
}

/// Whether `filter` is served by point lookups (on `_id` or an index)
/// rather than a scan of the whole collection.
pub fn uses_index(meta: &CollectionMeta, filter: &Document) -> bool {
    filter.get("_id").and_then(equality_values).is_some() || meta.indexes.iter().any(|ix| equality_prefix(ix, filter).is_some())
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

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    fn index(spec: Document) -> IndexSpec {
        IndexSpec::from_spec(1, &spec).unwrap()
    }

    #[test]
    fn a_compound_index_serves_equality_on_its_leading_fields() {
        let gridfs_chunks = index(doc! {"key": {"files_id": 1, "n": 1}, "name": "files_id_1_n_1", "unique": true});
        let (keys, covered) = equality_prefix(&gridfs_chunks, &doc! {"files_id": 7, "n": 2}).unwrap();
        assert_eq!((keys, covered), (vec![keyenc::encode_key(&[Bson::Int32(7), Bson::Int32(2)])], 2));
        let (keys, covered) = equality_prefix(&gridfs_chunks, &doc! {"files_id": 7, "n": {"$gte": 2}}).unwrap();
        assert_eq!((keys, covered), (vec![keyenc::encode_one(&Bson::Int32(7))], 1));
        assert!(equality_prefix(&gridfs_chunks, &doc! {"n": 2}).is_none());
        let (keys, _) = equality_prefix(&gridfs_chunks, &doc! {"files_id": {"$in": [1, 2]}, "n": {"$in": [0, 1, 2]}}).unwrap();
        assert_eq!(keys.len(), 6);
    }

    #[test]
    fn a_partial_index_serves_only_values_its_filter_admits() {
        // Django's unique-but-many-NULLs constraint.
        let not_null = index(doc! {"key": {"id": 1}, "name": "pk", "unique": true,
            "partialFilterExpression": {"id": {"$type": ["int", "long", "double", "string"]}}});
        assert!(equality_prefix(&not_null, &doc! {"id": 5}).is_some());
        assert!(equality_prefix(&not_null, &doc! {"id": {"$in": [5, "x"]}}).is_some());
        assert!(equality_prefix(&not_null, &doc! {"id": true}).is_none());
        let above = index(doc! {"key": {"a": 1}, "name": "a", "partialFilterExpression": {"a": {"$gt": 10}}});
        assert!(equality_prefix(&above, &doc! {"a": 11}).is_some());
        assert!(equality_prefix(&above, &doc! {"a": {"$in": [11, 3]}}).is_none());
        // Conditions on other fields, or that an array can fail while its element passes.
        let other = index(doc! {"key": {"a": 1}, "name": "a", "partialFilterExpression": {"b": {"$exists": true}}});
        assert!(equality_prefix(&other, &doc! {"a": 1, "b": 1}).is_none());
        let negated = index(doc! {"key": {"a": 1}, "name": "a", "partialFilterExpression": {"a": {"$ne": 5}}});
        assert!(equality_prefix(&negated, &doc! {"a": 3}).is_none());
    }
}
