//! What every reply carries besides the command's own answer, as a replica
//! set member's does: error labels (mongod's `ErrorLabelBuilder`), write
//! concern errors, and cluster time (`$clusterTime`, `operationTime`).
use crate::error::{CmdResult, CommandError};
use crate::state::{ConnInfo, ServerState};
use bson::{doc, spec::BinarySubtype, Binary, Bson, Document, Timestamp};

/// What happened to a command on its way, for its reply.
#[derive(Default)]
pub struct Effects {
    /// Labels replacing the server's own (`errorLabels` of a fail point).
    pub labels: Option<Vec<String>>,
    /// The cluster time a snapshot read read at (`atClusterTime`).
    pub snapshot_time: Option<bson::Timestamp>,
    /// The command opens or continues a change stream (its errors say
    /// whether the stream can resume).
    pub change_stream: bool,
}

/// The reply to a command, finished: `ok`, a snapshot read's
/// `atClusterTime`, the write concern error (a fail point's or an
/// unsatisfiable `w`), the error labels, and the cluster time.
pub fn finish(state: &ServerState, conn: &mut ConnInfo, body: &Document, result: CmdResult<Document>, mut effects: Effects) -> Document {
    let name = body.keys().next().cloned().unwrap_or_default();
    let (mut reply, code) = match result {
        Ok(mut reply) => {
            if !reply.contains_key("ok") {
                reply.insert("ok", 1.0);
            }
            if let Some(time) = effects.snapshot_time {
                match reply.get_mut("cursor") {
                    Some(Bson::Document(cursor)) => {
                        cursor.insert("atClusterTime", time);
                    }
                    _ => {
                        reply.insert("atClusterTime", time);
                    }
                }
            }
            (reply, None)
        }
        Err(e) => (e.to_reply(), Some(e.code)),
    };
    let mut write_concern_error = None;
    if !conn.close && takes_write_concern(&name, body) {
        let fault = state.test_commands.then(|| state.fail_points.write_concern_fault(&super::command_site(conn, &name, body))).flatten();
        write_concern_error = match fault {
            Some((wce, labels)) => {
                conn.faulted = true;
                if labels.is_some() {
                    effects.labels = labels;
                }
                Some(wce)
            }
            None => unsatisfiable_write_concern(body),
        };
    }
    let wce_code = write_concern_error.as_ref().and_then(|w| match w.get("code") {
        Some(Bson::Int32(c)) => Some(*c),
        Some(Bson::Int64(c)) => i32::try_from(*c).ok(),
        Some(Bson::Double(c)) => Some(*c as i32),
        _ => None,
    });
    if let Some(wce) = write_concern_error {
        reply.insert("writeConcernError", wce);
    }
    let labels: Vec<String> = match effects.labels {
        Some(labels) => labels,
        None => {
            let mut labels: Vec<String> = match reply.get("errorLabels") {
                Some(Bson::Array(items)) => items.iter().filter_map(|l| l.as_str().map(str::to_string)).collect(),
                _ => Vec::new(),
            };
            let mut computed = labels_for(&name, body, code, wce_code);
            if effects.change_stream {
                computed.extend(code.and_then(|c| change_stream_label(c, !computed.is_empty())));
            }
            for label in computed {
                if !labels.iter().any(|l| l == label) {
                    labels.push(label.to_string());
                }
            }
            labels
        }
    };
    reply.remove("errorLabels");
    if !labels.is_empty() {
        reply.insert("errorLabels", labels);
    }
    add_cluster_time(state, &mut reply);
    reply
}

/// Codes of the `RetriableError` category (`error_codes.yml`): a driver may
/// retry a retryable write or a commit that failed with one.
const RETRIABLE: &[i32] = &[
    6, 7, 89, 91, 134, 189, 262, 358, 402, 406, 407, 412, 453, 462, 9001, 10107, 11600, 11602, 13435, 13436, 50915, 91331, 10045600,
];

pub fn is_retriable(code: i32) -> bool {
    RETRIABLE.contains(&code)
}

const COMMIT_OR_ABORT: &[&str] = &["commitTransaction", "abortTransaction"];

