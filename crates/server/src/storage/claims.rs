//! The claims one writer (a transaction or an autocommit command) holds in
//! the conflict table, and what it depends on (see `conflicts`).
use super::conflicts::{Clash, ConflictKey, Conflicts, KeyHasher, WriterId};
use crate::error::{CmdResult, CommandError};
use std::cell::RefCell;
use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

/// MongoDB's message for a write conflict.
const WRITE_CONFLICT: &str = "Write conflict during plan execution and yielding is disabled. :: Please retry your operation or multi-document transaction.";

pub(crate) struct Claims {
    conflicts: Arc<Conflicts>,
    id: WriterId,
    /// The snapshot CSN of a transaction; `None` for an autocommit write,
    /// which reads the latest data under the store's writer lock.
    snapshot: Option<u64>,
    /// Claimed keys in the order taken (savepoints give back a suffix).
    taken: RefCell<Vec<ConflictKey>>,
    held: RefCell<HashSet<ConflictKey, KeyHasher>>,
    /// Collections whose documents this writer wrote.
    contents: RefCell<BTreeSet<u64>>,
    /// For an autocommit write: the key and the transaction it must wait
    /// for before running again.
    blocked: RefCell<Option<(ConflictKey, WriterId)>>,
}

impl Claims {
    pub(crate) fn new(conflicts: Arc<Conflicts>, snapshot: Option<u64>) -> Claims {
        let id = conflicts.new_writer();
        Claims {
            conflicts,
            id,
            snapshot,
            taken: RefCell::default(),
            held: RefCell::default(),
            contents: RefCell::default(),
            blocked: RefCell::new(None),
        }
    }

    fn clash(&self, key: &ConflictKey, clash: Clash) -> CommandError {
        if let (Clash::Held(owner), None) = (&clash, self.snapshot) {
            *self.blocked.borrow_mut() = Some((key.clone(), *owner));
        }
        CommandError::write_conflict(WRITE_CONFLICT)
    }

    /// Takes `key` for this writer, or fails with WriteConflict (112).
    pub(crate) fn claim(&self, key: ConflictKey) -> CmdResult<()> {
        if self.held.borrow().contains(&key) {
            return Ok(());
        }
        if let Err(clash) = self.conflicts.claim(self.id, &key, self.snapshot) {
            return Err(self.clash(&key, clash));
        }
        self.held.borrow_mut().insert(key.clone());
        self.taken.borrow_mut().push(key);
        Ok(())
    }

    /// Fails unless `key` is free for this writer and, in a transaction,
    /// unchanged since the snapshot.
    pub(crate) fn depend(&self, key: ConflictKey) -> CmdResult<()> {
        if self.held.borrow().contains(&key) {
            return Ok(());
        }
        self.conflicts.check(self.id, &key, self.snapshot).map_err(|clash| self.clash(&key, clash))
    }

    /// Before writing a document of collection `id`: its definition must
    /// not be changing under this writer.
    pub(crate) fn write_contents(&self, id: u64) -> CmdResult<()> {
        if !self.contents.borrow().contains(&id) {
            self.depend(ConflictKey::Definition(id))?;
            self.contents.borrow_mut().insert(id);
        }
        Ok(())
    }

    /// Before changing the definition of collection `id` (and the catalog
    /// entry `ns`): in a transaction, no document of it may have been
    /// committed since the snapshot, or the change would miss it.
    pub(crate) fn change_definition(&self, id: u64, ns: &str) -> CmdResult<()> {
        self.depend(ConflictKey::Contents(id))?;
        self.claim(ConflictKey::Definition(id))?;
        self.claim(ConflictKey::Namespace(ns.to_string()))
    }

    /// The transaction an autocommit write ran into, to wait for.
    pub(crate) fn blocked_on(&self) -> Option<(ConflictKey, WriterId)> {
        self.blocked.borrow().clone()
    }

    pub(crate) fn count(&self) -> usize {
        self.taken.borrow().len()
    }

    /// Gives back the claims taken after the first `count`.
    pub(crate) fn release_after(&self, count: usize) {
        let given_back: Vec<ConflictKey> = {
            let mut taken = self.taken.borrow_mut();
            if count >= taken.len() {
                return;
            }
            taken.split_off(count)
        };
        let mut held = self.held.borrow_mut();
        for key in &given_back {
            held.remove(key);
        }
        self.conflicts.release(self.id, &given_back);
    }

    /// Commit-time validation for a transaction (see `Conflicts::validate`).
    pub(crate) fn validate(&self) -> CmdResult<()> {
        let Some(snapshot) = self.snapshot else { return Ok(()) };
        let mut depends: Vec<ConflictKey> = self.contents.borrow().iter().map(|id| ConflictKey::Definition(*id)).collect();
        for key in self.taken.borrow().iter() {
            if let ConflictKey::Definition(id) = key {
                depends.push(ConflictKey::Contents(*id));
            }
        }
        self.conflicts
            .validate(self.id, snapshot, &self.taken.borrow(), &depends)
            .map_err(|_| CommandError::write_conflict(WRITE_CONFLICT))
    }

    /// After a durable commit: versions move and the claims are given back.
    pub(crate) fn publish(&self) {
        let taken = std::mem::take(&mut *self.taken.borrow_mut());
        self.held.borrow_mut().clear();
        let touched: Vec<ConflictKey> = self.contents.borrow().iter().map(|id| ConflictKey::Contents(*id)).collect();
        if taken.is_empty() && touched.is_empty() {
            return;
        }
        self.conflicts.publish(self.id, &taken, &touched);
    }
}

impl Drop for Claims {
    /// An unpublished writer aborts: its claims are given back.
    fn drop(&mut self) {
        let taken = std::mem::take(self.taken.get_mut());
        self.conflicts.release(self.id, &taken);
    }
}
