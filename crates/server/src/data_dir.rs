//! The data directory of a store as several processes share it: who may use
//! it, the lock that says which process serves it, and where its owner-only
//! socket lives.
//!
//! One process at a time opens `djongo.redb` (redb locks the file) and
//! serves it on a Unix-domain socket; every other process of the OS user who
//! owns the directory connects to that socket. Nobody else gets in: the
//! directory must belong to this user and be writable by no one else, and
//! the socket and files in it are created owner-only (0600).
//!
//! `djongo.lock` elects the serving process: whoever holds an exclusive
//! `flock` on it serves the store, until it exits or dies (the kernel drops
//! the lock with the process, so a crash leaves nothing stale behind but a
//! socket file, which the next server removes under the lock).
use std::fs::{File, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use thiserror::Error;

pub const LOCK_FILE: &str = "djongo.lock";
pub const SOCKET_FILE: &str = "djongo.sock";
/// What a server started on demand writes (its start, its errors).
pub const LOG_FILE: &str = "djongo-server.log";

/// Longest socket path `bind`/`connect` accept: `sun_path` is 108 bytes on
/// Linux and 104 on the BSDs and macOS, including the terminating NUL.
#[cfg(target_os = "linux")]
pub const MAX_SOCKET_PATH: usize = 107;
#[cfg(not(target_os = "linux"))]
pub const MAX_SOCKET_PATH: usize = 103;

#[derive(Debug, Error)]
pub enum DataDirError {
    #[error("cannot create the data directory {path}: {source}")]
    Create { path: PathBuf, source: io::Error },
    #[error("cannot use the data directory {path}: {source}")]
    Inspect { path: PathBuf, source: io::Error },
    #[error("the data directory {path} is not a directory")]
    NotADirectory { path: PathBuf },
    #[error(
        "the data directory {path} belongs to uid {owner}, but this process runs as uid {euid}: \
         only the owner of a store may serve or use it (run as that user, or choose another DATA_DIR)"
    )]
    NotOwner { path: PathBuf, owner: u32, euid: u32 },
    #[error(
        "the data directory {path} is writable by other users (mode {mode:04o}), who could replace \
         its socket or files: make it private with `chmod 700 {path}`"
    )]
    WritableByOthers { path: PathBuf, mode: u32 },
    #[error("the data directory {path} is not writable by this user: {source}")]
    NotWritable { path: PathBuf, source: io::Error },
    #[error(
        "the file system of {path} has no working file locks ({source}); djongo needs them so that \
         processes sharing the store agree on which one serves it: put DATA_DIR on a local file system"
    )]
    NoLocks { path: PathBuf, source: io::Error },
    #[error("cannot set owner-only permissions on {path}: {source}")]
    Chmod { path: PathBuf, source: io::Error },
    #[error(
        "the per-user socket directory {path} is not private to uid {euid} (owner {owner}, mode \
         {mode:04o}); remove it, or use a DATA_DIR with a shorter path"
    )]
    SocketDirNotPrivate { path: PathBuf, owner: u32, euid: u32, mode: u32 },
}

fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Creates `dir` (0700) if it is missing, and checks that it belongs to
/// this user and that nobody else may write in it. Returns whether it was
/// created. A directory others can only read is accepted: everything in it
/// is created 0600.
pub fn prepare(dir: &Path) -> Result<bool, DataDirError> {
    let created = match std::fs::symlink_metadata(dir) {
        Ok(_) => false,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(parent) = dir.parent() {
                std::fs::create_dir_all(parent).map_err(|source| DataDirError::Create { path: dir.to_path_buf(), source })?;
            }
            match std::fs::DirBuilder::new().mode(0o700).create(dir) {
                Ok(()) => true,
                // Another process made it at the same moment.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => false,
                Err(source) => return Err(DataDirError::Create { path: dir.to_path_buf(), source }),
            }
        }
        Err(source) => return Err(DataDirError::Inspect { path: dir.to_path_buf(), source }),
    };
    let meta = std::fs::metadata(dir).map_err(|source| DataDirError::Inspect { path: dir.to_path_buf(), source })?;
    if !meta.is_dir() {
        return Err(DataDirError::NotADirectory { path: dir.to_path_buf() });
    }
    let euid = euid();
    if meta.uid() != euid {
        return Err(DataDirError::NotOwner { path: dir.to_path_buf(), owner: meta.uid(), euid });
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(DataDirError::WritableByOthers { path: dir.to_path_buf(), mode });
    }
    Ok(created)
}

