//! The query planner: how a filter, a sort and a limit are answered from a
//! collection's documents and indexes.
//!
//! For a query it builds the candidate plans MongoDB would consider — a
//! lookup of `_id` values, a scan of each index that bounds the filter or
//! yields the sort order (forward or backward), a collection scan when
//! nothing else applies — and, when there is more than one, runs them side
//! by side for a short trial and keeps the first to finish or to produce a
//! batch of results (MongoDB's multi-planner). The engine's `Filter` checks
//! every document a plan fetches, so bounds only have to be a superset of
//! the matches; ties in a sort come out in `_id` order whatever the plan, so
//! every plan gives the same answer.
//!
//! Counts are answered from an index alone when its bounds decide the whole
//! filter. `explain` shows the chosen plan in MongoDB's shape.
pub(crate) mod bounds;
pub mod cache;
mod explain;
pub mod join_cost;
mod predicates;
mod raw_check;
mod shape_facts;
mod special;
mod stages;
#[cfg(test)]
mod tests;
mod usable;

pub use explain::{explain_count, explain_find, explain_find_with, Verbosity};

use crate::catalog::{CollectionMeta, IndexSpec, ID_INDEX_NAME};
use crate::error::{CmdResult, CommandError};
use crate::storage::Tables;
use bounds::{scan_bounds, ScanBounds};
use cache::{PlanCache, PlanId, Shape, ShapeParts, TrialOutcome};
use bson::{doc, Bson, Document, RawDocument, RawDocumentBuf};
use djongo_engine::sort::SortSpec;
use djongo_engine::Filter;
use predicates::Predicates;
use stages::{BoxedStage, Check, DocScan, DocScanKind, Empty, Fetch, IdOrder, IndexScan, Limit, OrderTies, Row, Skip, Sort, Step};
use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, OnceLock};

/// A read to plan: a filter, an optional sort, skip and limit.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub filter: Document,
    pub sort: Option<Document>,
    pub skip: usize,
    pub limit: Option<usize>,
    /// An index name or key pattern, or `{$natural: 1 | -1}`.
    pub hint: Option<Bson>,
    /// The top-level fields the caller reads of each document (`None`: all);
    /// documents may come without the others.
    pub fields: Option<Vec<String>>,
    /// Without a sort, whether the caller takes documents in any order (a
    /// count, a caller that sorts them itself) rather than in `_id` order.
    pub any_order: bool,
}

impl Query {
    pub fn filter(filter: &Document) -> Query {
        Query { filter: filter.clone(), ..Query::default() }
    }
}

/// A trial ends when a plan has produced this many results (MongoDB's
/// default first batch) or its limit, or has finished...
const TRIAL_RESULTS: usize = 101;
/// ... or after this many units of work for each plan.
const TRIAL_WORKS: usize = 10_000;

/// What a query's plans share, kept alive while they run.
pub struct Prepared<'m> {
    meta: &'m CollectionMeta,
    filter: Filter,
    filter_doc: Document,
    preds: Predicates,
    sort: Option<(SortSpec, Document)>,
    skip: usize,
    limit: Option<usize>,
    hint: Option<Bson>,
    /// Without a sort: rows in `_id` order (see `Query::any_order`).
    id_order: bool,
    /// Per index of `meta`, whether it is multikey.
    multikey: Vec<bool>,
    /// The bounds of a scan of each index (`_id` last).
    bounds: Vec<ScanBounds>,
    id_bounds: ScanBounds,
    id_index: &'static IndexSpec,
    /// The fields to decode: the caller's, the filter's and the sort's.
    decode: Option<Arc<HashSet<String>>>,
    /// The top-level fields the filter reads (`None`: unknown), decoded
    /// first when a plan decodes more.
    filter_fields: Option<Arc<HashSet<String>>>,
    /// The filter as tested on stored bytes, when it can be (raw_check.rs).
    raw_check: Option<raw_check::RawCheck>,
    /// Whether an index plan whose bounds decide the filter, without a sort,
    /// leaves the documents unread (rows with only their `_id` key), for a
    /// caller that reads their stored bytes itself ([`visit_indexed`]).
    ids_only: bool,
}

/// The `_id` index: the documents themselves, stored in `_id` order.
fn id_index() -> &'static IndexSpec {
    static ID_INDEX: OnceLock<IndexSpec> = OnceLock::new();
    ID_INDEX.get_or_init(|| IndexSpec {
        id: 0,
        name: ID_INDEX_NAME.to_string(),
        key: doc! {"_id": 1},
        unique: true,
        sparse: false,
        partial: None,
        partial_filter: None,
        spec: CollectionMeta::id_index_spec(),
        text: None,
        wildcard: None,
        collation: None,
    })
}

/// The fields a plan must decode for `query`, `None` for all of them.
fn decoded_fields(query: &Query) -> Option<HashSet<String>> {
    let mut fields: HashSet<String> = query.fields.as_ref()?.iter().cloned().collect();
    let mut needs = djongo_engine::deps::Needs::default();
    djongo_engine::deps::filter_needs(&query.filter, &mut needs);
    fields.extend(needs.top_level()?);
    if let Some(sort) = &query.sort {
        fields.extend(sort.keys().map(|k| k.split('.').next().unwrap_or(k).to_string()));
    }
    Some(fields)
}

