//! Views: read-only collections defined by a pipeline over another
//! collection or view (`create` with `viewOn` and `pipeline`).
//!
//! A view is a catalog entry whose options hold its definition; it holds no
//! documents. Commands that name a view are answered here before their
//! handlers see them: an aggregate runs on the view's source collection
//! with the view's pipeline in front of its own (as mongod resolves views);
//! find, count and distinct read the documents the view's pipeline yields;
//! writes and index commands are refused (166 CommandNotSupportedOnView).
use super::{num_i64, opt_bool, opt_doc, opt_i64, Ctx};
use crate::catalog::CollectionMeta;
use crate::cursor::{take_batch, DEFAULT_FIRST_BATCH};
use crate::error::{CmdResult, CommandError};
use crate::storage::Tables;
use bson::{doc, Bson, Document};
use djongo_engine::{compare::cmp_bson, projection::FindProjection, sort::sort_documents, Filter};
use std::collections::VecDeque;

/// mongod's `ViewGraph::kMaxViewDepth`.
const MAX_VIEW_DEPTH: usize = 20;

pub fn is_view(meta: &CollectionMeta) -> bool {
    meta.options.contains_key("viewOn")
}

fn not_on_view(ns: &str) -> CommandError {
    CommandError::new(166, "CommandNotSupportedOnView", format!("Namespace {ns} is a view, not a collection"))
}

/// A view's definition, checked when it is created: the source's name and
/// the pipeline.
pub fn definition(options: &Document) -> CmdResult<Option<(String, Vec<Document>)>> {
    let source = match options.get("viewOn") {
        None => {
            if options.contains_key("pipeline") {
                return Err(CommandError::bad_value("'pipeline' requires 'viewOn' to also be specified"));
            }
            return Ok(None);
        }
        Some(Bson::String(s)) if !s.is_empty() => s.clone(),
        Some(Bson::String(_)) => return Err(CommandError::bad_value("'viewOn' cannot be empty")),
        Some(_) => return Err(CommandError::type_mismatch("'viewOn' option must be a string")),
    };
    let pipeline = super::doc_array(options, "pipeline")?;
    for stage in &pipeline {
        if let Some(name) = stage.keys().next().filter(|n| matches!(n.as_str(), "$out" | "$merge")) {
            return Err(CommandError::new(167, "OptionNotSupportedOnView", format!("{name} cannot be used in a view definition")));
        }
    }
    for key in options.keys() {
        if !matches!(key.as_str(), "viewOn" | "pipeline" | "collation") {
            return Err(CommandError::new(167, "OptionNotSupportedOnView", format!("option not supported on a view: {key}")));
        }
    }
    Ok(Some((source, pipeline)))
}

/// The collection a view reads from and the whole pipeline over it (the
/// innermost view's stages first). The source may not exist (yet): a view
/// on a missing collection is empty.
fn resolve(tables: &Tables<'_>, db: &str, view: &CollectionMeta) -> CmdResult<(String, Vec<Document>)> {
    let mut stages = Vec::new();
    let mut current = view.clone();
    for _ in 0..MAX_VIEW_DEPTH {
        let Some((source, pipeline)) = definition(&current.options)? else {
            return Ok((current.name, stages));
        };
        let mut combined = pipeline;
        combined.extend(stages);
        stages = combined;
        match tables.collection(db, &source)? {
            Some(meta) => current = meta,
            None => return Ok((source, stages)),
        }
    }
    Err(CommandError::new(165, "ViewDepthLimitExceeded", format!("View depth too deep or view cycle detected; maximum depth is {MAX_VIEW_DEPTH}")))
}

/// Checks that a new view `name` on `source` makes no cycle.
pub fn check_new_view(tables: &Tables<'_>, db: &str, name: &str, source: &str) -> CmdResult<()> {
    let mut next = source.to_string();
    for _ in 0..MAX_VIEW_DEPTH {
        if next == name {
            return Err(CommandError::new(5, "GraphContainsCycle", format!("View cycle detected: {db}.{name}")));
        }
        let Some(meta) = tables.collection(db, &next)? else { return Ok(()) };
        match definition(&meta.options)? {
            Some((source, _)) => next = source,
            None => return Ok(()),
        }
    }
    Err(CommandError::new(165, "ViewDepthLimitExceeded", format!("View depth too deep; maximum depth is {MAX_VIEW_DEPTH}")))
}

/// Commands answered for a view here (reads), or refused on one (writes).
const READS: &[&str] = &["find", "aggregate", "count", "distinct"];
const REFUSED: &[&str] = &["insert", "update", "delete", "findAndModify", "findandmodify", "createIndexes", "dropIndexes", "deleteIndexes", "listIndexes"];

/// Answers `body` if it names a view; `None` when it does not (the
/// command's own handler runs).
pub fn intercept(ctx: &mut Ctx<'_>, name: &str, body: &Document) -> CmdResult<Option<Document>> {
    if !READS.contains(&name) && !REFUSED.contains(&name) {
        return Ok(None);
    }
    if !ctx.state.views_exist.load(std::sync::atomic::Ordering::SeqCst) {
        return Ok(None);
    }
    let Some(Bson::String(coll)) = body.get(name) else { return Ok(None) };
    let db = ctx.db.clone();
    let (source, pipeline) = {
        let tables = ctx.scope.read()?;
        let Some(meta) = tables.collection(&db, coll)?.filter(is_view) else { return Ok(None) };
        if REFUSED.contains(&name) {
            return Err(not_on_view(&meta.ns()));
        }
        resolve(&tables, &db, &meta)?
    };
    let ns = format!("{db}.{coll}");
    match name {
        "aggregate" => aggregate(ctx, body, &source, pipeline, &ns).map(Some),
        _ => {
            let docs = {
                let tables = ctx.scope.read()?;
                view_documents(&tables, &db, &source, &pipeline)?
            };
            match name {
                "find" => find(ctx, body, docs, ns).map(Some),
                "count" => count(body, docs).map(Some),
                _ => distinct(body, docs).map(Some),
            }
        }
    }
}

