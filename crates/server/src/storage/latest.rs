//! The latest committed data's tables, opened once and shared by the reads
//! outside a transaction until the next commit.
//!
//! Opening a snapshot's five tables is a descent of redb's table of tables
//! each, about an eighth of a point read's instructions when every command
//! did it. Nothing they show can change without a commit, and every commit
//! that writes them takes a tick of the clock (`Clock::commit`), so tables
//! labelled with the last commit's tick show what a snapshot taken now
//! would. The tick is read before the snapshot is taken: a commit between
//! the two leaves newer tables under the older label, which the next read
//! finds stale and replaces, never the other way round. A commit also drops
//! the shared tables (`forget`), so that a snapshot nobody reads any more
//! does not keep redb from reusing the pages later commits free.
//!
//! What reads look up in a snapshot's catalog and index markers on every
//! command (a collection's entry, whether an index is multikey) cannot
//! change within it either, so the shared tables remember the answers
//! (`SnapshotMemo`): they are forgotten with the snapshot.
use super::{Clock, CATALOG, COUNTS, DOCS, INDEX, META};
use crate::catalog::CollectionMeta;
use crate::error::CmdResult;
use bson::Timestamp;
use parking_lot::Mutex;
use redb::{Database, ReadOnlyTable, ReadTransaction, ReadableDatabase};
use std::collections::HashMap;
use std::sync::Arc;

type Bytes = &'static [u8];

/// One snapshot's tables, open.
pub struct SnapshotTables {
    pub(super) catalog: ReadOnlyTable<&'static str, Bytes>,
    pub(super) docs: ReadOnlyTable<Bytes, Bytes>,
    pub(super) index: ReadOnlyTable<Bytes, Bytes>,
    pub(super) meta: ReadOnlyTable<&'static str, u64>,
    pub(super) counts: ReadOnlyTable<u64, u64>,
    pub(super) memo: Mutex<SnapshotMemo>,
}

/// Answers read from one snapshot, kept with it.
#[derive(Default)]
pub(crate) struct SnapshotMemo {
    /// Catalog entries by namespace (`None`: no such collection).
    pub(super) collections: HashMap<String, Option<CollectionMeta>, ahash::RandomState>,
    /// Whether an index is multikey, by its multikey marker's key.
    pub(super) multikey: HashMap<Vec<u8>, bool, ahash::RandomState>,
}

impl SnapshotTables {
    fn open(txn: &ReadTransaction) -> CmdResult<SnapshotTables> {
        Ok(SnapshotTables {
            catalog: txn.open_table(CATALOG)?,
            docs: txn.open_table(DOCS)?,
            index: txn.open_table(INDEX)?,
            meta: txn.open_table(META)?,
            counts: txn.open_table(COUNTS)?,
            memo: Mutex::default(),
        })
    }
}

/// The shared tables and the tick of the last commit before they were opened.
#[derive(Default)]
pub(super) struct Latest {
    slot: Mutex<Option<(Timestamp, Arc<SnapshotTables>)>>,
}

impl Latest {
    /// Tables showing every commit made before this call.
    pub(super) fn tables(&self, db: &Database, clock: &Clock) -> CmdResult<Arc<SnapshotTables>> {
        let last = clock.last_commit();
        if let Some((label, tables)) = self.slot.lock().as_ref() {
            if *label == last {
                return Ok(Arc::clone(tables));
            }
        }
        let tables = Arc::new(SnapshotTables::open(&db.begin_read()?)?);
        let replaced = self.slot.lock().replace((last, Arc::clone(&tables)));
        // (Dropped outside the lock: the last reference ends a redb read.)
        drop(replaced);
        Ok(tables)
    }

    /// After a commit: the shared tables are out of date.
    pub(super) fn forget(&self) {
        let dropped = self.slot.lock().take();
        drop(dropped);
    }
}
