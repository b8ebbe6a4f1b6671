//! Read commands: find, getMore, killCursors, aggregate, count, distinct.
use super::aggregate_output::take_output_stage;
use super::{collection_arg, doc_array, num_i64, opt_bool, opt_doc, opt_i64, Ctx};
use super::stored_projection::StoredRenames;
use crate::cursor::{take_batch, take_stored_batch, Batch, DEFAULT_FIRST_BATCH};
use crate::stored_batch::StoredBatch;
use crate::error::{CmdResult, CommandError};
use crate::catalog::CollectionMeta;
use crate::plan;
use crate::plan::join_cost::JoinEstimate;
use crate::storage::Tables;
use bson::{doc, Bson, Document, RawDocument, RawDocumentBuf};
use djongo_engine::projection::FindProjection;
use djongo_engine::pipeline::JoinExecution;
use djongo_engine::{compare::cmp_bson, sort::SortSpec, CollectionSource, EngineError};
use std::collections::VecDeque;
use std::ops::Bound;

fn batch_size_arg(v: Option<i64>) -> CmdResult<Option<usize>> {
    match v {
        Some(n) if n < 0 => Err(CommandError::bad_value("batchSize must be non-negative")),
        Some(n) => Ok(Some(n as usize)),
        None => Ok(None),
    }
}

/// The `hint` of a find, count or aggregate: an index name or key pattern.
pub(super) fn hint_arg(body: &Document) -> CmdResult<Option<Bson>> {
    match body.get("hint") {
        None | Some(Bson::Null) => Ok(None),
        Some(Bson::String(s)) if s.is_empty() => Ok(None),
        Some(Bson::Document(d)) if d.is_empty() => Ok(None),
        Some(h @ (Bson::String(_) | Bson::Document(_))) => Ok(Some(h.clone())),
        Some(_) => Err(CommandError::bad_value("hint must be a string or an object")),
    }
}

/// Builds a cursor reply: the first batch now, the rest registered for getMore.
fn cursor_reply(ctx: &Ctx<'_>, ns: String, docs: Vec<Document>, batch_size: Option<usize>, single_batch: bool) -> Document {
    let mut queue = VecDeque::from(docs);
    let batch = take_batch(&mut queue, Some(batch_size.unwrap_or(DEFAULT_FIRST_BATCH)));
    let id = if single_batch { 0 } else { ctx.state.cursors.register(ns.clone(), queue) };
    let batch: Vec<Bson> = batch.into_iter().map(Bson::Document).collect();
    doc! {"cursor": {"firstBatch": batch, "id": id, "ns": ns}, "ok": 1.0}
}