/// mongod's `isTransientTransactionError`: a transaction that failed with
/// `code` had no lasting effect and may be run again from its start.
fn is_transient_transaction_error(code: i32, has_write_concern_error: bool, commit_or_abort: bool) -> bool {
    // WriteConflict, LockTimeout, PreparedTransactionInProgress,
    // ShardCannotRefreshDueToLocksHeld, StaleDbVersion; snapshot errors;
    // StaleEpoch and StaleConfig (routing).
    if matches!(code, 112 | 24 | 267 | 343 | 249 | 239 | 246 | 250 | 272 | 150 | 13388) {
        return true;
    }
    if commit_or_abort {
        code == 251 && !has_write_concern_error
    } else {
        is_retriable(code) || code == 251
    }
}

/// The labels mongod gives a reply: `TransientTransactionError` for a
/// statement of a transaction that failed transiently, else
/// `RetryableWriteError` for a retryable write (or a commit or abort) that
/// failed, or met a write concern error, with a retriable code.
pub fn labels_for(command: &str, body: &Document, code: Option<i32>, write_concern_code: Option<i32>) -> Vec<&'static str> {
    let txn_number = body.contains_key("txnNumber");
    // `autocommit` is only ever sent (as false) by a transaction's statements.
    let in_transaction = body.contains_key("autocommit");
    let commit_or_abort = COMMIT_OR_ABORT.contains(&command);
    if let Some(code) = code {
        if txn_number && in_transaction && is_transient_transaction_error(code, write_concern_code.is_some(), commit_or_abort) {
            return vec!["TransientTransactionError"];
        }
    }
    let retryable = txn_number && (!in_transaction || commit_or_abort);
    if retryable && (code.is_some_and(is_retriable) || write_concern_code.is_some_and(is_retriable)) {
        return vec!["RetryableWriteError"];
    }
    Vec::new()
}

/// mongod's change stream labels: `NonResumableChangeStreamError` for
/// ChangeStreamFatalError and ChangeStreamHistoryLost; otherwise, unless
/// the error is already labelled for a retry, `ResumableChangeStreamError`
/// for the errors a driver may resume the stream after (retriable and
/// network errors, routing errors, RetryChangeStream,
/// FailedToSatisfyReadPreference).
pub fn change_stream_label(code: i32, labelled: bool) -> Option<&'static str> {
    if matches!(code, 280 | 286) {
        return Some("NonResumableChangeStreamError");
    }
    let resumable = is_retriable(code) || matches!(code, 150 | 13388 | 234 | 133 | 317 | 384);
    (resumable && !labelled).then_some("ResumableChangeStreamError")
}

/// Commands that take a write concern (mongod's `supportsWriteConcern`).
const WRITE_CONCERN_COMMANDS: &[&str] = &[
    "insert",
    "update",
    "delete",
    "findAndModify",
    "findandmodify",
    "create",
    "drop",
    "dropDatabase",
    "renameCollection",
    "createIndexes",
    "dropIndexes",
    "deleteIndexes",
    "commitTransaction",
    "abortTransaction",
    "collMod",
];

/// Whether `command` takes a write concern (aggregates only with an
/// `$out`/`$merge` stage).
pub fn takes_write_concern(command: &str, body: &Document) -> bool {
    if command == "aggregate" {
        return matches!(body.get("pipeline"), Some(Bson::Array(stages)) if stages.last().is_some_and(|s| {
            matches!(s, Bson::Document(d) if d.contains_key("$out") || d.contains_key("$merge"))
        }));
    }
    WRITE_CONCERN_COMMANDS.contains(&command)
}

/// The write concern error a one-node replica set reports for `w` it cannot
/// satisfy, after the write was applied: more than one member (100
/// UnsatisfiableWriteConcern), or a tag set it does not define (79
/// UnknownReplWriteConcern).
pub fn unsatisfiable_write_concern(body: &Document) -> Option<Document> {
    let Some(Bson::Document(wc)) = body.get("writeConcern") else { return None };
    let members = match wc.get("w")? {
        Bson::Int32(n) => i64::from(*n),
        Bson::Int64(n) => *n,
        Bson::Double(f) => *f as i64,
        Bson::String(mode) if mode == "majority" => return None,
        Bson::String(mode) => {
            return Some(doc! {
                "code": 79,
                "codeName": "UnknownReplWriteConcern",
                "errmsg": format!("No write concern mode named '{mode}' found in replica set configuration"),
                "errInfo": {"writeConcern": wc.clone()},
            })
        }
        Bson::Document(_) => {
            return Some(doc! {
                "code": 79,
                "codeName": "UnknownReplWriteConcern",
                "errmsg": "No write concern mode for these tags is defined in the replica set configuration",
                "errInfo": {"writeConcern": wc.clone()},
            })
        }
        _ => return None,
    };
    (members > 1).then(|| {
        doc! {
            "code": 100,
            "codeName": "UnsatisfiableWriteConcern",
            "errmsg": "Not enough data-bearing nodes",
            "errInfo": {"writeConcern": wc.clone()},
        }
    })
}