/// The top-level fields `filter` reads, if they can be told.
fn filter_fields(filter: &Document) -> Option<HashSet<String>> {
    let mut needs = djongo_engine::deps::Needs::default();
    djongo_engine::deps::filter_needs(filter, &mut needs);
    Some(needs.top_level()?.into_iter().collect())
}

impl<'m> Prepared<'m> {
    pub fn new(tables: &Tables<'_>, meta: &'m CollectionMeta, query: &Query) -> CmdResult<Prepared<'m>> {
        let filter = Filter::parse(&query.filter)?;
        let preds = Predicates::analyze(&query.filter);
        let sort = match &query.sort {
            Some(s) if !s.is_empty() => Some((SortSpec::parse(s)?, s.clone())),
            _ => None,
        };
        // Only an index whose first field the filter or the sort names can
        // serve the query (unless a hint names it): the others are not read.
        // A collated index holds collation keys, not values: it enforces
        // uniqueness, and no query reads it (its bounds would need the
        // query's strings as collation keys). Which ones those are, and the
        // fields to decode, follow from the query's shape (shape_facts.rs).
        let facts = shape_facts::facts(meta, query, &preds, || {
            let sort_first = query.sort.as_ref().and_then(|s| s.keys().next().map(String::as_str));
            let relevant = |ix: &IndexSpec| {
                ix.collation.is_none()
                    && (query.hint.is_some()
                        || match &ix.wildcard {
                            Some(wildcard) => preds.fields.iter().any(|(path, _)| wildcard.covers(path)),
                            None => ix.fields().next().is_some_and(|f| !preds.atoms(f).is_empty() || sort_first == Some(f)),
                        })
            };
            shape_facts::ShapeFacts {
                relevant: meta.indexes.iter().map(relevant).collect(),
                decode: decoded_fields(query).map(Arc::new),
                filter_fields: filter_fields(&query.filter).map(Arc::new),
            }
        });
        let relevant = |i: usize| facts.relevant.get(i).copied().unwrap_or(false);
        let mut multikey = Vec::with_capacity(meta.indexes.len());
        let mut bounds = Vec::with_capacity(meta.indexes.len());
        for (i, ix) in meta.indexes.iter().enumerate() {
            if crate::geo_index::is_geo_index(ix) {
                // One entry per shape: always treated as multikey.
                multikey.push(true);
                bounds.push(crate::geo_index::scan_bounds(ix, &query.filter)?);
                continue;
            }
            if let (Some(wildcard), true) = (&ix.wildcard, relevant(i)) {
                // A document may have many entries in a wildcard index.
                multikey.push(true);
                bounds.push(special::wildcard_bounds(ix, wildcard, &preds));
            } else if ix.is_hashed() && relevant(i) {
                let mk = tables.is_multikey(meta, ix)?;
                multikey.push(mk);
                bounds.push(special::hashed_bounds(ix, &preds, mk));
            } else if ix.text.is_some() {
                multikey.push(false);
                bounds.push(ScanBounds::unbounded());
            } else if relevant(i) {
                let mk = tables.is_multikey(meta, ix)?;
                multikey.push(mk);
                bounds.push(scan_bounds(ix, &preds, mk));
            } else {
                multikey.push(false);
                bounds.push(ScanBounds::unbounded());
            }
        }
        let id_index = id_index();
        let id_bounds = scan_bounds(id_index, &preds, false);
        let raw_check = raw_check::RawCheck::compile(&preds);
        Ok(Prepared {
            meta,
            filter,
            filter_doc: query.filter.clone(),
            preds,
            sort,
            skip: query.skip,
            limit: query.limit,
            hint: query.hint.clone(),
            id_order: !query.any_order,
            multikey,
            bounds,
            id_bounds,
            id_index,
            decode: facts.decode.clone(),
            filter_fields: facts.filter_fields.clone(),
            raw_check,
            ids_only: false,
        })
    }

    fn check(&self) -> Option<Check<'_>> {
        Some(Check { filter: &self.filter, shown: &self.filter_doc, fields: self.filter_fields.as_deref(), raw: self.raw_check.as_ref() })
    }

    /// The check of a scan of `ix` within `b`. When the bounds already
    /// narrow every field the filter reads, nearly every document read
    /// passes, so the filter is not tested on its fields before the whole
    /// document is decoded (that would decode them twice).
    fn check_within(&self, ix: &IndexSpec, b: &ScanBounds) -> Option<Check<'_>> {
        let used: Vec<&str> = ix.fields().take(b.used_fields).collect();
        let bounded = b.used_fields > 0 && self.preds.only_fields && self.preds.fields.iter().all(|(path, _)| used.contains(&path.as_str()));
        let mut check = self.check()?;
        if bounded {
            check.fields = None;
        }
        Some(check)
    }

    /// How many rows the trial waits for.
    fn trial_goal(&self) -> usize {
        self.limit.unwrap_or(TRIAL_RESULTS).clamp(1, TRIAL_RESULTS)
    }
}

