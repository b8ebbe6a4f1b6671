//! The store served from this process (`STORE_SERVER: "in-process"`,
//! djongo/store.py): starting and stopping it, finding it for this
//! process's `StoreClient`, and what a forked child does with it.
//!
//! The registry is only touched with the GIL held and never across a
//! release of it, so no other thread can hold its lock when `os.fork()`
//! (which holds the GIL) forks: the child always finds it free.
use crate::EngineError;
use djongo_server::in_process::{InProcessServer, StoreFiles};
use parking_lot::Mutex;
use pyo3::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

fn registry() -> &'static Mutex<Vec<Arc<InProcessServer>>> {
    static SERVING: OnceLock<Mutex<Vec<Arc<InProcessServer>>>> = OnceLock::new();
    SERVING.get_or_init(|| Mutex::new(Vec::new()))
}

/// The server this process runs for the store whose socket is `socket`.
pub fn serving_at(socket: &Path) -> Option<Arc<InProcessServer>> {
    registry().lock().iter().find(|s| s.socket() == socket && s.is_owner()).cloned()
}

/// Serves the store in `data_dir` from this process. `lock_fd` holds the
/// store's lock (taken by the caller) and is handed over: closed here if the
/// server does not start. Returns the socket other processes join on.
#[pyfunction]
pub fn serve_in_process(py: Python<'_>, data_dir: &str, lock_fd: i32) -> PyResult<String> {
    let lock = crate::engine::adopt_fd(lock_fd, "lock_fd")?;
    let dir = PathBuf::from(data_dir);
    let server = py.detach(|| InProcessServer::start(&dir, Some(lock))).map_err(|e| EngineError::new_err(e.to_string()))?;
    let socket = server.socket().display().to_string();
    registry().lock().push(Arc::new(server));
    Ok(socket)
}

/// Stops serving the store in `data_dir` from this process (as
/// `djongo-server` stops on SIGTERM); returns whether it served it.
#[pyfunction]
pub fn stop_in_process(py: Python<'_>, data_dir: &str) -> PyResult<bool> {
    let dir = Path::new(data_dir).canonicalize().unwrap_or_else(|_| PathBuf::from(data_dir));
    let found = {
        let mut servers = registry().lock();
        let at = servers.iter().position(|s| s.dir() == dir && s.is_owner());
        at.map(|i| servers.remove(i))
    };
    Ok(match found {
        Some(server) => py.detach(|| server.stop()),
        None => false,
    })
}

/// In a forked child, right after the fork: the parent's servers are left
/// alone for good (never run, stopped or dropped here), and the child's
/// copies of their lock, data file and socket descriptors are closed, so
/// that the parent's death releases the store and closes its connections.
/// Returns the data directories the parent served (the child joins them
/// through their socket).
#[pyfunction]
pub fn after_fork_in_child() -> PyResult<Vec<String>> {
    let Some(mut servers) = registry().try_lock() else {
        return Err(EngineError::new_err("the in-process store registry was locked at fork"));
    };
    let inherited: Vec<Arc<InProcessServer>> = std::mem::take(&mut *servers);
    drop(servers);
    let dirs = inherited.iter().map(|s| s.dir().display().to_string()).collect();
    let files: Vec<StoreFiles> = inherited.iter().map(|s| s.files().clone()).collect();
    // Never dropped in this process.
    std::mem::forget(inherited);
    if !files.is_empty() {
        close_inherited(&files).map_err(|e| EngineError::new_err(format!("cannot close the store's descriptors after fork: {e}")))?;
    }
    Ok(dirs)
}

/// Closes every descriptor of this process that is one of `stores`' lock or
/// data files, or a socket bound to one of their socket paths (the listener
/// and the accepted connections; a client's socket has no local address).
fn close_inherited(stores: &[StoreFiles]) -> std::io::Result<()> {
    use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
    #[cfg(target_os = "linux")]
    const FD_DIR: &str = "/proc/self/fd";
    #[cfg(not(target_os = "linux"))]
    const FD_DIR: &str = "/dev/fd";
    let listing = std::fs::read_dir(FD_DIR)?;
    let numbers: Vec<i32> = listing.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect();
    for fd in numbers {
        if fd <= 2 {
            continue;
        }
        // SAFETY: borrowed for fstat/getsockname only; a number that is no
        // longer open (the listing's own descriptor) fails those calls.
        #[allow(unsafe_code)]
        let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
        let Ok(stat) = rustix::fs::fstat(borrowed) else { continue };
        // Their types differ between platforms (u64 on Linux).
        #[allow(clippy::unnecessary_cast)]
        let identity = (stat.st_dev as u64, stat.st_ino as u64);
        let ours = if stores.iter().any(|s| s.files.contains(&identity)) {
            true
        } else if rustix::fs::FileType::from_raw_mode(stat.st_mode) == rustix::fs::FileType::Socket {
            socket_path(borrowed).is_some_and(|path| stores.iter().any(|s| s.socket == path))
        } else {
            false
        };
        if ours {
            // SAFETY: this descriptor is the child's copy of one the
            // parent's server owns; nothing in the child uses it (the
            // server's objects are leaked, never dropped), so closing it
            // here is its only close in this process.
            #[allow(unsafe_code)]
            let owned = unsafe { OwnedFd::from_raw_fd(borrowed.as_raw_fd()) };
            drop(owned);
        }
    }
    Ok(())
}

fn socket_path(fd: std::os::fd::BorrowedFd<'_>) -> Option<PathBuf> {
    let address = rustix::net::getsockname(fd).ok()?;
    let unix = rustix::net::SocketAddrUnix::try_from(address).ok()?;
    let path = unix.path()?;
    let path: &std::ffi::OsStr = std::os::unix::ffi::OsStrExt::from_bytes(path.to_bytes());
    Some(PathBuf::from(path))
}
