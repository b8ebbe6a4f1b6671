//! The plan cache: which plan won a query shape's trial, so that the next
//! query of that shape runs it alone (MongoDB's classic plan cache).
//!
//! A query's *shape* is its filter without the values (the fields, the
//! operators and each value's type class), its sort, the fields it reads,
//! whether it has a skip or a limit and whether it wants `_id` order. For
//! each shape the cache remembers the winning plan (`PlanId`: the `_id`
//! plan, an index, or the collection scan) and the units of work its trial
//! took ("works"), following mongod's states:
//!
//! - no entry: the candidates are tried; the winner is recorded *inactive*;
//! - inactive: the candidates are tried again; a winner that took no more
//!   works than the entry becomes the *active* entry, otherwise the entry's
//!   works double (so a shape whose first trial was unusually cheap gets
//!   cached after a few runs);
//! - active: the cached plan runs alone. If it needs more than ten times
//!   the entry's works to produce the trial's batch (or fails), the entry
//!   is deactivated and the candidates are tried again (replanning).
//!
//! Only plans are cached, never results: a cached plan is rebuilt from the
//! current catalog and the query's own values, and every plan applies the
//! whole filter, so an entry can make a query slower but never wrong. A
//! cached index that no longer yields a candidate for this query (its
//! bounds or usability depend on values) is simply a miss.
//!
//! Entries live per collection (by its UUID), and a collection's entries
//! are dropped when its indexes or its name change (the catalog
//! fingerprint), when it is dropped, and by `planCacheClear`. Both levels
//! are bounded and evict their least recently used member.
use crate::catalog::CollectionMeta;
use bson::{doc, Bson, Document};
use parking_lot::Mutex;
use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::hash::{Hash, Hasher};
use std::sync::OnceLock;

/// A cached plan replans when it needs more than this many times the
/// works its entry recorded (mongod's `internalQueryCacheEvictionRatio`).
pub const EVICTION_RATIO: u64 = 10;
/// An inactive entry's works grow by this factor when a trial does worse
/// (mongod's `internalQueryCacheWorksGrowthCoefficient`).
const WORKS_GROWTH: u64 = 2;
/// Entries per collection (mongod's former `internalQueryCacheSize`).
pub const MAX_ENTRIES_PER_COLLECTION: usize = 5000;
/// Collections with a cache at once.
const MAX_COLLECTIONS: usize = 64;

/// Which candidate a cache entry names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PlanId {
    /// Reading the documents by `_id` (lookups, ranges or `_id` order).
    Id,
    /// A scan of the index with this id.
    Index(u32),
    /// A collection scan.
    Collection,
}

/// A query's shape, with the hashes explain shows for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    text: String,
}

impl Shape {
    /// `queryHash` (`planCacheShapeHash` since 8.0): the shape alone.
    pub fn query_hash(&self) -> String {
        short_hash(&self.text)
    }

    /// `planCacheKey`: the shape and the indexes that could answer it.
    pub fn plan_cache_key(&self, meta: &CollectionMeta) -> String {
        short_hash(&(fingerprint(meta), &self.text))
    }
}

fn short_hash(v: &impl Hash) -> String {
    let mut h = DefaultHasher::new();
    v.hash(&mut h);
    let n = h.finish();
    format!("{:08X}", (n ^ (n >> 32)) as u32)
}

/// What the shape of a query is made of.
pub struct ShapeParts<'q> {
    pub filter: &'q Document,
    pub sort: Option<&'q Document>,
    /// The fields read (sorted), `None` for all.
    pub fields: Option<Vec<&'q str>>,
    pub skip: bool,
    pub limit: bool,
    pub id_order: bool,
}

impl ShapeParts<'_> {
    pub fn shape(&self) -> Shape {
        let mut text = String::with_capacity(64);
        filter_shape(self.filter, &mut text, 0);
        text.push_str("|s");
        if let Some(sort) = self.sort {
            for (k, v) in sort {
                let _ = write!(text, "{k}:");
                value_shape(v, &mut text);
                text.push(',');
            }
        }
        text.push_str("|p");
        match &self.fields {
            Some(fields) => {
                for f in fields {
                    text.push_str(f);
                    text.push(',');
                }
            }
            None => text.push('*'),
        }
        let _ = write!(
            text,
            "|{}{}{}",
            u8::from(self.skip),
            u8::from(self.limit),
            u8::from(self.id_order)
        );
        Shape { text }
    }
}