/// One way to answer the query.
struct Candidate<'a> {
    /// Which plan it is, for the plan cache.
    id: PlanId,
    root: BoxedStage<'a>,
    /// Whether it reads every document (a collection scan).
    full_scan: bool,
    /// Whether it reads every index entry in its bounds before its first
    /// document (to put them in `_id` order).
    collects_first: bool,
}

impl<'a> Candidate<'a> {
    fn new(id: PlanId, root: BoxedStage<'a>) -> Candidate<'a> {
        Candidate { id, root, full_scan: false, collects_first: false }
    }

    fn collection_scan(root: BoxedStage<'a>) -> Candidate<'a> {
        Candidate { id: PlanId::Collection, root, full_scan: true, collects_first: false }
    }
}

/// The order an index scan yields, if it gives the query's sort: whether to
/// read it backward, and whether rows with equal sort keys may come out of
/// `_id` order (so they must be re-ordered).
fn provided_order(ix: &IndexSpec, bounds: &ScanBounds, multikey: bool, sort: &SortSpec) -> Option<(bool, bool)> {
    // Hashes and (path, value) entries are not in the sort's order.
    if multikey || ix.is_hashed() || ix.wildcard.is_some() {
        // An array sorts by its smallest or largest element, not by each.
        return None;
    }
    let fields: Vec<&str> = ix.fields().collect();
    let descending = ix.descending();
    let fixed = bounds.single_value_fields;
    let mut i = 0;
    let mut reverse: Option<bool> = None;
    for (path, sort_desc) in sort.fields() {
        let path = path.join(".");
        while i < fixed && fields[i] != path {
            i += 1;
        }
        if i < fixed {
            // A field fixed to one value sorts nothing.
            i += 1;
            continue;
        }
        if fields.get(i) != Some(&path.as_str()) {
            return None;
        }
        let want = *sort_desc != descending[i];
        if reverse.is_some_and(|r| r != want) {
            return None;
        }
        reverse = Some(want);
        i += 1;
    }
    let reverse = reverse.unwrap_or(false);
    // Entries with equal keys are in `_id` order (non-unique entries end
    // with it) when the sort covers the whole key and the scan runs forward;
    // a unique index has no equal keys.
    let covers_key = i == fields.len();
    let ties_ordered = covers_key && (ix.unique || !reverse);
    Some((reverse, !ties_ordered))
}

fn hint_matches(hint: &Bson, ix: &IndexSpec) -> bool {
    if ix.is_hidden() {
        return false;
    }
    match hint {
        Bson::String(name) => *name == ix.name,
        Bson::Document(key) => *key == ix.key,
        _ => false,
    }
}

/// `{$natural: ±1}`: a collection scan, in that direction.
fn natural_hint(hint: &Bson) -> Option<bool> {
    match hint {
        Bson::Document(d) if d.len() == 1 => d.get("$natural").map(|v| djongo_engine::num::Num::from_bson(v).is_some_and(|n| n.to_f64() < 0.0)),
        _ => None,
    }
}

fn is_id_hint(hint: &Bson) -> bool {
    match hint {
        Bson::String(name) => name == ID_INDEX_NAME,
        Bson::Document(key) => *key == doc! {"_id": 1} || *key == doc! {"_id": -1},
        _ => false,
    }
}

/// Adds what the query asks for on top of a scan: the sort (unless the scan
/// yields it), skip and limit.
fn finish<'a>(prep: &'a Prepared<'_>, scan: BoxedStage<'a>, sorted: Option<bool>) -> BoxedStage<'a> {
    let mut root = scan;
    if let Some((spec, shown)) = &prep.sort {
        root = match sorted {
            Some(true) => Box::new(OrderTies::new(root, spec)),
            Some(false) => root,
            None => {
                let keep = prep.limit.map(|l| l.saturating_add(prep.skip));
                Box::new(Sort::new(root, spec, shown, keep))
            }
        };
    }
    if prep.skip > 0 {
        root = Box::new(Skip::new(root, prep.skip));
    }
    if let Some(l) = prep.limit {
        root = Box::new(Limit::new(root, l));
    }
    root
}

/// The `_id` plan, if the filter bounds `_id`, or a scan of the documents in
/// `_id` order when that is the sort.
fn id_candidates<'a>(tables: &'a Tables<'a>, prep: &'a Prepared<'_>, out: &mut Vec<Candidate<'a>>) {
    let b = &prep.id_bounds;
    let sort_order = prep.sort.as_ref().and_then(|(spec, _)| provided_order(prep.id_index, b, false, spec));
    if b.used_fields == 0 && sort_order.is_none() {
        return;
    }
    if b.is_empty() {
        out.push(Candidate::new(PlanId::Id, finish(prep, Box::new(Empty::new()), Some(false))));
        return;
    }
    let reverse = sort_order.is_some_and(|(r, _)| r);
    let kind = if b.used_fields == 0 {
        DocScanKind::Collection
    } else if b.spans.len() == 1 && b.single_value_fields == 1 {
        DocScanKind::IdHack
    } else {
        DocScanKind::IdRanges { labels: b.labels.clone() }
    };
    let full_scan = matches!(kind, DocScanKind::Collection);
    let check = if b.used_fields > 0 && decides(prep, prep.id_index, b) { None } else { prep.check_within(prep.id_index, b) };
    let scan = DocScan::new(tables, prep.meta, prep.decode.as_deref(), b.spans.clone(), reverse, check, kind);
    out.push(Candidate { id: PlanId::Id, root: finish(prep, Box::new(scan), sort_order.map(|(_, ties)| ties)), full_scan, collects_first: false });
}

