//! `explain`: the chosen plan (and the plans it beat) in MongoDB's shape —
//! `queryPlanner.winningPlan` as a tree of stages (`IXSCAN`, `FETCH`,
//! `COLLSCAN`, `SORT`, `LIMIT`, ...) with the index, its bounds and the scan
//! direction, and with `executionStats` the work each stage did.
use super::stages::index_description;
use super::cache::PlanCache;
use super::{count_scan, execute_uncached, shorten, Execution, Prepared, Query};
use crate::catalog::CollectionMeta;
use crate::error::{CmdResult, CommandError};
use crate::storage::Tables;
use bson::{doc, Bson, Document};
use std::time::Instant;

/// How much `explain` reports (its `verbosity` argument).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    QueryPlanner,
    ExecutionStats,
    AllPlansExecution,
}

impl Verbosity {
    pub fn parse(v: Option<&Bson>) -> CmdResult<Verbosity> {
        match v {
            None => Ok(Verbosity::AllPlansExecution),
            Some(Bson::String(s)) => match s.as_str() {
                "queryPlanner" => Ok(Verbosity::QueryPlanner),
                "executionStats" => Ok(Verbosity::ExecutionStats),
                "allPlansExecution" => Ok(Verbosity::AllPlansExecution),
                other => Err(CommandError::bad_value(format!("verbosity string must be one of {{'queryPlanner', 'executionStats', 'allPlansExecution'}}, not '{other}'"))),
            },
            Some(_) => Err(CommandError::type_mismatch("verbosity must be a string")),
        }
    }
}

fn planner_section(ns: &str, filter: &Document, winning: Document, rejected: Vec<Document>) -> Document {
    doc! {
        "namespace": ns,
        "indexFilterSet": false,
        "parsedQuery": filter.clone(),
        "maxIndexedOrSolutionsReached": false,
        "maxIndexedAndSolutionsReached": false,
        "maxScansToExplodeReached": false,
        "winningPlan": winning,
        "rejectedPlans": rejected.into_iter().map(Bson::Document).collect::<Vec<_>>(),
    }
}

fn execution_section(n_returned: u64, millis: u128, examined: (u64, u64), stages: Document) -> Document {
    doc! {
        "executionSuccess": true,
        "nReturned": n_returned as i64,
        "executionTimeMillis": millis as i64,
        "totalKeysExamined": examined.0 as i64,
        "totalDocsExamined": examined.1 as i64,
        "executionStages": stages,
    }
}

impl Execution<'_> {
    fn winning(&self, with_stats: bool) -> Document {
        self.root.explain(with_stats)
    }

    fn rejected(&self, with_stats: bool) -> Vec<Document> {
        self.rejected.iter().map(|(_, r)| r.explain(with_stats)).collect()
    }
}

/// The plan cache's view of a query, as explain shows it: the shape's
/// hashes in `queryPlanner`, and `isCached` on each plan (true on the one
/// an active cache entry would run).
struct CacheView {
    query_hash: String,
    plan_cache_key: String,
    cached: Option<super::PlanId>,
}

impl CacheView {
    fn of(prep: &Prepared<'_>) -> Option<CacheView> {
        let shape = prep.shape()?;
        Some(CacheView {
            query_hash: shape.query_hash(),
            plan_cache_key: shape.plan_cache_key(prep.meta),
            cached: PlanCache::global().peek_active(prep.meta, &shape),
        })
    }

    fn annotate(view: Option<&CacheView>, exec: &Execution<'_>, planner: &mut Document) {
        let Some(view) = view else {
            return;
        };
        planner.insert("queryHash", view.query_hash.clone());
        planner.insert("planCacheShapeHash", view.query_hash.clone());
        planner.insert("planCacheKey", view.plan_cache_key.clone());
        let mark = |plan: super::PlanId, d: &mut Document| {
            d.insert("isCached", view.cached == Some(plan));
        };
        if let Ok(w) = planner.get_document_mut("winningPlan") {
            mark(exec.plan, w);
        }
        if let Ok(rejected) = planner.get_array_mut("rejectedPlans") {
            for ((plan, _), r) in exec.rejected.iter().zip(rejected.iter_mut()) {
                if let Bson::Document(d) = r {
                    mark(*plan, d);
                }
            }
        }
    }
}

