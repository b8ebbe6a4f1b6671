//! A multi-document transaction: a redb read snapshot taken at its first
//! statement, plus its own writes in an overlay. It holds no lock while
//! open, so transactions writing different documents run side by side; its
//! claims in the conflict table make a second writer of one of its
//! documents fail (or, outside a transaction, wait). Commit takes the store's
//! writer lock just long enough to check, apply the overlay and commit it
//! durably in one redb write transaction.
use super::claims::Claims;
use super::conflicts::Conflicts;
use super::overlay::{Mark, Overlay, SavepointError, TableId};
use super::{Storage, CATALOG, COUNTS, DOCS, INDEX, META};
use crate::error::{CmdResult, CommandError};
use redb::{ReadTransaction, ReadableTable, Value, WriteTransaction};
use std::cell::{RefCell, RefMut};
use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

/// Dropping an uncommitted transaction aborts it: its claims are given back
/// (`Claims::drop`) and its snapshot is released.
pub struct Transaction {
    claims: Claims,
    pending: crate::foreign_keys::PendingChecks,
    overlay: RefCell<Overlay>,
    snapshot: ReadTransaction,
    csn: u64,
    conflicts: Arc<Conflicts>,
    collection_ids: Arc<AtomicU64>,
}

impl Transaction {
    pub(super) fn begin(storage: &Storage) -> CmdResult<Transaction> {
        let (snapshot, csn) = storage.conflicts.open_snapshot(&storage.db)?;
        Ok(Transaction {
            claims: Claims::new(Arc::clone(&storage.conflicts), Some(csn)),
            pending: Default::default(),
            overlay: RefCell::default(),
            snapshot,
            csn,
            conflicts: Arc::clone(&storage.conflicts),
            collection_ids: Arc::clone(&storage.collection_ids),
        })
    }

    pub(crate) fn snapshot(&self) -> &ReadTransaction {
        &self.snapshot
    }

    pub(crate) fn overlay(&self) -> &RefCell<Overlay> {
        &self.overlay
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

    fn overlay_mut(&self) -> Result<RefMut<'_, Overlay>, SavepointError> {
        self.overlay.try_borrow_mut().map_err(|_| SavepointError::Busy)
    }

    pub fn savepoint(&self, name: &str) -> Result<(), SavepointError> {
        self.overlay_mut()?.savepoint(name, self.claims.count());
        Ok(())
    }

    pub fn release_savepoint(&self, name: &str) -> Result<(), SavepointError> {
        self.overlay_mut()?.release(name)
    }

    /// Undoes every write made since savepoint `name`, which stays set;
    /// savepoints set after it are forgotten. Documents first written after
    /// it are free for other writers again.
    pub fn rollback_to_savepoint(&self, name: &str) -> Result<(), SavepointError> {
        let claims = self.overlay_mut()?.rollback_to(name)?;
        self.claims.release_after(claims);
        Ok(())
    }

    /// Where the next statement starts, if a failed statement can be undone
    /// on its own (a savepoint is set); `None`: only aborting undoes it.
    pub fn statement_mark(&self) -> Option<Mark> {
        self.overlay.try_borrow().ok()?.mark(self.claims.count())
    }

    /// Undoes the writes of a failed statement (those after `mark`).
    pub fn undo_statement(&self, mark: Mark) -> Result<(), SavepointError> {
        self.overlay_mut()?.undo(mark);
        self.claims.release_after(mark.claims);
        Ok(())
    }

