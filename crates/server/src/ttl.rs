//! TTL indexes: MongoDB's TTL monitor. Every `ttlMonitorSleepSecs` (60 s
//! by default) a background pass deletes, in each collection with an index
//! that has `expireAfterSeconds`, the documents whose indexed date (the
//! earliest one, for an array) is older than that many seconds. As on
//! MongoDB: only single-field indexes expire documents, a document whose
//! field is not a date (or is missing) never expires, a partial index
//! expires only what its filter matches, and capped collections and views
//! are left alone. The deletes go through the `delete` command, so indexes,
//! change streams and transactions see them as any other delete.
use crate::auth::ConnAuth;
use crate::catalog::{CollectionMeta, IndexSpec};
use crate::error::{CmdResult, CommandError};
use crate::state::{ConnInfo, ServerState};
use bson::{doc, Bson, DateTime, Document};
use std::time::Duration;

/// MongoDB's default `ttlMonitorSleepSecs`.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);

/// The `expireAfterSeconds` of an index that expires documents, if it is one.
pub fn expire_after(index: &IndexSpec) -> Option<i64> {
    if index.key.len() != 1 {
        return None;
    }
    match index.spec.get("expireAfterSeconds")? {
        Bson::Int32(s) => Some(i64::from(*s)),
        Bson::Int64(s) => Some(*s),
        Bson::Double(s) if s.is_finite() => Some(*s as i64),
        _ => None,
    }
}

/// Checks `expireAfterSeconds` in an index spec as `createIndexes` does.
pub fn check_spec(spec: &Document) -> CmdResult<()> {
    let Some(value) = spec.get("expireAfterSeconds") else { return Ok(()) };
    let seconds = match value {
        Bson::Int32(s) => f64::from(*s),
        Bson::Int64(s) => *s as f64,
        Bson::Double(s) => *s,
        _ => return Err(CommandError::new(72, "InvalidOptions", "TTL index 'expireAfterSeconds' option must be numeric")),
    };
    if !(0.0..=f64::from(i32::MAX)).contains(&seconds) {
        return Err(CommandError::new(
            72,
            "InvalidOptions",
            format!("TTL index 'expireAfterSeconds' option must be within an acceptable range [0, {}]", i32::MAX),
        ));
    }
    if let Some(Bson::Document(key)) = spec.get("key") {
        if key.keys().any(|k| k == "_id") {
            return Err(CommandError::new(67, "CannotCreateIndex", "The field '_id' cannot be an index with expireAfterSeconds"));
        }
    }
    Ok(())
}

/// One pass of the monitor: deletes what has expired at `now`; returns how
/// many documents went. A collection whose delete fails (a transaction
/// holds one of its documents) is tried again on the next pass.
pub fn expire(state: &ServerState, now: DateTime) -> CmdResult<u64> {
    let metas = {
        let read = state.storage.begin_read()?;
        let tables = crate::storage::Tables::open_read(&read)?;
        tables.collections(None)?
    };
    let mut conn = ConnInfo::new(state.next_connection_id(), "ttl monitor".into(), "internal".into(), ConnAuth::owner());
    let mut deleted = 0u64;
    for meta in metas.iter().filter(|m| expires_documents(m)) {
        for index in meta.indexes.iter() {
            let Some(seconds) = expire_after(index) else { continue };
            let Some(field) = index.fields().next() else { continue };
            let cutoff = DateTime::from_millis(now.timestamp_millis().saturating_sub(seconds.saturating_mul(1000)));
            let mut query = doc! { field: { "$lt": cutoff } };
            if let Some(partial) = &index.partial {
                query = doc! { "$and": [Bson::Document(query), Bson::Document(partial.clone())] };
            }
            let command = doc! {
                "delete": meta.name.as_str(),
                "deletes": [{ "q": query, "limit": 0 }],
                "$db": meta.db.as_str(),
            };
            let reply = crate::commands::run_command(state, &mut conn, &command);
            match reply.get("n") {
                Some(Bson::Int32(n)) if reply.get("writeErrors").is_none() => deleted += u64::try_from(*n).unwrap_or(0),
                Some(Bson::Int64(n)) if reply.get("writeErrors").is_none() => deleted += u64::try_from(*n).unwrap_or(0),
                // Tried again on the next pass.
                _ => {}
            }
        }
    }
    Ok(deleted)
}

fn expires_documents(meta: &CollectionMeta) -> bool {
    !crate::commands::capped::is_capped(meta)
        && !crate::commands::views::is_view(meta)
        && !crate::commands::capped::is_companion(&meta.name)
        && meta.indexes.iter().any(|ix| expire_after(ix).is_some())
}