/// Opens (creating, 0600) a file in the data directory for the server.
fn open_private(path: &Path, write: bool) -> Result<File, DataDirError> {
    let file = OpenOptions::new()
        .read(true)
        .write(write)
        .append(write)
        .create(true)
        .mode(0o600)
        .open(path)
        .map_err(|source| match source.kind() {
            io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem => {
                DataDirError::NotWritable { path: path.parent().unwrap_or(path).to_path_buf(), source }
            }
            _ => DataDirError::Inspect { path: path.to_path_buf(), source },
        })?;
    Ok(file)
}

/// Makes an existing file owner-only (the data file of a store made by an
/// older version, or under a permissive umask).
pub fn make_private(path: &Path) -> Result<(), DataDirError> {
    match std::fs::set_permissions(path, Permissions::from_mode(0o600)) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(DataDirError::Chmod { path: path.to_path_buf(), source }),
    }
}

/// The exclusive lock on `djongo.lock`: whoever holds it serves the store.
/// Dropping it (or the process ending) releases it.
#[derive(Debug)]
pub struct StoreLock {
    file: File,
    path: PathBuf,
}

fn no_locks(source: &io::Error) -> bool {
    use rustix::io::Errno;
    [Errno::NOLCK, Errno::NOSYS, Errno::OPNOTSUPP, Errno::INVAL].iter().any(|e| source.raw_os_error() == Some(e.raw_os_error()))
        || source.kind() == io::ErrorKind::Unsupported
}

