//! The stages a query plan is built from, each advanced one unit of work at
//! a time (MongoDB's `PlanStage::work`), so candidate plans can be tried
//! side by side and the best one kept running.
//!
//! A stage's `work` reads at most one index entry or document and answers
//! with a result row, "need more time" or the end. Rows carry the `_id` key
//! of their document (the record id) and, once fetched, the document.
use super::bounds::KeySpan;
use crate::catalog::{CollectionMeta, IndexSpec};
use crate::error::CmdResult;
use crate::storage::{DocumentRange, EntryRange, Tables};
use bson::{doc, Bson, Document};
use djongo_engine::sort::SortSpec;
use djongo_engine::Filter;
use std::cmp::Ordering;
use std::collections::{HashSet, VecDeque};

/// The top-level fields a plan decodes of each document (`None`: all).
pub type Decode<'a> = Option<&'a HashSet<String>>;
use std::ops::Bound;

/// One result travelling up a plan.
#[derive(Debug, Clone)]
pub struct Row {
    /// The document's encoded `_id`.
    pub id: Vec<u8>,
    pub doc: Option<Document>,
}

pub enum Step {
    Advanced(Row),
    NeedTime,
    Eof,
}

/// What a stage did, for explain's `executionStats`.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub works: u64,
    pub advanced: u64,
    pub need_time: u64,
    pub eof: bool,
    pub keys_examined: u64,
    pub docs_examined: u64,
    pub dups_dropped: u64,
}

impl Stats {
    fn record(&mut self, step: &Step) {
        self.works += 1;
        match step {
            Step::Advanced(_) => self.advanced += 1,
            Step::NeedTime => self.need_time += 1,
            Step::Eof => self.eof = true,
        }
    }

    fn write(&self, out: &mut Document) {
        out.insert("nReturned", self.advanced as i64);
        out.insert("works", self.works as i64);
        out.insert("advanced", self.advanced as i64);
        out.insert("needTime", self.need_time as i64);
        out.insert("isEOF", i32::from(self.eof));
    }
}

pub trait Stage<'a> {
    fn work(&mut self) -> CmdResult<Step>;
    /// The stage and its inputs as explain shows them.
    fn explain(&self, with_stats: bool) -> Document;
    /// Index entries and documents read by this stage and its inputs.
    fn examined(&self) -> (u64, u64);
    /// Whether the stage sorts its whole input before answering.
    fn blocking_sort(&self) -> bool {
        false
    }
}

pub type BoxedStage<'a> = Box<dyn Stage<'a> + 'a>;

/// Adds the filter to a stage's explain entry, if it has one.
fn with_filter(mut d: Document, filter: Option<&Document>) -> Document {
    if let Some(f) = filter.filter(|f| !f.is_empty()) {
        d.insert("filter", f.clone());
    }
    d
}

fn direction_name(reverse: bool) -> &'static str {
    if reverse {
        "backward"
    } else {
        "forward"
    }
}

fn bound(b: &[u8]) -> Bound<&[u8]> {
    if b.is_empty() {
        Bound::Unbounded
    } else {
        Bound::Included(b)
    }
}

fn upper(b: &Option<Vec<u8>>) -> Bound<&[u8]> {
    match b {
        Some(h) => Bound::Excluded(h.as_slice()),
        None => Bound::Unbounded,
    }
}

/// The filter a stage applies, with the document explain shows for it.
#[derive(Clone, Copy)]
pub struct Check<'a> {
    pub filter: &'a Filter,
    pub shown: &'a Document,
    /// The top-level fields the filter reads, if known.
    pub fields: Option<&'a HashSet<String>>,
    /// The filter on stored bytes, for the documents it decides.
    pub raw: Option<&'a super::raw_check::RawCheck>,
}

impl Check<'_> {
    fn passes(&self, doc: &Document) -> CmdResult<bool> {
        Ok(self.shown.is_empty() || self.filter.matches(doc)?)
    }

    /// The fields to decode first to test the filter, when the stage decodes
    /// others too: a document the filter refuses is then never decoded whole
    /// (a scan or a fetch that the filter thins out reads most documents only
    /// this far).
    fn probe(&self, decode: Decode<'_>) -> Option<&HashSet<String>> {
        let fields = self.fields.filter(|_| !self.shown.is_empty())?;
        match decode {
            Some(d) if d.iter().all(|f| f == "_id" || fields.contains(f)) => None,
            _ => Some(fields),
        }
    }

    /// Whether the stored document passes, decoding only `fields` of it.
    fn passes_stored(&self, bytes: &[u8], fields: &HashSet<String>) -> CmdResult<bool> {
        if let Some(verdict) = self.raw.and_then(|raw| raw.test(bytes)) {
            return Ok(verdict);
        }
        self.passes(&crate::storage::decode_fields(bytes, Some(fields))?)
    }
}