/// The documents a view yields.
fn view_documents(tables: &Tables<'_>, db: &str, source: &str, pipeline: &[Document]) -> CmdResult<Vec<Document>> {
    let input = match tables.collection(db, source)? {
        Some(meta) => tables.scan(&meta)?,
        None => Vec::new(),
    };
    let source = super::read::Source::new(tables, db);
    Ok(djongo_engine::run_pipeline(pipeline, input, &source)?)
}

/// An aggregate on a view: the same aggregate on its source, with the
/// view's stages first; the cursor keeps the view's namespace.
fn aggregate(ctx: &mut Ctx<'_>, body: &Document, source: &str, view_stages: Vec<Document>, ns: &str) -> CmdResult<Document> {
    let mut stages: Vec<Bson> = view_stages.into_iter().map(Bson::Document).collect();
    if let Some(Bson::Array(own)) = body.get("pipeline") {
        stages.extend(own.iter().cloned());
    }
    let mut rewritten = body.clone();
    rewritten.insert("aggregate", source);
    rewritten.insert("pipeline", stages);
    let mut reply = super::read::aggregate(ctx, &rewritten)?;
    if let Some(Bson::Document(cursor)) = reply.get_mut("cursor") {
        if let Some(id) = cursor.get("id").and_then(num_i64).filter(|id| *id != 0) {
            ctx.state.cursors.rename(id, ns.to_string());
        }
        cursor.insert("ns", ns);
    }
    Ok(reply)
}

fn filtered(body: &Document, key: &str, docs: Vec<Document>) -> CmdResult<Vec<Document>> {
    let Some(filter) = opt_doc(body, key)?.filter(|f| !f.is_empty()) else { return Ok(docs) };
    let vars = super::let_vars::parse(body)?;
    let filter = Filter::parse(&super::let_vars::bind_filter(filter, vars.as_ref()))?;
    let mut out = Vec::with_capacity(docs.len());
    for d in docs {
        if filter.matches(&d)? {
            out.push(d);
        }
    }
    Ok(out)
}

fn find(ctx: &mut Ctx<'_>, body: &Document, docs: Vec<Document>, ns: String) -> CmdResult<Document> {
    let filter = opt_doc(body, "filter")?.unwrap_or_default();
    let mut docs = filtered(body, "filter", docs)?;
    if let Some(sort) = opt_doc(body, "sort")?.filter(|s| !s.is_empty()) {
        sort_documents(&mut docs, &sort)?;
    }
    let skip = opt_i64(body, "skip")?.unwrap_or(0);
    if skip < 0 {
        return Err(CommandError::bad_value("skip value must be non-negative"));
    }
    let limit = opt_i64(body, "limit")?.unwrap_or(0);
    let single_batch = opt_bool(body, "singleBatch") || limit < 0;
    let mut docs: Vec<Document> = docs.into_iter().skip(skip as usize).collect();
    if limit != 0 {
        docs.truncate(limit.unsigned_abs() as usize);
    }
    if let Some(p) = opt_doc(body, "projection")?.filter(|p| !p.is_empty()) {
        let projection = FindProjection::parse(&p, &filter)?;
        docs = docs.iter().map(|d| projection.apply(d)).collect::<Result<_, _>>()?;
    }
    let batch_size = match opt_i64(body, "batchSize")? {
        Some(n) if n < 0 => return Err(CommandError::bad_value("batchSize must be non-negative")),
        Some(n) => n as usize,
        None => DEFAULT_FIRST_BATCH,
    };
    let mut queue = VecDeque::from(docs);
    let batch: Vec<Bson> = take_batch(&mut queue, Some(batch_size)).into_iter().map(Bson::Document).collect();
    let id = if single_batch { 0 } else { ctx.state.cursors.register(ns.clone(), queue) };
    Ok(doc! {"cursor": {"firstBatch": batch, "id": id, "ns": ns}, "ok": 1.0})
}

fn count(body: &Document, docs: Vec<Document>) -> CmdResult<Document> {
    let n = filtered(body, "query", docs)?.len() as u64;
    let skip = opt_i64(body, "skip")?.unwrap_or(0).max(0) as u64;
    let limit = opt_i64(body, "limit")?.unwrap_or(0).unsigned_abs();
    let mut n = n.saturating_sub(skip);
    if limit > 0 {
        n = n.min(limit);
    }
    Ok(doc! {"n": n as i64, "ok": 1.0})
}

fn distinct(body: &Document, docs: Vec<Document>) -> CmdResult<Document> {
    let key = match body.get("key") {
        Some(Bson::String(k)) if !k.is_empty() => k.clone(),
        _ => return Err(CommandError::type_mismatch("distinct 'key' must be a non-empty string")),
    };
    let path: Vec<&str> = key.split('.').collect();
    let mut values = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for d in filtered(body, "query", docs)? {
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
