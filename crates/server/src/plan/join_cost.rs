//! How a `$lookup` reads the documents it joins: through an index, probing
//! it with the local values and fetching each match by `_id` (MongoDB's
//! `IndexedLoopJoin`), or by reading the whole foreign collection once and
//! matching its documents by join key (`HashJoin`).
//!
//! A probe costs more per document it returns than a scan does (each match
//! is an index entry read, its `_id` sorted into collection order, then a
//! B-tree lookup), but reads only the matches. So the planner estimates how
//! many documents the probe would return and scans when that is most of the
//! collection (Django's `annotate()` over a reverse relation joins every
//! row of the related table). The estimate needs the collection's document
//! count, which the store keeps (`Tables::count`, one B-tree lookup), and
//! the number of entries per probed value: a unique index (or `_id`) holds
//! at most one, otherwise a few of the values are counted in the index, as
//! far as the answer needs. Both reads give the same matches in the same
//! (collection) order, so the choice changes the cost, never the result.
use super::{Prepared, Query};
use crate::catalog::CollectionMeta;
use crate::error::CmdResult;
use crate::storage::Tables;
use std::ops::Bound;

/// A probe returning at least this share of the collection's documents
/// (numerator, denominator) costs more than a scan of all of them: scanning
/// a document and matching it by key costs about 0.65 to 0.7 of finding one match
/// through an index (`benches/orm/engine-cpu.md`, the join shapes).
const SCAN_SHARE: (u64, u64) = (65, 100);

/// How many probed values are counted to estimate the rest.
const SAMPLED_VALUES: usize = 4;

/// What the planner knows before a join reads its foreign collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JoinEstimate {
    /// The documents a probe would return (an estimate, at most `documents`).
    pub matches: u64,
    /// The documents of the foreign collection (exact).
    pub documents: u64,
}

impl JoinEstimate {
    /// The most matches for which probing is cheaper than scanning.
    fn break_even(documents: u64) -> u64 {
        documents.saturating_mul(SCAN_SHARE.0) / SCAN_SHARE.1
    }

    /// Whether reading the whole collection costs less than the probe.
    pub fn prefers_scan(&self) -> bool {
        self.matches > Self::break_even(self.documents)
    }
}

/// The estimate for a join reading the documents of `meta` that `query`
/// (`{field: {$in: values}}`) selects, when an index on that field (or
/// `_id`) would serve the probe; `None` when none would (the join scans).
pub fn estimate(tables: &Tables<'_>, meta: &CollectionMeta, query: &Query) -> CmdResult<Option<JoinEstimate>> {
    estimate_prepared(tables, &Prepared::new(tables, meta, query)?)
}

/// [`estimate`] for a probe already planned, so that a join which then
/// probes plans its query once (`find_indexed_prepared`).
pub fn estimate_prepared(tables: &Tables<'_>, prep: &Prepared<'_>) -> CmdResult<Option<JoinEstimate>> {
    let meta = prep.meta;
    let documents = tables.count(meta)?;
    // `_id`: one document per value at most.
    if prep.id_bounds.whole_keys && prep.id_bounds.used_fields > 0 {
        let matches = (prep.id_bounds.spans.len() as u64).min(documents);
        return Ok(Some(JoinEstimate { matches, documents }));
    }
    let serving = (0..meta.indexes.len()).find(|&i| {
        let (ix, b) = (&meta.indexes[i], &prep.bounds[i]);
        ix.collation.is_none() && b.whole_keys && b.used_fields > 0 && super::usable::index_serves(ix, &prep.preds)
    });
    let Some(i) = serving else { return Ok(None) };
    let (ix, spans) = (&meta.indexes[i], &prep.bounds[i].spans);
    let values = spans.len() as u64;
    if ix.unique && !prep.multikey[i] {
        return Ok(Some(JoinEstimate { matches: values.min(documents), documents }));
    }
    // Count a few values' entries, evenly spread over the probe, and only
    // until the extrapolated total passes the break-even point: past it the
    // scan wins whatever the rest hold.
    let sampled = spans.len().min(SAMPLED_VALUES);
    if sampled == 0 {
        return Ok(Some(JoinEstimate { matches: 0, documents }));
    }
    let enough = JoinEstimate::break_even(documents).saturating_mul(sampled as u64) / values + 1;
    let mut counted = 0u64;
    for k in 0..sampled {
        let span = &spans[k * spans.len() / sampled];
        let lo = if span.lo.is_empty() { Bound::Unbounded } else { Bound::Included(span.lo.as_slice()) };
        let hi = span.hi.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
        counted += tables.index_entries(meta, ix, lo, hi, false)?.count_up_to(enough - counted)?;
        if counted >= enough {
            break;
        }
    }
    // Rounded up: a count stopped at `enough` then extrapolates past the
    // break-even point (the estimate is that far, not the whole probe).
    let matches = counted.saturating_mul(values).div_ceil(sampled as u64).min(documents);
    Ok(Some(JoinEstimate { matches, documents }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Storage;
    use bson::{doc, Bson, Document};
    use std::time::Duration;

    fn in_values(field: &str, values: impl IntoIterator<Item = i32>) -> Query {
        let values: Vec<Bson> = values.into_iter().map(Bson::Int32).collect();
        Query::filter(&doc! {field: {"$in": values}})
    }

    /// 100 documents: `k` repeats ten values ten times (indexed), `u` is
    /// unique (indexed), `w` has no index.
    #[test]
    fn the_estimate_follows_the_index_and_the_count() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path()).unwrap();
        let wtxn = storage.begin_write(Duration::from_secs(5)).unwrap().unwrap();
        let mut t = Tables::open_write(&wtxn).unwrap();
        let mut meta = t.create_collection("db", "e", Document::new()).unwrap();
        t.create_index(&mut meta, &doc! {"key": {"k": 1}, "name": "k_1"}).unwrap();
        t.create_index(&mut meta, &doc! {"key": {"u": 1}, "name": "u_1", "unique": true}).unwrap();
        for i in 0..100 {
            t.insert(&meta, &doc! {"_id": i, "k": i % 10, "u": i, "w": i}).unwrap();
        }
        drop(t);
        wtxn.commit().unwrap();
        let read = storage.begin_read().unwrap();
        let t = Tables::open_read(&read).unwrap();
        let estimate = |q: &Query| estimate(&t, &meta, q).unwrap();

        // Every value of `k`: the sample stops past the break-even point.
        let all = estimate(&in_values("k", 0..10)).unwrap();
        assert_eq!(all.documents, 100);
        assert!(all.prefers_scan() && all.matches > 65 && all.matches <= 100, "{all:?}");
        // Two of them: a fifth of the collection, probed.
        let two = estimate(&in_values("k", [3, 7])).unwrap();
        assert_eq!(two, JoinEstimate { matches: 20, documents: 100 });
        assert!(!two.prefers_scan());
        // Values the index does not hold match nothing.
        assert_eq!(estimate(&in_values("k", [50, 60])).unwrap().matches, 0);
        // A unique index and `_id`: one document per value at most.
        assert_eq!(estimate(&in_values("u", 0..5)).unwrap().matches, 5);
        assert!(estimate(&in_values("_id", 0..90)).unwrap().prefers_scan());
        assert!(!estimate(&in_values("_id", 0..60)).unwrap().prefers_scan());
        // No index on the field: the join scans, nothing to estimate.
        assert_eq!(estimate(&in_values("w", [1])), None);
    }
}
