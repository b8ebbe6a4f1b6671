//! Read commands: find, getMore, killCursors, aggregate, count, distinct.
use super::aggregate_output::take_output_stage;
use super::{collection_arg, doc_array, num_i64, opt_bool, opt_doc, opt_i64, Ctx};
use crate::cursor::{take_batch, DEFAULT_FIRST_BATCH};
use crate::error::{CmdResult, CommandError};
use crate::plan;
use crate::storage::Tables;
use bson::{doc, Bson, Document};
use djongo_engine::{compare::cmp_bson, projection::FindProjection, sort::sort_documents, CollectionSource, EngineError};
use std::collections::VecDeque;

fn batch_size_arg(v: Option<i64>) -> CmdResult<Option<usize>> {
    match v {
        Some(n) if n < 0 => Err(CommandError::bad_value("batchSize must be non-negative")),
        Some(n) => Ok(Some(n as usize)),
        None => Ok(None),
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
    let projection = match opt_doc(body, "projection")?.filter(|p| !p.is_empty()) {
        Some(p) => Some(FindProjection::parse(&p, &filter)?),
        None => None,
    };
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
    let db = ctx.db.clone();
    let mut docs = {
        let tables = ctx.scope.read()?;
        match tables.collection(&db, &coll)? {
            None => Vec::new(),
            Some(meta) => {
                // Natural order: a capped collection's insertion order (`capped`).
                let natural = super::capped::natural_order(&meta, sort.as_ref());
                // Without a sort, matching can stop once skip+limit are found.
                let stop = (sort.is_none() && natural.is_none() && limit > 0).then(|| skip.saturating_add(limit));
                let mut docs = plan::matching(&tables, &meta, &filter, stop)?;
                if let Some(reverse) = natural {
                    super::capped::order_naturally(&tables, &meta, reverse, &mut docs)?;
                }
                docs
            }
        }
    };
    if let Some(s) = sort.as_ref().filter(|s| super::capped::natural_direction(s).is_none()) {
        sort_documents(&mut docs, s)?;
    }
    let mut docs: Vec<Document> = docs.into_iter().skip(skip).collect();
    if limit > 0 {
        docs.truncate(limit);
    }
    docs = super::find_keys::apply(ctx, body, &coll, &filter, sort.as_ref(), docs)?;
    if let Some(p) = projection.as_ref().filter(|_| !super::find_keys::returns_keys(body)) {
        docs = docs.iter().map(|d| p.apply(d)).collect::<Result<_, _>>()?;
    }
    let batch_size = if single_batch && limit > 0 { Some(limit) } else { batch_size };
    Ok(cursor_reply(ctx, format!("{db}.{coll}"), docs, batch_size, single_batch))
}

pub fn get_more(ctx: &mut Ctx<'_>, body: &Document) -> CmdResult<Document> {
    let id = body.get("getMore").and_then(num_i64).ok_or_else(|| CommandError::type_mismatch("getMore must be a cursor id"))?;
    let coll = collection_arg(body, "collection")?;
    let batch_size = batch_size_arg(opt_i64(body, "batchSize")?)?.filter(|n| *n > 0);
    let ns = format!("{}.{coll}", ctx.db);
    let (batch, id) = ctx.state.cursors.get_more(id, &ns, batch_size)?;
    let batch: Vec<Bson> = batch.into_iter().map(Bson::Document).collect();
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
/// transaction as the main input.
pub(super) struct Source<'a, 't> {
    pub(super) tables: &'a Tables<'t>,
    pub(super) db: &'a str,
}

fn to_engine(e: CommandError) -> EngineError {
    let name = match e.code_name {
        std::borrow::Cow::Borrowed(name) => name,
        std::borrow::Cow::Owned(_) => "Location",
    };
    EngineError::new(e.code, name, e.message)
}

impl CollectionSource for Source<'_, '_> {
    fn scan(&self, collection: &str) -> djongo_engine::Result<Vec<Document>> {
        match self.tables.collection(self.db, collection).map_err(to_engine)? {
            Some(meta) => self.tables.scan(&meta).map_err(to_engine),
            None => Ok(Vec::new()),
        }
    }

    fn find_equal(&self, collection: &str, field: &str, values: &[Bson]) -> djongo_engine::Result<Option<Vec<Document>>> {
        let Some(meta) = self.tables.collection(self.db, collection).map_err(to_engine)? else {
            return Ok(Some(Vec::new()));
        };
        let filter = doc! {field: {"$in": values.to_vec()}};
        if !plan::uses_index(&meta, &filter) {
            return Ok(None);
        }
        let mut docs = plan::matching(self.tables, &meta, &filter, None).map_err(to_engine)?;
        // Collection order, as a scan would give them.
        docs.sort_by_cached_key(|d| d.get("_id").map(crate::keyenc::encode_one).unwrap_or_default());
        Ok(Some(docs))
    }
}

fn stage_name(stage: &Document) -> &str {
    stage.keys().next().map(String::as_str).unwrap_or("")
}

pub fn aggregate(ctx: &mut Ctx<'_>, body: &Document) -> CmdResult<Document> {
    let mut pipeline = doc_array(body, "pipeline")?;
    if opt_bool(body, "explain") {
        return Err(CommandError::new(115, "CommandNotSupported", "explain is not supported by the embedded engine"));
    }
    let vars = super::let_vars::parse(body)?.unwrap_or_default();
    let cursor_opts = opt_doc(body, "cursor")?.unwrap_or_default();
    let batch_size = batch_size_arg(opt_i64(&cursor_opts, "batchSize")?)?;
    let db = ctx.db.clone();
    let collection = match body.get("aggregate") {
        Some(Bson::String(c)) if !c.is_empty() => Some(c.clone()),
        Some(v) if num_i64(v) == Some(1) => None,
        _ => return Err(CommandError::invalid_namespace("aggregate must name a collection or be 1")),
    };
    // A final $out/$merge writes the results; the engine only computes them.
    let output = take_output_stage(&mut pipeline, &db)?;
    if let Some(stage) = &output {
        if ctx.scope.in_transaction() {
            return Err(stage.refused_in_transaction());
        }
    }
    let results = {
        let tables = ctx.scope.read()?;
        let fast = match (&collection, &output) {
            (Some(coll), None) => count_fast_path(&tables, &db, coll, &pipeline)?,
            _ => None,
        };
        if let Some(docs) = fast {
            drop(tables);
            let ns = format!("{db}.{}", collection.unwrap_or_default());
            return Ok(cursor_reply(ctx, ns, docs, batch_size, false));
        }
        let input = match &collection {
            None => super::db_sources::input(&super::db_sources::Site { state: ctx.state, db: &db, host: &ctx.conn.local_address }, &mut pipeline)?,
            Some(coll) => match tables.collection(&db, coll)? {
                None => Vec::new(),
                Some(meta) => match pipeline.first() {
                    // Push a leading $match into candidate selection (it can use indexes).
                    Some(stage) if stage_name(stage) == "$match" => {
                        let filter = super::let_vars::bind_filter(opt_doc(stage, "$match")?.unwrap_or_default(), Some(&vars));
                        let docs = plan::matching(&tables, &meta, &filter, None)?;
                        pipeline.remove(0);
                        docs
                    }
                    _ => tables.scan(&meta)?,
                },
            },
        };
        let source = Source { tables: &tables, db: &db };
        djongo_engine::pipeline::run_with_vars(&pipeline, input, &source, &vars)?
    };
    if let Some(stage) = output {
        let mut tables = ctx.scope.write()?;
        stage.write(&mut tables, results)?;
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

/// Answers whole-collection counts (`[{$count: f}]`, or the `$group` with a
/// constant `_id` and `{$sum: 1}` that drivers and the SQL compiler emit for
/// COUNT(*)) from the number of stored keys, without decoding documents.
fn count_fast_path(tables: &Tables<'_>, db: &str, coll: &str, pipeline: &[Document]) -> CmdResult<Option<Vec<Document>>> {
    let stages: Vec<&Document> = pipeline
        .iter()
        .skip_while(|st| matches!(st.get("$match"), Some(Bson::Document(f)) if f.is_empty()) && st.len() == 1)
        .collect();
    let [stage] = stages.as_slice() else { return Ok(None) };
    if stage.len() != 1 {
        return Ok(None);
    }
    let shape = match stage.iter().next() {
        Some((name, Bson::String(field))) if name == "$count" && !field.is_empty() && !field.starts_with('$') => {
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
                (true, Some(field)) => Some((group.get("_id").cloned(), field)),
                _ => None,
            }
        }
        _ => None,
    };
    let Some((id, field)) = shape else { return Ok(None) };
    let n = match tables.collection(db, coll)? {
        Some(meta) => tables.count(&meta)?,
        None => 0,
    };
    if n == 0 {
        return Ok(Some(Vec::new()));
    }
    let mut out = Document::new();
    let n_bson = i32::try_from(n).map(Bson::Int32).unwrap_or(Bson::Int64(n as i64));
    if let Some(id) = id {
        out.insert("_id", id);
    }
    out.insert(field, n_bson);
    Ok(Some(vec![out]))
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
    let total = if filter.is_empty() {
        // Counting keys avoids decoding every document.
        tables.count(&meta)?
    } else {
        plan::matching(&tables, &meta, &filter, None)?.len() as u64
    };
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
    for d in plan::matching(&tables, &meta, &filter, None)? {
        let mut found = Vec::new();
        crate::index::collect_path(&Bson::Document(d), &path, crate::index::EmptyArray::Skip, &mut found);
        for v in found {
            if seen.insert(crate::keyenc::encode_one(&v)) {
                values.push(v);
            }
        }
    }
    values.sort_by(cmp_bson);
    Ok(doc! {"values": values, "ok": 1.0})
}
