//! Savepoints inside multi-document transactions, over the wire: the
//! `savepoint` / `rollbackToSavepoint` / `releaseSavepoint` commands.
mod common;

use bson::{doc, spec::BinarySubtype, Binary, Bson, Document};
use common::{Client, TestServer};

/// One session's transaction, with the fields every command must carry.
struct Txn {
    lsid: Bson,
    number: i64,
    started: bool,
}

impl Txn {
    fn new() -> Txn {
        let bytes: [u8; 16] = rand_bytes();
        Txn { lsid: Bson::Document(doc! {"id": Binary { subtype: BinarySubtype::Uuid, bytes: bytes.to_vec() }}), number: 1, started: false }
    }

    fn body(&mut self, mut body: Document) -> Document {
        body.insert("lsid", self.lsid.clone());
        body.insert("txnNumber", self.number);
        body.insert("autocommit", false);
        if !self.started {
            body.insert("startTransaction", true);
            self.started = true;
        }
        body
    }

    fn ok(&mut self, c: &mut Client, db: &str, body: Document) -> Document {
        let body = self.body(body);
        c.ok(db, body)
    }

    fn cmd(&mut self, c: &mut Client, db: &str, body: Document) -> Document {
        let body = self.body(body);
        c.cmd(db, body)
    }

    fn ids(&mut self, c: &mut Client, coll: &str) -> Vec<i32> {
        let reply = self.ok(c, "db", doc! {"find": coll, "filter": {}, "sort": {"_id": 1}});
        ids(&reply)
    }

    fn commit(&mut self, c: &mut Client) {
        let body = doc! {"commitTransaction": 1, "lsid": self.lsid.clone(), "txnNumber": self.number, "autocommit": false};
        c.ok("admin", body);
    }
}

fn rand_bytes() -> [u8; 16] {
    use std::time::{SystemTime, UNIX_EPOCH};
    let n = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    n.to_le_bytes()
}

fn ids(reply: &Document) -> Vec<i32> {
    let batch = reply.get_document("cursor").unwrap().get_array("firstBatch").unwrap();
    batch.iter().map(|d| d.as_document().unwrap().get_i32("_id").unwrap()).collect()
}

fn committed_ids(c: &mut Client, coll: &str) -> Vec<i32> {
    ids(&c.ok("db", doc! {"find": coll, "filter": {}, "sort": {"_id": 1}}))
}

fn collection_names(c: &mut Client) -> Vec<String> {
    let reply = c.ok("db", doc! {"listCollections": 1, "nameOnly": true});
    let batch = reply.get_document("cursor").unwrap().get_array("firstBatch").unwrap();
    let mut names: Vec<String> = batch.iter().map(|d| d.as_document().unwrap().get_str("name").unwrap().to_string()).collect();
    names.sort();
    names
}

#[test]
fn hello_advertises_savepoints() {
    let server = TestServer::start();
    let mut c = server.client();
    let reply = c.ok("admin", doc! {"hello": 1});
    assert_eq!(reply.get_document("djongo").unwrap().get_bool("savepoints").ok(), Some(true));
}

#[test]
fn rollback_to_undoes_later_writes_and_commit_keeps_earlier_ones() {
    let server = TestServer::start();
    let mut c = server.client();
    let mut t = Txn::new();
    t.ok(&mut c, "db", doc! {"insert": "t", "documents": [{"_id": 1, "v": "a"}]});
    t.ok(&mut c, "db", doc! {"savepoint": "s1"});
    t.ok(&mut c, "db", doc! {"insert": "t", "documents": [{"_id": 2}, {"_id": 3}]});
    t.ok(&mut c, "db", doc! {"update": "t", "updates": [{"q": {"_id": 1}, "u": {"$set": {"v": "changed"}}}]});
    t.ok(&mut c, "db", doc! {"delete": "t", "deletes": [{"q": {"_id": 3}, "limit": 1}]});
    assert_eq!(t.ids(&mut c, "t"), vec![1, 2]);
    t.ok(&mut c, "db", doc! {"rollbackToSavepoint": "s1"});
    assert_eq!(t.ids(&mut c, "t"), vec![1]);
    let reply = t.ok(&mut c, "db", doc! {"find": "t", "filter": {"_id": 1}});
    let first = reply.get_document("cursor").unwrap().get_array("firstBatch").unwrap()[0].as_document().unwrap().clone();
    assert_eq!(first.get_str("v").unwrap(), "a");
    // The savepoint stays after a rollback to it, as in SQL.
    t.ok(&mut c, "db", doc! {"insert": "t", "documents": [{"_id": 4}]});
    t.ok(&mut c, "db", doc! {"rollbackToSavepoint": "s1"});
    // Nothing is visible outside until commit; then exactly the pre-savepoint writes.
    assert!(committed_ids(&mut c, "t").is_empty());
    t.commit(&mut c);
    assert_eq!(committed_ids(&mut c, "t"), vec![1]);
}

