//! Retried writes and commits that reach another server of the store.
//!
//! A driver sends a write (insert, update, delete, findAndModify outside a
//! transaction) or a `commitTransaction` once more, with the same session id
//! and `txnNumber`, when the connection fails before the reply arrives. When
//! the server died between committing and replying (`kill -9`), the retry
//! reaches the store's next server, which must answer it from what was
//! recorded rather than apply it again: a second insert would fail with a
//! duplicate key, a second `$inc` would count twice, a second commit would
//! find no transaction although the first one committed.
//!
//! So each such write records its reply, and each commit its txnNumber, in
//! the same redb transaction as its writes: one record per session, for its
//! latest txnNumber, as MongoDB keeps in `config.transactions`. Records of
//! sessions idle longer than a session lives are pruned.
use crate::error::{CmdResult, CommandError};
use crate::storage::{Storage, WriteTxn};
use bson::{doc, Bson, DateTime, Document};
use redb::{ReadableTable, TableDefinition, TableError, WriteTransaction};
use std::time::Duration;

const RECORDS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("retryable_writes");

/// The commands a driver retries outside a transaction.
const RETRYABLE: &[&str] = &["insert", "update", "delete", "findAndModify", "findandmodify"];

/// A retryable statement: its session and txnNumber.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryKey {
    lsid: Vec<u8>,
    txn_number: i64,
}

impl RetryKey {
    /// The key of `name`, if it is a retryable write outside a transaction
    /// (the driver sent a session id and a txnNumber with it).
    pub fn for_command(name: &str, body: &Document, lsid: Option<&[u8]>) -> CmdResult<Option<RetryKey>> {
        if !RETRYABLE.contains(&name) {
            return Ok(None);
        }
        let (Some(lsid), Some(txn_number)) = (lsid, crate::commands::txn_number(body)?) else { return Ok(None) };
        Ok(Some(RetryKey { lsid: lsid.to_vec(), txn_number }))
    }

    pub fn new(lsid: &[u8], txn_number: i64) -> RetryKey {
        RetryKey { lsid: lsid.to_vec(), txn_number }
    }
}

/// What is kept per session.
struct Record {
    txn_number: i64,
    /// The write's reply; none for a committed transaction.
    reply: Option<Document>,
}

fn encode(txn_number: i64, reply: Option<&Document>) -> CmdResult<Vec<u8>> {
    let mut record = doc! {"txn": txn_number, "at": DateTime::now()};
    if let Some(reply) = reply {
        record.insert("reply", reply.clone());
    }
    record.to_vec().map_err(|e| CommandError::internal(format!("encoding a retryable-write record: {e}")))
}

fn decode(bytes: &[u8]) -> CmdResult<(Record, DateTime)> {
    let corrupt = || CommandError::internal("a retryable-write record is corrupt");
    let record = Document::from_reader(bytes).map_err(|_| corrupt())?;
    let txn_number = record.get_i64("txn").map_err(|_| corrupt())?;
    let at = *record.get_datetime("at").map_err(|_| corrupt())?;
    let reply = match record.get("reply") {
        Some(Bson::Document(d)) => Some(d.clone()),
        None => None,
        Some(_) => return Err(corrupt()),
    };
    Ok((Record { txn_number, reply }, at))
}

