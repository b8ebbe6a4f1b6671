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