/// The filter's shape (the part of a query's shape it makes), for other
/// caches keyed by it (`shape_facts`).
pub(super) fn filter_shape_into(filter: &Document, out: &mut String) {
    filter_shape(filter, out, 0);
}

/// Whether a filter shape names every field its filter reads: not when an
/// `$expr` names them inside its values, or when nesting was cut off.
/// (A field name holding either spelling only costs a miss.)
pub(super) fn names_every_field(shape: &str) -> bool {
    !shape.contains("5:$expr=") && !shape.contains(DEPTH_MARKER)
}

/// What stands for a filter nested deeper than the shape records.
const DEPTH_MARKER: char = '~';

/// Appends `name` as `<length>:<name>` (what `write!` would give, without
/// the formatting machinery: shapes are made for every query).
pub(super) fn push_name(out: &mut String, name: &str) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut n = name.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend(digits[at..].iter().map(|&d| char::from(d)));
    out.push(':');
    out.push_str(name);
}

/// Nesting deeper than this is written as one opaque marker (the filter
/// parser has already bounded it; this keeps the walk bounded on its own).
const MAX_SHAPE_DEPTH: usize = 64;

/// The filter without its values: field names, operators, and for each
/// value its type class (bounds depend on it: numbers, strings, null,
/// arrays... read different key ranges).
fn filter_shape(filter: &Document, out: &mut String, depth: usize) {
    if depth > MAX_SHAPE_DEPTH {
        out.push(DEPTH_MARKER);
        return;
    }
    out.push('{');
    for (k, v) in filter {
        // Field names are data: length-prefixed, so no name can imitate the
        // separators around it.
        push_name(out, k);
        out.push('=');
        match v {
            Bson::Array(items) if k == "$in" || k == "$nin" || k == "$all" => {
                // The number of values is not part of the shape; the kinds are.
                let mut kinds: Vec<char> = items.iter().map(type_class).collect();
                kinds.sort_unstable();
                kinds.dedup();
                out.push('[');
                out.extend(kinds);
                out.push(']');
            }
            Bson::Array(items) if k.starts_with('$') => {
                out.push('[');
                for item in items {
                    match item {
                        Bson::Document(d) => filter_shape(d, out, depth + 1),
                        other => value_shape(other, out),
                    }
                }
                out.push(']');
            }
            Bson::Document(d)
                if k.starts_with('$') || d.keys().next().is_some_and(|f| f.starts_with('$')) =>
            {
                filter_shape(d, out, depth + 1)
            }
            other => value_shape(other, out),
        }
        out.push(',');
    }
    out.push('}');
}

fn value_shape(v: &Bson, out: &mut String) {
    out.push(type_class(v));
}

/// One character per BSON type, numbers sharing one (they compare, and are
/// bounded, as one type).
fn type_class(v: &Bson) -> char {
    match v {
        Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) | Bson::Decimal128(_) => 'n',
        other => char::from(b'a' + (other.element_type() as u8 % 26)),
    }
}

/// The collection's catalog as far as plans depend on it: its namespace
/// and its indexes (ids change when an index is dropped and created again;
/// hiding one changes what may be used).
fn fingerprint(meta: &CollectionMeta) -> u64 {
    let mut h = DefaultHasher::new();
    meta.db.hash(&mut h);
    meta.name.hash(&mut h);
    for ix in meta.indexes.iter() {
        ix.id.hash(&mut h);
        ix.name.hash(&mut h);
        ix.is_hidden().hash(&mut h);
    }
    h.finish()
}

/// Makes room in a full map: a linear search is fine at these bounds (a
/// member is evicted only when a new one arrives past the limit).
fn remove_least_recent<K: Clone + Eq + Hash, V>(map: &mut HashMap<K, V>, last_used: impl Fn(&V) -> u64) {
    if let Some(oldest) = map.iter().min_by_key(|(_, v)| last_used(v)).map(|(k, _)| k.clone()) {
        map.remove(&oldest);
    }
}