fn candidates<'a>(tables: &'a Tables<'a>, prep: &'a Prepared<'_>) -> CmdResult<Vec<Candidate<'a>>> {
    let meta = prep.meta;
    let mut out = Vec::new();
    if let Some(hint) = &prep.hint {
        if let Some(reverse) = natural_hint(hint) {
            let scan = DocScan::new(tables, meta, prep.decode.as_deref(), vec![bounds::KeySpan::all()], reverse, prep.check(), DocScanKind::Collection);
            out.push(Candidate::collection_scan(finish(prep, Box::new(scan), None)));
            return Ok(out);
        }
        if is_id_hint(hint) {
            id_candidates(tables, prep, &mut out);
            if out.is_empty() {
                let scan = DocScan::new(tables, meta, prep.decode.as_deref(), vec![bounds::KeySpan::all()], false, prep.check(), DocScanKind::Collection);
                out.push(Candidate::collection_scan(finish(prep, Box::new(scan), None)));
            }
            return Ok(out);
        }
        let Some(i) = meta.indexes.iter().position(|ix| hint_matches(hint, ix)) else {
            return Err(CommandError::bad_value("error processing query: planner returned error :: caused by :: hint provided does not correspond to an existing index"));
        };
        // A text index answers only `$text` (its entries are terms).
        if meta.indexes[i].text.is_some() {
            return Err(CommandError::bad_value("error processing query: planner returned error :: caused by :: a text index can only be hinted for a $text query"));
        }
        if meta.indexes[i].collation.is_some() {
            let scan = DocScan::new(tables, meta, prep.decode.as_deref(), vec![bounds::KeySpan::all()], false, prep.check(), DocScanKind::Collection);
            out.push(Candidate::collection_scan(finish(prep, Box::new(scan), None)));
            return Ok(out);
        }
        out.push(index_candidate(tables, prep, i, true));
        return Ok(out);
    }
    // Index keys hold strings in binary order: under an operation's
    // collation their bounds and order would not be the collation's, so
    // the documents are scanned and compared one by one (mongod too uses an
    // index for strings only when the index has the query's collation).
    if djongo_engine::collation::is_active() {
        let scan = DocScan::new(tables, meta, prep.decode.as_deref(), vec![bounds::KeySpan::all()], false, prep.check(), DocScanKind::Collection);
        out.push(Candidate::collection_scan(finish(prep, Box::new(scan), None)));
        return Ok(out);
    }
    // Equality on `_id` is answered by lookups alone (MongoDB's IDHACK).
    let id_points = prep.id_bounds.used_fields == 1
        && prep.preds.atoms("_id").iter().all(|a| matches!(a, predicates::Atom::Eq(_) | predicates::Atom::In(_)));
    id_candidates(tables, prep, &mut out);
    if id_points {
        return Ok(out);
    }
    // A collection scan is the fallback; without a sort it also competes
    // with index plans that must collect their whole range before answering
    // (a wide range and a small limit are met sooner by scanning) — unless a
    // unique index is read at a few whole keys (`id IN (...)`): that plan
    // reads at most one document per key, where the scan's trial alone would
    // read hundreds.
    let mut few_keys = false;
    for i in 0..meta.indexes.len() {
        let ix = &meta.indexes[i];
        if crate::geo_index::is_geo_index(ix) {
            // A geo predicate's cell covering: a candidate like any other.
            if prep.bounds[i].used_fields > 0 && !ix.is_hidden() {
                out.push(index_candidate(tables, prep, i, false));
            }
            continue;
        }
        if ix.collation.is_some() {
            continue;
        }
        let bounds = &prep.bounds[i];
        let sorts = prep.sort.as_ref().is_some_and(|(spec, _)| provided_order(ix, bounds, prep.multikey[i], spec).is_some());
        // (Whether a sparse or partial index holds every match is the
        // costlier question: asked only of an index the query would read.)
        if bounds.used_fields == 0 && !sorts || !usable::index_serves(ix, &prep.preds) {
            continue;
        }
        few_keys |= ix.unique && bounds.whole_keys && bounds.used_fields > 0;
        out.push(index_candidate(tables, prep, i, false));
    }
    if out.is_empty() || !few_keys && prep.sort.is_none() && prep.id_order && out.iter().all(|c| c.collects_first) {
        let scan = DocScan::new(tables, meta, prep.decode.as_deref(), vec![bounds::KeySpan::all()], false, prep.check(), DocScanKind::Collection);
        out.push(Candidate::collection_scan(finish(prep, Box::new(scan), None)));
    }
    Ok(out)
}

