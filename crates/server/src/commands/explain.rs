//! `explain`: how a find, count, distinct, aggregate, update, delete or
//! findAndModify would read its collection, without returning its results
//! (with `executionStats`, after running the read part).
use super::read::{aggregate_target, count_shape, hint_arg, take_query, Source};
use super::{collection_arg, doc_array, opt_doc, opt_i64, Ctx};
use crate::catalog::CollectionMeta;
use crate::error::{CmdResult, CommandError};
use crate::plan::join_cost::JoinEstimate;
use crate::plan::{self, Verbosity};
use crate::storage::Tables;
use bson::{doc, Bson, Document};
use djongo_engine::pipeline::JoinExecution;

pub fn explain(ctx: &mut Ctx<'_>, body: &Document) -> CmdResult<Document> {
    let inner = match body.get("explain") {
        Some(Bson::Document(d)) if !d.is_empty() => d.clone(),
        _ => return Err(CommandError::type_mismatch("explain command requires a nested object")),
    };
    let verbosity = Verbosity::parse(body.get("verbosity"))?;
    let Some(name) = inner.keys().next().cloned() else {
        return Err(CommandError::type_mismatch("explain command requires a nested object"));
    };
    let mut out = match name.as_str() {
        "find" => explain_find(ctx, &inner, verbosity)?,
        "count" => {
            let coll = collection_arg(&inner, "count")?;
            let filter = opt_doc(&inner, "query")?.unwrap_or_default();
            let db = ctx.db.clone();
            let tables = ctx.scope.read()?;
            let meta = tables.collection(&db, &coll)?;
            plan::explain_count(&tables, meta.as_ref(), &format!("{db}.{coll}"), &filter, verbosity)?
        }
        "distinct" => {
            let coll = collection_arg(&inner, "distinct")?;
            let filter = opt_doc(&inner, "query")?.unwrap_or_default();
            query_explain(ctx, &coll, plan::Query::filter(&filter), verbosity)?
        }
        "aggregate" => return explain_aggregate(ctx, &inner, verbosity),
        "update" | "delete" => {
            let coll = collection_arg(&inner, &name)?;
            let key = if name == "update" { "updates" } else { "deletes" };
            let statements = doc_array(&inner, key)?;
            let Some(first) = statements.first() else {
                return Err(CommandError::failed_to_parse(format!("explain of {name} needs one statement")));
            };
            let filter = opt_doc(first, "q")?.unwrap_or_default();
            query_explain(ctx, &coll, plan::Query::filter(&filter), verbosity)?
        }
        "findAndModify" | "findandmodify" => {
            let coll = collection_arg(&inner, &name)?;
            let filter = opt_doc(&inner, "query")?.unwrap_or_default();
            let sort = opt_doc(&inner, "sort")?.filter(|s| !s.is_empty());
            query_explain(ctx, &coll, plan::Query { filter, sort, limit: Some(1), ..plan::Query::default() }, verbosity)?
        }
        other => return Err(CommandError::new(115, "CommandNotSupported", format!("explain of {other} is not supported by the embedded engine"))),
    };
    finish(&mut out, ctx, &inner);
    Ok(out)
}

/// MongoDB's envelope around the plan.
fn finish(out: &mut Document, ctx: &Ctx<'_>, inner: &Document) {
    let mut shaped = doc! {"explainVersion": "1"};
    shaped.extend(std::mem::take(out));
    let mut command = inner.clone();
    command.insert("$db", ctx.db.clone());
    shaped.insert("command", command);
    shaped.insert("serverInfo", doc! {"host": "localhost", "port": 0, "version": super::handshake::VERSION, "gitVersion": "djongo-server"});
    shaped.insert("ok", 1.0);
    *out = shaped;
}

fn explain_find(ctx: &mut Ctx<'_>, inner: &Document, verbosity: Verbosity) -> CmdResult<Document> {
    let coll = collection_arg(inner, "find")?;
    let skip = opt_i64(inner, "skip")?.unwrap_or(0);
    if skip < 0 {
        return Err(CommandError::bad_value("skip value must be non-negative"));
    }
    let limit = opt_i64(inner, "limit")?.unwrap_or(0).unsigned_abs() as usize;
    let filter = opt_doc(inner, "filter")?.unwrap_or_default();
    // The fields the find would read, as `find` computes them: the plan
    // decodes the same, and the query has the find's shape (its plan cache
    // entry, `queryHash`).
    let fields = match inner.get("projection") {
        Some(Bson::Document(p)) if !p.is_empty() && !super::find_keys::returns_keys(inner) => {
            let has_text = crate::text::search::TextFilter::split(&filter)?.is_some();
            super::find_projection::parsed(p, &filter, has_text)?.fields.clone()
        }
        _ => None,
    };
    let query = plan::Query {
        filter,
        sort: opt_doc(inner, "sort")?.filter(|s| !s.is_empty()),
        skip: skip as usize,
        limit: (limit > 0).then_some(limit),
        hint: hint_arg(inner)?,
        fields,
        ..plan::Query::default()
    };
    query_explain(ctx, &coll, query, verbosity)
}

fn query_explain(ctx: &mut Ctx<'_>, coll: &str, query: plan::Query, verbosity: Verbosity) -> CmdResult<Document> {
    let db = ctx.db.clone();
    let tables = ctx.scope.read()?;
    let meta = tables.collection(&db, coll)?;
    plan::explain_find(&tables, meta.as_ref(), &format!("{db}.{coll}"), &query, verbosity)
}

