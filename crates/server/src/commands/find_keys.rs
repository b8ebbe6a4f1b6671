//! `find`'s `returnKey` and `showRecordId`.
//!
//! - `returnKey: true` answers, for each document, only the key it has in
//!   the index the query uses: `{_id: ...}` for the `_id` index, the fields
//!   of a secondary index, or `{}` when no index serves the query (a
//!   collection scan), as mongod answers. The index is the one the filter
//!   constrains (on `_id`, or on an index's leading field), else the one
//!   the sort's first field leads.
//! - `showRecordId: true` adds `$recordId`. Documents here are stored by
//!   their `_id`, as in a MongoDB clustered collection, so the record id is
//!   the `_id` value.
use super::Ctx;
use crate::catalog::CollectionMeta;
use crate::error::CmdResult;
use bson::{doc, Bson, Document};

/// The key pattern of the index a query on `filter` sorted by `sort` uses.
fn index_used(meta: &CollectionMeta, filter: &Document, sort: Option<&Document>) -> Option<Document> {
    let constrains = |field: &str| filter.contains_key(field);
    let sorts_by = |field: &str| sort.and_then(|s| s.keys().next()).is_some_and(|k| k == field);
    if constrains("_id") {
        return Some(doc! {"_id": 1});
    }
    if let Some(ix) = meta.indexes.iter().find(|ix| ix.partial.is_none() && ix.fields().next().is_some_and(constrains)) {
        return Some(ix.key.clone());
    }
    if sorts_by("_id") {
        return Some(doc! {"_id": 1});
    }
    meta.indexes.iter().find(|ix| ix.partial.is_none() && ix.fields().next().is_some_and(sorts_by)).map(|ix| ix.key.clone())
}

/// The value at a dotted path (null when missing), as an index key holds it.
fn key_value(doc: &Document, path: &str) -> Bson {
    let mut current = Bson::Document(doc.clone());
    for part in path.split('.') {
        current = match current {
            Bson::Document(d) => d.get(part).cloned().unwrap_or(Bson::Null),
            _ => return Bson::Null,
        };
    }
    current
}

/// Whether the find asks for index keys instead of documents.
pub fn returns_keys(body: &Document) -> bool {
    super::opt_bool(body, "returnKey")
}

/// Applies `returnKey` / `showRecordId` to a find's documents.
pub fn apply(ctx: &mut Ctx<'_>, body: &Document, coll: &str, filter: &Document, sort: Option<&Document>, docs: Vec<Document>) -> CmdResult<Vec<Document>> {
    if returns_keys(body) {
        let db = ctx.db.clone();
        let pattern = match ctx.scope.read()?.collection(&db, coll)? {
            Some(meta) => index_used(&meta, filter, sort),
            None => None,
        };
        return Ok(docs
            .iter()
            .map(|d| match &pattern {
                Some(p) => p.keys().map(|field| (field.clone(), key_value(d, field))).collect(),
                None => Document::new(),
            })
            .collect());
    }
    if super::opt_bool(body, "showRecordId") {
        return Ok(docs
            .into_iter()
            .map(|mut d| {
                let id = d.get("_id").cloned().unwrap_or(Bson::Null);
                d.insert("$recordId", id);
                d
            })
            .collect());
    }
    Ok(docs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::IndexSpec;

    #[test]
    fn the_index_a_query_uses() {
        let meta = CollectionMeta {
            db: "d".into(),
            name: "c".into(),
            id: 1,
            uuid: bson::Binary { subtype: bson::spec::BinarySubtype::Uuid, bytes: vec![0; 16] },
            options: doc! {},
            indexes: vec![IndexSpec::from_spec(1, &doc! {"key": {"a": 1, "b": -1}}).unwrap()].into(),
            next_index_id: 2,
            referenced_by: Default::default(),
            foreign_keys: Default::default(),
        };
        assert_eq!(index_used(&meta, &doc! {"_id": 3}, None), Some(doc! {"_id": 1}));
        assert_eq!(index_used(&meta, &doc! {"a": {"$gt": 1}}, None), Some(doc! {"a": 1, "b": -1}));
        assert_eq!(index_used(&meta, &doc! {}, Some(&doc! {"_id": 1})), Some(doc! {"_id": 1}));
        assert_eq!(index_used(&meta, &doc! {"x": 1}, None), None);
        assert_eq!(key_value(&doc! {"a": {"b": 2}}, "a.b"), Bson::Int32(2));
        assert_eq!(key_value(&doc! {}, "a"), Bson::Null);
    }
}
