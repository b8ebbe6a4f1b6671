//! `djongo-server`: the server of one store as a process of its own.
//!
//! The same code runs as the cargo binary (`main.rs`) and as the
//! `djongo-server` command of the Python package (through `djongo._core`),
//! which is also how the backend starts a store's server on demand.
//!
//! Whatever else it listens on, the server takes the store's lock and serves
//! the store's owner-only socket (`data_dir`), so the Django processes whose
//! `DATA_DIR` is this directory join it instead of failing to open the file.
use crate::auth::Users;
use crate::data_dir::{self, DataDirError, StoreLock};
use crate::error::ServerError;
use crate::server::{spawn_with, Bind, ServerConfig, ServerHandle, ServerOptions};
use crate::storage::DATA_FILE;
use crate::VERSION;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use thiserror::Error;
pub const USAGE: &str = "usage: djongo-server --dbpath DIR [--bind HOST] [--port PORT] [--unix-socket PATH]
                     [--no-tcp] [--user NAME:PASSWORD] [--idle-exit SECONDS]
                     [--write-lock-timeout-ms MS] [--setParameter NAME=VALUE]
                     [--enable-test-commands]

  --dbpath DIR        data directory (created 0700 if missing; holds djongo.redb). The
                      server also listens on the directory's owner-only socket
                      (DIR/djongo.sock), where Django processes with this DATA_DIR join it
  --bind HOST         address to listen on (default 127.0.0.1)
  --port PORT         TCP port (default 27017; 0 picks a free port)
  --unix-socket PATH  listen on this Unix domain socket instead of TCP
  --no-tcp            listen on the data directory's owner-only socket only
  --user NAME:PASSWORD  require SCRAM-SHA-256 authentication on TCP and --unix-socket;
                      the user authenticates against the admin database (repeatable).
                      The owner-only socket needs none: only the owner can reach it
  --idle-exit SECONDS stop once no client has been connected for this long
  --write-lock-timeout-ms MS
                      how long a write outside a transaction waits for an open
                      transaction that has written the same document (default
                      10000); past it the write fails with LockTimeout (24).
                      Transactions never wait: a second writer of a document
                      gets WriteConflict (112), labelled TransientTransactionError
  --setParameter transactionLifetimeLimitSeconds=N
                      abort a transaction left idle for N seconds (default 60)
  --setParameter ttlMonitorSleepSecs=N
                      delete documents that TTL indexes expire every N seconds
                      (default 60)
  --enable-test-commands
                      serve the commands drivers' own test suites need
                      (configureFailPoint: make chosen commands fail, close the
                      connection or stall). For testing only, as mongod's
                      enableTestCommands";

#[derive(Debug)]
pub struct Args {
    pub dbpath: PathBuf,
    pub bind: String,
    pub port: u16,
    pub unix_socket: Option<PathBuf>,
    pub no_tcp: bool,
    pub users: Users,
    pub write_lock_timeout: Option<Duration>,
    pub transaction_lifetime_limit: Option<Duration>,
    pub ttl_monitor_interval: Option<Duration>,
    pub idle_exit: Option<Duration>,
    pub enable_test_commands: bool,
}