#[test]
fn nested_savepoints() {
    let server = TestServer::start();
    let mut c = server.client();
    let mut t = Txn::new();
    t.ok(&mut c, "db", doc! {"savepoint": "outer"});
    t.ok(&mut c, "db", doc! {"insert": "t", "documents": [{"_id": 1}]});
    t.ok(&mut c, "db", doc! {"savepoint": "inner"});
    t.ok(&mut c, "db", doc! {"insert": "t", "documents": [{"_id": 2}]});
    t.ok(&mut c, "db", doc! {"rollbackToSavepoint": "inner"});
    assert_eq!(t.ids(&mut c, "t"), vec![1]);
    t.ok(&mut c, "db", doc! {"insert": "t", "documents": [{"_id": 3}]});
    // Releasing the inner savepoint hands its writes to the outer one.
    t.ok(&mut c, "db", doc! {"releaseSavepoint": "inner"});
    assert_eq!(t.ids(&mut c, "t"), vec![1, 3]);
    let reply = t.cmd(&mut c, "db", doc! {"rollbackToSavepoint": "inner"});
    assert!(reply.get_str("errmsg").unwrap().contains("inner"), "{reply}");
    // A failed savepoint command leaves the transaction usable.
    t.ok(&mut c, "db", doc! {"rollbackToSavepoint": "outer"});
    assert!(t.ids(&mut c, "t").is_empty());
    t.ok(&mut c, "db", doc! {"insert": "t", "documents": [{"_id": 5}]});
    t.commit(&mut c);
    assert_eq!(committed_ids(&mut c, "t"), vec![5]);
}

#[test]
fn rollback_to_a_savepoint_drops_the_ones_set_after_it() {
    let server = TestServer::start();
    let mut c = server.client();
    let mut t = Txn::new();
    t.ok(&mut c, "db", doc! {"savepoint": "a"});
    t.ok(&mut c, "db", doc! {"savepoint": "b"});
    t.ok(&mut c, "db", doc! {"rollbackToSavepoint": "a"});
    let reply = t.cmd(&mut c, "db", doc! {"releaseSavepoint": "b"});
    assert_eq!(reply.get_f64("ok").ok(), Some(0.0));
    assert!(reply.get_str("errmsg").unwrap().contains("no such savepoint \"b\""), "{reply}");
    t.ok(&mut c, "db", doc! {"releaseSavepoint": "a"});
}

#[test]
fn unique_index_entries_are_restored() {
    let server = TestServer::start();
    let mut c = server.client();
    c.ok("db", doc! {"createIndexes": "u", "indexes": [{"key": {"email": 1}, "name": "email_1", "unique": true}]});
    let mut t = Txn::new();
    t.ok(&mut c, "db", doc! {"insert": "u", "documents": [{"_id": 1, "email": "a@x"}]});
    t.ok(&mut c, "db", doc! {"savepoint": "s1"});
    t.ok(&mut c, "db", doc! {"insert": "u", "documents": [{"_id": 2, "email": "b@x"}]});
    // Changing the value moves its index entry; both must come back.
    t.ok(&mut c, "db", doc! {"update": "u", "updates": [{"q": {"_id": 1}, "u": {"$set": {"email": "c@x"}}}]});
    t.ok(&mut c, "db", doc! {"rollbackToSavepoint": "s1"});
    // b@x and c@x are free again; a@x is still taken by _id 1.
    t.ok(&mut c, "db", doc! {"insert": "u", "documents": [{"_id": 3, "email": "b@x"}, {"_id": 4, "email": "c@x"}]});
    let reply = t.ok(&mut c, "db", doc! {"insert": "u", "documents": [{"_id": 5, "email": "a@x"}]});
    assert_eq!(reply.get_array("writeErrors").unwrap()[0].as_document().unwrap().get_i32("code").ok(), Some(11000));
    let reply = t.ok(&mut c, "db", doc! {"find": "u", "filter": {"email": "a@x"}});
    assert_eq!(ids(&reply), vec![1]);
    t.commit(&mut c);
    assert_eq!(committed_ids(&mut c, "u"), vec![1, 3, 4]);
}