pub fn find(ctx: &mut Ctx<'_>, body: &Document) -> CmdResult<Document> {
    let coll = collection_arg(body, "find")?;
    let vars = super::let_vars::parse(body)?;
    let filter = super::let_vars::bind_filter(opt_doc(body, "filter")?.unwrap_or_default(), vars.as_ref());
    let sort = opt_doc(body, "sort")?.filter(|s| !s.is_empty());
    let text = crate::text::search::TextFilter::split(&filter)?;
    if text.is_some() && djongo_engine::geo::find_near(&filter)?.is_some() {
        return Err(CommandError::bad_value("text and geoNear not allowed in same query"));
    }
    // `{$meta: "textScore"}` fields are filled in after the projection.
    let parsed = match body.get("projection") {
        None | Some(Bson::Null) => None,
        Some(Bson::Document(p)) if p.is_empty() => None,
        Some(Bson::Document(p)) => Some(super::find_projection::parsed(p, &filter, text.is_some())?),
        Some(_) => return Err(CommandError::type_mismatch("'projection' must be a document")),
    };
    let projection = parsed.as_ref().and_then(|p| p.projection.as_ref());
    let score_fields: &[String] = parsed.as_ref().map_or(&[], |p| &p.score_fields);
    let skip = opt_i64(body, "skip")?.unwrap_or(0);
    if skip < 0 {
        return Err(CommandError::bad_value("skip value must be non-negative"));
    }
    let limit = opt_i64(body, "limit")?.unwrap_or(0);
    let batch_size = batch_size_arg(opt_i64(body, "batchSize")?)?;
    // A negative limit is the legacy spelling of "one batch of that size".
    let single_batch = opt_bool(body, "singleBatch") || limit < 0;
    let limit = limit.unsigned_abs() as usize;
    let skip = skip as usize;
    if let Some(s) = sort.as_ref().filter(|s| super::capped::natural_direction(s).is_none()) {
        if !super::text_search::check_sort(s, text.is_some())? {
            SortSpec::parse(s)?;
        }
    }
    let hint = hint_arg(body)?;
    let db = ctx.db.clone();
    // A renaming projection (every SQL read's) builds the reply documents
    // from the stored bytes, unless something has to see them decoded.
    let stored = parsed
        .as_ref()
        .and_then(|p| p.stored.as_ref())
        .filter(|_| text.is_none() && !super::find_keys::returns_keys(body) && !opt_bool(body, "showRecordId") && !djongo_engine::collation::is_active());
    let mut stored_rows: Option<Vec<RawDocumentBuf>> = None;
    let mut docs = {
        let tables = ctx.scope.read()?;
        match (tables.collection(&db, &coll)?, text.as_ref()) {
            (None, _) => Vec::new(),
            (Some(meta), Some(text)) => super::text_search::find(&tables, &meta, text, sort.as_ref(), skip, (limit > 0).then_some(limit))?,
            (Some(meta), None) => {
                let near = djongo_engine::geo::find_near(&filter)?;
                match super::capped::natural_order(&meta, sort.as_ref()).filter(|_| near.is_none()) {
                    // Natural order: a capped collection's insertion order
                    // (`capped`), `_id` order for any other.
                    Some(reverse) => {
                        let mut docs = plan::matching(&tables, &meta, &filter, None)?;
                        super::capped::order_naturally(&tables, &meta, reverse, &mut docs)?;
                        let mut docs: Vec<Document> = docs.into_iter().skip(skip).collect();
                        if limit > 0 {
                            docs.truncate(limit);
                        }
                        docs
                    }
                    None => {
                        // returnKey reads the index key's fields, whatever the projection.
                        let fields = if super::find_keys::returns_keys(body) { None } else { parsed.as_ref().and_then(|p| p.fields.clone()) };
                        let query = plan::Query {
                            filter: filter.clone(),
                            sort: sort.clone(),
                            skip,
                            limit: (limit > 0).then_some(limit),
                            hint,
                            fields,
                            any_order: false,
                        };
                        match (stored, projection) {
                            (Some(stored), Some(projection)) if near.is_none() => {
                                stored_rows = Some(stored_find(&tables, &meta, &query, stored, projection)?);
                                Vec::new()
                            }
                            _ => plan::find(&tables, &meta, &query)?,
                        }
                    }
                }
            }
        }
    };
    let batch_size_of = |batch_size: Option<usize>| if single_batch && limit > 0 { Some(limit) } else { batch_size };
    if let Some(rows) = stored_rows {
        return Ok(stored_cursor_reply(ctx, format!("{db}.{coll}"), rows, batch_size_of(batch_size), single_batch));
    }
    docs = super::find_keys::apply(ctx, body, &coll, &filter, sort.as_ref(), docs)?;
    if text.is_some() {
        docs = docs
            .into_iter()
            .map(|d| {
                let score = d.get_f64(crate::text::meta::SCORE_FIELD).ok();
                let mut d = match projection {
                    Some(p) => p.apply_owned(d)?,
                    None => d,
                };
                super::text_search::finish(&mut d, score, score_fields);
                Ok(d)
            })
            .collect::<CmdResult<_>>()?;
    } else if let Some(p) = projection.filter(|_| !super::find_keys::returns_keys(body)) {
        docs = docs.into_iter().map(|d| p.apply_owned(d)).collect::<Result<_, _>>()?;
    }
    Ok(cursor_reply(ctx, format!("{db}.{coll}"), docs, batch_size_of(batch_size), single_batch))
}

