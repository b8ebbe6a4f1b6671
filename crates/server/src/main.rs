//! `djongo-server --dbpath DIR [--bind 127.0.0.1] [--port 27017] [--unix-socket PATH]
//! [--user NAME:PASSWORD] [--write-lock-timeout-ms MS]
//! [--setParameter transactionLifetimeLimitSeconds=N]`
//!
//! Runs the embedded MongoDB-compatible server standalone until SIGINT or
//! SIGTERM, then shuts down cleanly (open transactions are aborted; every
//! acknowledged write is already durable).
#![deny(unsafe_code)]

use djongo_server::auth::Users;
use djongo_server::{spawn_with, Bind, ServerConfig, ServerOptions};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

const USAGE: &str = "usage: djongo-server --dbpath DIR [--bind HOST] [--port PORT] [--unix-socket PATH]

  --dbpath DIR        data directory (created if missing; holds djongo.redb)
  --bind HOST         address to listen on (default 127.0.0.1)
  --port PORT         TCP port (default 27017; 0 picks a free port)
  --unix-socket PATH  listen on a Unix domain socket instead of TCP
  --user NAME:PASSWORD  require SCRAM-SHA-256 authentication; the user
                      authenticates against the admin database (repeatable)
  --write-lock-timeout-ms MS
                      how long a write outside a transaction waits for an open
                      transaction that has written the same document (default
                      10000); past it the write fails with LockTimeout (24).
                      Transactions never wait: a second writer of a document
                      gets WriteConflict (112), labelled TransientTransactionError
  --setParameter transactionLifetimeLimitSeconds=N
                      abort a transaction left idle for N seconds (default 60)";

struct Args {
    dbpath: PathBuf,
    bind: String,
    port: u16,
    unix_socket: Option<PathBuf>,
    users: Users,
    write_lock_timeout: Option<Duration>,
    transaction_lifetime_limit: Option<Duration>,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut dbpath = None;
    let mut bind = "127.0.0.1".to_string();
    let mut port = 27017u16;
    let mut unix_socket = None;
    let mut users = Users::default();
    let mut write_lock_timeout = None;
    let mut transaction_lifetime_limit = None;
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
                    Some(("transactionLifetimeLimitSeconds", n)) => {
                        let secs: u64 = n.parse().ok().filter(|s| *s > 0).ok_or_else(|| {
                            format!("transactionLifetimeLimitSeconds must be a positive integer, not {n}")
                        })?;
                        transaction_lifetime_limit = Some(Duration::from_secs(secs));
                    }
                    _ => return Err(format!("unsupported --setParameter: {v} (known: transactionLifetimeLimitSeconds=N)")),
                }
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument: {other}")),
        }
    }
    let dbpath = dbpath.ok_or_else(|| "--dbpath is required".to_string())?;
    Ok(Args { dbpath, bind, port, unix_socket, users, write_lock_timeout, transaction_lifetime_limit })
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(msg) => {
            if !msg.is_empty() {
                eprintln!("djongo-server: {msg}");
            }
            eprintln!("{USAGE}");
            return if msg.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(2) };
        }
    };
    let bind = match args.unix_socket {
        Some(path) => Bind::Unix(path),
        // IPv6 literals need brackets in "host:port".
        None if args.bind.contains(':') && !args.bind.starts_with('[') => Bind::Tcp(format!("[{}]:{}", args.bind, args.port)),
        None => Bind::Tcp(format!("{}:{}", args.bind, args.port)),
    };
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        if let Err(e) = signal_hook::flag::register(signal, Arc::clone(&stop)) {
            eprintln!("djongo-server: cannot install signal handler: {e}");
            return ExitCode::FAILURE;
        }
    }
    let handle = match spawn_with(ServerConfig { data_dir: args.dbpath.clone(), bind }, ServerOptions {
            users: args.users,
            write_lock_timeout: args.write_lock_timeout,
            transaction_lifetime_limit: args.transaction_lifetime_limit,
        }) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("djongo-server: {e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!("djongo-server listening on {} (data: {})", handle.address(), args.dbpath.display());
    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("djongo-server shutting down");
    handle.shutdown();
    ExitCode::SUCCESS
}
