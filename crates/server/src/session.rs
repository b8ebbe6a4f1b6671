//! Logical sessions and their multi-document transactions.
//!
//! A transaction owns a redb write transaction (plus the server writer lock)
//! from `startTransaction` until commit or abort: its writes are visible to
//! its own commands and invisible to every other reader, which keeps reading
//! the last committed snapshot. Drivers may send a session's commands over
//! different pooled connections, so sessions live in a server-wide table.
use crate::storage::WriteTxn;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// An open transaction unused for this long is aborted, freeing the writer
/// lock a vanished client would otherwise hold. MongoDB limits a
/// transaction's total age to 60 s instead; we limit idleness, because Django's
/// TestCase keeps one transaction open around a whole test class.
pub const TRANSACTION_IDLE_LIMIT: Duration = Duration::from_secs(60);
/// Sessions idle longer than `logicalSessionTimeoutMinutes` are forgotten.
pub const SESSION_IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 60);

pub enum TxnState {
    None,
    /// Boxed: a redb write transaction is large and sessions are many.
    Active { txn: Box<WriteTxn>, started: Instant },
    Committed,
    Aborted,
}

pub struct Session {
    pub txn_number: i64,
    pub state: TxnState,
    pub last_used: Instant,
}

impl Session {
    fn new() -> Session {
        Session { txn_number: -1, state: TxnState::None, last_used: Instant::now() }
    }

    /// Discards an open transaction's writes.
    pub fn abort(&mut self) {
        if let TxnState::Active { .. } = self.state {
            if let TxnState::Active { txn, .. } = std::mem::replace(&mut self.state, TxnState::Aborted) {
                txn.abort();
            }
        }
    }
}

pub type SessionKey = Vec<u8>;

#[derive(Default)]
pub struct SessionTable {
    sessions: Mutex<HashMap<SessionKey, Arc<Mutex<Session>>>>,
}

impl SessionTable {
    pub fn get(&self, key: &[u8]) -> Arc<Mutex<Session>> {
        let mut map = self.sessions.lock();
        Arc::clone(map.entry(key.to_vec()).or_insert_with(|| Arc::new(Mutex::new(Session::new()))))
    }

    /// Ends a session, aborting its open transaction.
    pub fn end(&self, key: &[u8]) {
        let removed = self.sessions.lock().remove(key);
        if let Some(session) = removed {
            session.lock().abort();
        }
    }

    /// Aborts transactions idle longer than `txn_idle` and forgets sessions
    /// idle longer than `idle_limit`. Sessions busy running a command are
    /// skipped (try_lock) and looked at on the next pass.
    pub fn reap(&self, txn_idle: Duration, idle_limit: Duration) {
        let now = Instant::now();
        let sessions: Vec<(SessionKey, Arc<Mutex<Session>>)> =
            self.sessions.lock().iter().map(|(k, v)| (k.clone(), Arc::clone(v))).collect();
        let mut forget = Vec::new();
        for (key, session) in sessions {
            let Some(mut s) = session.try_lock() else { continue };
            if matches!(s.state, TxnState::Active { .. }) && now.duration_since(s.last_used) > txn_idle {
                s.abort();
            }
            if now.duration_since(s.last_used) > idle_limit {
                s.abort();
                forget.push(key);
            }
        }
        let mut map = self.sessions.lock();
        for key in forget {
            map.remove(&key);
        }
    }

    /// Aborts every open transaction (server shutdown).
    pub fn abort_all(&self) {
        let sessions: Vec<Arc<Mutex<Session>>> = self.sessions.lock().drain().map(|(_, v)| v).collect();
        for s in sessions {
            s.lock().abort();
        }
    }

    pub fn active_transactions(&self) -> usize {
        let sessions: Vec<Arc<Mutex<Session>>> = self.sessions.lock().values().cloned().collect();
        sessions.iter().filter(|s| s.try_lock().is_some_and(|s| matches!(s.state, TxnState::Active { .. }))).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Storage;

    #[test]
    fn idle_transactions_are_aborted_and_release_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path()).unwrap();
        let table = SessionTable::default();
        let session = table.get(b"s1");
        let txn = storage.begin_write(Duration::from_millis(10)).unwrap().unwrap();
        session.lock().state = TxnState::Active { txn: Box::new(txn), started: Instant::now() };
        assert!(storage.begin_write(Duration::from_millis(10)).unwrap().is_none());
        table.reap(Duration::from_secs(60), SESSION_IDLE_TIMEOUT);
        assert!(matches!(session.lock().state, TxnState::Active { .. }));
        table.reap(Duration::ZERO, SESSION_IDLE_TIMEOUT);
        assert!(matches!(session.lock().state, TxnState::Aborted));
        assert!(storage.begin_write(Duration::from_millis(10)).unwrap().is_some());
    }
}