    /// Makes the transaction's writes durable and visible. Errors carry the
    /// label drivers act on: `TransientTransactionError` when nothing was
    /// applied and the whole transaction may be retried, and
    /// `UnknownTransactionCommitResult` when redb failed to commit.
    ///
    /// `also` writes into the same redb transaction (the retryable-write
    /// record of the commit), so it is durable exactly when the writes are.
    /// A transaction that wrote nothing commits nothing, `also` included.
    /// `then` runs with the commit's cluster time inside the commit's
    /// critical section (see `Clock::commit`).
    pub fn commit(
        self,
        storage: &Storage,
        wait: Duration,
        also: impl FnOnce(&WriteTransaction) -> CmdResult<()>,
        then: impl FnOnce(bson::Timestamp),
    ) -> CmdResult<()> {
        let mut overlay = self.overlay.try_borrow_mut().map_err(|_| CommandError::internal("transaction is in use"))?;
        if overlay.is_empty() {
            return Ok(());
        }
        let transient = |e: CommandError| e.with_label("TransientTransactionError");
        let Some(_writer) = storage.lock.acquire(wait) else {
            return Err(transient(CommandError::write_conflict(format!(
                "could not commit: the store's writer stayed busy for {wait:?}"
            ))));
        };
        self.claims.validate().map_err(transient)?;
        let unknown = |e: CommandError| e.with_label("UnknownTransactionCommitResult");
        let write = storage.db.begin_write().map_err(|e| transient(e.into()))?;
        apply(&write, &mut overlay).map_err(transient)?;
        also(&write).map_err(transient)?;
        storage.clock.commit(|| write.commit().map_err(|e| unknown(e.into())), then)?;
        storage.latest.forget();
        // A durable commit, still under the writer lock: it made every
        // earlier `j: false` commit durable too (`Storage::flush_journal`).
        storage.unjournaled.store(false, std::sync::atomic::Ordering::Release);
        self.claims.publish();
        Ok(())
    }
}

impl Drop for Transaction {
    fn drop(&mut self) {
        self.conflicts.close_snapshot(self.csn);
    }
}

/// Writes the overlay into redb. Sequence counters in `meta` only ever
/// grow: two transactions that each created a collection leave the larger
/// counter, whichever commits last.
fn apply(write: &WriteTransaction, overlay: &mut Overlay) -> CmdResult<()> {
    {
        let mut catalog = write.open_table(CATALOG)?;
        for (key, entry) in overlay.take(TableId::Catalog) {
            let ns = std::str::from_utf8(&key).map_err(|_| CommandError::internal("catalog key is not UTF-8"))?;
            match entry {
                Some(value) => catalog.insert(ns, value.as_slice())?,
                None => catalog.remove(ns)?,
            };
        }
    }
    // Each collection's document count moves by what applying its writes
    // added or removed, as the committed data now stands: transactions
    // writing the same collection commit one after the other, each counting
    // against the data the previous one left.
    let mut counted: BTreeMap<u64, i64> = BTreeMap::new();
    {
        let mut docs = write.open_table(DOCS)?;
        super::sorted_writes::write_in_order(&mut docs, overlay.take(TableId::Docs), super::tables::DOC_PREFIX_LEN, |key, moved| {
            *counted.entry(super::tables::collection_of(key)?).or_default() += moved;
            Ok(())
        })?;
    }
    {
        let mut index = write.open_table(INDEX)?;
        super::sorted_writes::write_in_order(&mut index, overlay.take(TableId::Index), super::tables::INDEX_PREFIX_LEN, |_, _| Ok(()))?;
    }
    let mut counts = write.open_table(COUNTS)?;
    for (collection, delta) in counted {
        let stored = counts.get(collection)?.map(|v| v.value()).unwrap_or(0);
        super::tables::store_count(&mut counts, collection, stored.saturating_add_signed(delta))?;
    }
    let mut meta = write.open_table(META)?;
    for (key, entry) in overlay.take(TableId::Meta) {
        let name = std::str::from_utf8(&key).map_err(|_| CommandError::internal("meta key is not UTF-8"))?;
        let Some(value) = entry else { continue };
        let value = <u64 as Value>::from_bytes(&value);
        let stored = meta.get(name)?.map(|v| v.value()).unwrap_or(0);
        if value > stored {
            meta.insert(name, value)?;
        }
    }
    Ok(())
}