impl StoreLock {
    /// Takes the lock if nobody holds it; `None` means a server is running.
    pub fn try_acquire(dir: &Path) -> Result<Option<StoreLock>, DataDirError> {
        let path = dir.join(LOCK_FILE);
        let file = open_private(&path, true)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(StoreLock { file, path })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(source)) if no_locks(&source) => Err(DataDirError::NoLocks { path, source }),
            Err(std::fs::TryLockError::Error(source)) => Err(DataDirError::Inspect { path, source }),
        }
    }

    /// Takes over a lock this process already holds through `file` (the
    /// process that started this server took it and handed it down).
    pub fn adopt(file: File, dir: &Path) -> Result<StoreLock, DataDirError> {
        let path = dir.join(LOCK_FILE);
        // Locking an open file description that holds the lock succeeds at
        // once; one that does not hold it fails rather than waiting.
        match file.try_lock() {
            Ok(()) => Ok(StoreLock { file, path }),
            Err(std::fs::TryLockError::WouldBlock) => Err(DataDirError::Inspect {
                path,
                source: io::Error::other("the lock handed to this server is held by another process"),
            }),
            Err(std::fs::TryLockError::Error(source)) => Err(DataDirError::Inspect { path, source }),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for StoreLock {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

/// Where the store's socket lives: `<dir>/djongo.sock`, or, when that path
/// is too long for a socket address, `/tmp/djongo-<uid>/<hash>.sock` in a
/// directory private to this user (the hash names the data directory, so
/// every process finds the same socket).
pub fn socket_path(dir: &Path) -> PathBuf {
    let inside = dir.join(SOCKET_FILE);
    if inside.as_os_str().len() <= MAX_SOCKET_PATH {
        return inside;
    }
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(dir.as_os_str().as_encoded_bytes());
    let name: String = digest.iter().take(12).map(|b| format!("{b:02x}")).collect();
    runtime_dir().join(format!("{name}.sock"))
}

/// `/tmp/djongo-<uid>`: where sockets of stores with long paths live. A
/// fixed place, not `$TMPDIR`, so that processes with different
/// environments (a shell, a service) find the same socket.
pub fn runtime_dir() -> PathBuf {
    PathBuf::from(format!("/tmp/djongo-{}", euid()))
}

/// Makes sure the directory holding the socket is private to this user:
/// the data directory (checked by `prepare`), or the per-user runtime
/// directory, created 0700 and refused if anyone else owns or can enter it.
pub fn prepare_socket_dir(socket: &Path) -> Result<(), DataDirError> {
    let Some(dir) = socket.parent() else { return Ok(()) };
    if dir != runtime_dir() {
        return Ok(());
    }
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(source) => return Err(DataDirError::Create { path: dir.to_path_buf(), source }),
    }
    let meta = std::fs::symlink_metadata(dir).map_err(|source| DataDirError::Inspect { path: dir.to_path_buf(), source })?;
    let (owner, mode, euid) = (meta.uid(), meta.mode() & 0o7777, euid());
    if !meta.is_dir() || owner != euid || mode & 0o077 != 0 {
        return Err(DataDirError::SocketDirNotPrivate { path: dir.to_path_buf(), owner, euid, mode });
    }
    Ok(())
}

/// Opens the log a server started on demand writes to (0600, appended).
pub fn open_log(dir: &Path) -> Result<File, DataDirError> {
    open_private(&dir.join(LOG_FILE), true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_directory_is_private() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("a/b/data");
        assert!(prepare(&dir).unwrap());
        let mode = std::fs::metadata(&dir).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o700);
        assert!(!prepare(&dir).unwrap());
    }

    #[test]
    fn a_directory_others_can_write_is_refused() {
        let root = tempfile::tempdir().unwrap();
        std::fs::set_permissions(root.path(), Permissions::from_mode(0o777)).unwrap();
        let err = prepare(root.path()).unwrap_err();
        assert!(matches!(err, DataDirError::WritableByOthers { mode: 0o777, .. }), "{err}");
        assert!(err.to_string().contains("chmod 700"));
        // Readable by others is fine: what is inside is owner-only.
        std::fs::set_permissions(root.path(), Permissions::from_mode(0o755)).unwrap();
        assert!(!prepare(root.path()).unwrap());
    }

    #[test]
    fn one_holder_of_the_lock_at_a_time() {
        let root = tempfile::tempdir().unwrap();
        let first = StoreLock::try_acquire(root.path()).unwrap().expect("free");
        assert!(StoreLock::try_acquire(root.path()).unwrap().is_none());
        let mode = std::fs::metadata(first.path()).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o600);
        drop(first);
        assert!(StoreLock::try_acquire(root.path()).unwrap().is_some());
    }

    #[test]
    fn a_handed_down_lock_is_adopted_and_a_foreign_one_refused() {
        let root = tempfile::tempdir().unwrap();
        let held = StoreLock::try_acquire(root.path()).unwrap().unwrap();
        let same = held.file.try_clone().unwrap();
        let other = File::open(root.path().join(LOCK_FILE)).unwrap();
        assert!(StoreLock::adopt(other, root.path()).is_err());
        let adopted = StoreLock::adopt(same, root.path()).unwrap();
        std::mem::forget(held); // its unlock would release the shared lock
        assert!(StoreLock::try_acquire(root.path()).unwrap().is_none());
        drop(adopted);
        assert!(StoreLock::try_acquire(root.path()).unwrap().is_some());
    }

    #[test]
    fn a_file_system_without_locks_is_told_apart_from_other_failures() {
        use rustix::io::Errno;
        for errno in [Errno::NOLCK, Errno::NOSYS, Errno::OPNOTSUPP] {
            assert!(no_locks(&io::Error::from_raw_os_error(errno.raw_os_error())), "{errno:?}");
        }
        assert!(!no_locks(&io::Error::from_raw_os_error(Errno::ACCESS.raw_os_error())));
        let err = DataDirError::NoLocks { path: PathBuf::from("/nfs/data/djongo.lock"), source: io::Error::from_raw_os_error(Errno::NOLCK.raw_os_error()) };
        assert!(err.to_string().contains("has no working file locks"), "{err}");
    }

    #[test]
    fn long_paths_get_a_short_private_socket() {
        let short = Path::new("/srv/app/djongo-data");
        assert_eq!(socket_path(short), short.join(SOCKET_FILE));
        let long = PathBuf::from(format!("/srv/{}/djongo-data", "x".repeat(120)));
        let socket = socket_path(&long);
        assert!(socket.as_os_str().len() <= MAX_SOCKET_PATH);
        assert_eq!(socket.parent().unwrap(), runtime_dir());
        assert_eq!(socket, socket_path(&long), "every process finds the same socket");
        let other = PathBuf::from(format!("/srv/{}/djongo-data2", "x".repeat(120)));
        assert_ne!(socket, socket_path(&other));
    }
}
