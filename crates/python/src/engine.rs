//! The embedded engine from Python.
//!
//! The Django backend shares a store between processes (djongo/store.py):
//! `store_paths` checks a data directory and names its lock and socket, and
//! `server_main` is `djongo-server`, which serves the store in a process of
//! its own.
//!
//! `start_engine`/`stop_engine` run an engine inside this process instead,
//! for tests and embedding: one server per data directory per process, a
//! second start for the same directory returns the running server's address.
use crate::EngineError;
use djongo_server::{Bind, ServerConfig, ServerHandle};
use parking_lot::Mutex;
use pyo3::prelude::*;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

fn servers() -> &'static Mutex<HashMap<PathBuf, ServerHandle>> {
    static SERVERS: OnceLock<Mutex<HashMap<PathBuf, ServerHandle>>> = OnceLock::new();
    SERVERS.get_or_init(|| Mutex::new(HashMap::new()))
}

fn canonical(data_dir: &str) -> PyResult<PathBuf> {
    std::fs::create_dir_all(data_dir)
        .map_err(|e| EngineError::new_err(format!("cannot create data directory {data_dir}: {e}")))?;
    Path::new(data_dir)
        .canonicalize()
        .map_err(|e| EngineError::new_err(format!("cannot resolve data directory {data_dir}: {e}")))
}

/// Starts (or finds) the engine serving `data_dir` and returns its address:
/// `host:port` for TCP, or the socket path when `unix_socket` is given.
#[pyfunction]
#[pyo3(signature = (data_dir, bind = "127.0.0.1:0", unix_socket = None))]
pub fn start_engine(py: Python<'_>, data_dir: &str, bind: &str, unix_socket: Option<&str>) -> PyResult<String> {
    let dir = canonical(data_dir)?;
    let mut running = servers().lock();
    if let Some(handle) = running.get(&dir) {
        return Ok(handle.address());
    }
    let bind = match unix_socket {
        Some(path) => Bind::Unix(PathBuf::from(path)),
        None => Bind::Tcp(bind.to_owned()),
    };
    let config = ServerConfig { data_dir: dir.clone(), bind };
    let handle = py
        .detach(|| djongo_server::spawn(config))
        .map_err(|e| EngineError::new_err(e.to_string()))?;
    let address = handle.address();
    running.insert(dir, handle);
    Ok(address)
}

/// Stops the engine serving `data_dir`; returns whether one was running.
#[pyfunction]
pub fn stop_engine(py: Python<'_>, data_dir: &str) -> PyResult<bool> {
    let dir = canonical(data_dir)?;
    let handle = servers().lock().remove(&dir);
    Ok(match handle {
        Some(handle) => {
            py.detach(|| handle.shutdown());
            true
        }
        None => false,
    })
}

/// Checks (creating it 0700 if missing) the data directory of a store that
/// processes share, and says where its parts are: `lock`, `socket`, `log`,
/// and whether the directory was `created`. Errors name the directory and
/// what is wrong with it (owner, mode, a file system without locks).
#[pyfunction]
pub fn store_paths(py: Python<'_>, data_dir: &str) -> PyResult<Py<PyAny>> {
    use djongo_server::data_dir;
    let dir = PathBuf::from(data_dir);
    let created = data_dir::prepare(&dir).map_err(|e| EngineError::new_err(e.to_string()))?;
    let dir = dir.canonicalize().map_err(|e| EngineError::new_err(format!("cannot resolve data directory {data_dir}: {e}")))?;
    let socket = data_dir::socket_path(&dir);
    data_dir::prepare_socket_dir(&socket).map_err(|e| EngineError::new_err(e.to_string()))?;
    let paths = pyo3::types::PyDict::new(py);
    paths.set_item("dir", dir.display().to_string())?;
    paths.set_item("lock", dir.join(data_dir::LOCK_FILE).display().to_string())?;
    paths.set_item("socket", socket.display().to_string())?;
    paths.set_item("log", dir.join(data_dir::LOG_FILE).display().to_string())?;
    paths.set_item("created", created)?;
    Ok(paths.into_any().unbind())
}

/// Runs `djongo-server` with `argv` (without the program name) until SIGINT
/// or SIGTERM, or until idle with `--idle-exit`; returns its exit status.
///
/// `lock_fd` and `ready_fd` are what the backend hands down when it starts a
/// store's server on demand: the store lock it took (an open file
/// description holding the `flock`), and a pipe for the server's
/// `ok <pid> <socket>` / `error: <message>` line.
#[pyfunction]
#[pyo3(signature = (argv, lock_fd = None, ready_fd = None))]
pub fn server_main(py: Python<'_>, argv: Vec<String>, lock_fd: Option<i32>, ready_fd: Option<i32>) -> PyResult<i32> {
    let adopt = |fd: Option<i32>, what: &str| fd.map(|fd| adopt_fd(fd, what)).transpose();
    let handed = djongo_server::standalone::HandedDown { lock: adopt(lock_fd, "lock_fd")?, ready: adopt(ready_fd, "ready_fd")? };
    Ok(py.detach(|| djongo_server::standalone::main(argv.into_iter(), handed)))
}

/// Takes ownership of `fd`, a descriptor handed to this code alone (the
/// store lock a starting process passed down, or took for a server in this
/// process): whoever handed it over no longer owns or closes it.
pub fn adopt_fd(fd: i32, what: &str) -> PyResult<std::fs::File> {
    // Refuse what is not an open descriptor rather than adopting (and
    // later closing) a number that means nothing or something else.
    if fd < 0 || !is_open_fd(fd) {
        return Err(EngineError::new_err(format!("{what} {fd} is not an open file descriptor")));
    }
    // SAFETY: the descriptor is open (checked above) and was handed over for
    // the server alone; nothing else owns or closes it.
    #[allow(unsafe_code)]
    let file = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    Ok(file)
}

/// Whether `fd` is an open descriptor (its flags can be read).
fn is_open_fd(fd: i32) -> bool {
    // SAFETY: borrowing for one fcntl call; the descriptor is not closed here.
    #[allow(unsafe_code)]
    let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    rustix::io::fcntl_getfd(borrowed).is_ok()
}