// ---- reading documents by _id ---------------------------------------------------

/// Reads documents straight from the collection, in `_id` order: all of
/// them (COLLSCAN) or those whose `_id` lies in the given ranges.
pub struct DocScan<'a> {
    tables: &'a Tables<'a>,
    meta: &'a CollectionMeta,
    decode: Decode<'a>,
    spans: Vec<KeySpan>,
    reverse: bool,
    next_span: usize,
    current: Option<DocumentRange<'a>>,
    check: Option<Check<'a>>,
    kind: DocScanKind,
    stats: Stats,
}

/// How explain names a read of the documents table.
pub enum DocScanKind {
    /// Every document.
    Collection,
    /// One `_id` value.
    IdHack,
    /// `_id` ranges (the documents are stored in `_id` order).
    IdRanges { labels: super::bounds::Labels },
}

impl<'a> DocScan<'a> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        tables: &'a Tables<'a>,
        meta: &'a CollectionMeta,
        decode: Decode<'a>,
        spans: Vec<KeySpan>,
        reverse: bool,
        check: Option<Check<'a>>,
        kind: DocScanKind,
    ) -> DocScan<'a> {
        DocScan { tables, meta, decode, spans, reverse, next_span: 0, current: None, check, kind, stats: Stats::default() }
    }

    fn step(&mut self) -> CmdResult<Step> {
        loop {
            if let Some(range) = &mut self.current {
                if let Some((check, probe)) = self.check.as_ref().and_then(|c| Some((c, c.probe(self.decode)?))) {
                    match range.next_document_where(self.decode, |bytes| check.passes_stored(bytes, probe)) {
                        Some(row) => {
                            let (id, doc) = row?;
                            self.stats.docs_examined += 1;
                            return Ok(match doc {
                                Some(doc) => Step::Advanced(Row { id, doc: Some(doc) }),
                                None => Step::NeedTime,
                            });
                        }
                        None => {
                            self.current = None;
                            continue;
                        }
                    }
                }
                match range.next_document(self.decode) {
                    Some(row) => {
                        let (id, doc) = row?;
                        self.stats.docs_examined += 1;
                        if let Some(check) = &self.check {
                            if !check.passes(&doc)? {
                                return Ok(Step::NeedTime);
                            }
                        }
                        return Ok(Step::Advanced(Row { id, doc: Some(doc) }));
                    }
                    None => self.current = None,
                }
            }
            if self.next_span >= self.spans.len() {
                return Ok(Step::Eof);
            }
            let i = if self.reverse { self.spans.len() - 1 - self.next_span } else { self.next_span };
            self.next_span += 1;
            let span = &self.spans[i];
            self.current = Some(self.tables.documents_between(self.meta, bound(&span.lo), upper(&span.hi), self.reverse)?);
        }
    }
}

impl<'a> Stage<'a> for DocScan<'a> {
    fn work(&mut self) -> CmdResult<Step> {
        let step = self.step()?;
        self.stats.record(&step);
        Ok(step)
    }

    fn explain(&self, with_stats: bool) -> Document {
        let mut d = match &self.kind {
            DocScanKind::Collection => doc! {"stage": "COLLSCAN"},
            DocScanKind::IdHack => doc! {"stage": "IDHACK"},
            DocScanKind::IdRanges { labels } => doc! {
                "stage": "CLUSTERED_IXSCAN", "keyPattern": {"_id": 1}, "indexName": crate::catalog::ID_INDEX_NAME,
                "isMultiKey": false, "isUnique": true, "indexBounds": labels.document(["_id"]),
            },
        };
        d = with_filter(d, self.check.as_ref().map(|c| c.shown));
        d.insert("direction", direction_name(self.reverse));
        if with_stats {
            self.stats.write(&mut d);
            d.insert("docsExamined", self.stats.docs_examined as i64);
        }
        d
    }

    fn examined(&self) -> (u64, u64) {
        (0, self.stats.docs_examined)
    }
}