/// The explain of a `find` (or of the query part of another command).
pub fn explain_find(tables: &Tables<'_>, meta: Option<&CollectionMeta>, ns: &str, query: &Query, verbosity: Verbosity) -> CmdResult<Document> {
    explain_find_with(tables, meta, ns, query, verbosity, |documents| {
        for document in documents {
            document?;
        }
        Ok(())
    })
}

/// The explain of a query whose documents `consume` takes (an aggregate's
/// later stages): with execution statistics, the plan runs only as far as
/// `consume` pulls it, and its counts are of that run, as mongod's `$cursor`
/// stage reports a query a later `$limit` stopped early. `consume` is not
/// called for a missing collection or a `$text` query (whose explain counts
/// every match: they are scored before any is returned).
pub fn explain_find_with(
    tables: &Tables<'_>,
    meta: Option<&CollectionMeta>,
    ns: &str,
    query: &Query,
    verbosity: Verbosity,
    consume: impl FnOnce(&mut dyn Iterator<Item = CmdResult<Document>>) -> CmdResult<()>,
) -> CmdResult<Document> {
    let Some(meta) = meta else {
        let mut out = doc! {"queryPlanner": planner_section(ns, &query.filter, doc! {"stage": "EOF"}, Vec::new())};
        if verbosity >= Verbosity::ExecutionStats {
            out.insert("executionStats", execution_section(0, 0, (0, 0), doc! {"stage": "EOF", "nReturned": 0, "works": 1, "isEOF": 1}));
        }
        return Ok(out);
    };
    if let Some(text) = crate::text::search::TextFilter::split(&query.filter)? {
        return explain_text(tables, meta, ns, query, &text, verbosity);
    }
    let prep = Prepared::new(tables, meta, query)?;
    let view = CacheView::of(&prep);
    let started = Instant::now();
    let mut exec = execute_uncached(shorten(tables), &prep)?;
    let mut planner = planner_section(ns, &query.filter, exec.winning(false), exec.rejected(false));
    CacheView::annotate(view.as_ref(), &exec, &mut planner);
    let mut out = doc! {"queryPlanner": planner};
    if verbosity >= Verbosity::ExecutionStats {
        let mut n = 0u64;
        consume(&mut (&mut exec).inspect(|d| n += u64::from(d.is_ok())))?;
        let mut stats = execution_section(n, started.elapsed().as_millis(), exec.root.examined(), exec.winning(true));
        if verbosity == Verbosity::AllPlansExecution {
            let all: Vec<Bson> = exec.rejected(true).into_iter().map(|d| Bson::Document(doc! {"executionStages": d})).collect();
            stats.insert("allPlansExecution", all);
        }
        out.insert("executionStats", stats);
    }
    Ok(out)
}

/// The explain of a `$text` query, in mongod's shape: a `TEXT_MATCH` over
/// the fetched documents of the text index's entries for the search terms.
fn explain_text(tables: &Tables<'_>, meta: &CollectionMeta, ns: &str, query: &Query, text: &crate::text::search::TextFilter, verbosity: Verbosity) -> CmdResult<Document> {
    let (ix, spec) = crate::text::search::text_index(meta)?;
    let language = text.query.language.unwrap_or(spec.default_language);
    let parsed = text.query.parse_search(language);
    let list = |items: Vec<String>| items.into_iter().map(Bson::String).collect::<Vec<_>>();
    let winning = doc! {
        "stage": "TEXT_MATCH",
        "indexPrefix": {},
        "indexName": &ix.name,
        "parsedTextQuery": {
            "terms": list(parsed.positive_terms.iter().cloned().collect()),
            "negatedTerms": list(parsed.negated_terms.iter().cloned().collect()),
            "phrases": list(parsed.positive_phrases.clone()),
            "negatedPhrases": list(parsed.negated_phrases.clone()),
        },
        "textIndexVersion": 3,
        "inputStage": {
            "stage": "FETCH",
            "inputStage": {
                "stage": "IXSCAN",
                "keyPattern": ix.key.clone(),
                "indexName": &ix.name,
                "isMultiKey": true,
                "indexBounds": {"terms": list(parsed.terms_for_bounds.iter().cloned().collect())},
            },
        },
    };
    let mut out = doc! {"queryPlanner": planner_section(ns, &query.filter, winning.clone(), Vec::new())};
    if verbosity >= Verbosity::ExecutionStats {
        let started = Instant::now();
        let (matches, examined) = crate::text::search::run_counted(tables, meta, text)?;
        let after_skip = (matches.len() as u64).saturating_sub(query.skip as u64);
        let n = query.limit.map_or(after_skip, |l| after_skip.min(l as u64));
        let mut stages = winning;
        stages.insert("nReturned", n as i64);
        out.insert("executionStats", execution_section(n, started.elapsed().as_millis(), examined, stages));
    }
    Ok(out)
}

