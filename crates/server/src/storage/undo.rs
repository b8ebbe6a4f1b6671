//! Savepoints for multi-document transactions, as an undo log.
//!
//! A transaction is one redb write transaction, and redb cannot give us
//! savepoints there: it refuses `ephemeral_savepoint` once a table has been
//! opened in the transaction, which every command does. So the transaction
//! keeps its own log instead: each insert or remove on the four tables (made
//! through `Tables`, the only place that writes) records the key and the
//! value it replaced, or that there was none. A savepoint is a position in
//! the log; rolling back to it replays the later entries backwards inside the
//! same redb transaction, which restores documents, index entries, the
//! catalog and the sequence counters byte for byte.
//!
//! Nothing is logged while no savepoint exists, so plain transactions and
//! autocommit writes pay only an uncontended lock per write.
use super::{CATALOG, DOCS, INDEX, META};
use redb::WriteTransaction;
use thiserror::Error;

/// Which table an entry belongs to, the key, and the value before the write
/// (`None`: the key was absent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum UndoEntry {
    Catalog { key: String, prev: Option<Vec<u8>> },
    Docs { key: Vec<u8>, prev: Option<Vec<u8>> },
    Index { key: Vec<u8>, prev: Option<Vec<u8>> },
    Meta { key: String, prev: Option<u64> },
}

#[derive(Debug, Error)]
pub enum SavepointError {
    #[error("no such savepoint: {0}")]
    NoSuchSavepoint(String),
    /// A failed undo leaves the transaction half restored; the caller must
    /// abort it.
    #[error("storage error while rolling back: {0}")]
    Storage(String),
}

macro_rules! storage_err {
    ($($t:ty),*) => {$(
        impl From<$t> for SavepointError {
            fn from(e: $t) -> Self {
                SavepointError::Storage(e.to_string())
            }
        }
    )*};
}
storage_err!(redb::StorageError, redb::TableError);

#[derive(Debug, Default)]
pub struct UndoLog {
    entries: Vec<UndoEntry>,
    /// Savepoint names with their log positions, oldest first. Names may
    /// repeat: as in PostgreSQL the newest one with a name is the one used.
    savepoints: Vec<(String, usize)>,
}

impl UndoLog {
    /// Whether writes must be logged: only while some savepoint could need them.
    pub fn recording(&self) -> bool {
        !self.savepoints.is_empty()
    }

    pub(crate) fn record(&mut self, entry: UndoEntry) {
        if self.recording() {
            self.entries.push(entry);
        }
    }

    /// The current position, for undoing one failed statement.
    pub fn mark(&self) -> usize {
        self.entries.len()
    }

    pub fn savepoint(&mut self, name: &str) {
        self.savepoints.push((name.to_string(), self.entries.len()));
    }

    fn find(&self, name: &str) -> Result<usize, SavepointError> {
        self.savepoints.iter().rposition(|(n, _)| n == name).ok_or_else(|| SavepointError::NoSuchSavepoint(name.to_string()))
    }

    /// Forgets `name` and every savepoint set after it. Their writes stay and
    /// now belong to the enclosing savepoint (or the transaction).
    pub fn release(&mut self, name: &str) -> Result<(), SavepointError> {
        let at = self.find(name)?;
        self.savepoints.truncate(at);
        if self.savepoints.is_empty() {
            self.entries.clear();
        }
        Ok(())
    }

    /// The entries to undo for a rollback to `name`, newest last; later
    /// savepoints are dropped and `name` itself stays, as in SQL.
    pub(crate) fn take_for_rollback(&mut self, name: &str) -> Result<Vec<UndoEntry>, SavepointError> {
        let at = self.find(name)?;
        let pos = self.savepoints[at].1;
        self.savepoints.truncate(at + 1);
        Ok(self.take_after(pos))
    }

    /// The entries after `mark`, newest last (a failed statement's writes).
    pub(crate) fn take_after(&mut self, mark: usize) -> Vec<UndoEntry> {
        if mark >= self.entries.len() {
            return Vec::new();
        }
        self.entries.split_off(mark)
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

/// Restores every entry, newest first, directly on the redb tables (these
/// writes are not logged: they are the undo).
pub(crate) fn apply(txn: &WriteTransaction, entries: Vec<UndoEntry>) -> Result<(), SavepointError> {
    if entries.is_empty() {
        return Ok(());
    }
    let mut catalog = txn.open_table(CATALOG)?;
    let mut docs = txn.open_table(DOCS)?;
    let mut index = txn.open_table(INDEX)?;
    let mut meta = txn.open_table(META)?;
    for entry in entries.into_iter().rev() {
        match entry {
            UndoEntry::Catalog { key, prev: Some(v) } => {
                catalog.insert(key.as_str(), v.as_slice())?;
            }
            UndoEntry::Catalog { key, prev: None } => {
                catalog.remove(key.as_str())?;
            }
            UndoEntry::Docs { key, prev: Some(v) } => {
                docs.insert(key.as_slice(), v.as_slice())?;
            }
            UndoEntry::Docs { key, prev: None } => {
                docs.remove(key.as_slice())?;
            }
            UndoEntry::Index { key, prev: Some(v) } => {
                index.insert(key.as_slice(), v.as_slice())?;
            }
            UndoEntry::Index { key, prev: None } => {
                index.remove(key.as_slice())?;
            }
            UndoEntry::Meta { key, prev: Some(v) } => {
                meta.insert(key.as_str(), v)?;
            }
            UndoEntry::Meta { key, prev: None } => {
                meta.remove(key.as_str())?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(k: u8) -> UndoEntry {
        UndoEntry::Docs { key: vec![k], prev: None }
    }

    #[test]
    fn nothing_is_logged_without_a_savepoint() {
        let mut log = UndoLog::default();
        log.record(doc(1));
        assert_eq!(log.len(), 0);
        log.savepoint("a");
        log.record(doc(2));
        assert_eq!(log.len(), 1);
    }

    #[test]
    fn rollback_keeps_the_savepoint_and_drops_later_ones() {
        let mut log = UndoLog::default();
        log.savepoint("a");
        log.record(doc(1));
        log.savepoint("b");
        log.record(doc(2));
        assert_eq!(log.take_for_rollback("a").unwrap(), vec![doc(1), doc(2)]);
        assert!(matches!(log.take_for_rollback("b"), Err(SavepointError::NoSuchSavepoint(n)) if n == "b"));
        log.record(doc(3));
        assert_eq!(log.take_for_rollback("a").unwrap(), vec![doc(3)]);
    }

    #[test]
    fn release_hands_writes_to_the_enclosing_savepoint() {
        let mut log = UndoLog::default();
        log.savepoint("a");
        log.record(doc(1));
        log.savepoint("b");
        log.record(doc(2));
        log.release("b").unwrap();
        assert_eq!(log.take_for_rollback("a").unwrap(), vec![doc(1), doc(2)]);
        log.release("a").unwrap();
        assert!(!log.recording());
        assert_eq!(log.len(), 0);
        assert!(log.release("a").is_err());
    }

    #[test]
    fn repeated_name_uses_the_newest() {
        let mut log = UndoLog::default();
        log.savepoint("a");
        log.record(doc(1));
        log.savepoint("a");
        log.record(doc(2));
        assert_eq!(log.take_for_rollback("a").unwrap(), vec![doc(2)]);
    }
}
