//! Write conflicts between concurrent writers, detected per document as
//! MongoDB (WiredTiger) does.
//!
//! Every writer (an open transaction, or one autocommit command) claims the
//! keys it writes before writing them: a document, a unique index entry, a
//! catalog entry. A key belongs to one writer until that writer commits or
//! aborts. A transaction that wants a key another writer holds fails at once
//! with `WriteConflict`; so does one that wants a key committed after its
//! snapshot was taken (first updater wins), which is what the per-key commit
//! versions are for. An autocommit write that wants a key a transaction holds
//! waits for that transaction instead (see `commands::execute`).
//!
//! Versions are commit sequence numbers (CSN): each commit that wrote
//! anything takes the next one. A transaction remembers the CSN of its
//! snapshot; a key whose version is newer was committed after it. Versions
//! no open snapshot can be older than are forgotten, so the table stays as
//! small as the window of open transactions.
use parking_lot::{Condvar, Mutex};
use redb::{Database, ReadTransaction};
use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

/// Every written document and unique key is hashed into these tables, two
/// or three times per write: aHash is several times cheaper than the
/// standard SipHash on keys this short, and keyed at random per table as
/// SipHash is, so keys chosen by a client (`_id`s) cannot be made to collide.
pub(crate) type KeyHasher = ahash::RandomState;

/// Identifies a writer while it holds claims.
pub(crate) type WriterId = u64;

/// What a writer claims or depends on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum ConflictKey {
    /// A document: its key in the documents table (collection id + `_id`).
    Doc(Vec<u8>),
    /// A unique index entry: its key in the index table (index + value).
    Unique(Vec<u8>),
    /// A catalog entry, by namespace (creating, dropping, renaming).
    Namespace(String),
    /// A collection's definition (indexes, existence), by collection id.
    /// Claimed by DDL; document writes depend on it not changing.
    Definition(u64),
    /// A collection's documents as a whole, by collection id. Never
    /// claimed: its version says when documents were last committed, which
    /// DDL in a transaction depends on.
    Contents(u64),
}

/// Why a key could not be taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Clash {
    /// Another open writer holds it.
    Held(WriterId),
    /// It was committed after the claimant's snapshot.
    Newer,
}

#[derive(Default)]
struct State {
    /// CSN of the last commit.
    csn: u64,
    next_writer: WriterId,
    owners: HashMap<ConflictKey, WriterId, KeyHasher>,
    versions: HashMap<ConflictKey, u64, KeyHasher>,
    /// Open snapshots by CSN, with how many transactions use each.
    snapshots: BTreeMap<u64, usize>,
    /// Size of `versions` that triggers forgetting old versions.
    prune_at: usize,
}

const MIN_PRUNE_AT: usize = 4096;

impl State {
    fn version(&self, key: &ConflictKey) -> u64 {
        self.versions.get(key).copied().unwrap_or(0)
    }

    fn check(&self, me: WriterId, key: &ConflictKey, snapshot: Option<u64>) -> Result<(), Clash> {
        match self.owners.get(key) {
            Some(&owner) if owner != me => return Err(Clash::Held(owner)),
            _ => {}
        }
        match snapshot {
            Some(csn) if self.version(key) > csn => Err(Clash::Newer),
            _ => Ok(()),
        }
    }

    /// Forgets versions older than every open snapshot: no transaction can
    /// conflict on them any more.
    fn prune(&mut self) {
        if self.versions.len() < self.prune_at.max(MIN_PRUNE_AT) {
            return;
        }
        match self.snapshots.keys().next().copied() {
            None => self.versions.clear(),
            Some(oldest) => self.versions.retain(|_, v| *v > oldest),
        }
        self.prune_at = (self.versions.len() * 2).max(MIN_PRUNE_AT);
    }
}

#[derive(Default)]
pub(crate) struct Conflicts {
    state: Mutex<State>,
    /// Signalled whenever claims are given back.
    released: Condvar,
}

