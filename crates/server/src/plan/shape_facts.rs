//! What planning a query decides from its shape alone, kept so that a query
//! of a shape seen before is not analysed again (issue 18: a point read
//! spent a sixth of its engine time in `Prepared::new`).
//!
//! For a collection and a query shape (the filter without its values, the
//! sort's fields, the fields read), the facts are: which of the collection's
//! indexes the query may read at all, and which fields its plans decode
//! (for the caller, the filter and the sort) and check the filter on. None
//! of them depends on a value: what does (the bounds of each index, whether
//! an index is multikey, the filter to test) is still derived from every
//! query's own values and the transaction's own data.
//!
//! An entry is used only while it provably applies, so no DDL has to
//! remember to clear it:
//! - it is kept per collection UUID (a dropped and re-created collection
//!   has a new one), and records the ids of the indexes it was made for, in
//!   catalog order. Index ids are never reused and an index's key, options
//!   and collation never change under its id (collMod changes only its
//!   `hidden` and `expireAfterSeconds`, which these facts do not read), so
//!   the same ids mean the same indexes; any other list (an index created
//!   or dropped, since or in a transaction's older snapshot) is a miss, and
//!   the facts are derived again and replace it. (Names are compared too: two copies of one store
//!   opened in one process share UUIDs, and could number different indexes
//!   alike. Even then a stale entry could only change which indexes are
//!   tried, never an answer: every plan applies the whole filter.)
//! - it records the field paths the filter's conditions name, which the
//!   index choice reads; a query whose paths differ is a miss;
//! - a filter whose shape does not name every field it reads (`$expr`
//!   names them inside values; nesting deeper than the shape records) is
//!   never cached.
use super::predicates::Predicates;
use super::Query;
use crate::catalog::CollectionMeta;
use parking_lot::Mutex;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock};

/// Entries over every collection; past it the cache starts again empty (as
/// `CollectionMeta::from_stored`'s does): a workload has far fewer shapes.
const CAPACITY: usize = 4096;

/// What `Prepared::new` derives from a query's shape.
#[derive(Debug)]
pub(super) struct ShapeFacts {
    /// Per index of the collection (catalog order), whether the query may
    /// read it: its first field is filtered or sorted on (or it is a
    /// wildcard index covering a filtered path), and it is not collated.
    pub relevant: Vec<bool>,
    /// The fields a plan decodes (`None`: all of them).
    pub decode: Option<Arc<HashSet<String>>>,
    /// The top-level fields the filter reads (`None`: unknown).
    pub filter_fields: Option<Arc<HashSet<String>>>,
}

struct Entry {
    /// The collection's indexes (id and name) when the facts were made.
    indexes: Vec<(u32, String)>,
    paths: Vec<String>,
    facts: Arc<ShapeFacts>,
}

#[derive(Default)]
struct Inner {
    /// Per collection UUID, per shape key.
    collections: HashMap<Vec<u8>, HashMap<String, Entry>>,
    len: usize,
}

fn cache() -> &'static Mutex<Inner> {
    static CACHE: OnceLock<Mutex<Inner>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(Inner::default()))
}

/// The key of a query's facts, `None` when they are not cached: a hint
/// decides the indexes itself, and a shape that leaves out fields the
/// filter reads cannot stand for it.
fn key(query: &Query) -> Option<String> {
    if query.hint.is_some() {
        return None;
    }
    let mut text = String::with_capacity(64);
    super::cache::filter_shape_into(&query.filter, &mut text);
    if !super::cache::names_every_field(&text) {
        return None;
    }
    // Names are data: length-prefixed, so none can imitate a separator.
    text.push_str("|s");
    for k in query.sort.iter().flat_map(|s| s.keys()) {
        super::cache::push_name(&mut text, k);
    }
    text.push_str("|p");
    match &query.fields {
        Some(fields) => {
            for f in fields {
                super::cache::push_name(&mut text, f);
            }
        }
        None => text.push('*'),
    }
    Some(text)
}

fn indexes_match(meta: &CollectionMeta, indexes: &[(u32, String)]) -> bool {
    meta.indexes.len() == indexes.len() && meta.indexes.iter().zip(indexes).all(|(ix, (id, name))| ix.id == *id && ix.name == *name)
}

fn paths_match(preds: &Predicates, paths: &[String]) -> bool {
    preds.fields.len() == paths.len() && preds.fields.iter().zip(paths).all(|((p, _), q)| p == q)
}

/// The facts of `query` on `meta`, from the cache when an entry applies,
/// else from `derive` (and then kept).
pub(super) fn facts(meta: &CollectionMeta, query: &Query, preds: &Predicates, derive: impl FnOnce() -> ShapeFacts) -> Arc<ShapeFacts> {
    let Some(key) = key(query) else {
        return Arc::new(derive());
    };
    {
        let inner = cache().lock();
        let found = inner.collections.get(meta.uuid.bytes.as_slice()).and_then(|c| c.get(&key));
        if let Some(entry) = found.filter(|e| indexes_match(meta, &e.indexes) && paths_match(preds, &e.paths)) {
            return entry.facts.clone();
        }
    }
    let facts = Arc::new(derive());
    let entry = Entry {
        indexes: meta.indexes.iter().map(|ix| (ix.id, ix.name.clone())).collect(),
        paths: preds.fields.iter().map(|(p, _)| p.clone()).collect(),
        facts: facts.clone(),
    };
    let mut inner = cache().lock();
    if inner.len >= CAPACITY {
        *inner = Inner::default();
    }
    let previous = inner.collections.entry(meta.uuid.bytes.clone()).or_default().insert(key, entry);
    if previous.is_none() {
        inner.len += 1;
    }
    facts
}
