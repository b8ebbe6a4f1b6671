//! A store served from inside an application process (the Django setting
//! `STORE_SERVER: "in-process"`, docs/multiprocess.md).
//!
//! The process that takes the store's lock opens the engine itself and
//! serves the store's owner-only socket from threads of its own, exactly as
//! `djongo-server` does (`standalone::StoreServer`), so every other process
//! joins it the usual way. Its own client hands commands to the command
//! layer in the calling thread instead (`run`): same `ServerState`, so the
//! sessions, transactions, retry records and cursors are the ones the
//! socket's clients share, without the two wake-ups a round trip costs.
//!
//! Two rules keep the arrangement safe:
//! - stopping (`stop`) waits for the commands running in callers' threads,
//!   then stops as `djongo-server` does: connections get their replies, the
//!   socket goes, the database file is closed, and only then is the lock
//!   released;
//! - a forked child of the serving process never runs, stops or drops the
//!   inherited server (its threads did not come along, and redb's `Database`
//!   dropped there could write to the parent's file): `run` and `stop` answer
//!   `None`/`false` in any process but the one that started the server, and
//!   dropping the server there leaks it. The child's copies of the store's
//!   descriptors are for the binding layer to close (`StoreFiles`).
use crate::auth::ConnAuth;
use crate::commands::run_shared_command_encoded;
use crate::data_dir::LOCK_FILE;
use crate::server::ServerOptions;
use crate::standalone::{StartError, StoreServer};
use crate::state::ConnInfo;
use crate::storage::DATA_FILE;
use bson::{Document, RawDocumentBuf};
use parking_lot::RwLock;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What identifies the store's files and socket, for a forked child to find
/// (and close) its inherited descriptors of them.
#[derive(Debug, Clone)]
pub struct StoreFiles {
    /// The lock file's and the data file's (device, inode).
    pub files: Vec<(u64, u64)>,
    /// The socket's path: the listening socket and every accepted connection
    /// have it as their local address.
    pub socket: PathBuf,
}

pub struct InProcessServer {
    /// `None` once stopped. Commands run under the read side; `stop` takes
    /// the write side, so it waits for them.
    serving: RwLock<Option<StoreServer>>,
    /// The process that started the server: the only one that may use it.
    owner: u32,
    /// The connection id the commands of this process's own client carry.
    connection_id: i64,
    dir: PathBuf,
    socket: PathBuf,
    files: StoreFiles,
}

impl InProcessServer {
    /// Serves the store in `dir` from this process. `lock`: the store's lock,
    /// already taken by the caller (adopted); without it the lock is taken
    /// here, and a store someone else serves is refused.
    pub fn start(dir: &Path, lock: Option<File>) -> Result<InProcessServer, StartError> {
        let server = StoreServer::start(dir, lock, ServerOptions::default())?;
        let dir = server.dir().to_path_buf();
        let socket = server.socket().to_path_buf();
        let files = StoreFiles {
            files: [LOCK_FILE, DATA_FILE].iter().filter_map(|name| file_identity(&dir.join(name))).collect(),
            socket: socket.clone(),
        };
        let connection_id = server.handle().state().next_connection_id();
        Ok(InProcessServer { serving: RwLock::new(Some(server)), owner: std::process::id(), connection_id, dir, socket, files })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    pub fn files(&self) -> &StoreFiles {
        &self.files
    }

    /// Whether this process is the one that serves (not a forked child).
    pub fn is_owner(&self) -> bool {
        std::process::id() == self.owner
    }

    /// Runs one command (with its `$db` and any session fields, and with a
    /// document sequence already folded in) in the calling thread, as a
    /// command of a connection on the owner-only socket; returns its reply,
    /// encoded as the socket would carry it (a find's documents copied from
    /// the stored bytes, `stored_batch`), or the error that kept it from
    /// being encoded. `Err(body)`: this server does not serve here (it was
    /// stopped, or this is a forked child of the serving process): send the
    /// command through the socket instead.
    pub fn run(&self, body: Document) -> Result<bson::error::Result<RawDocumentBuf>, Document> {
        if !self.is_owner() {
            return Err(body);
        }
        let serving = self.serving.read();
        let Some(server) = serving.as_ref() else { return Err(body) };
        let state = server.handle().state();
        if state.is_shutting_down() {
            return Err(body);
        }
        let mut conn = ConnInfo::new(self.connection_id, self.socket.display().to_string(), "in-process".into(), ConnAuth::owner());
        Ok(run_shared_command_encoded(state, &mut conn, &Arc::new(body)))
    }

    /// Stops serving, once the commands running in callers' threads have
    /// their replies; returns whether it was serving. In a forked child it
    /// does nothing (and says false): the server is the parent's.
    pub fn stop(&self) -> bool {
        if !self.is_owner() {
            return false;
        }
        let server = self.serving.write().take();
        match server {
            Some(server) => {
                server.shutdown();
                true
            }
            None => false,
        }
    }
}

impl Drop for InProcessServer {
    fn drop(&mut self) {
        let Some(server) = self.serving.get_mut().take() else { return };
        if std::process::id() == self.owner {
            server.shutdown();
        } else {
            // A forked child: neither the threads nor the right to close the
            // parent's database are here. Leaked on purpose.
            std::mem::forget(server);
        }
    }
}

#[cfg(unix)]
fn file_identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::{doc, Bson};

