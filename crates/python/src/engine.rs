//! Starting and stopping the embedded engine inside the Python process.
//!
//! One server per data directory per process: Django opens a connection per
//! thread and per alias, and they must all share the single writer of the
//! store, so a second start for the same directory returns the running
//! server's address.
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