impl Conflicts {
    pub(crate) fn new_writer(&self) -> WriterId {
        let mut s = self.state.lock();
        s.next_writer += 1;
        s.next_writer
    }

    /// Begins a redb read transaction and returns it with the CSN it
    /// reflects, registered as open until `close_snapshot`.
    ///
    /// Commits make their data durable before they publish their CSN, so a
    /// snapshot begun in between may already hold data newer than its CSN
    /// says. That only ever makes a transaction conflict where it need not;
    /// the opposite (a CSN newer than the data) would lose updates, and
    /// cannot happen because the CSN is read under the same lock.
    pub(crate) fn open_snapshot(&self, db: &Database) -> Result<(ReadTransaction, u64), redb::TransactionError> {
        use redb::ReadableDatabase;
        let mut s = self.state.lock();
        let read = db.begin_read()?;
        let csn = s.csn;
        *s.snapshots.entry(csn).or_default() += 1;
        Ok((read, csn))
    }

    pub(crate) fn close_snapshot(&self, csn: u64) {
        let mut s = self.state.lock();
        if let Some(n) = s.snapshots.get_mut(&csn) {
            *n -= 1;
            if *n == 0 {
                s.snapshots.remove(&csn);
            }
        }
    }

    /// Takes `key` for `me`. `snapshot` is a transaction's snapshot CSN
    /// (`None` for autocommit writes, which read the latest data).
    pub(crate) fn claim(&self, me: WriterId, key: &ConflictKey, snapshot: Option<u64>) -> Result<(), Clash> {
        let mut s = self.state.lock();
        s.check(me, key, snapshot)?;
        s.owners.insert(key.clone(), me);
        Ok(())
    }

    /// Whether `me` could claim `key`, without claiming it.
    pub(crate) fn check(&self, me: WriterId, key: &ConflictKey, snapshot: Option<u64>) -> Result<(), Clash> {
        self.state.lock().check(me, key, snapshot)
    }

    /// The checks a transaction's commit makes before applying its writes:
    /// it still holds its claims, nothing it claimed or depends on was
    /// committed after its snapshot, and no other writer is changing the
    /// definition of a collection whose documents it wrote.
    pub(crate) fn validate(&self, me: WriterId, snapshot: u64, claims: &[ConflictKey], depends: &[ConflictKey]) -> Result<(), Clash> {
        let s = self.state.lock();
        for key in claims {
            if s.owners.get(key) != Some(&me) {
                return Err(Clash::Newer);
            }
            if s.version(key) > snapshot {
                return Err(Clash::Newer);
            }
        }
        for key in depends {
            s.check(me, key, Some(snapshot))?;
        }
        Ok(())
    }

    /// Records a commit: the claimed keys and `touched` (keys depended on
    /// whose version must move, such as a collection's contents) get the
    /// next CSN, and the claims are given back.
    pub(crate) fn publish(&self, me: WriterId, claims: &[ConflictKey], touched: &[ConflictKey]) {
        let mut s = self.state.lock();
        s.csn += 1;
        let csn = s.csn;
        for key in claims.iter().chain(touched) {
            s.versions.insert(key.clone(), csn);
        }
        for key in claims {
            if s.owners.get(key) == Some(&me) {
                s.owners.remove(key);
            }
        }
        s.prune();
        drop(s);
        self.released.notify_all();
    }

    /// Gives back claims without committing (abort, or a rolled-back savepoint).
    pub(crate) fn release(&self, me: WriterId, claims: &[ConflictKey]) {
        if claims.is_empty() {
            return;
        }
        let mut s = self.state.lock();
        for key in claims {
            if s.owners.get(key) == Some(&me) {
                s.owners.remove(key);
            }
        }
        drop(s);
        self.released.notify_all();
    }