/// A find's reply documents under a renaming projection: copied out of the
/// stored bytes where the plan left them unread, else projected from the
/// document it decoded (and encoded).
fn stored_find(tables: &Tables<'_>, meta: &CollectionMeta, query: &plan::Query, stored: &StoredRenames, projection: &FindProjection) -> CmdResult<Vec<RawDocumentBuf>> {
    let mut rows = Vec::new();
    plan::visit_found(tables, meta, query, |found| {
        rows.push(match found {
            plan::Found::Stored(raw) => stored.project(raw)?,
            plan::Found::Decoded(doc) => {
                let projected = projection.apply_owned(doc)?;
                RawDocumentBuf::try_from(&projected).map_err(|e| CommandError::internal(format!("unencodable document: {e}")))?
            }
        });
        Ok(())
    })?;
    Ok(rows)
}

/// [`cursor_reply`] for reply documents already encoded: they go to the
/// connection's reply as they are (`stored_batch`).
fn stored_cursor_reply(ctx: &mut Ctx<'_>, ns: String, rows: Vec<RawDocumentBuf>, batch_size: Option<usize>, single_batch: bool) -> Document {
    let mut queue = VecDeque::from(rows);
    let batch = take_stored_batch(&mut queue, Some(batch_size.unwrap_or(DEFAULT_FIRST_BATCH)));
    let id = if single_batch { 0 } else { ctx.state.cursors.register_stored(ns.clone(), queue) };
    ctx.conn.stored_batch = Some(StoredBatch::first(batch));
    doc! {"cursor": {"firstBatch": [], "id": id, "ns": ns}, "ok": 1.0}
}

pub fn get_more(ctx: &mut Ctx<'_>, body: &Document) -> CmdResult<Document> {
    let id = body.get("getMore").and_then(num_i64).ok_or_else(|| CommandError::type_mismatch("getMore must be a cursor id"))?;
    let coll = collection_arg(body, "collection")?;
    let batch_size = batch_size_arg(opt_i64(body, "batchSize")?)?.filter(|n| *n > 0);
    let ns = format!("{}.{coll}", ctx.db);
    let (batch, id) = ctx.state.cursors.get_more(id, &ns, batch_size)?;
    let batch: Vec<Bson> = match batch {
        Batch::Decoded(docs) => docs.into_iter().map(Bson::Document).collect(),
        Batch::Stored(docs) => {
            ctx.conn.stored_batch = Some(StoredBatch::next(docs));
            Vec::new()
        }
    };
    Ok(doc! {"cursor": {"nextBatch": batch, "id": id, "ns": ns}, "ok": 1.0})
}

pub fn kill_cursors(ctx: &mut Ctx<'_>, body: &Document) -> CmdResult<Document> {
    let ids: Vec<i64> = match body.get("cursors") {
        Some(Bson::Array(items)) => items.iter().filter_map(num_i64).collect(),
        _ => return Err(CommandError::type_mismatch("cursors must be an array of cursor ids")),
    };
    let (killed, missing) = ctx.state.cursors.kill(&ids);
    Ok(doc! {"cursorsKilled": killed, "cursorsNotFound": missing, "cursorsAlive": [], "cursorsUnknown": [], "ok": 1.0})
}

/// Lets `$lookup` and friends read other collections through the same
/// transaction as the main input, noting how it read each (for explain).
pub(super) struct Source<'a, 't> {
    pub tables: &'a Tables<'t>,
    pub db: &'a str,
    /// Per read: the collection and the index used (`None`: a scan).
    pub reads: std::cell::RefCell<Vec<(String, Option<String>)>>,
    /// Per join the planner costed: the collection and its estimate.
    pub estimates: std::cell::RefCell<Vec<(String, JoinEstimate)>>,
    /// Per `$lookup` unwound into a `$group` on stored bytes: the
    /// collection and how the group ran.
    pub groupings: std::cell::RefCell<Vec<(String, JoinExecution)>>,
}

impl<'a, 't> Source<'a, 't> {
    pub fn new(tables: &'a Tables<'t>, db: &'a str) -> Source<'a, 't> {
        Source {
            tables,
            db,
            reads: std::cell::RefCell::default(),
            estimates: std::cell::RefCell::default(),
            groupings: std::cell::RefCell::default(),
        }
    }

