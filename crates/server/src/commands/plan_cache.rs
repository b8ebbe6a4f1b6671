//! The plan cache's commands: `planCacheClear` and the `$planCacheStats`
//! aggregation stage (crates/server/src/plan/cache.rs).
use super::{collection_arg, opt_doc, Ctx};
use crate::error::{CmdResult, CommandError};
use crate::plan::cache::PlanCache;
use crate::storage::Tables;
use bson::{doc, Bson, Document};

const FAILED_TO_PARSE: i32 = 9;
const OPERATION_NOT_SUPPORTED_IN_TRANSACTION: i32 = 263;

/// `{planCacheClear: <collection>, query?, sort?}`: drops the collection's
/// cached plans, or with `query` those of its shape (whatever their
/// projection, skip or limit).
pub fn plan_cache_clear(ctx: &mut Ctx<'_>, body: &Document) -> CmdResult<Document> {
    let coll = collection_arg(body, "planCacheClear")?;
    let query = opt_doc(body, "query")?;
    let sort = opt_doc(body, "sort")?;
    if query.is_none() && (sort.is_some() || body.contains_key("projection")) {
        return Err(CommandError::bad_value(
            "sort or projection provided without query",
        ));
    }
    let db = ctx.db.clone();
    let tables = ctx.scope.read()?;
    if let Some(meta) = tables.collection(&db, &coll)? {
        match query {
            Some(query) => {
                djongo_engine::Filter::parse(&query)?;
                PlanCache::global().clear_query(
                    &meta,
                    &query,
                    sort.as_ref().filter(|s| !s.is_empty()),
                );
            }
            None => PlanCache::global().clear(&meta.uuid.bytes),
        }
    }
    Ok(doc! {"ok": 1.0})
}

/// If the pipeline starts with `$planCacheStats`, removes that stage and
/// returns its documents: one per cached shape of the collection.
pub fn stats_input(
    tables: &Tables<'_>,
    db: &str,
    collection: Option<&str>,
    in_transaction: bool,
    pipeline: &mut Vec<Document>,
) -> CmdResult<Option<Vec<Document>>> {
    let Some(stage) = pipeline.first().and_then(|s| s.get("$planCacheStats")) else {
        return Ok(None);
    };
    match stage {
        Bson::Document(options) if options.keys().all(|k| k == "allHosts") => {}
        Bson::Document(_) => {
            return Err(CommandError::new(
                40415,
                "IDLUnknownField",
                "$planCacheStats accepts only the allHosts option",
            ))
        }
        _ => {
            return Err(CommandError::new(
                FAILED_TO_PARSE,
                "FailedToParse",
                "$planCacheStats value must be an object",
            ))
        }
    }
    if in_transaction {
        return Err(CommandError::new(
            OPERATION_NOT_SUPPORTED_IN_TRANSACTION,
            "OperationNotSupportedInTransaction",
            "$planCacheStats cannot be used in a transaction",
        ));
    }
    let Some(collection) = collection else {
        return Err(CommandError::invalid_namespace(
            "$planCacheStats must be run against a collection",
        ));
    };
    pipeline.remove(0);
    Ok(Some(match tables.collection(db, collection)? {
        Some(meta) => PlanCache::global().stats(&meta),
        None => Vec::new(),
    }))
}
