//! Storage on redb: one file per data directory, holding the catalog,
//! documents (BSON bytes keyed by collection id + encoded `_id`), index
//! entries and each collection's document count. Every acknowledged write is a committed redb transaction with
//! immediate durability, so it survives `kill -9`.
//!
//! Concurrency follows MongoDB: reads see a snapshot and never wait; a
//! multi-document transaction keeps its writes in memory (`transaction`,
//! `overlay`) and holds no lock until commit; conflicting writes are
//! detected per document (`conflicts`, `claims`). redb has one writer at a
//! time, so autocommit writes and commits take the store's writer lock
//! (`lock`) for as long as they run, which is one command or one commit.
mod claims;
pub mod clock;
mod conflicts;
mod latest;
mod lock;
mod overlay;
mod reads;
mod sorted_writes;
mod tables;
mod transaction;
mod view;

pub use clock::Clock;
pub use latest::SnapshotTables;
pub use lock::{LockToken, WriteLock};
pub use overlay::{Mark, SavepointError};
pub use reads::{decode_fields, DocumentRange, EntryRange, IdRange, IndexEntry};
pub use tables::{KeyRange, KeySpace, Tables};
pub use transaction::Transaction;
pub use view::{Guard, Range, View};

pub(crate) use claims::Claims;
pub(crate) use conflicts::{ConflictKey, Conflicts, WriterId};

use crate::error::{CmdResult, CommandError, ServerError};
use redb::{Database, DatabaseError, ReadTransaction, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition, WriteTransaction};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const DATA_FILE: &str = "djongo.redb";

pub(crate) const CATALOG: TableDefinition<&str, &[u8]> = TableDefinition::new("catalog");
pub(crate) const DOCS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("documents");
pub(crate) const INDEX: TableDefinition<&[u8], &[u8]> = TableDefinition::new("index_entries");
pub(crate) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// How many documents each collection holds (collection id → count), kept
/// in step with `DOCS` by every write in the same redb transaction, so a
/// snapshot's count is exact for that snapshot. A collection without an
/// entry holds none. redb keeps a table's length in its B-tree header, but
/// all collections share `DOCS`, so that length is only the store's total.
pub(crate) const COUNTS: TableDefinition<u64, u64> = TableDefinition::new("document_counts");

/// The `meta` marker saying `COUNTS` holds every collection's count (a
/// store written before it existed gets them counted once, at open).
pub(crate) const COUNTS_READY: &str = "document_counts";

/// The `meta` counter of collection ids (the next one to hand out).
pub(crate) const COLLECTION_ID: &str = "collection_id";

/// The open database file, the writer lock and the conflict table.
pub struct Storage {
    db: Database,
    lock: Arc<WriteLock>,
    conflicts: Arc<Conflicts>,
    /// Collection ids are handed out here rather than by a counter in a
    /// transaction, so two transactions creating collections do not
    /// conflict on it (an aborted one leaves a gap).
    collection_ids: Arc<AtomicU64>,
    /// Cluster time; every commit takes a tick (`clock`).
    clock: Arc<Clock>,
    /// Set by a commit that did not wait for the disk, cleared by one that
    /// did (commits are serialized by the writer lock): `flush_journal`
    /// makes such commits durable within a bounded time, as mongod's
    /// journal commit interval does.
    unjournaled: Arc<AtomicBool>,
    /// The latest data's tables, shared by reads until the next commit.
    latest: Arc<latest::Latest>,
    path: PathBuf,
}

/// An autocommit write: a redb write transaction with the store's writer
/// lock, and the claims of the documents it writes. Dropping it aborts the
/// transaction, gives the claims back and releases the lock (field order).
pub struct WriteTxn {
    txn: Option<WriteTransaction>,
    claims: Claims,
    pending: crate::foreign_keys::PendingChecks,
    /// How its writes moved each collection's document count, stored once
    /// at commit rather than on every insert or delete.
    counts: tables::CountDeltas,
    collection_ids: Arc<AtomicU64>,
    clock: Arc<Clock>,
    /// Whether the commit waits for the disk (`writeConcern: {j: false}`
    /// asks it not to).
    journaled: bool,
    unjournaled: Arc<AtomicBool>,
    latest: Arc<latest::Latest>,
    _token: LockToken,
}