    fn note(&self, collection: &str, index: Option<String>) {
        self.reads.borrow_mut().push((collection.to_string(), index));
    }

    /// Whether the join reading `query` from `meta` is cheaper as a scan of
    /// the whole collection than as index probes (`plan::join_cost`).
    fn join_scans(&self, collection: &str, prep: &plan::Prepared<'_>) -> djongo_engine::Result<bool> {
        let Some(estimate) = plan::join_cost::estimate_prepared(self.tables, prep).map_err(to_engine)? else {
            return Ok(false);
        };
        self.estimates.borrow_mut().push((collection.to_string(), estimate));
        Ok(estimate.prefers_scan())
    }
}

pub(super) fn to_engine(e: CommandError) -> EngineError {
    let name = match e.code_name {
        std::borrow::Cow::Borrowed(name) => name,
        std::borrow::Cow::Owned(_) => "Location",
    };
    EngineError::new(e.code, name, e.message)
}

impl CollectionSource for Source<'_, '_> {
    fn scan(&self, collection: &str) -> djongo_engine::Result<Vec<Document>> {
        self.scan_fields(collection, None)
    }

    fn scan_fields(&self, collection: &str, fields: Option<&[String]>) -> djongo_engine::Result<Vec<Document>> {
        match self.tables.collection(self.db, collection).map_err(to_engine)? {
            Some(meta) => {
                self.note(collection, None);
                let query = plan::Query { fields: fields.map(<[String]>::to_vec), ..plan::Query::default() };
                plan::find(self.tables, &meta, &query).map_err(to_engine)
            }
            None => Ok(Vec::new()),
        }
    }

    fn find_equal(&self, collection: &str, field: &str, values: &[Bson], fields: Option<&[String]>) -> djongo_engine::Result<Option<Vec<Document>>> {
        let Some(meta) = self.tables.collection(self.db, collection).map_err(to_engine)? else {
            return Ok(Some(Vec::new()));
        };
        let filter = doc! {field: {"$in": values.to_vec()}};
        // Collection order, as a scan would give them: the plan sorts the
        // index entries' `_id` keys before it fetches (no `_id` decoded and
        // re-encoded per document to sort them after).
        let query = plan::Query { filter, fields: fields.map(<[String]>::to_vec), ..plan::Query::default() };
        // Planned once, for the estimate and the probe both.
        let prep = plan::Prepared::new(self.tables, &meta, &query).map_err(to_engine)?;
        if self.join_scans(collection, &prep)? {
            return Ok(None);
        }
        let Some((index, docs)) = plan::find_indexed_prepared(self.tables, &prep).map_err(to_engine)? else {
            return Ok(None);
        };
        self.note(collection, Some(index));
        Ok(Some(docs))
    }