// ---- index scans ------------------------------------------------------------------

/// Reads index entries in key ranges, forward or backward. A multikey index
/// can hold several entries of one document; those come out once.
pub struct IndexScan<'a> {
    tables: &'a Tables<'a>,
    meta: &'a CollectionMeta,
    pub ix: &'a IndexSpec,
    spans: Vec<KeySpan>,
    pub reverse: bool,
    multikey: bool,
    labels: super::bounds::Labels,
    next_span: usize,
    current: Option<EntryRange<'a>>,
    seen: HashSet<Vec<u8>>,
    stats: Stats,
}

impl<'a> IndexScan<'a> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        tables: &'a Tables<'a>,
        meta: &'a CollectionMeta,
        ix: &'a IndexSpec,
        spans: Vec<KeySpan>,
        reverse: bool,
        multikey: bool,
        labels: super::bounds::Labels,
    ) -> IndexScan<'a> {
        IndexScan { tables, meta, ix, spans, reverse, multikey, labels, next_span: 0, current: None, seen: HashSet::new(), stats: Stats::default() }
    }

    fn step(&mut self) -> CmdResult<Step> {
        loop {
            if let Some(range) = &mut self.current {
                match range.next_id() {
                    Some(id) => {
                        let id = id?;
                        self.stats.keys_examined += 1;
                        if self.multikey && !self.seen.insert(id.clone()) {
                            self.stats.dups_dropped += 1;
                            return Ok(Step::NeedTime);
                        }
                        return Ok(Step::Advanced(Row { id, doc: None }));
                    }
                    None => self.current = None,
                }
            }
            if self.next_span >= self.spans.len() {
                return Ok(Step::Eof);
            }
            let i = if self.reverse { self.spans.len() - 1 - self.next_span } else { self.next_span };
            self.next_span += 1;
            let span = &self.spans[i];
            self.current = Some(self.tables.index_entries(self.meta, self.ix, bound(&span.lo), upper(&span.hi), self.reverse)?);
        }
    }
}

/// The `IXSCAN` fields explain shows for an index.
pub fn index_description(ix: &IndexSpec, multikey: bool, reverse: bool, labels: &super::bounds::Labels) -> Document {
    let labels = labels.document(ix.fields());
    // A wildcard scan shows the (path, field) key it reads, as MongoDB does.
    let key_pattern = if ix.wildcard.is_some() { super::special::wildcard_key_pattern(&labels).unwrap_or_else(|| ix.key.clone()) } else { ix.key.clone() };
    doc! {
        "keyPattern": key_pattern,
        "indexName": ix.name.clone(),
        "isMultiKey": multikey,
        "isUnique": ix.unique,
        "isSparse": ix.sparse,
        "isPartial": ix.partial.is_some(),
        "indexVersion": 2,
        "direction": direction_name(reverse),
        "indexBounds": labels,
    }
}

impl<'a> Stage<'a> for IndexScan<'a> {
    fn work(&mut self) -> CmdResult<Step> {
        let step = self.step()?;
        self.stats.record(&step);
        Ok(step)
    }

    fn explain(&self, with_stats: bool) -> Document {
        let mut d = doc! {"stage": "IXSCAN"};
        d.extend(index_description(self.ix, self.multikey, self.reverse, &self.labels));
        if with_stats {
            self.stats.write(&mut d);
            d.insert("keysExamined", self.stats.keys_examined as i64);
            d.insert("dupsTested", if self.multikey { self.stats.keys_examined as i64 } else { 0 });
            d.insert("dupsDropped", self.stats.dups_dropped as i64);
        }
        d
    }

    fn examined(&self) -> (u64, u64) {
        (self.stats.keys_examined, 0)
    }
}

/// Reads the document of each row from the collection and applies the
/// filter.
pub struct Fetch<'a> {
    tables: &'a Tables<'a>,
    meta: &'a CollectionMeta,
    decode: Decode<'a>,
    input: BoxedStage<'a>,
    check: Option<Check<'a>>,
    stats: Stats,
}