impl WriteTxn {
    /// Commits without waiting for the disk (`writeConcern: {j: false}`):
    /// the write is applied and visible, and made durable by the next
    /// commit that waits (redb's `Durability::None`), so a crash before
    /// that commit loses it, as MongoDB loses a `j: false` write that had
    /// not reached its journal. Any later acknowledged write that depends on
    /// it (ids a sequence handed out, say) commits after it, and so keeps it.
    pub fn skip_journal(&mut self) {
        self.journaled = false;
    }

    pub fn txn(&self) -> CmdResult<&WriteTransaction> {
        self.txn.as_ref().ok_or_else(|| CommandError::internal("write transaction already finished"))
    }

    pub(crate) fn claims(&self) -> &Claims {
        &self.claims
    }

    pub(crate) fn collection_ids(&self) -> &AtomicU64 {
        &self.collection_ids
    }

    pub(crate) fn pending_checks(&self) -> &crate::foreign_keys::PendingChecks {
        &self.pending
    }

    pub(crate) fn count_deltas(&self) -> &tables::CountDeltas {
        &self.counts
    }

    /// The transaction this write ran into (a document it holds), if the
    /// write failed for that reason: the command should wait for it and run
    /// again.
    pub(crate) fn blocked_on(&self) -> Option<(ConflictKey, WriterId)> {
        self.claims.blocked_on()
    }

    pub fn commit(self) -> CmdResult<()> {
        self.commit_then(|_| {})
    }