/// A scan of index `i`, fetching the documents.
fn index_candidate<'a>(tables: &'a Tables<'a>, prep: &'a Prepared<'_>, i: usize, hinted: bool) -> Candidate<'a> {
    let ix = &prep.meta.indexes[i];
    let bounds = &prep.bounds[i];
    if bounds.is_empty() && (hinted || bounds.used_fields > 0) {
        return Candidate::new(PlanId::Index(ix.id), finish(prep, Box::new(Empty::new()), Some(false)));
    }
    let order = prep.sort.as_ref().and_then(|(spec, _)| provided_order(ix, bounds, prep.multikey[i], spec));
    let reverse = order.is_some_and(|(r, _)| r);
    let mut scan: BoxedStage<'a> = Box::new(IndexScan::new(tables, prep.meta, ix, bounds.spans.clone(), reverse, prep.multikey[i], bounds.labels.clone()));
    // Without a sort, rows come in `_id` order: a single value's entries
    // already are (non-unique entries end with the `_id`); others are sorted.
    let single_value = bounds.spans.len() == 1 && bounds.single_value_fields == ix.key.len();
    let collects_first = prep.sort.is_none() && prep.id_order && !single_value;
    if collects_first {
        scan = Box::new(IdOrder::new(scan));
    }
    // Bounds that decide the whole filter leave nothing to check.
    let check = if decides(prep, ix, bounds) { None } else { prep.check_within(ix, bounds) };
    if prep.ids_only && check.is_none() && prep.sort.is_none() {
        return Candidate { id: PlanId::Index(ix.id), root: finish(prep, scan, order.map(|(_, ties)| ties)), full_scan: false, collects_first };
    }
    let fetch = Fetch::new(tables, prep.meta, prep.decode.as_deref(), scan, check);
    Candidate { id: PlanId::Index(ix.id), root: finish(prep, Box::new(fetch), order.map(|(_, ties)| ties)), full_scan: false, collects_first }
}

/// The chosen plan, running: rows the trial produced come first.
pub struct Execution<'a> {
    /// Which candidate it is.
    plan: PlanId,
    root: BoxedStage<'a>,
    buffered: VecDeque<Row>,
    rejected: Vec<(PlanId, BoxedStage<'a>)>,
    done: bool,
}

impl<'a> Execution<'a> {
    fn alone(c: Candidate<'a>) -> Execution<'a> {
        Execution { plan: c.id, root: c.root, buffered: VecDeque::new(), rejected: Vec::new(), done: false }
    }

    /// The next matching document.
    pub fn next_document(&mut self) -> CmdResult<Option<Document>> {
        while let Some(row) = self.next_row()? {
            if let Some(doc) = row.doc {
                return Ok(Some(doc));
            }
        }
        Ok(None)
    }

    /// The next row, with or without its document.
    fn next_row(&mut self) -> CmdResult<Option<Row>> {
        loop {
            if let Some(row) = self.buffered.pop_front() {
                return Ok(Some(row));
            }
            if self.done {
                return Ok(None);
            }
            match self.root.work()? {
                Step::Advanced(row) => self.buffered.push_back(row),
                Step::NeedTime => {}
                Step::Eof => self.done = true,
            }
        }
    }

    /// Every remaining document.
    pub fn collect_documents(mut self) -> CmdResult<Vec<Document>> {
        let mut out = Vec::new();
        while let Some(d) = self.next_document()? {
            out.push(d);
        }
        Ok(out)
    }
}

impl Iterator for Execution<'_> {
    type Item = CmdResult<Document>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_document().transpose()
    }
}

impl Prepared<'_> {
    /// The query's shape, for the plan cache and explain; `None` when its
    /// plan is never cached (a hint decides it).
    fn shape(&self) -> Option<Shape> {
        if self.hint.is_some() || djongo_engine::collation::is_active() {
            return None;
        }
        let mut fields: Option<Vec<&str>> = self.decode.as_ref().map(|d| d.iter().map(String::as_str).collect());
        if let Some(f) = fields.as_mut() {
            f.sort_unstable();
        }
        let parts = ShapeParts {
            filter: &self.filter_doc,
            sort: self.sort.as_ref().map(|(_, shown)| shown),
            fields,
            skip: self.skip > 0,
            limit: self.limit.is_some(),
            id_order: self.id_order,
        };
        Some(parts.shape())
    }

    /// The query as `$planCacheStats` shows the one that made an entry.
    fn described(&self) -> Document {
        let mut d = doc! {"query": self.filter_doc.clone(), "sort": self.sort.as_ref().map(|(_, s)| s.clone()).unwrap_or_default()};
        if let Some(fields) = &self.decode {
            let mut fields: Vec<&String> = fields.iter().collect();
            fields.sort();
            d.insert("projection", fields.into_iter().map(|f| (f.clone(), Bson::Int32(1))).collect::<Document>());
        }
        d
    }
}