fn load(storage: &Storage, lsid: &[u8]) -> CmdResult<Option<Record>> {
    let read = storage.begin_read()?;
    let table = match read.open_table(RECORDS) {
        Ok(t) => t,
        // No retryable write was ever recorded in this store.
        Err(TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let Some(bytes) = table.get(lsid)? else { return Ok(None) };
    Ok(Some(decode(bytes.value())?.0))
}

/// What a statement `key` is answered from its session's record: the
/// reply it already got, if it was applied; an error if the session has
/// moved on to a later statement (as MongoDB answers).
fn answer(record: Option<Record>, key: &RetryKey) -> CmdResult<Option<Document>> {
    let Some(record) = record else { return Ok(None) };
    if record.txn_number > key.txn_number {
        return Err(CommandError::new(
            225,
            "TransactionTooOld",
            format!("Retryable write with txnNumber {} is prohibited on session because a newer retryable write with txnNumber {} has already started", key.txn_number, record.txn_number),
        ));
    }
    Ok(if record.txn_number == key.txn_number { record.reply } else { None })
}

/// The reply a retried write already got, read from the last committed
/// state (see [`answer`]).
pub fn replay(storage: &Storage, key: &RetryKey) -> CmdResult<Option<Document>> {
    answer(load(storage, &key.lsid)?, key)
}

/// [`replay`], read in the write transaction that would apply the
/// statement: no separate read transaction, and no other writer can
/// record the same statement between the check and the write.
pub fn replay_in(txn: &WriteTxn, key: &RetryKey) -> CmdResult<Option<Document>> {
    // (Opening the table in a write transaction creates it when no
    // retryable write was ever recorded: the write records one there.)
    let table = txn.txn()?.open_table(RECORDS)?;
    let record = match table.get(key.lsid.as_slice())? {
        Some(bytes) => Some(decode(bytes.value())?.0),
        None => None,
    };
    answer(record, key)
}

fn put(txn: &WriteTransaction, lsid: &[u8], value: &[u8]) -> CmdResult<()> {
    let mut table = txn.open_table(RECORDS)?;
    table.insert(lsid, value)?;
    Ok(())
}

/// Records a write's reply in the transaction that applies it.
pub fn record(txn: &WriteTxn, key: &RetryKey, reply: &Document) -> CmdResult<()> {
    put(txn.txn()?, &key.lsid, &encode(key.txn_number, Some(reply))?)
}

/// Records, in the transaction itself, that it commits.
pub fn record_commit(txn: &WriteTransaction, key: &RetryKey) -> CmdResult<()> {
    put(txn, &key.lsid, &encode(key.txn_number, None)?)
}

/// Whether the transaction `key` committed (on this server or an earlier
/// one of the store).
pub fn committed(storage: &Storage, key: &RetryKey) -> CmdResult<bool> {
    Ok(load(storage, &key.lsid)?.is_some_and(|r| r.txn_number == key.txn_number && r.reply.is_none()))
}

/// Forgets the records of sessions idle for longer than `idle`: their
/// drivers discarded them, so nothing will retry on them. Skipped (false)
/// when another writer holds the store.
pub fn prune(storage: &Storage, idle: Duration) -> CmdResult<bool> {
    let Some(txn) = storage.begin_write(Duration::ZERO)? else { return Ok(false) };
    let cutoff = DateTime::from_millis(DateTime::now().timestamp_millis().saturating_sub(idle.as_millis().try_into().unwrap_or(i64::MAX)));
    {
        let mut table = txn.txn()?.open_table(RECORDS)?;
        let mut expired = Vec::new();
        for entry in table.iter()? {
            let (key, value) = entry?;
            // An unreadable record cannot be replayed either: drop it too.
            if decode(value.value()).map_or(true, |(_, at)| at <= cutoff) {
                expired.push(key.value().to_vec());
            }
        }
        if expired.is_empty() {
            drop(table);
            txn.abort();
            return Ok(true);
        }
        for key in expired {
            table.remove(key.as_slice())?;
        }
    }
    txn.commit()?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: i64) -> RetryKey {
        RetryKey::new(b"session-1", n)
    }

    #[test]
    fn a_recorded_write_is_replayed_across_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let storage = Storage::open(dir.path()).unwrap();
            assert_eq!(replay(&storage, &key(1)).unwrap(), None);
            let txn = storage.begin_write(Duration::from_secs(1)).unwrap().unwrap();
            record(&txn, &key(1), &doc! {"n": 1}).unwrap();
            txn.commit().unwrap();
        }
        let storage = Storage::open(dir.path()).unwrap();
        assert_eq!(replay(&storage, &key(1)).unwrap(), Some(doc! {"n": 1}));
        // A later statement of the session runs normally...
        assert_eq!(replay(&storage, &key(2)).unwrap(), None);
        let other = RetryKey::new(b"session-2", 1);
        assert_eq!(replay(&storage, &other).unwrap(), None);
        // ...and once it is recorded, the older one is refused.
        let txn = storage.begin_write(Duration::from_secs(1)).unwrap().unwrap();
        record(&txn, &key(2), &doc! {"n": 2}).unwrap();
        txn.commit().unwrap();
        assert_eq!(replay(&storage, &key(1)).unwrap_err().code, 225);
        assert!(!committed(&storage, &key(2)).unwrap(), "a write is not a commit");
    }

    #[test]
    fn an_aborted_write_leaves_no_record() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path()).unwrap();
        let txn = storage.begin_write(Duration::from_secs(1)).unwrap().unwrap();
        record(&txn, &key(1), &doc! {"n": 1}).unwrap();
        txn.abort();
        assert_eq!(replay(&storage, &key(1)).unwrap(), None);
    }

    #[test]
    fn commits_are_recorded_and_old_records_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path()).unwrap();
        let txn = storage.begin_write(Duration::from_secs(1)).unwrap().unwrap();
        record_commit(txn.txn().unwrap(), &key(7)).unwrap();
        txn.commit().unwrap();
        assert!(committed(&storage, &key(7)).unwrap());
        assert!(!committed(&storage, &key(8)).unwrap());
        assert!(prune(&storage, Duration::from_secs(60)).unwrap());
        assert!(committed(&storage, &key(7)).unwrap(), "recent records stay");
        assert!(prune(&storage, Duration::ZERO).unwrap());
        assert!(!committed(&storage, &key(7)).unwrap());
    }
}