/// The explain of a `count`: a fast count of the collection, a count of
/// index keys, or a count over the plan a find would use.
pub fn explain_count(tables: &Tables<'_>, meta: Option<&CollectionMeta>, ns: &str, filter: &Document, verbosity: Verbosity) -> CmdResult<Document> {
    let Some(meta) = meta else {
        return explain_find(tables, None, ns, &Query::filter(filter), verbosity);
    };
    if filter.is_empty() {
        let winning = doc! {"stage": "RECORD_STORE_FAST_COUNT"};
        let mut out = doc! {"queryPlanner": planner_section(ns, filter, winning.clone(), Vec::new())};
        if verbosity >= Verbosity::ExecutionStats {
            let started = Instant::now();
            let n = tables.count(meta)?;
            let mut stages = winning;
            stages.insert("nCounted", n as i64);
            out.insert("executionStats", execution_section(0, started.elapsed().as_millis(), (0, 0), stages));
        }
        return Ok(out);
    }
    let prep = Prepared::new(tables, meta, &Query { any_order: true, ..Query::filter(filter) })?;
    if let Some(plan) = count_scan(&prep) {
        let scan = match plan.index {
            Some(i) => {
                let mut d = doc! {"stage": "COUNT_SCAN"};
                d.extend(index_description(&meta.indexes[i], plan.multikey, false, &plan.bounds.labels));
                d
            }
            None => doc! {"stage": "COUNT_SCAN", "keyPattern": {"_id": 1}, "indexName": crate::catalog::ID_INDEX_NAME,
                "isMultiKey": false, "isUnique": true, "direction": "forward", "indexBounds": plan.bounds.labels.document(["_id"])},
        };
        let winning = doc! {"stage": "COUNT", "inputStage": scan};
        let mut out = doc! {"queryPlanner": planner_section(ns, filter, winning.clone(), Vec::new())};
        if verbosity >= Verbosity::ExecutionStats {
            let started = Instant::now();
            let n = plan.run(tables, meta)?;
            let mut stages = winning;
            stages.insert("nCounted", n as i64);
            out.insert("executionStats", execution_section(0, started.elapsed().as_millis(), (n, 0), stages));
        }
        return Ok(out);
    }
    let view = CacheView::of(&prep);
    let started = Instant::now();
    let mut exec = execute_uncached(shorten(tables), &prep)?;
    let wrap = |inner: Document| doc! {"stage": "COUNT", "inputStage": inner};
    let mut planner = planner_section(ns, filter, wrap(exec.winning(false)), exec.rejected(false).into_iter().map(wrap).collect());
    CacheView::annotate(view.as_ref(), &exec, &mut planner);
    let mut out = doc! {"queryPlanner": planner};
    if verbosity >= Verbosity::ExecutionStats {
        let mut n = 0u64;
        while exec.next_document()?.is_some() {
            n += 1;
        }
        let mut stages = wrap(exec.winning(true));
        stages.insert("nCounted", n as i64);
        out.insert("executionStats", execution_section(0, started.elapsed().as_millis(), exec.root.examined(), stages));
    }
    Ok(out)
}
