//! Logical sessions and their multi-document transactions.
//!
//! A transaction (see `storage::Transaction`) reads a snapshot taken at its
//! first statement and keeps its writes to itself until commit; it holds no
//! lock, only claims on the documents it wrote. Drivers may send a session's
//! commands over different pooled connections, so sessions live in a
//! server-wide table.
//!
//! Nothing a client leaves behind holds up others for long: a transaction is
//! aborted when the connection that sent its last command closes, when it
//! has been idle for `transactionLifetimeLimitSeconds`, and when its session
//! is ended or killed.
use crate::storage::Transaction;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The default of `transactionLifetimeLimitSeconds`: an open transaction
/// unused for this long is aborted, freeing the documents it claimed.
/// MongoDB limits a transaction's total age instead; we limit idleness,
/// because Django's TestCase keeps one transaction open around a whole test
/// class.
pub const TRANSACTION_IDLE_LIMIT: Duration = Duration::from_secs(60);
/// mongod's default `maxSessions`.
pub const MAX_SESSIONS: usize = 1_000_000;
/// Sessions idle longer than `logicalSessionTimeoutMinutes` are forgotten.
pub const SESSION_IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 60);

pub enum TxnState {
    None,
    /// Boxed: a transaction is large and sessions are many.
    Active { txn: Box<Transaction>, started: Instant, changes: TxnChanges },
    Committed,
    Aborted,
}

/// The change events of a transaction's statements (`changes`), published
/// when it commits. Savepoints mark positions in them, as in the
/// transaction's own log of writes.
#[derive(Default)]
pub struct TxnChanges {
    pub events: Vec<crate::changes::PendingChange>,
    savepoints: Vec<(String, usize)>,
}

impl TxnChanges {
    /// Sets savepoint `name` here (again, if it was set before).
    pub fn savepoint(&mut self, name: &str) {
        self.savepoints.retain(|(n, _)| n != name);
        self.savepoints.push((name.to_string(), self.events.len()));
    }

    /// Forgets the events since savepoint `name` (which stays set) and the
    /// savepoints set after it.
    pub fn rollback_to(&mut self, name: &str) {
        if let Some(i) = self.savepoints.iter().rposition(|(n, _)| n == name) {
            self.events.truncate(self.savepoints[i].1);
            self.savepoints.truncate(i + 1);
        }
    }

    /// Forgets savepoint `name` and those set after it.
    pub fn release(&mut self, name: &str) {
        if let Some(i) = self.savepoints.iter().rposition(|(n, _)| n == name) {
            self.savepoints.truncate(i);
        }
    }
}

pub struct Session {
    pub txn_number: i64,
    pub state: TxnState,
    pub last_used: Instant,
    /// The connection that sent the session's last command.
    pub connection: i64,
}

impl Session {
    fn new() -> Session {
        Session { txn_number: -1, state: TxnState::None, last_used: Instant::now(), connection: 0 }
    }

    /// Discards an open transaction's writes and gives back its documents.
    pub fn abort(&mut self) {
        if let TxnState::Active { .. } = self.state {
            self.state = TxnState::Aborted;
        }
    }

    /// Marks the session used now by connection `connection`.
    pub fn touch(&mut self, connection: i64) {
        self.last_used = Instant::now();
        self.connection = connection;
    }
}

pub type SessionKey = Vec<u8>;

/// Held by a connection's thread while it serves the connection; when the
/// connection ends, for whatever reason, the transactions it carried last
/// are aborted (`SessionTable::connection_closed`).
pub struct ClosingConnection<'a> {
    state: &'a crate::state::ServerState,
    connection: i64,
    armed: bool,
}

impl<'a> ClosingConnection<'a> {
    pub fn new(state: &'a crate::state::ServerState, connection: i64) -> Self {
        ClosingConnection { state, connection, armed: true }
    }

    /// The server itself closes this connection (a fail point's
    /// `closeConnection`), not a client that went away: its transactions
    /// stay open for the client's retry, as they would on mongod.
    pub fn keep_transactions(&mut self) {
        self.armed = false;
    }
}

impl Drop for ClosingConnection<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.state.sessions.connection_closed(self.connection);
        }
    }
}

#[derive(Default)]
pub struct SessionTable {
    sessions: Mutex<HashMap<SessionKey, Arc<Mutex<Session>>>>,
}

impl SessionTable {
    pub fn get(&self, key: &[u8]) -> Arc<Mutex<Session>> {
        let mut map = self.sessions.lock();
        Arc::clone(map.entry(key.to_vec()).or_insert_with(|| Arc::new(Mutex::new(Session::new()))))
    }