/// Parses the flags (after the program name). `Err("")` asks for the usage.
pub fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut dbpath = None;
    let mut bind = "127.0.0.1".to_string();
    let mut port = 27017u16;
    let mut unix_socket = None;
    let mut no_tcp = false;
    let mut users = Users::default();
    let mut write_lock_timeout = None;
    let mut transaction_lifetime_limit = None;
    let mut ttl_monitor_interval = None;
    let mut idle_exit = None;
    let mut enable_test_commands = false;
    while let Some(arg) = args.next() {
        // Accept both "--opt value" and "--opt=value".
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |what: &str| inline.clone().or_else(|| args.next()).ok_or_else(|| format!("{what} needs a value"));
        match name.as_str() {
            "--dbpath" => dbpath = Some(PathBuf::from(value("--dbpath")?)),
            "--bind" | "--bind_ip" => bind = value("--bind")?,
            "--port" => {
                let v = value("--port")?;
                port = v.parse().map_err(|_| format!("invalid port: {v}"))?;
            }
            "--unix-socket" => unix_socket = Some(PathBuf::from(value("--unix-socket")?)),
            "--no-tcp" => no_tcp = true,
            "--enable-test-commands" => enable_test_commands = true,
            "--user" => {
                let v = value("--user")?;
                let (name, password) = v.split_once(':').ok_or_else(|| "--user expects NAME:PASSWORD".to_string())?;
                users.add("admin", name, password);
            }
            "--write-lock-timeout-ms" => {
                let v = value("--write-lock-timeout-ms")?;
                let ms: u64 = v.parse().map_err(|_| format!("invalid --write-lock-timeout-ms: {v}"))?;
                write_lock_timeout = Some(Duration::from_millis(ms));
            }
            "--setParameter" => {
                let v = value("--setParameter")?;
                match v.split_once('=') {
                    Some(("enableTestCommands", flag)) => {
                        enable_test_commands = match flag {
                            "1" | "true" => true,
                            "0" | "false" => false,
                            _ => return Err(format!("enableTestCommands must be 0 or 1, not {flag}")),
                        };
                    }
                    Some(("transactionLifetimeLimitSeconds", n)) => {
                        let secs: u64 = n.parse().ok().filter(|s| *s > 0).ok_or_else(|| {
                            format!("transactionLifetimeLimitSeconds must be a positive integer, not {n}")
                        })?;
                        transaction_lifetime_limit = Some(Duration::from_secs(secs));
                    }
                    Some(("ttlMonitorSleepSecs", n)) => {
                        let secs: u64 = n.parse().ok().filter(|s| *s > 0).ok_or_else(|| {
                            format!("ttlMonitorSleepSecs must be a positive integer, not {n}")
                        })?;
                        ttl_monitor_interval = Some(Duration::from_secs(secs));
                    }
                    _ => {
                        return Err(format!(
                            "unsupported --setParameter: {v} (known: transactionLifetimeLimitSeconds=N, ttlMonitorSleepSecs=N, enableTestCommands=1)"
                        ))
                    }
                }
            }
            "--idle-exit" => {
                let v = value("--idle-exit")?;
                let seconds: f64 = v.parse().ok().filter(|s: &f64| s.is_finite() && *s >= 0.0).ok_or_else(|| format!("invalid --idle-exit: {v}"))?;
                idle_exit = Some(Duration::from_secs_f64(seconds));
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument: {other}")),
        }
    }
    let dbpath = dbpath.ok_or_else(|| "--dbpath is required".to_string())?;
    if no_tcp && unix_socket.is_some() {
        return Err("--no-tcp and --unix-socket exclude each other".into());
    }
    if no_tcp && users.enabled() {
        return Err("--user protects TCP or --unix-socket; with --no-tcp only the owner can connect anyway".into());
    }
    Ok(Args { dbpath, bind, port, unix_socket, no_tcp, users, write_lock_timeout, transaction_lifetime_limit, ttl_monitor_interval, idle_exit, enable_test_commands })
}

/// What a process that starts this server hands down (the Python package,
/// starting a store's server on demand): the store lock it already took, so
/// no other process can slip in between, and a pipe on which the server says
/// `ok <pid> <socket>` or `error: <message>` once it serves or has failed.
#[derive(Default)]
pub struct HandedDown {
    pub lock: Option<File>,
    pub ready: Option<File>,
}