    /// Waits until `owner` no longer holds `key`, or `deadline` passes;
    /// returns whether it was released.
    pub(crate) fn wait_for_release(&self, key: &ConflictKey, owner: WriterId, deadline: Instant) -> bool {
        let mut s = self.state.lock();
        while s.owners.get(key) == Some(&owner) {
            if self.released.wait_until(&mut s, deadline).timed_out() {
                return s.owners.get(key) != Some(&owner);
            }
        }
        true
    }

    #[cfg(test)]
    pub(crate) fn versions_len(&self) -> usize {
        self.state.lock().versions.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    fn doc(k: u8) -> ConflictKey {
        ConflictKey::Doc(vec![k])
    }

    #[test]
    fn a_held_key_clashes_and_is_free_again_after_release() {
        let c = Conflicts::default();
        let (a, b) = (c.new_writer(), c.new_writer());
        c.claim(a, &doc(1), Some(0)).unwrap();
        c.claim(a, &doc(1), Some(0)).unwrap();
        assert_eq!(c.claim(b, &doc(1), Some(0)), Err(Clash::Held(a)));
        assert_eq!(c.claim(b, &doc(1), None), Err(Clash::Held(a)));
        c.claim(b, &doc(2), Some(0)).unwrap();
        c.release(a, &[doc(1)]);
        c.claim(b, &doc(1), Some(0)).unwrap();
    }

    #[test]
    fn a_key_committed_after_the_snapshot_clashes_first_updater_wins() {
        let c = Conflicts::default();
        let (a, b) = (c.new_writer(), c.new_writer());
        c.claim(a, &doc(1), Some(0)).unwrap();
        c.publish(a, &[doc(1)], &[]);
        // b's snapshot (CSN 0) predates a's commit (CSN 1).
        assert_eq!(c.claim(b, &doc(1), Some(0)), Err(Clash::Newer));
        c.claim(b, &doc(1), Some(1)).unwrap();
        // Autocommit writers read the latest data: no version check.
        let d = c.new_writer();
        c.release(b, &[doc(1)]);
        c.claim(d, &doc(1), None).unwrap();
    }

    #[test]
    fn validation_sees_a_definition_changed_since_the_snapshot() {
        let c = Conflicts::default();
        let (t, ddl) = (c.new_writer(), c.new_writer());
        c.claim(t, &doc(1), Some(0)).unwrap();
        c.claim(ddl, &ConflictKey::Definition(7), None).unwrap();
        assert_eq!(c.validate(t, 0, &[doc(1)], &[ConflictKey::Definition(7)]), Err(Clash::Held(ddl)));
        c.publish(ddl, &[ConflictKey::Definition(7)], &[]);
        assert_eq!(c.validate(t, 0, &[doc(1)], &[ConflictKey::Definition(7)]), Err(Clash::Newer));
        assert_eq!(c.validate(t, 0, &[doc(1)], &[ConflictKey::Definition(8)]), Ok(()));
    }

    #[test]
    fn versions_older_than_every_snapshot_are_forgotten() {
        let c = Conflicts::default();
        let w = c.new_writer();
        for i in 0..(MIN_PRUNE_AT as u64 + 10) {
            let key = ConflictKey::Doc(i.to_be_bytes().to_vec());
            c.claim(w, &key, None).unwrap();
            c.publish(w, &[key], &[]);
        }
        // No snapshot is open, so nothing needed remembering.
        assert!(c.versions_len() < MIN_PRUNE_AT);
    }

    #[test]
    fn a_waiter_wakes_when_the_owner_releases() {
        let c = Arc::new(Conflicts::default());
        let owner = c.new_writer();
        c.claim(owner, &doc(1), Some(0)).unwrap();
        assert!(!c.wait_for_release(&doc(1), owner, Instant::now() + Duration::from_millis(20)));
        let c2 = Arc::clone(&c);
        let waiter = std::thread::spawn(move || c2.wait_for_release(&doc(1), owner, Instant::now() + Duration::from_secs(10)));
        std::thread::sleep(Duration::from_millis(20));
        c.release(owner, &[doc(1)]);
        assert!(waiter.join().unwrap());
    }
}