/// Plans `prep` and starts the winning plan: the plan cache's choice for
/// the query's shape if it has one that still does as well as when it was
/// cached, else the winner of a trial of the candidates (cache.rs).
pub fn execute<'a>(tables: &'a Tables<'a>, prep: &'a Prepared<'_>) -> CmdResult<Execution<'a>> {
    let mut cands = candidates(tables, prep)?;
    if cands.len() == 1 {
        return Ok(Execution::alone(cands.remove(0)));
    }
    let Some(shape) = prep.shape() else {
        return Ok(choose(cands, prep.trial_goal())?.0);
    };
    let cache = PlanCache::global();
    if let Some((plan, works)) = cache.active(prep.meta, &shape) {
        if let Some(i) = cands.iter().position(|c| c.id == plan) {
            let budget = works.saturating_mul(cache::EVICTION_RATIO);
            if let Some(exec) = run_cached(cands.swap_remove(i), prep.trial_goal(), budget) {
                return Ok(exec);
            }
            // Much worse than when it was cached: try every plan again.
            cache.deactivate(prep.meta, &shape);
            cands = candidates(tables, prep)?;
        }
    }
    let (exec, outcome) = choose(cands, prep.trial_goal())?;
    if let Some(outcome) = outcome {
        cache.record(prep.meta, &shape, outcome, || (prep.described(), exec.root.explain(false)));
    }
    Ok(exec)
}

/// Plans `prep` for explain: every candidate is tried, whatever the cache
/// holds, and nothing is cached (as in mongod); the cache's choice is shown
/// as `isCached` on the plan it names.
fn execute_uncached<'a>(tables: &'a Tables<'a>, prep: &'a Prepared<'_>) -> CmdResult<Execution<'a>> {
    Ok(choose(candidates(tables, prep)?, prep.trial_goal())?.0)
}

/// Runs a cached plan until it produces the trial's batch or finishes,
/// within `budget` units of work; `None` if it does not (or fails), for the
/// query to be planned again (mongod's `CachedPlanStage`).
fn run_cached(c: Candidate<'_>, goal: usize, budget: u64) -> Option<Execution<'_>> {
    let mut exec = Execution::alone(c);
    for _ in 0..budget {
        match exec.root.work() {
            Ok(Step::Advanced(row)) => {
                exec.buffered.push_back(row);
                if exec.buffered.len() >= goal {
                    return Some(exec);
                }
            }
            Ok(Step::NeedTime) => {}
            Ok(Step::Eof) => {
                exec.done = true;
                return Some(exec);
            }
            Err(_) => return None,
        }
    }
    None
}

/// Runs the candidates round-robin until one finishes or produces `goal`
/// rows (or each has had its share of work); that one wins. With it comes
/// what the plan cache should learn: the winner and the works its trial
/// took, unless no plan produced anything (nothing to tell them apart).
fn choose(mut cands: Vec<Candidate<'_>>, goal: usize) -> CmdResult<(Execution<'_>, Option<TrialOutcome>)> {
    if cands.len() == 1 {
        return Ok((Execution::alone(cands.remove(0)), None));
    }
    let n = cands.len();
    let mut results: Vec<VecDeque<Row>> = (0..n).map(|_| VecDeque::new()).collect();
    let mut finished = vec![false; n];
    // A plan that fails drops out (another may never read the document that
    // failed it); only when all fail is the first failure the answer.
    let mut failed: Vec<Option<CommandError>> = (0..n).map(|_| None).collect();
    let mut winner = None;
    let mut rounds = 0u64;
    'trial: for _ in 0..TRIAL_WORKS {
        rounds += 1;
        for i in 0..n {
            if failed[i].is_some() {
                continue;
            }
            match cands[i].root.work() {
                Ok(Step::Advanced(row)) => {
                    results[i].push_back(row);
                    if results[i].len() >= goal {
                        winner = Some(i);
                        break 'trial;
                    }
                }
                Ok(Step::NeedTime) => {}
                Ok(Step::Eof) => {
                    finished[i] = true;
                    winner = Some(i);
                    break 'trial;
                }
                Err(e) => {
                    failed[i] = Some(e);
                    if failed.iter().all(Option::is_some) {
                        return Err(failed.into_iter().flatten().next().unwrap_or_else(|| CommandError::internal("every plan failed")));
                    }
                }
            }
        }
    }
    // No plan finished: the most productive one, preferring one that needs
    // no blocking sort, then the first listed.
    let winner = winner.unwrap_or_else(|| {
        (0..n)
            .filter(|&i| failed[i].is_none())
            .max_by(|&a, &b| {
                let key = |i: usize| (results[i].len(), !cands[i].root.blocking_sort());
                key(a).cmp(&key(b)).then(b.cmp(&a))
            })
            .unwrap_or(0)
    });
    let outcome = (finished[winner] || !results[winner].is_empty()).then(|| TrialOutcome { plan: cands[winner].id, works: rounds });
    let mut rejected = Vec::with_capacity(n - 1);
    let mut chosen = None;
    for (i, c) in cands.into_iter().enumerate() {
        if i == winner {
            chosen = Some(c);
        } else {
            rejected.push((c.id, c.root));
        }
    }
    let chosen = chosen.ok_or_else(|| CommandError::internal("no plan chosen"))?;
    let exec = Execution { plan: chosen.id, root: chosen.root, buffered: std::mem::take(&mut results[winner]), rejected, done: finished[winner] };
    Ok((exec, outcome))
}