#[derive(Debug, Error)]
pub enum StartError {
    #[error(transparent)]
    DataDir(#[from] DataDirError),
    #[error(transparent)]
    Server(#[from] ServerError),
    #[error("the store in {dir} is already served by another djongo-server, on {socket}; connect there")]
    AlreadyServed { dir: PathBuf, socket: PathBuf },
}

/// A store being served: the lock, the server, the socket.
pub struct StoreServer {
    // Field order is drop order: the server closes the database file before
    // the lock lets the next server open it.
    handle: ServerHandle,
    lock: StoreLock,
    socket: PathBuf,
    dir: PathBuf,
}

impl StoreServer {
    /// Checks the data directory, takes (or adopts) its lock, removes a
    /// socket a crashed server left, and serves the store on its owner-only
    /// socket plus `options.also_listen`.
    pub fn start(dir: &Path, lock: Option<File>, options: ServerOptions) -> Result<StoreServer, StartError> {
        data_dir::prepare(dir)?;
        let dir = dir.canonicalize().map_err(|source| DataDirError::Inspect { path: dir.to_path_buf(), source })?;
        let socket = data_dir::socket_path(&dir);
        let lock = match lock {
            Some(file) => StoreLock::adopt(file, &dir)?,
            None => StoreLock::try_acquire(&dir)?.ok_or_else(|| StartError::AlreadyServed { dir: dir.clone(), socket: socket.clone() })?,
        };
        data_dir::prepare_socket_dir(&socket)?;
        // Holding the lock, any socket file here is a dead server's.
        match std::fs::remove_file(&socket) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(ServerError::Bind { address: socket.display().to_string(), source }.into()),
        }
        data_dir::make_private(&dir.join(DATA_FILE))?;
        let config = ServerConfig { data_dir: dir.clone(), bind: Bind::OwnerSocket(socket.clone()) };
        let handle = spawn_with(config, options)?;
        // A new store file gets the owner-only mode too.
        data_dir::make_private(&dir.join(DATA_FILE))?;
        Ok(StoreServer { handle, lock, socket, dir })
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn handle(&self) -> &ServerHandle {
        &self.handle
    }

    /// Serves until `stop` is set, or, with `idle_exit`, until no client
    /// has been connected for that long.
    pub fn serve(&self, stop: &AtomicBool, idle_exit: Option<Duration>) {
        let mut idle_since: Option<Instant> = None;
        while !stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(100));
            let Some(limit) = idle_exit else { continue };
            if self.handle.open_connections() > 0 {
                idle_since = None;
            } else if idle_since.get_or_insert_with(Instant::now).elapsed() >= limit {
                return;
            }
        }
    }

    /// Stops serving: the socket goes first, then the database file is
    /// closed, and only then the lock is released.
    pub fn shutdown(self) {
        let StoreServer { handle, lock, .. } = self;
        handle.shutdown();
        drop(lock);
    }
}