impl<'a> Fetch<'a> {
    pub fn new(tables: &'a Tables<'a>, meta: &'a CollectionMeta, decode: Decode<'a>, input: BoxedStage<'a>, check: Option<Check<'a>>) -> Fetch<'a> {
        Fetch { tables, meta, decode, input, check, stats: Stats::default() }
    }

    fn step(&mut self) -> CmdResult<Step> {
        let row = match self.input.work()? {
            Step::Advanced(row) => row,
            other => return Ok(other),
        };
        let doc = match row.doc {
            Some(d) => d,
            None => {
                self.stats.docs_examined += 1;
                if let Some((check, probe)) = self.check.as_ref().and_then(|c| Some((c, c.probe(self.decode)?))) {
                    return Ok(match self.tables.fetch_document_where(self.meta, &row.id, self.decode, |bytes| check.passes_stored(bytes, probe))? {
                        Some(Some(doc)) => Step::Advanced(Row { id: row.id, doc: Some(doc) }),
                        // Refused by the filter, or an entry without its document.
                        _ => Step::NeedTime,
                    });
                }
                match self.tables.fetch_document(self.meta, &row.id, self.decode)? {
                    Some(doc) => doc,
                    // An entry without its document: nothing to return.
                    None => return Ok(Step::NeedTime),
                }
            }
        };
        if let Some(check) = &self.check {
            if !check.passes(&doc)? {
                return Ok(Step::NeedTime);
            }
        }
        Ok(Step::Advanced(Row { id: row.id, doc: Some(doc) }))
    }
}

impl<'a> Stage<'a> for Fetch<'a> {
    fn work(&mut self) -> CmdResult<Step> {
        let step = self.step()?;
        self.stats.record(&step);
        Ok(step)
    }

    fn explain(&self, with_stats: bool) -> Document {
        let mut d = with_filter(doc! {"stage": "FETCH"}, self.check.as_ref().map(|c| c.shown));
        if with_stats {
            self.stats.write(&mut d);
            d.insert("docsExamined", self.stats.docs_examined as i64);
        }
        d.insert("inputStage", self.input.explain(with_stats));
        d
    }

    fn examined(&self) -> (u64, u64) {
        let (k, d) = self.input.examined();
        (k, d + self.stats.docs_examined)
    }

    fn blocking_sort(&self) -> bool {
        self.input.blocking_sort()
    }
}

// ---- sorting ----------------------------------------------------------------------

/// A document with its sort key and `_id`; results order by the sort key,
/// then by `_id`, so equal keys come out as a scan of the collection would
/// (and every plan gives the same order).
struct Keyed {
    key: Vec<Bson>,
    row: Row,
}

fn order(spec: &SortSpec, a: &Keyed, b: &Keyed) -> Ordering {
    spec.compare_keys(&a.key, &b.key).then_with(|| a.row.id.cmp(&b.row.id))
}

/// Sorts its whole input; with a limit, keeps only the best `limit` rows
/// as it goes (a top-k sort), so memory stays proportional to the limit.
pub struct Sort<'a> {
    input: BoxedStage<'a>,
    spec: &'a SortSpec,
    shown: &'a Document,
    limit: Option<usize>,
    buffer: Vec<Keyed>,
    output: Option<VecDeque<Row>>,
    stats: Stats,
}

impl<'a> Sort<'a> {
    pub fn new(input: BoxedStage<'a>, spec: &'a SortSpec, shown: &'a Document, limit: Option<usize>) -> Sort<'a> {
        Sort { input, spec, shown, limit, buffer: Vec::new(), output: None, stats: Stats::default() }
    }

    fn trim(&mut self) {
        let spec = self.spec;
        self.buffer.sort_by(|a, b| order(spec, a, b));
        if let Some(k) = self.limit {
            self.buffer.truncate(k);
        }
    }

    fn step(&mut self) -> CmdResult<Step> {
        if let Some(out) = &mut self.output {
            return Ok(match out.pop_front() {
                Some(row) => Step::Advanced(row),
                None => Step::Eof,
            });
        }
        match self.input.work()? {
            Step::Advanced(row) => {
                let key = match &row.doc {
                    Some(d) => self.spec.key_of(d),
                    None => Vec::new(),
                };
                self.buffer.push(Keyed { key, row });
                if let Some(k) = self.limit {
                    if self.buffer.len() >= 2 * k.max(32) {
                        self.trim();
                    }
                }
                Ok(Step::NeedTime)
            }
            Step::NeedTime => Ok(Step::NeedTime),
            Step::Eof => {
                self.trim();
                self.output = Some(std::mem::take(&mut self.buffer).into_iter().map(|k| k.row).collect());
                Ok(Step::NeedTime)
            }
        }
    }
}

impl<'a> Stage<'a> for Sort<'a> {
    fn work(&mut self) -> CmdResult<Step> {
        let step = self.step()?;
        self.stats.record(&step);
        Ok(step)
    }