/// The documents of `meta` matching `filter`, in `_id` order, stopping
/// after `limit` matches.
pub fn matching(tables: &Tables<'_>, meta: &CollectionMeta, filter: &Document, limit: Option<usize>) -> CmdResult<Vec<Document>> {
    let query = Query { filter: filter.clone(), limit, ..Query::default() };
    find(tables, meta, &query)
}

/// The documents a query returns: filtered, sorted, skipped and limited.
pub fn find(tables: &Tables<'_>, meta: &CollectionMeta, query: &Query) -> CmdResult<Vec<Document>> {
    // `$near`/`$nearSphere` order the documents by distance.
    if let Some((field, near)) = djongo_engine::geo::find_near(&query.filter)? {
        return crate::commands::geo::nearest_first(tables, meta, &field, &near, query);
    }
    // `$text` is answered by the text index (crates/server/src/text/).
    if let Some(text) = crate::text::search::TextFilter::split(&query.filter)? {
        return crate::text::search::select(tables, meta, &text, query.sort.as_ref(), query.skip, query.limit, false);
    }
    let prep = Prepared::new(tables, meta, query)?;
    run(tables, &prep, |exec| exec.collect_documents())
}

/// Runs `f` over the started plan of `prep`.
pub fn run<T>(tables: &Tables<'_>, prep: &Prepared<'_>, f: impl FnOnce(Execution<'_>) -> CmdResult<T>) -> CmdResult<T> {
    let exec = execute(shorten(tables), prep)?;
    f(exec)
}

/// `run` for explain: the plan a trial picks, the cache neither read nor
/// written (as mongod's explain does).
pub fn run_uncached<T>(tables: &Tables<'_>, prep: &Prepared<'_>, f: impl FnOnce(Execution<'_>) -> CmdResult<T>) -> CmdResult<T> {
    let exec = execute_uncached(shorten(tables), prep)?;
    f(exec)
}

/// The stages borrow the tables for as long as they run; seeing the
/// transaction's lifetime as that borrow's (`Tables` is covariant in it)
/// keeps their types to one lifetime.
fn shorten<'a>(t: &'a Tables<'_>) -> &'a Tables<'a> {
    t
}

/// The documents a query returns, if some plan reads less than the whole
/// collection (a lookup or an index scan), with the index it used (`_id_`
/// for lookups by `_id`); `None` otherwise.
pub fn find_indexed(tables: &Tables<'_>, meta: &CollectionMeta, query: &Query) -> CmdResult<Option<(String, Vec<Document>)>> {
    find_indexed_prepared(tables, &Prepared::new(tables, meta, query)?)
}

/// [`find_indexed`] for a query already planned (a join that estimated its
/// probe first: `join_cost::estimate_prepared`).
pub fn find_indexed_prepared(tables: &Tables<'_>, prep: &Prepared<'_>) -> CmdResult<Option<(String, Vec<Document>)>> {
    let meta = prep.meta;
    let mut cands = candidates(shorten(tables), prep)?;
    cands.retain(|c| !c.full_scan);
    if cands.is_empty() {
        return Ok(None);
    }
    let (exec, _) = choose(cands, prep.trial_goal())?;
    // Named from the plan's identity: building its explain to find the name
    // cost more than planning a `$lookup`'s probe.
    let index = plan_index_name(meta, exec.plan);
    Ok(Some((index, exec.collect_documents()?)))
}

/// The name of the index a plan reads (`_id_` for the documents themselves).
fn plan_index_name(meta: &CollectionMeta, plan: PlanId) -> String {
    let index = match plan {
        PlanId::Index(id) => meta.indexes.iter().find(|ix| ix.id == id).map(|ix| ix.name.clone()),
        PlanId::Id | PlanId::Collection => None,
    };
    index.unwrap_or_else(|| ID_INDEX_NAME.to_string())
}


/// [`find_indexed`], handing each document to `visit` as its stored bytes
/// (read where the store holds them, not decoded) in the same order; the
/// index used, or `None` (nothing visited) when every plan reads the whole
/// collection.
pub fn visit_indexed(
    tables: &Tables<'_>,
    meta: &CollectionMeta,
    query: &Query,
    visit: impl FnMut(&RawDocument) -> CmdResult<()>,
) -> CmdResult<Option<String>> {
    visit_indexed_prepared(tables, Prepared::new(tables, meta, query)?, visit)
}

/// [`visit_indexed`] for a query already planned (see [`find_indexed_prepared`]).
pub fn visit_indexed_prepared(
    tables: &Tables<'_>,
    mut prep: Prepared<'_>,
    mut visit: impl FnMut(&RawDocument) -> CmdResult<()>,
) -> CmdResult<Option<String>> {
    let meta = prep.meta;
    prep.ids_only = true;
    let mut cands = candidates(shorten(tables), &prep)?;
    cands.retain(|c| !c.full_scan);
    if cands.is_empty() {
        return Ok(None);
    }
    let (mut exec, _) = choose(cands, prep.trial_goal())?;
    let index = plan_index_name(meta, exec.plan);
    while let Some(row) = exec.next_row()? {
        match &row.doc {
            // A plan that had to read the document (to check the filter,
            // or a lookup by `_id`) hands it over decoded.
            Some(doc) => visit(&RawDocumentBuf::try_from(doc).map_err(|e| CommandError::internal(format!("unencodable document: {e}")))?)?,
            // (An entry without its document: nothing to visit.)
            None => tables.visit_document(meta, &row.id, &mut visit)?.unwrap_or_default(),
        }
    }
    Ok(Some(index))
}

/// A document a plan found, as [`visit_found`] hands it over.
pub enum Found<'a> {
    /// The plan had to read it (to check the filter, to sort, or a lookup by
    /// `_id`): decoded, with at least the query's `fields`.
    Decoded(Document),
    /// An index's bounds decided the filter: the stored bytes, where the
    /// store holds them, never decoded.
    Stored(&'a RawDocument),
}

/// The documents a query returns, in the order [`find`] returns them, each
/// handed to `visit` without decoding it when the plan did not have to.
/// (`$near` and `$text` filters are the caller's to refuse.)
pub fn visit_found(tables: &Tables<'_>, meta: &CollectionMeta, query: &Query, mut visit: impl FnMut(Found<'_>) -> CmdResult<()>) -> CmdResult<()> {
    let mut prep = Prepared::new(tables, meta, query)?;
    prep.ids_only = true;
    run(tables, &prep, |mut exec| {
        while let Some(row) = exec.next_row()? {
            match row.doc {
                Some(doc) => visit(Found::Decoded(doc))?,
                // (An entry whose document is gone: nothing to visit.)
                None => tables.visit_document(meta, &row.id, |raw| visit(Found::Stored(raw)))?.unwrap_or_default(),
            }
        }
        Ok(())
    })
}