/// Runs `djongo-server` with `args` (the flags, without the program name);
/// returns the exit status. Stops on SIGINT or SIGTERM.
pub fn main(args: impl Iterator<Item = String>, handed: HandedDown) -> i32 {
    let HandedDown { lock, mut ready } = handed;
    let mut report_failure = |message: &str| {
        eprintln!("djongo-server: {message}");
        if let Some(mut pipe) = ready.take() {
            let _ = writeln!(pipe, "error: {message}");
        }
    };
    let args = match parse_args(args) {
        Ok(a) => a,
        Err(msg) if msg.is_empty() => {
            // Asked for: the usage is the output, so it goes to stdout.
            println!("{USAGE}");
            return 0;
        }
        Err(msg) => {
            report_failure(&msg);
            eprintln!("{USAGE}");
            return 2;
        }
    };
    let mut also_listen = Vec::new();
    if let Some(path) = &args.unix_socket {
        also_listen.push(Bind::Unix(path.clone()));
    } else if !args.no_tcp {
        // IPv6 literals need brackets in "host:port".
        let host = if args.bind.contains(':') && !args.bind.starts_with('[') { format!("[{}]", args.bind) } else { args.bind.clone() };
        also_listen.push(Bind::Tcp(format!("{host}:{}", args.port)));
    }
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        if let Err(e) = signal_hook::flag::register(signal, Arc::clone(&stop)) {
            report_failure(&format!("cannot install signal handler: {e}"));
            return 1;
        }
    }
    let options = ServerOptions {
        users: args.users,
        write_lock_timeout: args.write_lock_timeout,
        transaction_lifetime_limit: args.transaction_lifetime_limit,
        ttl_monitor_interval: args.ttl_monitor_interval,
        also_listen,
        enable_test_commands: args.enable_test_commands,
    };
    let server = match StoreServer::start(&args.dbpath, lock, options) {
        Ok(s) => s,
        Err(e) => {
            report_failure(&e.to_string());
            return 1;
        }
    };
    if let Some(mut pipe) = ready.take() {
        let _ = writeln!(pipe, "ok {} {}", std::process::id(), server.socket().display());
    }
    eprintln!(
        "djongo-server {VERSION} (pid {}) serving {} on {}",
        std::process::id(),
        server.dir().display(),
        server.handle().addresses().join(" and ")
    );
    server.serve(&stop, args.idle_exit);
    if stop.load(Ordering::SeqCst) {
        eprintln!("djongo-server (pid {}) shutting down", std::process::id());
    } else {
        eprintln!("djongo-server (pid {}) idle: shutting down", std::process::id());
    }
    server.shutdown();
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, String> {
        parse_args(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn flags_parse() {
        let a = parse(&["--dbpath", "/d", "--port=0", "--idle-exit", "2.5"]).unwrap();
        assert_eq!((a.dbpath, a.port, a.idle_exit), (PathBuf::from("/d"), 0, Some(Duration::from_millis(2500))));
        assert!(parse(&["--dbpath", "/d", "--no-tcp"]).unwrap().no_tcp);
        assert!(!parse(&["--dbpath", "/d"]).unwrap().enable_test_commands);
        assert!(parse(&["--dbpath", "/d", "--enable-test-commands"]).unwrap().enable_test_commands);
        assert!(parse(&["--dbpath", "/d", "--setParameter", "enableTestCommands=1"]).unwrap().enable_test_commands);
        assert!(parse(&["--port", "1"]).unwrap_err().contains("--dbpath"));
        assert!(parse(&["--dbpath", "/d", "--no-tcp", "--unix-socket", "/s"]).is_err());
        assert!(parse(&["--dbpath", "/d", "--no-tcp", "--user", "a:b"]).is_err());
        assert!(parse(&["--dbpath", "/d", "--idle-exit", "-1"]).is_err());
        assert_eq!(parse(&["--help"]).unwrap_err(), "");
    }

    #[test]
    fn a_second_server_of_the_same_store_is_refused_and_a_stale_socket_replaced() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("data");
        std::fs::create_dir(&dir).unwrap();
        // What a killed server leaves: a socket file nobody answers on.
        drop(std::os::unix::net::UnixListener::bind(dir.join(data_dir::SOCKET_FILE)).unwrap());
        let first = StoreServer::start(&dir, None, ServerOptions::default()).unwrap();
        let mode = |p: &Path| std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(p).unwrap().permissions()) & 0o777;
        assert_eq!(mode(first.socket()), 0o600);
        assert_eq!(mode(&dir.join(DATA_FILE)), 0o600);
        assert!(std::os::unix::net::UnixStream::connect(first.socket()).is_ok());
        let second = StoreServer::start(&dir, None, ServerOptions::default());
        assert!(matches!(second, Err(StartError::AlreadyServed { .. })), "{:?}", second.err().map(|e| e.to_string()));
        let socket = first.socket().to_path_buf();
        first.shutdown();
        assert!(!socket.exists());
        let again = StoreServer::start(&dir, None, ServerOptions::default()).unwrap();
        again.shutdown();
    }

    #[test]
    fn an_idle_server_stops() {
        let root = tempfile::tempdir().unwrap();
        let server = StoreServer::start(root.path(), None, ServerOptions::default()).unwrap();
        let stop = AtomicBool::new(false);
        // Returns by itself: nobody is connected.
        server.serve(&stop, Some(Duration::from_millis(200)));
        server.shutdown();
    }
}
