//! Session and transaction commands.
use super::{concerns, txn_number, Ctx};
use crate::error::{CmdResult, CommandError};
use crate::retryable::{self, RetryKey};
use crate::session::TxnState;
use crate::storage::{SavepointError, Transaction};
use bson::{doc, spec::BinarySubtype, Binary, Bson, Document};
use std::time::Duration;

fn session_ids(body: &Document, key: &str) -> Vec<Vec<u8>> {
    match body.get(key) {
        Some(Bson::Array(items)) => items
            .iter()
            .filter_map(|i| match i {
                Bson::Document(d) => match d.get("id") {
                    Some(Bson::Binary(b)) => Some(b.bytes.clone()),
                    _ => None,
                },
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

pub fn end_sessions(ctx: &mut Ctx<'_>, body: &Document) -> CmdResult<Document> {
    for id in session_ids(body, "endSessions") {
        ctx.state.sessions.end(&id);
    }
    Ok(doc! {"ok": 1.0})
}

/// `killSessions: [{id}]` ends those sessions. `killAllSessions` and
/// `killAllSessionsByPattern` end every session (an empty list means all,
/// and this server has one user); a pattern naming one `lsid` ends that one.
/// Open transactions of the ended sessions are aborted.
pub fn kill_sessions(ctx: &mut Ctx<'_>, body: &Document) -> CmdResult<Document> {
    let name = body.keys().next().cloned().unwrap_or_default();
    let list = match body.get(&name) {
        Some(Bson::Array(items)) => items.as_slice(),
        _ => return Err(CommandError::type_mismatch(format!("'{name}' must be an array"))),
    };
    let by_lsid: Option<Vec<Vec<u8>>> = match name.as_str() {
        "killSessions" => Some(session_ids(body, &name)),
        "killAllSessionsByPattern" if !list.is_empty() => list
            .iter()
            .map(|p| match p {
                Bson::Document(p) => match p.get("lsid") {
                    Some(Bson::Document(l)) => match l.get("id") {
                        Some(Bson::Binary(b)) => Some(b.bytes.clone()),
                        _ => None,
                    },
                    _ => None,
                },
                _ => None,
            })
            .collect(),
        _ => None,
    };
    match by_lsid {
        Some(ids) => {
            for id in ids {
                ctx.state.sessions.end(&id);
            }
        }
        None => ctx.state.sessions.end_all(),
    }
    Ok(doc! {"ok": 1.0})
}

pub fn refresh_sessions(_ctx: &mut Ctx<'_>, _body: &Document) -> CmdResult<Document> {
    Ok(doc! {"ok": 1.0})
}

pub fn start_session(_ctx: &mut Ctx<'_>, _body: &Document) -> CmdResult<Document> {
    let id = Binary { subtype: BinarySubtype::Uuid, bytes: rand::random::<[u8; 16]>().to_vec() };
    Ok(doc! {"id": {"id": id}, "timeoutMinutes": 30, "ok": 1.0})
}

/// The session and txnNumber a commit/abort refers to.
fn target(ctx: &Ctx<'_>, body: &Document) -> CmdResult<(Vec<u8>, i64)> {
    let Some(lsid) = ctx.lsid.clone() else {
        return Err(CommandError::new(50768, "InvalidOptions", "commitTransaction/abortTransaction require a session id"));
    };
    let Some(n) = txn_number(body)? else {
        return Err(CommandError::new(50768, "InvalidOptions", "commitTransaction/abortTransaction require txnNumber"));
    };
    Ok((lsid, n))
}

pub fn commit_transaction(ctx: &mut Ctx<'_>, body: &Document) -> CmdResult<Document> {
    let (lsid, n) = target(ctx, body)?;
    concerns::write_concern(body)?;
    // Drivers send maxCommitTimeMS as the commit's maxTimeMS: here it bounds
    // the wait for the store's writer.
    let wait = concerns::max_time_ms(body, "commitTransaction")?.map(Duration::from_millis).unwrap_or(ctx.state.write_lock_timeout);
    let session_arc = ctx.state.sessions.get(&lsid);
    let mut session = session_arc.lock();
    session.touch(ctx.conn.id);
    let key = RetryKey::new(&lsid, n);
    if session.txn_number != n {
        // A commit retried after the store's previous server committed and
        // died before replying.
        if session.txn_number < n && retryable::committed(&ctx.state.storage, &key)? {
            return Ok(doc! {"ok": 1.0});
        }
        return Err(CommandError::no_such_transaction(format!("Transaction with txnNumber {n} is not in progress")));
    }
    match std::mem::replace(&mut session.state, TxnState::None) {
        TxnState::Active { txn, changes, .. } => {
            // A failed commit leaves nothing applied; its error says whether
            // the driver may retry the whole transaction. The commit is
            // recorded in the same redb transaction as its writes, so a retry
            // that reaches the store's next server is answered from it.
            let lsid_doc = Bson::Document(doc! {"id": Binary { subtype: BinarySubtype::Uuid, bytes: lsid.clone() }});
            let publish = |time| ctx.state.changes.publish(time, changes.events, Some((lsid_doc, n)));
            // Deferred foreign key checks run on the transaction's final
            // state; a violation aborts it (nothing applied), as a failed
            // deferred constraint does in SQL.
            let checked = crate::storage::Tables::open_transaction(&txn)
                .and_then(|tables| crate::foreign_keys::verify(&tables, txn.pending_checks()));
            if let Err(e) = checked {
                session.state = TxnState::Aborted;
                return Err(e);
            }
            if let Err(e) = txn.commit(&ctx.state.storage, wait, |write| retryable::record_commit(write, &key), publish) {
                session.state = TxnState::Aborted;
                return Err(e);
            }
            session.state = TxnState::Committed;
            Ok(doc! {"ok": 1.0})
        }
        // Drivers retry commit after network errors; a repeat is a success.
        TxnState::Committed => {
            session.state = TxnState::Committed;
            Ok(doc! {"ok": 1.0})
        }
        other => {
            session.state = other;
            Err(CommandError::no_such_transaction(format!("Transaction with txnNumber {n} has been aborted")))
        }
    }
}

pub fn abort_transaction(ctx: &mut Ctx<'_>, body: &Document) -> CmdResult<Document> {
    let (lsid, n) = target(ctx, body)?;
    concerns::write_concern(body)?;
    let session_arc = ctx.state.sessions.get(&lsid);
    let mut session = session_arc.lock();
    session.touch(ctx.conn.id);
    if session.txn_number != n {
        return Err(CommandError::no_such_transaction(format!("Transaction with txnNumber {n} is not in progress")));
    }
    match session.state {
        TxnState::Active { .. } => {
            session.abort();
            Ok(doc! {"ok": 1.0})
        }
        TxnState::Committed => Err(CommandError::new(256, "TransactionCommitted", format!("Transaction with txnNumber {n} has been committed"))),
        _ => Err(CommandError::no_such_transaction(format!("Transaction with txnNumber {n} has been aborted"))),
    }
}

// ---- savepoints (our own commands: MongoDB has none) ------------------------
//
// `{savepoint: "s1"}`, `{rollbackToSavepoint: "s1"}`, `{releaseSavepoint:
// "s1"}`, sent inside a transaction (lsid, txnNumber, autocommit: false).
// They carry out SQL's SAVEPOINT / ROLLBACK TO SAVEPOINT / RELEASE SAVEPOINT
// for the Django backend; `hello` advertises them as `djongo.savepoints`.

fn savepoint_target<'a>(ctx: &Ctx<'a>, body: &Document, cmd: &str) -> CmdResult<(&'a Transaction, String)> {
    let name = match body.get(cmd) {
        Some(Bson::String(s)) if !s.is_empty() => s.clone(),
        _ => return Err(CommandError::type_mismatch(format!("'{cmd}' must be a non-empty savepoint name"))),
    };
    let Some(txn) = ctx.scope.open_transaction() else {
        return Err(CommandError::new(
            251,
            "NoSuchTransaction",
            format!("{cmd} can only run inside a transaction (send it with lsid, txnNumber and autocommit: false)"),
        ));
    };
    Ok((txn, name))
}

fn savepoint_error(cmd: &str, e: SavepointError) -> CommandError {
    match e {
        SavepointError::NoSuchSavepoint(name) => CommandError::bad_value(format!("{cmd}: no such savepoint \"{name}\" in this transaction")),
        SavepointError::Busy => CommandError::internal(format!("{cmd}: the transaction is in use")),
    }
}

pub fn savepoint(ctx: &mut Ctx<'_>, body: &Document) -> CmdResult<Document> {
    let (txn, name) = savepoint_target(ctx, body, "savepoint")?;
    txn.savepoint(&name).map_err(|e| savepoint_error("savepoint", e))?;
    Ok(doc! {"ok": 1.0})
}

/// `checkForeignKeys` (our extension): runs the foreign key checks the
/// transaction owes now, as they would run at commit (Django's
/// `check_constraints`). Outside a transaction every write has been checked
/// already: nothing is owed.
pub fn check_foreign_keys(ctx: &mut Ctx<'_>, _body: &Document) -> CmdResult<Document> {
    if let Some(txn) = ctx.scope.open_transaction() {
        let tables = crate::storage::Tables::open_transaction(txn)?;
        crate::foreign_keys::check_now(&tables, txn.pending_checks())?;
    }
    Ok(doc! {"ok": 1.0})
}

pub fn rollback_to_savepoint(ctx: &mut Ctx<'_>, body: &Document) -> CmdResult<Document> {
    let (txn, name) = savepoint_target(ctx, body, "rollbackToSavepoint")?;
    txn.rollback_to_savepoint(&name).map_err(|e| savepoint_error("rollbackToSavepoint", e))?;
    Ok(doc! {"ok": 1.0})
}

pub fn release_savepoint(ctx: &mut Ctx<'_>, body: &Document) -> CmdResult<Document> {
    let (txn, name) = savepoint_target(ctx, body, "releaseSavepoint")?;
    txn.release_savepoint(&name).map_err(|e| savepoint_error("releaseSavepoint", e))?;
    Ok(doc! {"ok": 1.0})
}
