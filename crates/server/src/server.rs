//! The network side: listeners (TCP or Unix socket), one thread per
//! connection, the housekeeping thread, and the embedding API
//! (`spawn` / `ServerHandle`).
use crate::auth::{ConnAuth, Users};
use crate::commands::{run_shared_command, run_shared_command_encoded};
use crate::cursor::CURSOR_IDLE_TIMEOUT;
use crate::error::ServerError;
use crate::session::{SESSION_IDLE_TIMEOUT, TRANSACTION_IDLE_LIMIT};
use crate::state::{ConnInfo, ServerState};
use crate::storage::Storage;
use crate::wire::{self, Request};
use bson::doc;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::io::{BufReader, BufWriter, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

#[cfg(unix)]
use std::os::unix::net::{UnixListener, UnixStream};

/// Where the server listens.
#[derive(Debug, Clone)]
pub enum Bind {
    /// "host:port"; port 0 picks a free port (see `ServerHandle::address`).
    Tcp(String),
    /// A Unix domain socket path (a stale socket file is replaced).
    Unix(PathBuf),
    /// A store's owner-only socket (see `data_dir`): a Unix socket made
    /// 0600, whose connections count as the owner's, so they need no
    /// password when users are configured. On Linux the peer's uid is
    /// checked too, where the file mode alone might not be honoured.
    OwnerSocket(PathBuf),
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub data_dir: PathBuf,
    pub bind: Bind,
}

/// Optional settings beyond `ServerConfig` (kept separate so the embedding
/// struct stays stable).
#[derive(Default)]
pub struct ServerOptions {
    /// Users for SCRAM-SHA-256; empty means authentication is off.
    pub users: Users,
    /// How long a write waits for another session's open transaction
    /// (default `state::WRITE_LOCK_TIMEOUT`).
    pub write_lock_timeout: Option<Duration>,
    /// More places to listen, besides `ServerConfig::bind`.
    pub also_listen: Vec<Bind>,
    /// `transactionLifetimeLimitSeconds`: how long a transaction may stay
    /// idle (default `session::TRANSACTION_IDLE_LIMIT`).
    pub transaction_lifetime_limit: Option<Duration>,
    /// `ttlMonitorSleepSecs`: how often TTL indexes' expired documents are
    /// deleted (default 60 s, as MongoDB).
    pub ttl_monitor_interval: Option<Duration>,
    /// `--enable-test-commands`: serve the commands drivers' test suites use
    /// (`configureFailPoint`), never meant for production.
    pub enable_test_commands: bool,
}

/// How long the accept loop sleeps between polls; bounds shutdown latency.
const ACCEPT_POLL: Duration = Duration::from_millis(10);
const HOUSEKEEPING_INTERVAL: Duration = Duration::from_millis(500);
/// How often records of retryable writes (`retryable`) are pruned.
const RETRY_RECORD_PRUNE_INTERVAL: Duration = Duration::from_secs(300);
/// Stack of a connection thread. Commands recurse once per nesting level of
/// their BSON (at most `wire::MAX_BSON_DEPTH`) and per field-path component;
/// the default 2 MiB is tight for that in unoptimised builds. Only touched
/// pages cost memory.
const CONNECTION_STACK: usize = 16 * 1024 * 1024;

enum Listener {
    Tcp(TcpListener),
    #[cfg(unix)]
    Unix(UnixListener, PathBuf),
}

/// A listener and whether its connections count as the owner's.
struct Endpoint {
    listener: Listener,
    address: String,
    owner_only: bool,
}

enum Stream {
    Tcp(TcpStream),
    #[cfg(unix)]
    Unix(UnixStream),
}

impl Stream {
    fn try_clone(&self) -> std::io::Result<Stream> {
        Ok(match self {
            Stream::Tcp(s) => Stream::Tcp(s.try_clone()?),
            #[cfg(unix)]
            Stream::Unix(s) => Stream::Unix(s.try_clone()?),
        })
    }
    fn shutdown(&self) {
        let _ = match self {
            Stream::Tcp(s) => s.shutdown(Shutdown::Both),
            #[cfg(unix)]
            Stream::Unix(s) => s.shutdown(Shutdown::Both),
        };
    }
    fn shutdown_read(&self) {
        let _ = match self {
            Stream::Tcp(s) => s.shutdown(Shutdown::Read),
            #[cfg(unix)]
            Stream::Unix(s) => s.shutdown(Shutdown::Read),
        };
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            #[cfg(unix)]
            Stream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            #[cfg(unix)]
            Stream::Unix(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Tcp(s) => s.flush(),
            #[cfg(unix)]
            Stream::Unix(s) => s.flush(),
        }
    }
}

/// A connection's socket (for shutdown to close) and its thread.
type OpenConnection = (Stream, Option<JoinHandle<()>>);

/// Open connections, so shutdown can close their sockets and join them.
#[derive(Default)]
struct Connections {
    next: AtomicU64,
    open: Mutex<HashMap<u64, OpenConnection>>,
}

/// A running server. Dropping it shuts the server down too.
pub struct ServerHandle {
    state: Arc<ServerState>,
    /// Where it listens: `ServerConfig::bind` first, then `also_listen`.
    addresses: Vec<String>,
    connections: Arc<Connections>,
    threads: Vec<JoinHandle<()>>,
    socket_paths: Vec<SocketFile>,
}

/// A Unix socket this server created, identified by its inode: at exit the
/// server removes the file at that path only if it is still this one. A
/// newer server may have bound the same path since (the data directory was
/// deleted and made again while this one idled), and its socket must stay.
struct SocketFile {
    path: PathBuf,
    identity: Option<(u64, u64)>,
}

impl SocketFile {
    fn new(path: PathBuf) -> SocketFile {
        let identity = file_identity(&path);
        SocketFile { path, identity }
    }

    fn remove_if_ours(&self) {
        if self.identity.is_some() && file_identity(&self.path) == self.identity {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(unix)]
fn file_identity(path: &std::path::Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn file_identity(_path: &std::path::Path) -> Option<(u64, u64)> {
    None
}

impl ServerHandle {
    /// "127.0.0.1:54321" for TCP, or the socket path for a Unix socket.
    pub fn address(&self) -> String {
        self.addresses[0].clone()
    }

    /// Every address it listens on, `address()` first.
    pub fn addresses(&self) -> &[String] {
        &self.addresses
    }

    /// What all connections share; commands of the serving process's own
    /// client run on it directly (`in_process`).
    pub fn state(&self) -> &Arc<ServerState> {
        &self.state
    }

    /// How many client connections are open (for idle shutdown).
    pub fn open_connections(&self) -> usize {
        self.connections.open.lock().len()
    }

    /// Stops accepting, closes connections, aborts open transactions and
    /// closes the database file (so it can be reopened in this process).
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.state.begin_shutdown();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        let conns: Vec<OpenConnection> = self.connections.open.lock().drain().map(|(_, v)| v).collect();
        // Only the read side: a command already running still sends its
        // reply (an acknowledged write stays acknowledged), then the
        // connection reads end-of-stream and closes.
        for (stream, _) in &conns {
            stream.shutdown_read();
        }
        for (_, handle) in conns {
            if let Some(h) = handle {
                let _ = h.join();
            }
        }
        self.state.sessions.abort_all();
        let _ = self.state.storage.flush_journal(Duration::from_secs(5));
        for socket in self.socket_paths.drain(..) {
            socket.remove_if_ours();
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        if !self.state.is_shutting_down() {
            self.stop();
        }
    }
}

/// Opens storage in `config.data_dir` and starts serving on background threads.
pub fn spawn(config: ServerConfig) -> Result<ServerHandle, ServerError> {
    spawn_with(config, ServerOptions::default())
}

pub fn spawn_with(config: ServerConfig, options: ServerOptions) -> Result<ServerHandle, ServerError> {
    let storage = Storage::open(&config.data_dir)?;
    let mut endpoints = Vec::new();
    let mut socket_paths = Vec::new();
    for place in std::iter::once(&config.bind).chain(&options.also_listen) {
        let (endpoint, socket_path) = match bind(place) {
            Ok(bound) => bound,
            Err(e) => {
                for socket in &socket_paths {
                    SocketFile::remove_if_ours(socket);
                }
                return Err(e);
            }
        };
        endpoints.push(endpoint);
        socket_paths.extend(socket_path.map(SocketFile::new));
    }
    let addresses = endpoints.iter().map(|e| e.address.clone()).collect();
    let timeout = options.write_lock_timeout.unwrap_or(crate::state::WRITE_LOCK_TIMEOUT);
    let lifetime = options.transaction_lifetime_limit.unwrap_or(TRANSACTION_IDLE_LIMIT);
    let mut state = ServerState::new(storage, options.users, timeout, lifetime);
    state.test_commands = options.enable_test_commands;
    if let Some(interval) = options.ttl_monitor_interval {
        state.ttl_monitor_interval = interval;
    }
    let state = Arc::new(state);
    let connections = Arc::new(Connections::default());
    let mut threads = Vec::new();
    for endpoint in endpoints {
        let state = Arc::clone(&state);
        let connections = Arc::clone(&connections);
        threads.push(
            std::thread::Builder::new()
                .name("djongo-accept".into())
                .spawn(move || accept_loop(endpoint, state, connections))
                .map_err(ServerError::Thread)?,
        );
    }
    {
        let state = Arc::clone(&state);
        threads.push(
            std::thread::Builder::new()
                .name("djongo-housekeeping".into())
                .spawn(move || housekeeping(state))
                .map_err(ServerError::Thread)?,
        );
    }
    Ok(ServerHandle { state, addresses, connections, threads, socket_paths })
}

fn bind(bind: &Bind) -> Result<(Endpoint, Option<PathBuf>), ServerError> {
    match bind {
        Bind::Tcp(addr) => {
            let err = |source| ServerError::Bind { address: addr.clone(), source };
            let l = TcpListener::bind(addr).map_err(err)?;
            let local = l.local_addr().map_err(err)?;
            l.set_nonblocking(true).map_err(err)?;
            Ok((Endpoint { listener: Listener::Tcp(l), address: local.to_string(), owner_only: false }, None))
        }
        #[cfg(unix)]
        Bind::Unix(path) | Bind::OwnerSocket(path) => {
            let err = |source| ServerError::Bind { address: path.display().to_string(), source };
            // A socket file left by a crashed server blocks bind; replace it
            // only if nobody answers on it.
            if path.exists() && UnixStream::connect(path).is_err() {
                let _ = std::fs::remove_file(path);
            }
            let l = UnixListener::bind(path).map_err(err)?;
            let owner_only = matches!(bind, Bind::OwnerSocket(_));
            if owner_only {
                use std::os::unix::fs::PermissionsExt;
                if let Err(source) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)) {
                    let _ = std::fs::remove_file(path);
                    return Err(err(source));
                }
            }
            l.set_nonblocking(true).map_err(err)?;
            let endpoint = Endpoint { listener: Listener::Unix(l, path.clone()), address: path.display().to_string(), owner_only };
            Ok((endpoint, Some(path.clone())))
        }
        #[cfg(not(unix))]
        Bind::Unix(path) | Bind::OwnerSocket(path) => Err(ServerError::Bind {
            address: path.display().to_string(),
            source: std::io::Error::new(std::io::ErrorKind::Unsupported, "Unix sockets are not available on this platform"),
        }),
    }
}

fn accept_loop(endpoint: Endpoint, state: Arc<ServerState>, connections: Arc<Connections>) {
    let Endpoint { listener, address, owner_only } = endpoint;
    while !state.is_shutting_down() {
        let accepted = match &listener {
            Listener::Tcp(l) => l.accept().map(|(s, peer)| {
                let _ = s.set_nodelay(true);
                let local = s.local_addr().map(|a| a.to_string()).unwrap_or_else(|_| address.clone());
                (Stream::Tcp(s), local, peer.to_string())
            }),
            #[cfg(unix)]
            Listener::Unix(l, path) => l.accept().map(|(s, _)| (Stream::Unix(s), path.display().to_string(), "unix".to_string())),
        };
        match accepted {
            Ok((stream, _, _)) if owner_only && !peer_is_owner(&stream) => stream.shutdown(),
            Ok((stream, local, peer)) => start_connection(&state, &connections, stream, local, peer, owner_only),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(ACCEPT_POLL),
            // Transient accept failures (EMFILE, aborted handshakes): back off.
            Err(_) => std::thread::sleep(ACCEPT_POLL * 10),
        }
    }
}

/// Whether the peer of an owner-only socket runs as this server's user.
/// The socket's 0600 mode already keeps others out where the OS honours
/// socket permissions; this also holds where it might not.
fn peer_is_owner(stream: &Stream) -> bool {
    match stream {
        #[cfg(target_os = "linux")]
        Stream::Unix(s) => rustix::net::sockopt::socket_peercred(s).is_ok_and(|cred| cred.uid == rustix::process::geteuid()),
        #[cfg(all(unix, not(target_os = "linux")))]
        Stream::Unix(_) => true,
        Stream::Tcp(_) => false,
    }
}

fn start_connection(state: &Arc<ServerState>, connections: &Arc<Connections>, stream: Stream, local: String, peer: String, owner: bool) {
    let set_blocking = match &stream {
        Stream::Tcp(s) => s.set_nonblocking(false),
        #[cfg(unix)]
        Stream::Unix(s) => s.set_nonblocking(false),
    };
    if set_blocking.is_err() {
        return;
    }
    let Ok(registry_copy) = stream.try_clone() else { return };
    let key = connections.next.fetch_add(1, Ordering::Relaxed);
    connections.open.lock().insert(key, (registry_copy, None));
    let thread_state = Arc::clone(state);
    let thread_conns = Arc::clone(connections);
    let spawned = std::thread::Builder::new().name("djongo-conn".into()).stack_size(CONNECTION_STACK).spawn(move || {
        serve_connection(&thread_state, stream, local, peer, owner);
        // Forget the connection unless shutdown already took it over.
        let _ = thread_conns.open.lock().remove(&key);
    });
    match spawned {
        Ok(handle) => {
            if let Some(entry) = connections.open.lock().get_mut(&key) {
                entry.1 = Some(handle);
            }
        }
        Err(_) => {
            if let Some((s, _)) = connections.open.lock().remove(&key) {
                s.shutdown();
            }
        }
    }
}

static NEXT_REQUEST_ID: AtomicI32 = AtomicI32::new(1);

fn serve_connection(state: &ServerState, stream: Stream, local: String, peer: String, owner: bool) {
    let Ok(write_half) = stream.try_clone() else { return };
    let mut reader = BufReader::new(stream);
    let mut writer = BufWriter::new(write_half);
    let auth = if owner { ConnAuth::owner() } else { ConnAuth::default() };
    let mut conn = ConnInfo::new(state.next_connection_id(), local, peer, auth);
    let mut aborts_on_close = crate::session::ClosingConnection::new(state, conn.id);
    loop {
        let (header, payload) = match wire::read_message(&mut reader) {
            Ok(Some(m)) => m,
            // End of stream, I/O error or an impossible length: the framing
            // cannot be trusted any more, so close.
            Ok(None) | Err(_) => return,
        };
        if state.is_shutting_down() {
            return;
        }
        let request_id = NEXT_REQUEST_ID.fetch_add(1, Ordering::Relaxed);
        let reply = match wire::parse_request(&header, &payload) {
            Ok(Request::Msg { flags, body }) => {
                let reply = run_shared_command_encoded(state, &mut conn, &std::sync::Arc::new(body));
                if conn.faulted {
                    // A fail point acted here (and may close the connection
                    // on purpose): the client lives on, so its transactions do too.
                    aborts_on_close.keep_transactions();
                }
                if conn.close {
                    return;
                }
                if flags & wire::FLAG_MORE_TO_COME != 0 {
                    // Unacknowledged (w: 0) request: the client expects no reply.
                    continue;
                }
                reply
                    .map(|reply| wire::encode_msg_encoded(request_id, header.request_id, 0, &reply))
                    .map_err(|e| wire::WireError::Malformed(format!("cannot encode reply: {e}")))
            }
            Ok(Request::Query { full_collection_name, mut query }) => {
                let reply = match full_collection_name.strip_suffix(".$cmd") {
                    Some(db) => {
                        query.insert("$db", db);
                        let reply = run_shared_command(state, &mut conn, &std::sync::Arc::new(query));
                        if conn.faulted {
                            aborts_on_close.keep_transactions();
                        }
                        if conn.close {
                            return;
                        }
                        reply
                    }
                    None => doc! {"ok": 0.0, "errmsg": "OP_QUERY is only supported for commands", "code": 5739101, "codeName": "Location5739101"},
                };
                wire::encode_reply(request_id, header.request_id, &reply)
            }
            Err(e) => {
                // OP_COMPRESSED (never offered), removed legacy opcodes and
                // lost framing get no reply: the connection is closed.
                let Some(reply) = e.reply() else { return };
                let bytes = match header.op_code {
                    wire::OP_QUERY => wire::encode_reply(request_id, header.request_id, &reply),
                    _ => wire::encode_msg(request_id, header.request_id, 0, &reply),
                };
                if e.closes_connection() {
                    if let Ok(bytes) = bytes {
                        let _ = wire::write_message(&mut writer, &bytes);
                    }
                    return;
                }
                bytes
            }
        };
        let Ok(bytes) = reply else { return };
        if wire::write_message(&mut writer, &bytes).is_err() {
            return;
        }
    }
}

fn housekeeping(state: Arc<ServerState>) {
    let mut waited = Duration::ZERO;
    // First pass at start: a store may hold records of long-gone sessions.
    let mut since_prune = RETRY_RECORD_PRUNE_INTERVAL;
    let mut since_ttl = Duration::ZERO;
    while !state.is_shutting_down() {
        std::thread::sleep(ACCEPT_POLL * 5);
        waited += ACCEPT_POLL * 5;
        // `j: false` writes reach the disk within this loop's period (mongod:
        // its journal commit interval, 100 ms); a busy writer is left alone.
        let _ = state.storage.flush_journal(Duration::ZERO);
        if waited >= HOUSEKEEPING_INTERVAL {
            since_prune += waited;
            since_ttl += waited;
            waited = Duration::ZERO;
            state.cursors.reap(CURSOR_IDLE_TIMEOUT);
            state.sessions.reap(state.transaction_lifetime_limit, SESSION_IDLE_TIMEOUT);
            // Skipped while a writer holds the store; tried again next pass.
            if since_prune >= RETRY_RECORD_PRUNE_INTERVAL && crate::retryable::prune(&state.storage, SESSION_IDLE_TIMEOUT).unwrap_or(false) {
                since_prune = Duration::ZERO;
            }
            if since_ttl >= state.ttl_monitor_interval {
                since_ttl = Duration::ZERO;
                // A failed pass (the store is busy) is retried on the next one.
                let _ = crate::ttl::expire(&state, bson::DateTime::now());
            }
        }
    }
}

#[allow(dead_code)]
fn assert_handle_is_send() {
    // The Python bindings keep handles in a process-wide table.
    fn is_send<T: Send>() {}
    is_send::<ServerHandle>();
}