#[test]
fn failed_statement_after_a_savepoint_is_undone_alone() {
    let server = TestServer::start();
    let mut c = server.client();
    c.ok("db", doc! {"createIndexes": "u", "indexes": [{"key": {"k": 1}, "name": "k_1", "unique": true}]});
    let mut t = Txn::new();
    t.ok(&mut c, "db", doc! {"insert": "u", "documents": [{"_id": 1, "k": 1}]});
    t.ok(&mut c, "db", doc! {"savepoint": "s1"});
    // An ordered insert that fails on its third document: in SQL the whole
    // statement has no effect, and the transaction goes on.
    let reply = t.ok(&mut c, "db", doc! {"insert": "u", "documents": [{"_id": 2, "k": 2}, {"_id": 3, "k": 3}, {"_id": 4, "k": 1}]});
    assert!(reply.get_array("writeErrors").is_ok());
    assert_eq!(t.ids(&mut c, "u"), vec![1]);
    let reply = t.cmd(&mut c, "db", doc! {"insert": "u", "documents": 5});
    assert_eq!(reply.get_f64("ok").ok(), Some(0.0));
    // The transaction lives on, so this is no reason to retry it.
    assert!(reply.get_array("errorLabels").is_err(), "{reply}");
    t.ok(&mut c, "db", doc! {"rollbackToSavepoint": "s1"});
    t.ok(&mut c, "db", doc! {"insert": "u", "documents": [{"_id": 2, "k": 2}]});
    t.commit(&mut c);
    assert_eq!(committed_ids(&mut c, "u"), vec![1, 2]);
}

#[test]
fn collection_created_after_the_savepoint_disappears() {
    let server = TestServer::start();
    let mut c = server.client();
    c.ok("db", doc! {"create": "old"});
    let mut t = Txn::new();
    t.ok(&mut c, "db", doc! {"insert": "kept", "documents": [{"_id": 1}]});
    t.ok(&mut c, "db", doc! {"savepoint": "s1"});
    t.ok(&mut c, "db", doc! {"create": "fresh"});
    t.ok(&mut c, "db", doc! {"insert": "implicit", "documents": [{"_id": 1}]});
    t.ok(&mut c, "db", doc! {"createIndexes": "kept", "indexes": [{"key": {"a": 1}, "name": "a_1"}]});
    t.ok(&mut c, "db", doc! {"drop": "old"});
    t.ok(&mut c, "db", doc! {"rollbackToSavepoint": "s1"});
    let reply = t.ok(&mut c, "db", doc! {"listIndexes": "kept"});
    let batch = reply.get_document("cursor").unwrap().get_array("firstBatch").unwrap();
    assert_eq!(batch.len(), 1, "only _id_ is left: {reply}");
    // The catalog's id counter went back too: a new collection works.
    t.ok(&mut c, "db", doc! {"create": "again"});
    t.ok(&mut c, "db", doc! {"insert": "again", "documents": [{"_id": 7}]});
    t.commit(&mut c);
    assert_eq!(collection_names(&mut c), vec!["again", "kept", "old"]);
    assert_eq!(committed_ids(&mut c, "again"), vec![7]);
    assert_eq!(committed_ids(&mut c, "kept"), vec![1]);
}

#[test]
fn savepoint_commands_need_a_transaction() {
    let server = TestServer::start();
    let mut c = server.client();
    for cmd in ["savepoint", "rollbackToSavepoint", "releaseSavepoint"] {
        let reply = c.cmd("db", doc! {cmd: "s1"});
        assert_eq!(reply.get_i32("code").ok(), Some(251), "{reply}");
        assert!(reply.get_str("errmsg").unwrap().contains(cmd), "{reply}");
    }
    let mut t = Txn::new();
    let reply = t.cmd(&mut c, "db", doc! {"rollbackToSavepoint": "missing"});
    assert!(reply.get_str("errmsg").unwrap().contains("missing"), "{reply}");
    let reply = t.cmd(&mut c, "db", doc! {"savepoint": 3});
    assert_eq!(reply.get_f64("ok").ok(), Some(0.0));
    // Still usable: those failures changed nothing.
    t.ok(&mut c, "db", doc! {"insert": "t", "documents": [{"_id": 1}]});
    t.commit(&mut c);
    assert_eq!(committed_ids(&mut c, "t"), vec![1]);
}
