//! A minimal wire-protocol client for the integration tests.
#![allow(dead_code)]
use bson::{doc, Document};
use djongo_server::wire;
use djongo_server::{spawn, Bind, ServerConfig, ServerHandle};
use std::net::TcpStream;

pub struct TestServer {
    pub handle: Option<ServerHandle>,
    pub dir: tempfile::TempDir,
}

impl TestServer {
    pub fn start() -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let handle = spawn(ServerConfig { data_dir: dir.path().to_path_buf(), bind: Bind::Tcp("127.0.0.1:0".into()) }).unwrap();
        TestServer { handle: Some(handle), dir }
    }

    pub fn restart(&mut self) {
        if let Some(h) = self.handle.take() {
            h.shutdown();
        }
        self.handle = Some(spawn(ServerConfig { data_dir: self.dir.path().to_path_buf(), bind: Bind::Tcp("127.0.0.1:0".into()) }).unwrap());
    }

    /// A server whose writers give up quickly on a held writer lock.
    pub fn start_with_lock_timeout(timeout: std::time::Duration) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let options = djongo_server::ServerOptions { write_lock_timeout: Some(timeout), ..Default::default() };
        let handle = djongo_server::spawn_with(ServerConfig { data_dir: dir.path().to_path_buf(), bind: Bind::Tcp("127.0.0.1:0".into()) }, options).unwrap();
        TestServer { handle: Some(handle), dir }
    }

    pub fn start_with(options: djongo_server::ServerOptions) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let handle = djongo_server::spawn_with(ServerConfig { data_dir: dir.path().to_path_buf(), bind: Bind::Tcp("127.0.0.1:0".into()) }, options).unwrap();
        TestServer { handle: Some(handle), dir }
    }

    pub fn client(&self) -> Client {
        Client::connect(&self.handle.as_ref().unwrap().address())
    }
}

pub struct Client {
    pub stream: TcpStream,
    next_id: i32,
}

impl Client {
    pub fn connect(addr: &str) -> Client {
        Client { stream: TcpStream::connect(addr).unwrap(), next_id: 1 }
    }

    fn read_reply(&mut self) -> Document {
        let (h, p) = wire::read_message(&mut self.stream).unwrap().expect("connection closed");
        wire::parse_reply(&h, &p).unwrap()
    }

    /// Sends `body` to database `db` as an OP_MSG and returns the reply.
    pub fn cmd(&mut self, db: &str, mut body: Document) -> Document {
        body.insert("$db", db);
        self.next_id += 1;
        let bytes = wire::encode_msg(self.next_id, 0, 0, &body).unwrap();
        wire::write_message(&mut self.stream, &bytes).unwrap();
        self.read_reply()
    }

    /// Sends a command with a kind-1 document sequence.
    pub fn cmd_seq(&mut self, db: &str, mut body: Document, id: &str, docs: &[Document]) -> Document {
        body.insert("$db", db);
        self.next_id += 1;
        let bytes = wire::encode_msg_with_sequence(self.next_id, &body, id, docs).unwrap();
        wire::write_message(&mut self.stream, &bytes).unwrap();
        self.read_reply()
    }

    pub fn legacy_query(&mut self, ns: &str, q: Document) -> Document {
        self.next_id += 1;
        let bytes = wire::encode_query(self.next_id, ns, &q).unwrap();
        wire::write_message(&mut self.stream, &bytes).unwrap();
        self.read_reply()
    }

    pub fn ok(&mut self, db: &str, body: Document) -> Document {
        let reply = self.cmd(db, body.clone());
        assert_eq!(reply.get_f64("ok").ok(), Some(1.0), "command {body} failed: {reply}");
        reply
    }

    pub fn find_all(&mut self, db: &str, coll: &str) -> Vec<Document> {
        let reply = self.ok(db, doc! {"find": coll, "filter": {}});
        let cursor = reply.get_document("cursor").unwrap();
        cursor.get_array("firstBatch").unwrap().iter().map(|d| d.as_document().unwrap().clone()).collect()
    }
}

/// One session's multi-document transactions, with the fields every command
/// of one must carry (`lsid`, `txnNumber`, `autocommit`, and
/// `startTransaction` on its first command), on database `db`.
pub struct Txn {
    id: bson::Binary,
    lsid: bson::Bson,
    number: i64,
    started: bool,
}

impl Default for Txn {
    fn default() -> Self {
        Txn::new()
    }
}

impl Txn {
    /// A new session (random id), before its first transaction.
    pub fn new() -> Txn {
        let bytes: [u8; 16] = rand::random();
        let id = bson::Binary { subtype: bson::spec::BinarySubtype::Uuid, bytes: bytes.to_vec() };
        Txn { lsid: bson::Bson::Document(doc! {"id": id.clone()}), id, number: 1, started: false }
    }

    /// The session's id, as `lsid.id`.
    pub fn id(&self) -> bson::Binary {
        self.id.clone()
    }

    /// `body` as a command of the current transaction.
    pub fn body(&mut self, mut body: Document) -> Document {
        body.insert("lsid", self.lsid.clone());
        body.insert("txnNumber", self.number);
        body.insert("autocommit", false);
        if !self.started {
            body.insert("startTransaction", true);
            self.started = true;
        }
        body
    }

    pub fn cmd(&mut self, c: &mut Client, body: Document) -> Document {
        let body = self.body(body);
        c.cmd("db", body)
    }

    /// Runs `body` in the transaction and asserts that it succeeded.
    pub fn ok(&mut self, c: &mut Client, body: Document) -> Document {
        let reply = self.cmd(c, body.clone());
        assert_eq!(reply.get_f64("ok").ok(), Some(1.0), "{body} failed: {reply}");
        reply
    }

    /// Ends the transaction with `cmd` (`commitTransaction` or
    /// `abortTransaction`); the next command starts the next one.
    pub fn end(&mut self, c: &mut Client, cmd: &str) -> Document {
        let reply = c.cmd("admin", self.ending(cmd));
        self.number += 1;
        self.started = false;
        reply
    }

    /// The `cmd` (`commitTransaction`, `abortTransaction`) that would end
    /// the transaction, unsent.
    pub fn ending(&self, cmd: &str) -> Document {
        doc! {cmd: 1, "lsid": self.lsid.clone(), "txnNumber": self.number, "autocommit": false}
    }

    pub fn commit(&mut self, c: &mut Client) -> Document {
        self.end(c, "commitTransaction")
    }
}