    fn run(server: &InProcessServer, body: Document) -> Result<Document, Document> {
        server.run(body).map(|reply| Document::try_from(reply.unwrap()).unwrap())
    }

    fn count(reply: &Document) -> i64 {
        match reply.get("n") {
            Some(Bson::Int32(n)) => i64::from(*n),
            Some(Bson::Int64(n)) => *n,
            _ => -1,
        }
    }

    #[test]
    fn commands_run_in_the_calling_thread_and_through_the_socket_on_the_same_state() {
        let root = tempfile::tempdir().unwrap();
        let server = InProcessServer::start(root.path(), None).unwrap();
        let reply = run(&server, doc! {"insert": "t", "documents": [{"_id": 1, "x": "direct"}], "$db": "d"}).unwrap();
        assert_eq!(count(&reply), 1, "{reply}");
        // A second server of the same store is refused while this one serves.
        assert!(matches!(InProcessServer::start(root.path(), None), Err(StartError::AlreadyServed { .. })));
        // A session's transaction, begun in the calling thread, is the socket's too.
        let lsid = doc! {"id": bson::Binary { subtype: bson::spec::BinarySubtype::Uuid, bytes: vec![7; 16] }};
        let reply = run(
            &server,
            doc! {"insert": "t", "documents": [{"_id": 2}], "$db": "d", "lsid": lsid.clone(), "txnNumber": 1i64, "startTransaction": true, "autocommit": false})
            .unwrap();
        assert_eq!(reply.get_f64("ok").unwrap(), 1.0, "{reply}");
        let outside = run(&server, doc! {"count": "t", "$db": "d"}).unwrap();
        assert_eq!(count(&outside), 1, "uncommitted: {outside}");
        let mut stream = std::os::unix::net::UnixStream::connect(server.socket()).unwrap();
        let commit = doc! {"commitTransaction": 1, "$db": "admin", "lsid": lsid, "txnNumber": 1i64, "autocommit": false};
        let bytes = crate::wire::encode_msg(1, 0, 0, &commit).unwrap();
        crate::wire::write_message(&mut stream, &bytes).unwrap();
        let (header, payload) = crate::wire::read_message(&mut stream).unwrap().unwrap();
        let crate::wire::Request::Msg { body, .. } = crate::wire::parse_request(&header, &payload).unwrap() else { panic!("not an OP_MSG") };
        assert_eq!(body.get_f64("ok").unwrap(), 1.0, "{body}");
        let after = run(&server, doc! {"count": "t", "$db": "d"}).unwrap();
        assert_eq!(count(&after), 2, "committed through the socket: {after}");
        drop(stream);
        let socket = server.socket().to_path_buf();
        assert!(server.stop());
        assert!(!socket.exists());
        assert!(run(&server, doc! {"ping": 1, "$db": "admin"}).is_err(), "stopped");
        assert!(!server.stop());
        // The lock is free again: the next server may start.
        InProcessServer::start(root.path(), None).unwrap().stop();
    }
}