/// An aggregate's explain: the query its leading stages became (as a
/// `$cursor` stage), then the stages the engine runs. With execution
/// statistics, the pipeline runs, and each `$lookup` shows how it read its
/// collection (`indexesUsed`, `collectionScans`, as MongoDB reports them).
pub fn explain_aggregate(ctx: &mut Ctx<'_>, body: &Document, verbosity: Verbosity) -> CmdResult<Document> {
    let mut pipeline = doc_array(body, "pipeline")?;
    djongo_engine::pipeline::optimize(&mut pipeline);
    let mut out = match aggregate_target(body)? {
        None => doc! {"stages": pipeline.into_iter().map(Bson::Document).collect::<Vec<_>>()},
        Some(coll) => {
            // The fields the aggregate reads, as `aggregate` computes them.
            let fields = djongo_engine::deps::pipeline_needs(&pipeline).top_level();
            let query = plan::Query { hint: hint_arg(body)?, fields, ..take_query(&mut pipeline) };
            let counts = count_shape(&pipeline).is_some() && query.sort.is_none() && query.skip == 0 && query.limit.is_none();
            let db = ctx.db.clone();
            let ns = format!("{db}.{coll}");
            let runs = verbosity >= Verbosity::ExecutionStats && !pipeline.is_empty();
            let tables = ctx.scope.read()?;
            let meta = tables.collection(&db, &coll)?;
            let source = Source::new(&tables, &db);
            let cursor = if counts {
                // Answered as a count (see read::aggregate).
                plan::explain_count(&tables, meta.as_ref(), &ns, &query.filter, verbosity)?
            } else if runs && meta.is_some() && crate::text::search::TextFilter::split(&query.filter)?.is_none() {
                // The stages pull the query's documents as `aggregate` runs
                // them: the cursor's counts are what they took (20 documents
                // for a join then `$limit: 20`, not the collection), and each
                // `$lookup` notes how it read its collection.
                plan::explain_find_with(&tables, meta.as_ref(), &ns, &query, verbosity, |documents| {
                    let mut input = documents.map(|r| r.map_err(super::read::to_engine));
                    djongo_engine::pipeline::run_pipeline_from(&pipeline, &mut input, &source)?;
                    Ok(())
                })?
            } else {
                if runs {
                    foreign_reads(&tables, &source, meta.as_ref(), &query, &pipeline)?;
                }
                plan::explain_find(&tables, meta.as_ref(), &ns, &query, verbosity)?
            };
            let reads = ForeignReads {
                reads: source.reads.into_inner(),
                estimates: source.estimates.into_inner(),
                groupings: source.groupings.into_inner(),
            };
            if pipeline.is_empty() {
                cursor
            } else {
                let mut stages = vec![Bson::Document(doc! {"$cursor": cursor})];
                stages.extend(pipeline.into_iter().map(|stage| Bson::Document(with_reads(stage, &reads))));
                doc! {"stages": stages}
            }
        }
    };
    finish(&mut out, ctx, body);
    Ok(out)
}

/// Runs the pipeline after `query`, for `source` to note how its stages read
/// other collections.
fn foreign_reads(tables: &Tables<'_>, source: &Source<'_, '_>, meta: Option<&CollectionMeta>, query: &plan::Query, pipeline: &[Document]) -> CmdResult<()> {
    let Some(meta) = meta else { return Ok(()) };
    let prep = plan::Prepared::new(tables, meta, query)?;
    plan::run_uncached(tables, &prep, |exec| {
        let mut input = exec.map(|r| r.map_err(super::read::to_engine));
        djongo_engine::pipeline::run_pipeline_from(pipeline, &mut input, source)?;
        Ok(())
    })
}

/// How a pipeline's stages read other collections: (collection, index or
/// `None` for a scan) per read, and the planner's estimate per costed join.
#[derive(Default)]
struct ForeignReads {
    reads: Vec<(String, Option<String>)>,
    estimates: Vec<(String, JoinEstimate)>,
    groupings: Vec<(String, JoinExecution)>,
}

/// A `$lookup` stage with how it read its `from` collection: the indexes
/// and scans (`indexesUsed`, `collectionScans`), the join's `strategy` in
/// MongoDB's terms (`IndexedLoopJoin`: index probes; `HashJoin`: one read
/// of the collection matched by key) and the estimate that chose it
/// (`joinEstimate`: the matches a probe would return, the collection's
/// documents), and when the `$group` after it ran on the joined documents'
/// stored bytes, how (`groupedJoin`: `perJoinKey`, a hash aggregate by join
/// key as the collection is read; `perMatch`, the matches' arguments kept
/// per local document; absent: the joined documents were decoded).
fn with_reads(mut stage: Document, foreign: &ForeignReads) -> Document {
    let reads = &foreign.reads;
    let from = match stage.get("$lookup") {
        Some(Bson::Document(l)) => match l.get("from") {
            Some(Bson::String(f)) => f.clone(),
            _ => return stage,
        },
        _ => return stage,
    };
    let mine: Vec<&Option<String>> = reads.iter().filter(|(c, _)| *c == from).map(|(_, i)| i).collect();
    let mut indexes: Vec<String> = mine.iter().filter_map(|i| (*i).clone()).collect();
    indexes.sort();
    indexes.dedup();
    let scans = mine.iter().filter(|i| i.is_none()).count() as i64;
    let strategy = if scans == 0 && !indexes.is_empty() { "IndexedLoopJoin" } else { "HashJoin" };
    stage.insert("collectionScans", scans);
    stage.insert("indexesUsed", indexes);
    if !mine.is_empty() {
        stage.insert("strategy", strategy);
    }
    if let Some((_, e)) = foreign.estimates.iter().find(|(c, _)| *c == from) {
        stage.insert("joinEstimate", doc! {"matches": e.matches as i64, "documents": e.documents as i64});
    }
    if let Some((_, how)) = foreign.groupings.iter().find(|(c, _)| *c == from) {
        stage.insert("groupedJoin", how.name());
    }
    stage
}
