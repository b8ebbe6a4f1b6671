//! A transaction's own writes, kept in memory until it commits.
//!
//! A multi-document transaction never writes to redb while it is open: its
//! inserts and removals land here, one ordered map per table, and reads merge
//! them over the transaction's snapshot (see `view`). Commit applies the maps
//! to redb in one write transaction; abort just drops them.
//!
//! Savepoints are positions in a log of the writes: each entry records what
//! the overlay held for the key before (nothing, a value or a removal), so
//! rolling back replays entries backwards. Nothing is logged while no
//! savepoint is set.
use std::collections::BTreeMap;
use std::ops::Bound;
use thiserror::Error;

/// The four redb tables (see `storage`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TableId {
    Catalog = 0,
    Docs = 1,
    Index = 2,
    Meta = 3,
}

/// A pending write of one key: its new encoded value, or `None` for a removal.
pub(crate) type Entry = Option<Vec<u8>>;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum SavepointError {
    #[error("no such savepoint: {0}")]
    NoSuchSavepoint(String),
    /// The overlay is borrowed by a reader of the same transaction.
    #[error("the transaction is in use")]
    Busy,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Undo {
    table: TableId,
    key: Vec<u8>,
    /// What the overlay held for the key before the write; `None` when it
    /// held nothing (the key read through to the snapshot).
    before: Option<Entry>,
}

#[derive(Debug)]
struct Savepoint {
    name: String,
    /// Length of the undo log when it was set.
    log: usize,
    /// Number of conflict claims the transaction held when it was set (see
    /// `transaction`): a rollback gives back the ones taken after.
    claims: usize,
}

/// A position to undo a failed statement back to.
#[derive(Debug, Clone, Copy)]
pub struct Mark {
    pub(crate) log: usize,
    pub(crate) claims: usize,
}

#[derive(Debug, Default)]
pub(crate) struct Overlay {
    tables: [BTreeMap<Vec<u8>, Entry>; 4],
    log: Vec<Undo>,
    /// Oldest first. Names may repeat: as in SQL the newest one is used.
    savepoints: Vec<Savepoint>,
}

impl Overlay {
    pub(crate) fn get(&self, table: TableId, key: &[u8]) -> Option<&Entry> {
        self.tables[table as usize].get(key)
    }

    /// The pending entries of `table` within the bounds, in key order.
    pub(crate) fn range(&self, table: TableId, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> Vec<(Vec<u8>, Entry)> {
        let map = &self.tables[table as usize];
        // BTreeMap::range panics on an inverted or empty-exclusive range;
        // such a range selects nothing.
        let empty = match (lower, upper) {
            (Bound::Included(l), Bound::Included(u)) => l > u,
            (Bound::Included(l) | Bound::Excluded(l), Bound::Excluded(u)) | (Bound::Excluded(l), Bound::Included(u)) => l >= u,
            _ => false,
        };
        if empty || map.is_empty() {
            return Vec::new();
        }
        map.range::<[u8], _>((lower, upper)).map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    pub(crate) fn write(&mut self, table: TableId, key: Vec<u8>, entry: Entry) {
        let map = &mut self.tables[table as usize];
        if self.savepoints.is_empty() {
            map.insert(key, entry);
        } else {
            let before = map.insert(key.clone(), entry);
            self.log.push(Undo { table, key, before });
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.tables.iter().all(BTreeMap::is_empty)
    }

    /// The pending entries of `table`, for commit.
    pub(crate) fn take(&mut self, table: TableId) -> BTreeMap<Vec<u8>, Entry> {
        std::mem::take(&mut self.tables[table as usize])
    }

    /// Where a statement starts, if a failed statement can be undone on its
    /// own (some savepoint is set, so writes are logged).
    pub(crate) fn mark(&self, claims: usize) -> Option<Mark> {
        (!self.savepoints.is_empty()).then_some(Mark { log: self.log.len(), claims })
    }

    pub(crate) fn savepoint(&mut self, name: &str, claims: usize) {
        self.savepoints.push(Savepoint { name: name.to_string(), log: self.log.len(), claims });
    }

    fn find(&self, name: &str) -> Result<usize, SavepointError> {
        self.savepoints.iter().rposition(|s| s.name == name).ok_or_else(|| SavepointError::NoSuchSavepoint(name.to_string()))
    }

    /// Forgets `name` and every savepoint set after it. Their writes stay and
    /// now belong to the enclosing savepoint (or the transaction).
    pub(crate) fn release(&mut self, name: &str) -> Result<(), SavepointError> {
        let at = self.find(name)?;
        self.savepoints.truncate(at);
        if self.savepoints.is_empty() {
            self.log.clear();
        }
        Ok(())
    }

    /// Undoes every write made since savepoint `name`, which stays set (as in
    /// SQL); later savepoints are forgotten. Returns the savepoint's claim
    /// count, so the caller can give back the claims taken since.
    pub(crate) fn rollback_to(&mut self, name: &str) -> Result<usize, SavepointError> {
        let at = self.find(name)?;
        self.savepoints.truncate(at + 1);
        let (log, claims) = (self.savepoints[at].log, self.savepoints[at].claims);
        self.undo_after(log);
        Ok(claims)
    }

    /// Undoes the writes logged after `mark` (a failed statement's).
    pub(crate) fn undo(&mut self, mark: Mark) {
        self.undo_after(mark.log);
    }

    fn undo_after(&mut self, position: usize) {
        while self.log.len() > position {
            let Some(undo) = self.log.pop() else { break };
            let map = &mut self.tables[undo.table as usize];
            match undo.before {
                Some(entry) => map.insert(undo.key, entry),
                None => map.remove(&undo.key),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(o: &Overlay) -> Vec<(Vec<u8>, Entry)> {
        o.range(TableId::Docs, Bound::Unbounded, Bound::Unbounded)
    }

    #[test]
    fn nothing_is_logged_without_a_savepoint() {
        let mut o = Overlay::default();
        o.write(TableId::Docs, vec![1], Some(vec![1]));
        assert!(o.log.is_empty());
        assert!(o.mark(0).is_none());
        o.savepoint("a", 0);
        o.write(TableId::Docs, vec![2], None);
        assert_eq!(o.log.len(), 1);
    }

    #[test]
    fn rollback_restores_what_the_overlay_held_and_keeps_the_savepoint() {
        let mut o = Overlay::default();
        o.write(TableId::Docs, vec![1], Some(b"old".to_vec()));
        o.savepoint("a", 3);
        o.write(TableId::Docs, vec![1], None);
        o.write(TableId::Docs, vec![2], Some(b"new".to_vec()));
        o.savepoint("b", 5);
        o.write(TableId::Docs, vec![3], Some(b"x".to_vec()));
        assert_eq!(o.rollback_to("a"), Ok(3));
        assert_eq!(keys(&o), vec![(vec![1], Some(b"old".to_vec()))]);
        assert_eq!(o.rollback_to("b"), Err(SavepointError::NoSuchSavepoint("b".into())));
        o.write(TableId::Docs, vec![4], None);
        assert_eq!(o.rollback_to("a"), Ok(3));
        assert_eq!(keys(&o).len(), 1);
    }

    #[test]
    fn release_hands_writes_to_the_enclosing_savepoint() {
        let mut o = Overlay::default();
        o.savepoint("a", 0);
        o.write(TableId::Docs, vec![1], Some(vec![]));
        o.savepoint("b", 0);
        o.write(TableId::Docs, vec![2], Some(vec![]));
        o.release("b").unwrap();
        o.rollback_to("a").unwrap();
        assert!(keys(&o).is_empty());
        o.release("a").unwrap();
        assert!(o.log.is_empty());
        assert!(o.release("a").is_err());
    }

    #[test]
    fn a_repeated_name_uses_the_newest() {
        let mut o = Overlay::default();
        o.savepoint("a", 0);
        o.write(TableId::Docs, vec![1], Some(vec![]));
        o.savepoint("a", 1);
        o.write(TableId::Docs, vec![2], Some(vec![]));
        assert_eq!(o.rollback_to("a"), Ok(1));
        assert_eq!(keys(&o), vec![(vec![1], Some(vec![]))]);
    }

    #[test]
    fn a_failed_statement_is_undone_alone() {
        let mut o = Overlay::default();
        o.savepoint("a", 0);
        o.write(TableId::Index, vec![1], Some(vec![]));
        let mark = o.mark(1).unwrap();
        o.write(TableId::Index, vec![2], Some(vec![]));
        o.write(TableId::Index, vec![1], None);
        o.undo(mark);
        assert_eq!(o.range(TableId::Index, Bound::Unbounded, Bound::Unbounded), vec![(vec![1], Some(vec![]))]);
    }

    #[test]
    fn inverted_ranges_select_nothing() {
        let mut o = Overlay::default();
        o.write(TableId::Docs, vec![5], Some(vec![]));
        assert!(o.range(TableId::Docs, Bound::Included(&[6][..]), Bound::Excluded(&[6][..])).is_empty());
        assert!(o.range(TableId::Docs, Bound::Included(&[7][..]), Bound::Included(&[6][..])).is_empty());
        assert_eq!(o.range(TableId::Docs, Bound::Included(&[5][..]), Bound::Included(&[5][..])).len(), 1);
    }
}