    fn visit_equal(
        &self,
        collection: &str,
        field: &str,
        values: &[Bson],
        visit: &mut dyn FnMut(&RawDocument) -> djongo_engine::Result<()>,
    ) -> djongo_engine::Result<bool> {
        let Some(meta) = self.tables.collection(self.db, collection).map_err(to_engine)? else {
            return Ok(true);
        };
        let query = plan::Query { filter: doc! {field: {"$in": values.to_vec()}}, ..plan::Query::default() };
        let prep = plan::Prepared::new(self.tables, &meta, &query).map_err(to_engine)?;
        if self.join_scans(collection, &prep)? {
            return Ok(false);
        }
        // The visitor's own error goes back as it was raised, not through
        // the command layer's.
        let mut failed = None;
        let index = plan::visit_indexed_prepared(self.tables, prep, |raw| {
            visit(raw).map_err(|e| {
                failed = Some(e);
                CommandError::internal("$lookup: the visit of a joined document failed")
            })
        });
        if let Some(e) = failed {
            return Err(e);
        }
        match index.map_err(to_engine)? {
            Some(index) => {
                self.note(collection, Some(index));
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn note_join(&self, collection: &str, execution: JoinExecution) {
        self.groupings.borrow_mut().push((collection.to_string(), execution));
    }

    fn visit_all(&self, collection: &str, visit: &mut dyn FnMut(&RawDocument) -> djongo_engine::Result<()>) -> djongo_engine::Result<bool> {
        let Some(meta) = self.tables.collection(self.db, collection).map_err(to_engine)? else {
            return Ok(true);
        };
        self.note(collection, None);
        let mut documents = self.tables.documents_between(&meta, Bound::Unbounded, Bound::Unbounded, false).map_err(to_engine)?;
        let mut failed = None;
        while let Some(step) = documents.visit_next(|raw| {
            visit(raw).map_err(|e| {
                failed = Some(e);
                CommandError::internal("$lookup: the visit of a joined document failed")
            })
        }) {
            if let Some(e) = failed.take() {
                return Err(e);
            }
            step.map_err(to_engine)?;
        }
        Ok(true)
    }
}

pub fn aggregate(ctx: &mut Ctx<'_>, body: &Document) -> CmdResult<Document> {
    if opt_bool(body, "explain") {
        return super::explain::explain_aggregate(ctx, body, plan::Verbosity::QueryPlanner);
    }
    let mut pipeline = doc_array(body, "pipeline")?;
    let vars = super::let_vars::parse(body)?.unwrap_or_default();
    let cursor_opts = opt_doc(body, "cursor")?.unwrap_or_default();
    let batch_size = batch_size_arg(opt_i64(&cursor_opts, "batchSize")?)?;
    let db = ctx.db.clone();
    let collection = aggregate_target(body)?;
    // A final $out/$merge writes the results; the engine only computes them.
    let output = take_output_stage(&mut pipeline, &db)?;
    if let Some(stage) = &output {
        if ctx.scope.in_transaction() {
            return Err(stage.refused_in_transaction());
        }
    }
    djongo_engine::pipeline::optimize(&mut pipeline);
    let reads_score = crate::text::meta::rewrite_pipeline(&mut pipeline)?;
    let in_transaction = ctx.scope.in_transaction();
    let results = {
        let tables = ctx.scope.read()?;
        let source = Source::new(&tables, &db);
        let cache_stats = super::plan_cache::stats_input(&tables, &db, collection.as_deref(), in_transaction, &mut pipeline)?;
        if let Some(input) = cache_stats {
            djongo_engine::pipeline::run_with_vars(&pipeline, input, &source, &vars)?
        } else {
            match &collection {
                None => {
                    let site = super::db_sources::Site { state: ctx.state, db: &db, host: &ctx.conn.local_address };
                    let input = super::db_sources::input(&site, &mut pipeline)?;
                    djongo_engine::pipeline::run_with_vars(&pipeline, input, &source, &vars)?
                }
                Some(coll) => match tables.collection(&db, coll)? {
                    None => {
                        // No collection, no documents to measure: a valid $geoNear yields nothing.
                        if super::geo::leads_with_geo_near(&pipeline) {
                            let stage = pipeline.remove(0);
                            djongo_engine::geo::GeoNear::parse(stage.get("$geoNear").unwrap_or(&Bson::Null))?;
                        }
                        djongo_engine::pipeline::run_with_vars(&pipeline, Vec::new(), &source, &vars)?
                    }
                    Some(meta) if super::geo::leads_with_geo_near(&pipeline) => {
                        let input = super::geo::geo_near_input(&tables, &meta, &mut pipeline, &vars)?;
                        djongo_engine::pipeline::run_with_vars(&pipeline, input, &source, &vars)?
                    }
                    Some(meta) => {
                        // The leading $match/$sort/$skip/$limit become the query
                        // the planner answers (with an index where one serves);
                        // the command's `let` variables are bound into it first.
                        let hint = hint_arg(body)?;
                        let fields = djongo_engine::deps::pipeline_needs(&pipeline).top_level();
                        let mut query = take_query(&mut pipeline);
                        djongo_engine::geo::refuse_near(&query.filter)?;
                        query.filter = super::let_vars::bind_filter(std::mem::take(&mut query.filter), Some(&vars));
                        let query = plan::Query { hint, fields, ..query };
                        let text = crate::text::search::TextFilter::split(&query.filter)?;
                        if reads_score && text.is_none() {
                            return Err(crate::text::meta::score_unavailable());
                        }
                        if let Some(text) = &text {
                            let docs = super::text_search::find(&tables, &meta, text, query.sort.as_ref(), query.skip, query.limit)?;
                            let mut input = docs.into_iter().map(Ok);
                            let mut results = djongo_engine::pipeline::run_pipeline_from_with_vars(&pipeline, &mut input, &source, &vars)?;
                            results.iter_mut().for_each(crate::text::meta::strip);
                            results
                        } else {
                            match count_shape(&pipeline) {
                                Some(shape) if query.sort.is_none() && query.skip == 0 && query.limit.is_none() => {
                                    count_result(plan::count(&tables, &meta, &query.filter)?, shape)
                                }
                                _ => {
                                    let prep = plan::Prepared::new(&tables, &meta, &query)?;
                                    plan::run(&tables, &prep, |exec| {
                                        let mut input = exec.map(|r| r.map_err(to_engine));
                                        Ok(djongo_engine::pipeline::run_pipeline_from_with_vars(&pipeline, &mut input, &source, &vars)?)
                                    })?
                                }
                            }
                        }
                    }
                },
            }
        }
    };
    if let Some(stage) = output {
        let mut tables = ctx.scope.write()?;
        stage.write(&mut tables, results, crate::validation::bypass_requested(body))?;
        let ns = match &collection {
            Some(c) => format!("{db}.{c}"),
            None => format!("{db}.$cmd.aggregate"),
        };
        return Ok(doc! {"cursor": {"firstBatch": [], "id": 0i64, "ns": ns}, "ok": 1.0});
    }
    let ns = match &collection {
        Some(c) => format!("{db}.{c}"),
        None => format!("{db}.$cmd.aggregate"),
    };
    Ok(cursor_reply(ctx, ns, results, batch_size, false))
}

/// The collection an aggregate reads, or `None` for `aggregate: 1`.
pub(super) fn aggregate_target(body: &Document) -> CmdResult<Option<String>> {
    match body.get("aggregate") {
        Some(Bson::String(c)) if !c.is_empty() => Ok(Some(c.clone())),
        Some(v) if num_i64(v) == Some(1) => Ok(None),
        _ => Err(CommandError::invalid_namespace("aggregate must name a collection or be 1")),
    }
}

/// Removes the leading stages a query can answer — `$match`, `$sort`, then
/// `$skip`/`$limit` — and returns that query. Stages with bad arguments stay
/// for the engine to refuse with its usual errors.
pub(super) fn take_query(pipeline: &mut Vec<Document>) -> plan::Query {
    let mut query = plan::Query::default();
    let mut filters: Vec<Bson> = Vec::new();
    let mut paging = false;
    while let Some(stage) = pipeline.first() {
        if stage.len() != 1 {
            break;
        }
        let taken = match stage.iter().next() {
            Some((name, Bson::Document(f))) if name == "$match" && !paging => {
                filters.push(Bson::Document(f.clone()));
                true
            }
            Some((name, Bson::Document(s))) if name == "$sort" && !paging && query.sort.is_none() && SortSpec::parse(s).is_ok() => {
                query.sort = Some(s.clone());
                true
            }
            Some((name, n)) if name == "$skip" => match num_i64(n).and_then(|n| usize::try_from(n).ok()) {
                Some(k) => {
                    query.skip = query.skip.saturating_add(k);
                    query.limit = query.limit.map(|l| l.saturating_sub(k));
                    paging = true;
                    true
                }
                None => false,
            },
            Some((name, n)) if name == "$limit" => match num_i64(n).and_then(|n| usize::try_from(n).ok()).filter(|n| *n > 0) {
                Some(m) => {
                    query.limit = Some(query.limit.map_or(m, |l| l.min(m)));
                    paging = true;
                    true
                }
                None => false,
            },
            _ => false,
        };
        if !taken {
            break;
        }
        pipeline.remove(0);
    }
    query.filter = match filters.len() {
        0 => Document::new(),
        1 => match filters.pop() {
            Some(Bson::Document(f)) => f,
            _ => Document::new(),
        },
        _ => doc! {"$and": filters},
    };
    query
}

/// A pipeline that only counts its input (`[{$count: f}]`, or the `$group`
/// with a constant `_id` and `{$sum: 1}` that drivers and the SQL compiler
/// emit for COUNT(*)): the group `_id` to report, if any, and the field.
pub(super) fn count_shape(pipeline: &[Document]) -> Option<(Option<Bson>, String)> {
    let [stage] = pipeline else { return None };
    if stage.len() != 1 {
        return None;
    }
    match stage.iter().next() {
        Some((name, Bson::String(field))) if name == "$count" && !field.is_empty() && !field.starts_with('$') && !field.contains('.') => {
            Some((None, field.clone()))
        }
        Some((name, Bson::Document(group))) if name == "$group" && group.len() == 2 => {
            let constant_id = match group.get("_id") {
                Some(Bson::String(s)) => !s.starts_with('$'),
                Some(Bson::Null | Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_)) => true,
                _ => false,
            };
            let counter = group.iter().find(|(k, _)| k.as_str() != "_id").and_then(|(k, v)| match v {
                Bson::Document(acc) if acc.len() == 1 && matches!(acc.get("$sum"), Some(Bson::Int32(1) | Bson::Int64(1))) => Some(k.clone()),
                _ => None,
            });
            match (constant_id, counter) {
                (true, Some(field)) if !field.contains('.') => Some((group.get("_id").cloned(), field)),
                _ => None,
            }
        }
        _ => None,
    }
}

/// What a counting pipeline answers for `n` documents.
fn count_result(n: u64, (id, field): (Option<Bson>, String)) -> Vec<Document> {
    if n == 0 {
        return Vec::new();
    }
    let mut out = Document::new();
    if let Some(id) = id {
        out.insert("_id", id);
    }
    out.insert(field, djongo_engine::num::count_bson(usize::try_from(n).unwrap_or(usize::MAX)));
    vec![out]
}

pub fn count(ctx: &mut Ctx<'_>, body: &Document) -> CmdResult<Document> {
    let coll = collection_arg(body, "count")?;
    let filter = opt_doc(body, "query")?.unwrap_or_default();
    let skip = opt_i64(body, "skip")?.unwrap_or(0).max(0) as u64;
    let limit = opt_i64(body, "limit")?.unwrap_or(0).unsigned_abs();
    let db = ctx.db.clone();
    let tables = ctx.scope.read()?;
    let Some(meta) = tables.collection(&db, &coll)? else {
        return Ok(doc! {"n": 0i64, "ok": 1.0});
    };
    let total = plan::count(&tables, &meta, &filter)?;
    let mut n = total.saturating_sub(skip);
    if limit > 0 {
        n = n.min(limit);
    }
    Ok(doc! {"n": n as i64, "ok": 1.0})
}

pub fn distinct(ctx: &mut Ctx<'_>, body: &Document) -> CmdResult<Document> {
    let coll = collection_arg(body, "distinct")?;
    let key = match body.get("key") {
        Some(Bson::String(k)) if !k.is_empty() => k.clone(),
        _ => return Err(CommandError::type_mismatch("distinct 'key' must be a non-empty string")),
    };
    let filter = opt_doc(body, "query")?.unwrap_or_default();
    let db = ctx.db.clone();
    let tables = ctx.scope.read()?;
    let Some(meta) = tables.collection(&db, &coll)? else {
        return Ok(doc! {"values": [], "ok": 1.0});
    };
    let path: Vec<&str> = key.split('.').collect();
    let mut values = Vec::new();
    let mut seen = std::collections::HashSet::new();
    // The values come out sorted: any document order will do.
    let fields = Some(vec![path[0].to_string()]);
    for d in plan::find(&tables, &meta, &plan::Query { filter, fields, any_order: true, ..plan::Query::default() })? {
        let mut found = Vec::new();
        crate::index::collect_path(&Bson::Document(d), &path, crate::index::EmptyArray::Skip, &mut found);
        for v in found {
            // Values the operation's collation calls equal are one value.
            if seen.insert(djongo_engine::compare::canonical_key(&v)) {
                values.push(v);
            }
        }
    }
    values.sort_by(cmp_bson);
    Ok(doc! {"values": values, "ok": 1.0})
}
