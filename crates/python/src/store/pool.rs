//! Connections to the store's server, and the sessions that number this
//! process's retryable writes.
//!
//! Each pooled connection carries a session of its own (a random `lsid` and
//! the next `txnNumber`): a write outside a transaction is sent with them,
//! so that when the server dies before replying, the same write can be sent
//! again to the next server, which answers it from its records instead of
//! applying it twice (`djongo_server::retryable`). The session outlives its
//! socket: after a failure the connection reconnects and keeps it.
//!
//! A forked child must neither share its parent's sockets nor number writes
//! in its parent's sessions (the server would take the child's write for a
//! retry of the parent's), so the pool starts afresh in a new process.
use parking_lot::Mutex;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How often a connection that found no server tries again.
const CONNECT_RETRY: Duration = Duration::from_millis(10);

pub struct Connection {
    stream: Option<UnixStream>,
    pub lsid: [u8; 16],
    last_txn_number: i64,
}

impl Connection {
    fn new() -> Connection {
        let mut lsid: [u8; 16] = rand::random();
        // A version 4 UUID, as drivers make them.
        lsid[6] = (lsid[6] & 0x0f) | 0x40;
        lsid[8] = (lsid[8] & 0x3f) | 0x80;
        Connection { stream: None, lsid, last_txn_number: 0 }
    }

    /// The next txnNumber of this connection's session.
    pub fn next_txn_number(&mut self) -> i64 {
        self.last_txn_number += 1;
        self.last_txn_number
    }

    /// The socket, connecting (and waiting for a server until `deadline`) if
    /// there is none.
    pub fn stream(&mut self, path: &Path, deadline: Instant) -> io::Result<&mut UnixStream> {
        if self.stream.is_none() {
            self.stream = Some(connect(path, deadline)?);
        }
        self.stream.as_mut().ok_or_else(|| io::Error::other("no connection"))
    }

    /// Forgets the socket after a failure (the session stays).
    pub fn disconnect(&mut self) {
        self.stream = None;
    }
}

/// Connects to the store's socket, waiting while there is no server (it is
/// starting, or another process is replacing one that died).
fn connect(path: &Path, deadline: Instant) -> io::Result<UnixStream> {
    loop {
        match UnixStream::connect(path) {
            Ok(stream) => return Ok(stream),
            Err(e) if waiting_helps(&e) && Instant::now() < deadline => std::thread::sleep(CONNECT_RETRY),
            Err(e) => return Err(e),
        }
    }
}

/// No socket yet, a socket nobody listens on, a server too busy to accept.
fn waiting_helps(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused | io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted)
}

pub struct Pool {
    path: PathBuf,
    idle: Mutex<Idle>,
    /// A connection failed and no server has answered since: the next
    /// command, whichever it is, first sees a server answer a `ping`, as a
    /// driver marks its server unknown after a network error and selects it
    /// again only once its monitor has found it.
    unknown: AtomicBool,
}

struct Idle {
    pid: u32,
    connections: Vec<Connection>,
}

impl Pool {
    pub fn new(path: PathBuf) -> Pool {
        Pool { path, idle: Mutex::new(Idle { pid: std::process::id(), connections: Vec::new() }), unknown: AtomicBool::new(false) }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn checkout(&self) -> Connection {
        let mut idle = self.idle.lock();
        let pid = std::process::id();
        if idle.pid != pid {
            // Closing the inherited descriptors leaves the parent's sockets open.
            idle.connections.clear();
            idle.pid = pid;
        }
        idle.connections.pop().unwrap_or_else(Connection::new)
    }

    pub fn checkin(&self, connection: Connection) {
        let mut idle = self.idle.lock();
        if idle.pid == std::process::id() {
            idle.connections.push(connection);
        }
    }

    /// After a connection failed: the server is probably gone, and with it
    /// every idle socket (their sessions stay); until one answers, the
    /// server is unknown.
    pub fn disconnect_all(&self) {
        self.unknown.store(true, Ordering::Relaxed);
        for connection in &mut self.idle.lock().connections {
            connection.disconnect();
        }
    }

    /// Whether no server has answered since a connection failed.
    pub fn server_unknown(&self) -> bool {
        self.unknown.load(Ordering::Relaxed)
    }

    /// A server answered.
    pub fn server_found(&self) {
        self.unknown.store(false, Ordering::Relaxed);
    }
}