/// How many documents match `filter`: from an index alone when its bounds
/// decide the whole filter, else by running a plan.
pub fn count(tables: &Tables<'_>, meta: &CollectionMeta, filter: &Document) -> CmdResult<u64> {
    if filter.is_empty() {
        return tables.count(meta);
    }
    // A count with `$near` counts what the filter matches (the distance
    // band), but needs the 2dsphere index as a find would.
    if let Some((field, _)) = djongo_engine::geo::find_near(filter)? {
        crate::commands::geo::check_near_query(meta, &field, &Query::filter(filter))?;
    }
    if let Some(text) = crate::text::search::TextFilter::split(filter)? {
        return Ok(crate::text::search::run(tables, meta, &text)?.len() as u64);
    }
    let prep = Prepared::new(tables, meta, &Query { any_order: true, ..Query::filter(filter) })?;
    if let Some(plan) = count_scan(&prep).filter(|_| !djongo_engine::collation::is_active()) {
        return plan.run(tables, meta);
    }
    run(tables, &prep, |mut exec| {
        let mut n = 0u64;
        while exec.next_document()?.is_some() {
            n += 1;
        }
        Ok(n)
    })
}

/// A count answered by reading keys only.
pub(crate) struct CountScan<'p> {
    /// `None`: the `_id` keys of the documents table.
    index: Option<usize>,
    bounds: &'p ScanBounds,
    multikey: bool,
}

impl CountScan<'_> {
    fn run(&self, tables: &Tables<'_>, meta: &CollectionMeta) -> CmdResult<u64> {
        let mut n = 0u64;
        // A multikey document can have entries in several spans.
        let mut seen = self.multikey.then(HashSet::new);
        for span in &self.bounds.spans {
            let lo = if span.lo.is_empty() { std::ops::Bound::Unbounded } else { std::ops::Bound::Included(span.lo.as_slice()) };
            let hi = match &span.hi {
                Some(h) => std::ops::Bound::Excluded(h.as_slice()),
                None => std::ops::Bound::Unbounded,
            };
            n += match self.index {
                Some(i) => tables.index_entries(meta, &meta.indexes[i], lo, hi, false)?.count_documents(seen.as_mut())?,
                None => tables.ids_between(meta, lo, hi)?.count()?,
            };
        }
        Ok(n)
    }
}

/// Whether a scan of `ix` within `b` reads exactly the matching documents
/// (its bounds are exact, and the filter has no other condition).
fn decides(prep: &Prepared<'_>, ix: &IndexSpec, b: &ScanBounds) -> bool {
    if !prep.preds.only_fields || !b.exact {
        return false;
    }
    let used: Vec<&str> = ix.fields().take(b.used_fields).collect();
    prep.preds.fields.iter().all(|(path, _)| used.contains(&path.as_str()))
}

/// An index (or `_id`) whose bounds decide every condition of the filter.
fn count_scan<'p>(prep: &'p Prepared<'_>) -> Option<CountScan<'p>> {
    let decides = |ix: &IndexSpec, b: &ScanBounds| decides(prep, ix, b);
    if decides(prep.id_index, &prep.id_bounds) {
        return Some(CountScan { index: None, bounds: &prep.id_bounds, multikey: false });
    }
    let best = (0..prep.meta.indexes.len())
        .filter(|&i| prep.meta.indexes[i].collation.is_none() && usable::index_serves(&prep.meta.indexes[i], &prep.preds) && decides(&prep.meta.indexes[i], &prep.bounds[i]))
        .min_by_key(|&i| prep.bounds[i].spans.len())?;
    Some(CountScan { index: Some(best), bounds: &prep.bounds[best], multikey: prep.multikey[best] })
}
