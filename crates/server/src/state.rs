//! What all connections share: storage, cursors, sessions, users, and the
//! identity this server reports in `hello`.
use crate::auth::Users;
use crate::cursor::CursorTable;
use crate::failpoint::FailPoints;
use crate::session::SessionTable;
use crate::storage::Storage;
use bson::oid::ObjectId;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

/// How long a write outside a transaction waits for a transaction that has
/// written the same document (and a commit for the store's writer) before
/// failing with `LockTimeout`.
pub const WRITE_LOCK_TIMEOUT: Duration = Duration::from_secs(10);

pub struct ServerState {
    pub storage: Storage,
    pub cursors: CursorTable,
    pub sessions: SessionTable,
    pub users: Users,
    /// `topologyVersion.processId`: new on each start, as in MongoDB.
    pub process_id: ObjectId,
    pub started: Instant,
    pub write_lock_timeout: Duration,
    /// `transactionLifetimeLimitSeconds`: how long a transaction may stay
    /// idle before it is aborted.
    pub transaction_lifetime_limit: Duration,
    /// `ttlMonitorSleepSecs`: how often expired documents of TTL indexes
    /// are deleted (`ttl`).
    pub ttl_monitor_interval: Duration,
    /// Whether test commands (`configureFailPoint`) are served
    /// (`--enable-test-commands`).
    pub test_commands: bool,
    pub fail_points: FailPoints,
    /// The commands running now (`$currentOp`).
    pub ops: crate::ops::ActiveOps,
    /// The events change streams read (`changes`).
    pub changes: crate::changes::ChangeLog,
    /// Whether the store may hold a view: set when one is created (or one
    /// is found at start) and never cleared while the server runs, so that
    /// commands on stores without views skip looking for one.
    pub views_exist: AtomicBool,
    next_connection_id: AtomicI64,
    shutdown: AtomicBool,
}

impl ServerState {
    pub fn new(storage: Storage, users: Users, write_lock_timeout: Duration, transaction_lifetime_limit: Duration) -> ServerState {
        let changes = crate::changes::ChangeLog::new(storage.clock().now());
        let views_exist = AtomicBool::new(has_views(&storage));
        ServerState {
            changes,
            views_exist,
            storage,
            cursors: CursorTable::default(),
            sessions: SessionTable::default(),
            users,
            process_id: ObjectId::new(),
            started: Instant::now(),
            write_lock_timeout,
            transaction_lifetime_limit,
            ttl_monitor_interval: crate::ttl::DEFAULT_INTERVAL,
            test_commands: false,
            fail_points: FailPoints::default(),
            ops: Default::default(),
            next_connection_id: AtomicI64::new(1),
            shutdown: AtomicBool::new(false),
        }
    }

    pub fn next_connection_id(&self) -> i64 {
        self.next_connection_id.fetch_add(1, Ordering::Relaxed)
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutdown.load(Ordering::SeqCst)
    }

    pub fn begin_shutdown(&self) {
        self.shutdown.store(true, Ordering::SeqCst);
    }
}

/// Whether the store holds a view (true when that cannot be read: a
/// needless lookup is only slower).
fn has_views(storage: &Storage) -> bool {
    let found = || -> crate::error::CmdResult<bool> {
        let read = storage.begin_read()?;
        let tables = crate::storage::Tables::open_read(&read)?;
        Ok(tables.collections(None)?.iter().any(|m| m.options.contains_key("viewOn")))
    };
    found().unwrap_or(true)
}

/// Per-connection facts commands need.
pub struct ConnInfo {
    pub id: i64,
    /// "host:port" (or socket path) the client connected to; reported as the
    /// replica set's only member so drivers reconnect to the same place.
    pub local_address: String,
    pub peer_address: String,
    pub auth: crate::auth::ConnAuth,
    /// The `appName` of the client's handshake (`client.application.name`).
    pub app_name: Option<String>,
    /// Set by a command that wants the connection closed without a reply
    /// (a fail point's `closeConnection`).
    pub close: bool,
    /// A fail point acted on this connection: when it closes (a driver
    /// drops its pool after a "shutting down" error), that is the test's
    /// doing, not a dead client, so the transactions it carried stay open.
    pub faulted: bool,
    /// The running command's cursor batch, when it answers one as encoded
    /// documents (`stored_batch`); the command layer takes it for the reply.
    pub stored_batch: Option<crate::stored_batch::StoredBatch>,
}

impl ConnInfo {
    pub fn new(id: i64, local_address: String, peer_address: String, auth: crate::auth::ConnAuth) -> ConnInfo {
        ConnInfo { id, local_address, peer_address, auth, app_name: None, close: false, faulted: false, stored_batch: None }
    }
}