    /// Notes that a command used session `key` (every command that carries
    /// an `lsid`), as mongod's logical session cache does, so
    /// `$listLocalSessions` lists it. Never waits: a session busy running a
    /// command is being used right now anyway.
    /// More sessions than `MAX_SESSIONS` are refused (261
    /// TooManyLogicalSessions), as mongod's `maxSessions` does.
    pub fn seen(&self, key: &[u8]) -> crate::error::CmdResult<()> {
        let known = {
            let map = self.sessions.lock();
            let known = map.get(key).cloned();
            if known.is_none() && map.len() >= MAX_SESSIONS {
                return Err(crate::error::CommandError::new(
                    261,
                    "TooManyLogicalSessions",
                    format!("Unable to add session into the cache because the number of active sessions is too high ({MAX_SESSIONS})"),
                ));
            }
            known
        };
        let session = known.unwrap_or_else(|| self.get(key));
        let mut guard = session.try_lock();
        if let Some(s) = guard.as_mut() {
            s.last_used = Instant::now();
        }
        Ok(())
    }

    /// Every session with its id and when it was last used; `true` when it
    /// has an open transaction. Sessions busy running a command are listed
    /// as used now.
    pub fn list(&self) -> Vec<(SessionKey, Instant, Option<i64>)> {
        let sessions: Vec<(SessionKey, Arc<Mutex<Session>>)> =
            self.sessions.lock().iter().map(|(k, v)| (k.clone(), Arc::clone(v))).collect();
        sessions
            .into_iter()
            .map(|(key, s)| match s.try_lock() {
                Some(s) => {
                    let txn = matches!(s.state, TxnState::Active { .. }).then_some(s.txn_number);
                    (key, s.last_used, txn)
                }
                None => (key, Instant::now(), None),
            })
            .collect()
    }

    /// Ends a session, aborting its open transaction.
    pub fn end(&self, key: &[u8]) {
        let removed = self.sessions.lock().remove(key);
        if let Some(session) = removed {
            session.lock().abort();
        }
    }

    /// Ends every session (`killAllSessions`), aborting their transactions.
    pub fn end_all(&self) {
        self.abort_all();
    }

    /// Aborts the open transactions whose last command came over connection
    /// `connection`, which has just closed: a client that died inside a
    /// transaction frees its documents at once. (A driver may also send a
    /// transaction's commands over several pooled connections; one closing
    /// that did not carry the latest command leaves the transaction alone.)
    pub fn connection_closed(&self, connection: i64) {
        let sessions: Vec<Arc<Mutex<Session>>> = self.sessions.lock().values().cloned().collect();
        for session in sessions {
            let mut s = session.lock();
            if s.connection == connection && matches!(s.state, TxnState::Active { .. }) {
                s.abort();
            }
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

    fn open(table: &SessionTable, storage: &Storage, key: &[u8], connection: i64) -> Arc<Mutex<Session>> {
        let session = table.get(key);
        let txn = storage.begin_transaction().unwrap();
        let mut s = session.lock();
        s.touch(connection);
        s.state = TxnState::Active { txn: Box::new(txn), started: Instant::now(), changes: TxnChanges::default() };
        drop(s);
        session
    }

    #[test]
    fn idle_transactions_are_aborted() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path()).unwrap();
        let table = SessionTable::default();
        let session = open(&table, &storage, b"s1", 1);
        table.reap(Duration::from_secs(60), SESSION_IDLE_TIMEOUT);
        assert!(matches!(session.lock().state, TxnState::Active { .. }));
        table.reap(Duration::ZERO, SESSION_IDLE_TIMEOUT);
        assert!(matches!(session.lock().state, TxnState::Aborted));
    }

    #[test]
    fn a_closed_connection_aborts_the_transactions_it_carried_last() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path()).unwrap();
        let table = SessionTable::default();
        let on_one = open(&table, &storage, b"s1", 1);
        let on_two = open(&table, &storage, b"s2", 2);
        table.connection_closed(1);
        assert!(matches!(on_one.lock().state, TxnState::Aborted));
        assert!(matches!(on_two.lock().state, TxnState::Active { .. }));
    }

    #[test]
    fn change_events_follow_savepoints() {
        use crate::changes::PendingChange;
        let event = |id: i32| {
            let doc = bson::doc! {"_id": id};
            let stored = bson::RawDocumentBuf::try_from(&doc).unwrap();
            PendingChange::insert("d", "c", &doc, stored, false)
        };
        let mut changes = TxnChanges::default();
        changes.events.push(event(1));
        changes.savepoint("a");
        changes.events.push(event(2));
        changes.savepoint("b");
        changes.events.push(event(3));
        changes.rollback_to("a");
        assert_eq!(changes.events.len(), 1, "back to savepoint a");
        changes.events.push(event(4));
        changes.rollback_to("b");
        assert_eq!(changes.events.len(), 2, "savepoint b went with the rollback to a");
        changes.release("a");
        changes.rollback_to("a");
        assert_eq!(changes.events.len(), 2, "a released savepoint is gone");
    }

    #[test]
    fn every_session_id_is_seen() {
        let table = SessionTable::default();
        table.seen(b"one").unwrap();
        table.seen(b"one").unwrap();
        table.seen(b"two").unwrap();
        assert_eq!(table.list().len(), 2);
    }
}
