//! Storage on redb: one file per data directory, holding the catalog,
//! documents (BSON bytes keyed by collection id + encoded `_id`) and index
//! entries. Every acknowledged write is a committed redb transaction with
//! immediate durability, so it survives `kill -9`.
mod lock;
mod reads;
mod tables;
mod undo;

pub use lock::{LockToken, WriteLock};
pub use reads::{decode_fields, DocumentRange, EntryRange, IdRange, IndexEntry};
pub use tables::{KeyRange, KeySpace, Tables};
pub use undo::{SavepointError, UndoLog};

use crate::error::{CmdResult, CommandError, ServerError};
use parking_lot::Mutex;
use redb::{Database, DatabaseError, ReadTransaction, ReadableDatabase, TableDefinition, WriteTransaction};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub const DATA_FILE: &str = "djongo.redb";

pub(crate) const CATALOG: TableDefinition<&str, &[u8]> = TableDefinition::new("catalog");
pub(crate) const DOCS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("documents");
pub(crate) const INDEX: TableDefinition<&[u8], &[u8]> = TableDefinition::new("index_entries");
pub(crate) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// The open database file plus the writer lock.
pub struct Storage {
    db: Database,
    lock: Arc<WriteLock>,
    path: PathBuf,
}

/// A redb write transaction together with the server writer lock; dropping
/// it aborts the transaction and then releases the lock (field order matters).
pub struct WriteTxn {
    txn: Option<WriteTransaction>,
    /// Savepoints and the writes made since the oldest one (see `undo`). A
    /// mutex rather than a RefCell because the transaction lives in the
    /// server-wide session table; it is never contended.
    undo: Mutex<UndoLog>,
    /// Set when an undo failed half way: the data is then neither the
    /// savepoint's nor the statement's, and only aborting is safe.
    poisoned: AtomicBool,
    _token: LockToken,
}

impl WriteTxn {
    pub fn txn(&self) -> CmdResult<&WriteTransaction> {
        self.txn.as_ref().ok_or_else(|| CommandError::internal("write transaction already finished"))
    }

    pub(crate) fn undo_log(&self) -> &Mutex<UndoLog> {
        &self.undo
    }

    pub fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::SeqCst)
    }

    pub fn savepoint(&self, name: &str) {
        self.undo.lock().savepoint(name);
    }

    pub fn release_savepoint(&self, name: &str) -> Result<(), SavepointError> {
        self.undo.lock().release(name)
    }

    /// Undoes every write made since savepoint `name`, which stays set;
    /// savepoints set after it are forgotten.
    pub fn rollback_to_savepoint(&self, name: &str) -> Result<(), SavepointError> {
        let entries = self.undo.lock().take_for_rollback(name)?;
        self.apply_undo(entries)
    }

    /// The undo position before a statement, if writes are being logged
    /// (some savepoint is set); `None` means a failed statement cannot be
    /// undone on its own.
    pub fn statement_mark(&self) -> Option<usize> {
        let log = self.undo.lock();
        log.recording().then(|| log.mark())
    }

    /// Undoes the writes of a failed statement (those after `mark`).
    pub fn undo_statement(&self, mark: usize) -> Result<(), SavepointError> {
        let entries = self.undo.lock().take_after(mark);
        self.apply_undo(entries)
    }

    fn apply_undo(&self, entries: Vec<undo::UndoEntry>) -> Result<(), SavepointError> {
        let result = match &self.txn {
            Some(t) => undo::apply(t, entries),
            None => Err(SavepointError::Storage("write transaction already finished".into())),
        };
        if result.is_err() {
            self.poisoned.store(true, Ordering::SeqCst);
        }
        result
    }
    pub fn commit(mut self) -> CmdResult<()> {
        match self.txn.take() {
            Some(t) => Ok(t.commit()?),
            None => Err(CommandError::internal("write transaction already finished")),
        }
    }
    pub fn abort(mut self) {
        if let Some(t) = self.txn.take() {
            // An abort failure leaves nothing to undo: the data was never committed.
            let _ = t.abort();
        }
    }
}

impl Drop for WriteTxn {
    fn drop(&mut self) {
        if let Some(t) = self.txn.take() {
            let _ = t.abort();
        }
    }
}

impl Storage {
    /// Opens (creating if needed) `<dir>/djongo.redb`.
    pub fn open(dir: &Path) -> Result<Storage, ServerError> {
        std::fs::create_dir_all(dir).map_err(|source| ServerError::DataDir { path: dir.to_path_buf(), source })?;
        let path = dir.join(DATA_FILE);
        let db = Database::create(&path).map_err(|e| match e {
            DatabaseError::DatabaseAlreadyOpen => ServerError::InUse { path: path.clone() },
            source => ServerError::Open { path: path.clone(), source },
        })?;
        let init = |db: &Database| -> Result<(), redb::Error> {
            let w = db.begin_write()?;
            {
                w.open_table(CATALOG)?;
                w.open_table(DOCS)?;
                w.open_table(INDEX)?;
                w.open_table(META)?;
            }
            w.commit()?;
            Ok(())
        };
        init(&db).map_err(|e| ServerError::Init { path: path.clone(), message: e.to_string() })?;
        let storage = Storage { db, lock: Arc::new(WriteLock::default()), path };
        storage
            .upgrade_key_format()
            .map_err(|e| ServerError::Init { path: storage.path.clone(), message: format!("upgrading stored keys: {}", e.message) })?;
        Ok(storage)
    }

    /// Brings a store written with an older key encoding up to the current
    /// one, in one transaction, before anything reads it: documents are
    /// re-keyed and index entries rebuilt. A new store is just marked.
    fn upgrade_key_format(&self) -> CmdResult<()> {
        let Some(wtxn) = self.begin_write(Duration::from_secs(60))? else {
            return Err(CommandError::internal("the store is busy"));
        };
        let mut tables = Tables::open_write(&wtxn)?;
        if tables.key_format()? == Some(Tables::KEY_FORMAT) {
            return Ok(());
        }
        let collections = tables.collections(None)?;
        for meta in &collections {
            let collisions = tables.reencode_keys(meta)?;
            if collisions > 0 {
                // Once per store, at upgrade: worth telling the operator.
                eprintln!(
                    "djongo-server: {}: {collisions} stored documents are equal by value in _id or a unique index \
                     (e.g. 1 and NumberDecimal(\"1.0\")); they are kept, but MongoDB would refuse them",
                    meta.ns()
                );
            }
        }
        tables.set_key_format(Tables::KEY_FORMAT)?;
        drop(tables);
        wtxn.commit()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A consistent snapshot for reads; never blocks on writers.
    pub fn begin_read(&self) -> CmdResult<ReadTransaction> {
        Ok(self.db.begin_read()?)
    }

    /// Takes the writer lock (waiting up to `timeout`) and begins a redb write
    /// transaction. `None` means the lock stayed busy.
    pub fn begin_write(&self, timeout: Duration) -> CmdResult<Option<WriteTxn>> {
        let Some(token) = self.lock.acquire(timeout) else { return Ok(None) };
        let txn = self.db.begin_write()?;
        Ok(Some(WriteTxn { txn: Some(txn), undo: Mutex::default(), poisoned: AtomicBool::new(false), _token: token }))
    }
}

#[allow(dead_code)]
fn assert_send() {
    // Transactions live in the session table and move between connection
    // threads, so these types must be Send.
    fn is_send<T: Send>() {}
    is_send::<WriteTxn>();
    is_send::<ReadTransaction>();
}