    fn explain(&self, with_stats: bool) -> Document {
        let mut d = doc! {"stage": "SORT", "sortPattern": self.shown.clone(), "memLimit": 104_857_600_i64, "type": "simple"};
        if let Some(k) = self.limit {
            d.insert("limitAmount", k as i64);
        }
        if with_stats {
            self.stats.write(&mut d);
        }
        d.insert("inputStage", self.input.explain(with_stats));
        d
    }

    fn examined(&self) -> (u64, u64) {
        self.input.examined()
    }

    fn blocking_sort(&self) -> bool {
        true
    }
}

/// Over rows already in sort order (read from an index), puts rows with
/// equal sort keys in `_id` order, the order every plan gives them. It holds
/// back one run of equal keys at a time.
pub struct OrderTies<'a> {
    input: BoxedStage<'a>,
    spec: &'a SortSpec,
    run: Vec<Keyed>,
    ready: VecDeque<Row>,
    done: bool,
    stats: Stats,
}

impl<'a> OrderTies<'a> {
    pub fn new(input: BoxedStage<'a>, spec: &'a SortSpec) -> OrderTies<'a> {
        OrderTies { input, spec, run: Vec::new(), ready: VecDeque::new(), done: false, stats: Stats::default() }
    }

    fn release_run(&mut self) {
        self.run.sort_by(|a, b| a.row.id.cmp(&b.row.id));
        self.ready.extend(self.run.drain(..).map(|k| k.row));
    }

    fn step(&mut self) -> CmdResult<Step> {
        if let Some(row) = self.ready.pop_front() {
            return Ok(Step::Advanced(row));
        }
        if self.done {
            return Ok(Step::Eof);
        }
        match self.input.work()? {
            Step::Advanced(row) => {
                let key = row.doc.as_ref().map(|d| self.spec.key_of(d)).unwrap_or_default();
                let same = self.run.last().is_none_or(|last| self.spec.compare_keys(&last.key, &key) == Ordering::Equal);
                if !same {
                    self.release_run();
                }
                self.run.push(Keyed { key, row });
                Ok(match self.ready.pop_front() {
                    Some(row) => Step::Advanced(row),
                    None => Step::NeedTime,
                })
            }
            Step::NeedTime => Ok(Step::NeedTime),
            Step::Eof => {
                self.done = true;
                self.release_run();
                Ok(match self.ready.pop_front() {
                    Some(row) => Step::Advanced(row),
                    None => Step::Eof,
                })
            }
        }
    }
}

impl<'a> Stage<'a> for OrderTies<'a> {
    fn work(&mut self) -> CmdResult<Step> {
        let step = self.step()?;
        self.stats.record(&step);
        Ok(step)
    }

    fn explain(&self, with_stats: bool) -> Document {
        // Not a MongoDB stage: equal sort keys in `_id` order.
        let mut d = doc! {"stage": "ORDER_TIES", "sortPattern": {"_id": 1}};
        if with_stats {
            self.stats.write(&mut d);
        }
        d.insert("inputStage", self.input.explain(with_stats));
        d
    }

    fn examined(&self) -> (u64, u64) {
        self.input.examined()
    }
}

/// Puts the rows of an index scan in `_id` order before their documents are
/// read: collects the `_id` keys of every entry (no document is read), sorts
/// them, then passes them on. A query without a sort then answers in the
/// same order whatever the plan — the order of a collection scan.
pub struct IdOrder<'a> {
    input: BoxedStage<'a>,
    collected: Vec<Row>,
    output: Option<VecDeque<Row>>,
    stats: Stats,
}