    /// Commits, then runs `then` with the commit's cluster time inside the
    /// commit's critical section (see `Clock::commit`).
    pub fn commit_then(mut self, then: impl FnOnce(bson::Timestamp)) -> CmdResult<()> {
        match self.txn.take() {
            Some(mut t) => {
                self.counts.store(&t)?;
                if !self.journaled {
                    t.set_durability(redb::Durability::None).map_err(|e| CommandError::internal(format!("a commit without the journal: {e}")))?;
                }
                self.clock.commit(|| Ok(t.commit()?), then)?;
                self.latest.forget();
                // Still under the writer lock (`_token`), so no other commit
                // runs between the commit and this mark.
                self.unjournaled.store(!self.journaled, Ordering::Release);
                self.claims.publish();
                Ok(())
            }
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

impl Drop for Storage {
    fn drop(&mut self) {
        // A clean close keeps every acknowledged write, `j: false` ones too.
        if let Err(e) = self.flush_journal(Duration::from_secs(5)) {
            eprintln!("djongo-server: {}: making the last unjournaled writes durable failed: {}", self.path.display(), e.message);
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
        let init = |db: &Database| -> Result<u64, redb::Error> {
            let w = db.begin_write()?;
            let next_id = {
                w.open_table(INDEX)?;
                let catalog = w.open_table(CATALOG)?;
                let mut meta = w.open_table(META)?;
                let docs = w.open_table(DOCS)?;
                let mut counts = w.open_table(COUNTS)?;
                // The counts add up to the documents table's length (one
                // B-tree header read) unless a build that does not keep them
                // wrote the store since (a downgrade, then this build again):
                // then they are counted afresh.
                if meta.get(COUNTS_READY)?.is_none() || counted_total(&counts)? != docs.len()? {
                    counts.retain(|_, _| false)?;
                    count_documents(&docs, &mut counts)?;
                    meta.insert(COUNTS_READY, 1)?;
                }
                drop((docs, counts));
                // The next collection id: past the stored counter and past
                // every id in the catalog.
                let mut next = meta.get(COLLECTION_ID)?.map(|v| v.value()).unwrap_or(1);
                for item in catalog.iter()? {
                    let (_, v) = item?;
                    if let Ok(doc) = bson::Document::from_reader(v.value()) {
                        if let Ok(id) = doc.get_i64("id") {
                            next = next.max(u64::try_from(id).unwrap_or(0).saturating_add(1));
                        }
                    }
                }
                next
            };
            w.commit()?;
            Ok(next_id)
        };
        let next_id = init(&db).map_err(|e| ServerError::Init { path: path.clone(), message: e.to_string() })?;
        let storage = Storage {
            db,
            lock: Arc::new(WriteLock::default()),
            conflicts: Arc::new(Conflicts::default()),
            collection_ids: Arc::new(AtomicU64::new(next_id)),
            clock: Arc::new(Clock::default()),
            unjournaled: Arc::new(AtomicBool::new(false)),
            latest: Arc::default(),
            path,
        };
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

    /// The store's cluster time.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// A read snapshot at cluster time `at` (the latest data when `None`),
    /// kept for later reads at that time; see `clock`.
    pub fn snapshot_at(&self, at: Option<bson::Timestamp>) -> CmdResult<(Arc<ReadTransaction>, bson::Timestamp)> {
        self.clock.snapshot(&self.db, at)
    }

    /// The tables of the latest committed data, as a snapshot taken now
    /// would show them (shared between reads until the next commit).
    pub fn latest_tables(&self) -> CmdResult<Arc<SnapshotTables>> {
        self.latest.tables(&self.db, &self.clock)
    }

    /// A consistent snapshot for reads; never blocks on writers.
    pub fn begin_read(&self) -> CmdResult<ReadTransaction> {
        Ok(self.db.begin_read()?)
    }

    /// Takes the writer lock (waiting up to `timeout`) and begins a redb write
    /// transaction for one autocommit command. `None` means the lock stayed
    /// busy.
    pub fn begin_write(&self, timeout: Duration) -> CmdResult<Option<WriteTxn>> {
        let Some(token) = self.lock.acquire(timeout) else { return Ok(None) };
        let txn = self.db.begin_write()?;
        Ok(Some(WriteTxn {
            txn: Some(txn),
            claims: Claims::new(Arc::clone(&self.conflicts), None),
            pending: Default::default(),
            counts: Default::default(),
            collection_ids: Arc::clone(&self.collection_ids),
            clock: Arc::clone(&self.clock),
            journaled: true,
            unjournaled: Arc::clone(&self.unjournaled),
            latest: Arc::clone(&self.latest),
            _token: token,
        }))
    }

    /// Makes the commits that did not wait for the disk (`j: false`)
    /// durable, with an empty commit that waits (redb commits in order).
    /// Called by the server's housekeeping every few tens of milliseconds
    /// and when the store closes, so such a write is lost only by a crash
    /// within that interval, never by a clean stop or an idle store.
    /// `Ok(false)`: nothing to do, or the writer lock stayed busy for
    /// `timeout` (the writer's own commit may do it; try again later).
    pub fn flush_journal(&self, timeout: Duration) -> CmdResult<bool> {
        if !self.unjournaled.load(Ordering::Acquire) {
            return Ok(false);
        }
        let Some(wtxn) = self.begin_write(timeout)? else { return Ok(false) };
        wtxn.commit()?;
        Ok(true)
    }

    /// Begins a multi-document transaction on a snapshot of the committed
    /// data; never waits.
    pub fn begin_transaction(&self) -> CmdResult<Transaction> {
        Transaction::begin(self)
    }

    /// Waits until `owner` has finished with `key` (committed or aborted),
    /// or `deadline` passes; returns whether it did.
    pub(crate) fn wait_for(&self, key: &ConflictKey, owner: WriterId, deadline: Instant) -> bool {
        self.conflicts.wait_for_release(key, owner, deadline)
    }
}

/// The sum of the stored counts (one entry per non-empty collection).
fn counted_total(counts: &redb::Table<u64, u64>) -> Result<u64, redb::Error> {
    let mut total = 0u64;
    for item in counts.iter()? {
        total = total.saturating_add(item?.1.value());
    }
    Ok(total)
}

/// Fills `counts` from the documents themselves: one pass over `DOCS`, for
/// a store written before `COUNTS` existed or by a build that did not keep
/// them.
fn count_documents(docs: &redb::Table<&[u8], &[u8]>, counts: &mut redb::Table<u64, u64>) -> Result<(), redb::Error> {
    let mut current: Option<(u64, u64)> = None;
    for item in docs.iter()? {
        let (key, _) = item?;
        let Some(id) = key.value().get(..8).and_then(|p| <[u8; 8]>::try_from(p).ok()).map(u64::from_be_bytes) else { continue };
        current = match current {
            Some((c, n)) if c == id => Some((c, n + 1)),
            Some((c, n)) => {
                counts.insert(c, n)?;
                Some((id, 1))
            }
            None => Some((id, 1)),
        };
    }
    if let Some((c, n)) = current {
        counts.insert(c, n)?;
    }
    Ok(())
}

/// Hands out the next collection id.
pub(crate) fn next_collection_id(ids: &AtomicU64) -> u64 {
    ids.fetch_add(1, Ordering::SeqCst)
}

#[allow(dead_code)]
fn assert_send() {
    // Transactions live in the session table and move between connection
    // threads, so these types must be Send.
    fn is_send<T: Send>() {}
    is_send::<Transaction>();
    is_send::<WriteTxn>();
    is_send::<ReadTransaction>();
}
