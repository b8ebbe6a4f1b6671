//! Database-level aggregation (`{aggregate: 1}`): the first stage produces
//! the pipeline's input instead of a collection.
//!
//! - `$documents`: the documents it lists.
//! - `$listLocalSessions`: the sessions this server has seen (every command
//!   carrying an `lsid` registers its session, as mongod's session cache).
//! - `$currentOp` (admin only): the commands running now, and sessions idle
//!   inside an open transaction.
use crate::error::{CmdResult, CommandError};
use crate::state::ServerState;
use bson::{doc, spec::BinarySubtype, Binary, Bson, DateTime, Document};
use sha2::{Digest, Sha256};
use std::time::Instant;

fn stage_name(stage: &Document) -> &str {
    stage.keys().next().map(String::as_str).unwrap_or("")
}

/// The input of a database-level pipeline, taken from (and removing) its
/// first stage.
/// What the sources need: the server, the database the command runs on,
/// and the address the client reached (`host` in `$currentOp`).
pub struct Site<'a> {
    pub state: &'a ServerState,
    pub db: &'a str,
    pub host: &'a str,
}

pub fn input(site: &Site<'_>, pipeline: &mut Vec<Document>) -> CmdResult<Vec<Document>> {
    let Some(first) = pipeline.first() else {
        return Err(CommandError::invalid_namespace("{aggregate: 1} is not valid for an empty pipeline; a collection is required."));
    };
    let name = stage_name(first).to_string();
    for later in pipeline.iter().skip(1) {
        if matches!(stage_name(later), "$documents" | "$listLocalSessions" | "$currentOp") {
            return Err(CommandError::new(40602, "Location40602", format!("{} is only valid as the first stage in a pipeline", stage_name(later))));
        }
    }
    let spec = first.get(&name).cloned().unwrap_or(Bson::Null);
    let docs = match name.as_str() {
        "$documents" => documents(&spec)?,
        "$listLocalSessions" => list_local_sessions(site, &spec)?,
        "$currentOp" => current_op(site, &spec)?,
        other => {
            return Err(CommandError::invalid_namespace(format!("{{aggregate: 1}} is not valid for '{other}'; a collection is required.")));
        }
    };
    pipeline.remove(0);
    Ok(docs)
}

fn documents(spec: &Bson) -> CmdResult<Vec<Document>> {
    let Bson::Array(items) = spec else {
        return Err(CommandError::type_mismatch("$documents must be an array of documents"));
    };
    items
        .iter()
        .map(|i| match i {
            Bson::Document(d) => Ok(d.clone()),
            _ => Err(CommandError::type_mismatch("$documents must be an array of documents")),
        })
        .collect()
}

fn spec_document<'a>(stage: &str, spec: &'a Bson) -> CmdResult<&'a Document> {
    match spec {
        Bson::Document(d) => Ok(d),
        _ => Err(CommandError::failed_to_parse(format!("{stage} must take a document argument"))),
    }
}

fn flag(stage: &str, spec: &Document, key: &str, default: bool) -> CmdResult<bool> {
    match spec.get(key) {
        None => Ok(default),
        Some(Bson::Boolean(b)) => Ok(*b),
        Some(_) => Err(CommandError::failed_to_parse(format!("The '{key}' parameter of the {stage} stage must be a boolean value"))),
    }
}

/// When an `Instant` was, on the wall clock.
fn wall_time(at: Instant) -> DateTime {
    DateTime::from_millis(DateTime::now().timestamp_millis() - at.elapsed().as_millis() as i64)
}

/// `{_id: {id, uid}, lastUse}` for each session. `uid` is the SHA-256 of the
/// user name, as mongod's; sessions are not kept per user here (a server
/// has one owner, or the `--user` accounts that share its data), so every
/// session is listed under the empty user name.
fn list_local_sessions(site: &Site<'_>, spec: &Bson) -> CmdResult<Vec<Document>> {
    let spec = spec_document("$listLocalSessions", spec)?;
    for key in spec.keys() {
        if !matches!(key.as_str(), "allUsers" | "users") {
            return Err(CommandError::new(40415, "IDLUnknownField", format!("BSON field '$listLocalSessions.{key}' is an unknown field.")));
        }
    }
    flag("$listLocalSessions", spec, "allUsers", false)?;
    let uid = Binary { subtype: BinarySubtype::Generic, bytes: Sha256::digest(b"").to_vec() };
    let mut sessions = site.state.sessions.list();
    sessions.sort_by_key(|(_, used, _)| std::cmp::Reverse(*used));
    Ok(sessions
        .into_iter()
        .map(|(id, used, _)| {
            doc! {
                "_id": {"id": Binary { subtype: BinarySubtype::Uuid, bytes: id }, "uid": uid.clone()},
                "lastUse": wall_time(used),
            }
        })
        .collect())
}

fn current_op(site: &Site<'_>, spec: &Bson) -> CmdResult<Vec<Document>> {
    if site.db != "admin" {
        return Err(CommandError::invalid_namespace("$currentOp must be run against the 'admin' database with {aggregate: 1}"));
    }
    let spec = spec_document("$currentOp", spec)?;
    for key in spec.keys() {
        if !matches!(key.as_str(), "allUsers" | "idleConnections" | "idleCursors" | "idleSessions" | "localOps" | "truncateOps" | "backtrace" | "targetAllNodes") {
            return Err(CommandError::failed_to_parse(format!("Unrecognized option '{key}' in $currentOp stage.")));
        }
        flag("$currentOp", spec, key, false)?;
    }
    let host = site.host.to_string();
    let mut out: Vec<Document> = site
        .state
        .ops
        .snapshot()
        .into_iter()
        .map(|(_, mut d)| {
            d.insert("host", host.clone());
            d
        })
        .collect();
    if flag("$currentOp", spec, "idleSessions", true)? {
        for (id, used, txn) in site.state.sessions.list() {
            let Some(txn_number) = txn else { continue };
            out.push(doc! {
                "type": "idleSession",
                "host": host.clone(),
                "active": false,
                "lsid": {"id": Binary { subtype: BinarySubtype::Uuid, bytes: id }},
                "transaction": {
                    "parameters": {"txnNumber": txn_number, "autocommit": false},
                    "lastClientActivity": wall_time(used),
                },
            });
        }
    }
    Ok(out)
}