impl<'a> IdOrder<'a> {
    pub fn new(input: BoxedStage<'a>) -> IdOrder<'a> {
        IdOrder { input, collected: Vec::new(), output: None, stats: Stats::default() }
    }

    fn step(&mut self) -> CmdResult<Step> {
        if let Some(out) = &mut self.output {
            return Ok(match out.pop_front() {
                Some(row) => Step::Advanced(row),
                None => Step::Eof,
            });
        }
        match self.input.work()? {
            Step::Advanced(row) => {
                self.collected.push(row);
                Ok(Step::NeedTime)
            }
            Step::NeedTime => Ok(Step::NeedTime),
            Step::Eof => {
                let mut rows = std::mem::take(&mut self.collected);
                rows.sort_by(|a, b| a.id.cmp(&b.id));
                self.output = Some(rows.into());
                Ok(Step::NeedTime)
            }
        }
    }
}

impl<'a> Stage<'a> for IdOrder<'a> {
    fn work(&mut self) -> CmdResult<Step> {
        let step = self.step()?;
        self.stats.record(&step);
        Ok(step)
    }

    fn explain(&self, with_stats: bool) -> Document {
        // A sort of record ids (the collection's `_id` order), before FETCH.
        let mut d = doc! {"stage": "SORT", "sortPattern": {"_id": 1}, "type": "recordIds"};
        if with_stats {
            self.stats.write(&mut d);
        }
        d.insert("inputStage", self.input.explain(with_stats));
        d
    }

    fn examined(&self) -> (u64, u64) {
        self.input.examined()
    }

    fn blocking_sort(&self) -> bool {
        true
    }
}

// ---- skip and limit ---------------------------------------------------------------

pub struct Skip<'a> {
    input: BoxedStage<'a>,
    remaining: usize,
    amount: usize,
    stats: Stats,
}

impl<'a> Skip<'a> {
    pub fn new(input: BoxedStage<'a>, amount: usize) -> Skip<'a> {
        Skip { input, remaining: amount, amount, stats: Stats::default() }
    }
}

impl<'a> Stage<'a> for Skip<'a> {
    fn work(&mut self) -> CmdResult<Step> {
        let step = match self.input.work()? {
            Step::Advanced(_) if self.remaining > 0 => {
                self.remaining -= 1;
                Step::NeedTime
            }
            other => other,
        };
        self.stats.record(&step);
        Ok(step)
    }

    fn explain(&self, with_stats: bool) -> Document {
        let mut d = doc! {"stage": "SKIP", "skipAmount": self.amount as i64};
        if with_stats {
            self.stats.write(&mut d);
        }
        d.insert("inputStage", self.input.explain(with_stats));
        d
    }

    fn examined(&self) -> (u64, u64) {
        self.input.examined()
    }

    fn blocking_sort(&self) -> bool {
        self.input.blocking_sort()
    }
}

pub struct Limit<'a> {
    input: BoxedStage<'a>,
    remaining: usize,
    amount: usize,
    stats: Stats,
}

impl<'a> Limit<'a> {
    pub fn new(input: BoxedStage<'a>, amount: usize) -> Limit<'a> {
        Limit { input, remaining: amount, amount, stats: Stats::default() }
    }
}

impl<'a> Stage<'a> for Limit<'a> {
    fn work(&mut self) -> CmdResult<Step> {
        let step = if self.remaining == 0 {
            Step::Eof
        } else {
            match self.input.work()? {
                Step::Advanced(row) => {
                    self.remaining -= 1;
                    Step::Advanced(row)
                }
                other => other,
            }
        };
        self.stats.record(&step);
        Ok(step)
    }

    fn explain(&self, with_stats: bool) -> Document {
        let mut d = doc! {"stage": "LIMIT", "limitAmount": self.amount as i64};
        if with_stats {
            self.stats.write(&mut d);
        }
        d.insert("inputStage", self.input.explain(with_stats));
        d
    }

    fn examined(&self) -> (u64, u64) {
        self.input.examined()
    }

    fn blocking_sort(&self) -> bool {
        self.input.blocking_sort()
    }
}

/// Nothing can match (e.g. `{a: {$gt: 5, $lt: 2}}` on an index).
pub struct Empty {
    stats: Stats,
}

impl Empty {
    pub fn new() -> Empty {
        Empty { stats: Stats::default() }
    }
}

impl<'a> Stage<'a> for Empty {
    fn work(&mut self) -> CmdResult<Step> {
        let step = Step::Eof;
        self.stats.record(&step);
        Ok(step)
    }

    fn explain(&self, with_stats: bool) -> Document {
        let mut d = doc! {"stage": "EOF"};
        if with_stats {
            self.stats.write(&mut d);
        }
        d
    }

    fn examined(&self) -> (u64, u64) {
        (0, 0)
    }
}