/// `$clusterTime` as mongod sends it without keys to sign with (no auth):
/// a zero signature.
pub fn cluster_time_document(time: Timestamp) -> Document {
    doc! {
        "clusterTime": time,
        "signature": {"hash": Binary { subtype: BinarySubtype::Generic, bytes: vec![0; 20] }, "keyId": 0i64},
    }
}

/// mongod's `maxAcceptableLogicalClockDriftSecs`.
const MAX_CLOCK_DRIFT_SECS: u32 = 365 * 24 * 3600;

/// Moves the cluster time forward to the `$clusterTime` a client sends.
pub fn gossip(state: &ServerState, body: &Document) -> CmdResult<()> {
    let Some(Bson::Document(ct)) = body.get("$clusterTime") else { return Ok(()) };
    let Some(Bson::Timestamp(time)) = ct.get("clusterTime") else {
        return Err(CommandError::failed_to_parse("$clusterTime.clusterTime must be a timestamp"));
    };
    let clock = state.storage.clock();
    if time.time > clock.now().time.saturating_add(MAX_CLOCK_DRIFT_SECS) {
        return Err(CommandError::new(
            205,
            "ClusterTimeFailsRateLimiter",
            format!("New cluster time, {}, is too far from this node's wall clock time", time.time),
        ));
    }
    clock.advance(*time);
    Ok(())
}

/// Adds the cluster time and the time of the latest commit (every write
/// acknowledged so far is at or before it) to a reply.
pub fn add_cluster_time(state: &ServerState, reply: &mut Document) {
    let clock = state.storage.clock();
    reply.insert("operationTime", clock.last_commit());
    reply.insert("$clusterTime", cluster_time_document(clock.now()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_follow_mongod() {
        let txn = doc! {"insert": "c", "txnNumber": 1i64, "autocommit": false};
        assert_eq!(labels_for("insert", &txn, Some(112), None), vec!["TransientTransactionError"]);
        assert_eq!(labels_for("insert", &txn, Some(10107), None), vec!["TransientTransactionError"]);
        assert!(labels_for("insert", &txn, Some(11000), None).is_empty());
        let commit = doc! {"commitTransaction": 1, "txnNumber": 1i64, "autocommit": false};
        assert_eq!(labels_for("commitTransaction", &commit, Some(91), None), vec!["RetryableWriteError"]);
        assert_eq!(labels_for("commitTransaction", &commit, Some(251), None), vec!["TransientTransactionError"]);
        assert!(labels_for("commitTransaction", &commit, Some(251), Some(64)).is_empty());
        let retryable = doc! {"insert": "c", "txnNumber": 1i64};
        assert_eq!(labels_for("insert", &retryable, Some(189), None), vec!["RetryableWriteError"]);
        assert_eq!(labels_for("insert", &retryable, None, Some(91)), vec!["RetryableWriteError"]);
        assert!(labels_for("insert", &doc! {"insert": "c"}, Some(189), None).is_empty());
    }

    #[test]
    fn write_concerns_a_single_member_cannot_satisfy() {
        let with = |wc: Document| doc! {"insert": "c", "writeConcern": wc};
        assert_eq!(unsatisfiable_write_concern(&with(doc! {"w": 2})).unwrap().get_i32("code").unwrap(), 100);
        assert_eq!(unsatisfiable_write_concern(&with(doc! {"w": "dc"})).unwrap().get_i32("code").unwrap(), 79);
        assert!(unsatisfiable_write_concern(&with(doc! {"w": 1})).is_none());
        assert!(unsatisfiable_write_concern(&with(doc! {"w": "majority", "j": true})).is_none());
        assert!(takes_write_concern("aggregate", &doc! {"aggregate": "c", "pipeline": [{"$out": "x"}]}));
        assert!(!takes_write_concern("aggregate", &doc! {"aggregate": "c", "pipeline": []}));
    }
}