struct Entry {
    plan: PlanId,
    works: u64,
    active: bool,
    last_used: u64,
    query_hash: String,
    plan_cache_key: String,
    created_from: Document,
    cached_plan: Document,
}

struct CollectionCache {
    fingerprint: u64,
    entries: HashMap<String, Entry>,
    last_used: u64,
}

struct Inner {
    collections: HashMap<Vec<u8>, CollectionCache>,
    tick: u64,
}

/// The plan caches of every collection this process serves.
pub struct PlanCache {
    inner: Mutex<Inner>,
    max_entries: usize,
    max_collections: usize,
}

/// What a trial learned, for the cache to record.
pub struct TrialOutcome {
    pub plan: PlanId,
    pub works: u64,
}

impl PlanCache {
    pub fn new(max_entries: usize, max_collections: usize) -> PlanCache {
        PlanCache {
            inner: Mutex::new(Inner {
                collections: HashMap::new(),
                tick: 0,
            }),
            max_entries,
            max_collections,
        }
    }

    /// The process's cache.
    pub fn global() -> &'static PlanCache {
        static CACHE: OnceLock<PlanCache> = OnceLock::new();
        CACHE.get_or_init(|| PlanCache::new(MAX_ENTRIES_PER_COLLECTION, MAX_COLLECTIONS))
    }

    /// The collection's entries, emptied if its catalog changed since they
    /// were made (mongod clears a collection's cache on index changes).
    fn collection<'i>(
        &self,
        inner: &'i mut Inner,
        meta: &CollectionMeta,
        create: bool,
    ) -> Option<&'i mut CollectionCache> {
        inner.tick += 1;
        let tick = inner.tick;
        let print = fingerprint(meta);
        if !inner.collections.contains_key(&meta.uuid.bytes) {
            if !create {
                return None;
            }
            if inner.collections.len() >= self.max_collections {
                remove_least_recent(&mut inner.collections, |c| c.last_used);
            }
            inner.collections.insert(
                meta.uuid.bytes.clone(),
                CollectionCache {
                    fingerprint: print,
                    entries: HashMap::new(),
                    last_used: tick,
                },
            );
        }
        let c = inner.collections.get_mut(&meta.uuid.bytes)?;
        if c.fingerprint != print {
            c.fingerprint = print;
            c.entries.clear();
        }
        c.last_used = tick;
        Some(c)
    }

    /// The active entry's plan and works for `shape`, if there is one.
    pub fn active(&self, meta: &CollectionMeta, shape: &Shape) -> Option<(PlanId, u64)> {
        let mut inner = self.inner.lock();
        let tick = inner.tick + 1;
        let c = self.collection(&mut inner, meta, false)?;
        let e = c.entries.get_mut(&shape.text).filter(|e| e.active)?;
        e.last_used = tick;
        Some((e.plan, e.works))
    }

    /// The plan of the active entry for `shape`, without counting it as a use
    /// (explain's `isCached`).
    pub fn peek_active(&self, meta: &CollectionMeta, shape: &Shape) -> Option<PlanId> {
        let inner = self.inner.lock();
        let c = inner
            .collections
            .get(&meta.uuid.bytes)
            .filter(|c| c.fingerprint == fingerprint(meta))?;
        c.entries
            .get(&shape.text)
            .filter(|e| e.active)
            .map(|e| e.plan)
    }

    /// A cached plan did much worse than its entry said: the entry goes back
    /// to inactive (keeping its works), and the next trials decide again.
    pub fn deactivate(&self, meta: &CollectionMeta, shape: &Shape) {
        let mut inner = self.inner.lock();
        if let Some(c) = self.collection(&mut inner, meta, false) {
            if let Some(e) = c.entries.get_mut(&shape.text) {
                e.active = false;
            }
        }
    }

    /// Records the winner of a trial of `shape`. `describe` gives the query
    /// and the plan as `$planCacheStats` shows them (called only when an
    /// entry is made or its plan replaced).
    pub fn record(
        &self,
        meta: &CollectionMeta,
        shape: &Shape,
        outcome: TrialOutcome,
        describe: impl FnOnce() -> (Document, Document),
    ) {
        let works = outcome.works.max(1);
        // Decided under the lock; the entry's description is built outside it.
        let active = {
            let mut inner = self.inner.lock();
            let tick = inner.tick + 1;
            let Some(c) = self.collection(&mut inner, meta, true) else {
                return;
            };
            let replace = match c.entries.get_mut(&shape.text) {
                None => Some(false),
                Some(e) if e.active => (works < e.works).then_some(true),
                Some(e) if works <= e.works => Some(true),
                Some(e) => {
                    e.works = e.works.saturating_mul(WORKS_GROWTH);
                    e.last_used = tick;
                    None
                }
            };
            let Some(active) = replace else {
                return;
            };
            active
        };
        let (created_from, cached_plan) = describe();
        let (query_hash, plan_cache_key) = (shape.query_hash(), shape.plan_cache_key(meta));
        let mut inner = self.inner.lock();
        let tick = inner.tick + 1;
        let max_entries = self.max_entries;
        let Some(c) = self.collection(&mut inner, meta, true) else {
            return;
        };
        if !c.entries.contains_key(&shape.text) && c.entries.len() >= max_entries {
            remove_least_recent(&mut c.entries, |e| e.last_used);
        }
        let entry = Entry {
            plan: outcome.plan,
            works,
            active,
            last_used: tick,
            query_hash,
            plan_cache_key,
            created_from,
            cached_plan,
        };
        c.entries.insert(shape.text.clone(), entry);
    }

    /// Drops a collection's entries (`planCacheClear`, a dropped collection).
    pub fn clear(&self, uuid: &[u8]) {
        self.inner.lock().collections.remove(uuid);
    }

    /// Drops the entries of one filter and sort, whatever their projection,
    /// skip, limit or order (`planCacheClear` with a query).
    pub fn clear_query(&self, meta: &CollectionMeta, filter: &Document, sort: Option<&Document>) {
        let parts = ShapeParts {
            filter,
            sort,
            fields: None,
            skip: false,
            limit: false,
            id_order: false,
        };
        let text = parts.shape().text;
        let Some(end) = text.find("|p") else {
            return;
        };
        let prefix = &text[..end + 2];
        let mut inner = self.inner.lock();
        if let Some(c) = self.collection(&mut inner, meta, false) {
            c.entries.retain(|k, _| !k.starts_with(prefix));
        }
    }

    /// The collection's entries as `$planCacheStats` shows them.
    pub fn stats(&self, meta: &CollectionMeta) -> Vec<Document> {
        let inner = self.inner.lock();
        let Some(c) = inner
            .collections
            .get(&meta.uuid.bytes)
            .filter(|c| c.fingerprint == fingerprint(meta))
        else {
            return Vec::new();
        };
        let mut entries: Vec<&Entry> = c.entries.values().collect();
        entries.sort_by_key(|e| std::cmp::Reverse(e.last_used));
        entries
            .into_iter()
            .map(|e| {
                doc! {
                    "version": "1",
                    "createdFromQuery": e.created_from.clone(),
                    "queryHash": &e.query_hash,
                    "planCacheShapeHash": &e.query_hash,
                    "planCacheKey": &e.plan_cache_key,
                    "isActive": e.active,
                    "works": e.works as i64,
                    "cachedPlan": e.cached_plan.clone(),
                    "indexFilterSet": false,
                }
            })
            .collect()
    }

    #[cfg(test)]
    fn len(&self, meta: &CollectionMeta) -> usize {
        self.inner
            .lock()
            .collections
            .get(&meta.uuid.bytes)
            .map_or(0, |c| c.entries.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::spec::BinarySubtype;
    use std::sync::Arc;

    #[test]
    fn names_are_written_with_their_length() {
        for len in [0usize, 1, 9, 10, 99, 100, 12345] {
            let name = "é".repeat(len / 2) + &"x".repeat(len % 2);
            let mut out = String::from("{");
            push_name(&mut out, &name);
            assert_eq!(out, format!("{{{}:{name}", name.len()));
        }
    }

    fn meta(uuid: u8) -> CollectionMeta {
        CollectionMeta {
            db: "d".into(),
            name: "c".into(),
            id: 1,
            uuid: bson::Binary {
                subtype: BinarySubtype::Uuid,
                bytes: vec![uuid; 16],
            },
            options: doc! {},
            indexes: Arc::new(Vec::new()),
            next_index_id: 1,
            referenced_by: Default::default(),
            foreign_keys: Default::default(),
        }
    }

    fn shape(filter: Document) -> Shape {
        ShapeParts {
            filter: &filter,
            sort: None,
            fields: None,
            skip: false,
            limit: true,
            id_order: true,
        }
        .shape()
    }

    fn outcome(plan: PlanId, works: u64) -> TrialOutcome {
        TrialOutcome { plan, works }
    }

    fn none() -> (Document, Document) {
        (Document::new(), Document::new())
    }

    #[test]
    fn values_do_not_change_the_shape_but_types_and_operators_do() {
        assert_eq!(shape(doc! {"a": 1}), shape(doc! {"a": 2.5}));
        assert_eq!(
            shape(doc! {"a": {"$in": [1, 2, 3]}}),
            shape(doc! {"a": {"$in": [7]}})
        );
        assert_ne!(shape(doc! {"a": 1}), shape(doc! {"a": "x"}));
        assert_ne!(shape(doc! {"a": 1}), shape(doc! {"a": {"$gt": 1}}));
        assert_ne!(shape(doc! {"a": 1}), shape(doc! {"b": 1}));
        assert_ne!(shape(doc! {"a": 1}), shape(doc! {"a": null}));
        // A field name cannot pass for the separators around it.
        assert_ne!(shape(doc! {"a=n,b": 1}), shape(doc! {"a": 1, "b": 1}));
        assert_eq!(shape(doc! {"a": 1}).query_hash().len(), 8);
    }

    #[test]
    fn an_entry_becomes_active_when_a_trial_does_no_worse() {
        let cache = PlanCache::new(10, 10);
        let m = meta(1);
        let s = shape(doc! {"a": 1});
        cache.record(&m, &s, outcome(PlanId::Index(1), 20), none);
        assert_eq!(cache.active(&m, &s), None);
        // Worse: stays inactive, its works doubling.
        cache.record(&m, &s, outcome(PlanId::Index(1), 30), none);
        assert_eq!(cache.active(&m, &s), None);
        cache.record(&m, &s, outcome(PlanId::Index(2), 40), none);
        assert_eq!(cache.active(&m, &s), Some((PlanId::Index(2), 40)));
        cache.deactivate(&m, &s);
        assert_eq!(cache.active(&m, &s), None);
        assert_eq!(cache.peek_active(&m, &s), None);
    }

    #[test]
    fn each_collection_keeps_a_bounded_number_of_entries() {
        let cache = PlanCache::new(3, 2);
        let m = meta(1);
        for i in 0..5 {
            let s = shape(doc! {format!("f{i}"): 1});
            cache.record(&m, &s, outcome(PlanId::Collection, 1), none);
            cache.record(&m, &s, outcome(PlanId::Collection, 1), none);
        }
        assert_eq!(cache.len(&m), 3);
        // The most recent shapes stay.
        assert!(cache.active(&m, &shape(doc! {"f4": 1})).is_some());
        assert!(cache.active(&m, &shape(doc! {"f0": 1})).is_none());
        // And a bounded number of collections.
        for u in 2..5 {
            cache.record(
                &meta(u),
                &shape(doc! {"a": 1}),
                outcome(PlanId::Collection, 1),
                none,
            );
        }
        assert_eq!(cache.inner.lock().collections.len(), 2);
    }

    #[test]
    fn index_changes_and_renames_empty_a_collection_cache() {
        let cache = PlanCache::new(10, 10);
        let mut m = meta(1);
        let s = shape(doc! {"a": 1});
        cache.record(&m, &s, outcome(PlanId::Collection, 1), none);
        cache.record(&m, &s, outcome(PlanId::Collection, 1), none);
        assert!(cache.active(&m, &s).is_some());
        let spec = crate::catalog::IndexSpec::from_spec(1, &doc! {"key": {"a": 1}, "name": "a_1"})
            .unwrap();
        Arc::make_mut(&mut m.indexes).push(spec);
        assert!(cache.active(&m, &s).is_none());
        cache.record(&m, &s, outcome(PlanId::Index(1), 1), none);
        cache.record(&m, &s, outcome(PlanId::Index(1), 1), none);
        assert!(cache.active(&m, &s).is_some());
        m.name = "renamed".into();
        assert!(cache.active(&m, &s).is_none());
    }
}
