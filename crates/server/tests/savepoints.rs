//! Savepoints inside multi-document transactions, over the wire: the
//! `savepoint` / `rollbackToSavepoint` / `releaseSavepoint` commands.
mod common;

use bson::{doc, Document};
use common::{Client, TestServer, Txn};

/// The `_id`s of `coll` as the transaction sees them.
fn ids_in(t: &mut Txn, c: &mut Client, coll: &str) -> Vec<i32> {
    ids(&t.ok(c, doc! {"find": coll, "filter": {}, "sort": {"_id": 1}}))
}

fn commit(t: &mut Txn, c: &mut Client) {
    let reply = t.commit(c);
    assert_eq!(reply.get_f64("ok").ok(), Some(1.0), "commit failed: {reply}");
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
    t.ok(&mut c, doc! {"insert": "t", "documents": [{"_id": 1, "v": "a"}]});
    t.ok(&mut c, doc! {"savepoint": "s1"});
    t.ok(&mut c, doc! {"insert": "t", "documents": [{"_id": 2}, {"_id": 3}]});
    t.ok(&mut c, doc! {"update": "t", "updates": [{"q": {"_id": 1}, "u": {"$set": {"v": "changed"}}}]});
    t.ok(&mut c, doc! {"delete": "t", "deletes": [{"q": {"_id": 3}, "limit": 1}]});
    assert_eq!(ids_in(&mut t, &mut c, "t"), vec![1, 2]);
    t.ok(&mut c, doc! {"rollbackToSavepoint": "s1"});
    assert_eq!(ids_in(&mut t, &mut c, "t"), vec![1]);
    let reply = t.ok(&mut c, doc! {"find": "t", "filter": {"_id": 1}});
    let first = reply.get_document("cursor").unwrap().get_array("firstBatch").unwrap()[0].as_document().unwrap().clone();
    assert_eq!(first.get_str("v").unwrap(), "a");
    // The savepoint stays after a rollback to it, as in SQL.
    t.ok(&mut c, doc! {"insert": "t", "documents": [{"_id": 4}]});
    t.ok(&mut c, doc! {"rollbackToSavepoint": "s1"});
    // Nothing is visible outside until commit; then exactly the pre-savepoint writes.
    assert!(committed_ids(&mut c, "t").is_empty());
    commit(&mut t, &mut c);
    assert_eq!(committed_ids(&mut c, "t"), vec![1]);
}

#[test]
fn nested_savepoints() {
    let server = TestServer::start();
    let mut c = server.client();
    let mut t = Txn::new();
    t.ok(&mut c, doc! {"savepoint": "outer"});
    t.ok(&mut c, doc! {"insert": "t", "documents": [{"_id": 1}]});
    t.ok(&mut c, doc! {"savepoint": "inner"});
    t.ok(&mut c, doc! {"insert": "t", "documents": [{"_id": 2}]});
    t.ok(&mut c, doc! {"rollbackToSavepoint": "inner"});
    assert_eq!(ids_in(&mut t, &mut c, "t"), vec![1]);
    t.ok(&mut c, doc! {"insert": "t", "documents": [{"_id": 3}]});
    // Releasing the inner savepoint hands its writes to the outer one.
    t.ok(&mut c, doc! {"releaseSavepoint": "inner"});
    assert_eq!(ids_in(&mut t, &mut c, "t"), vec![1, 3]);
    let reply = t.cmd(&mut c, doc! {"rollbackToSavepoint": "inner"});
    assert!(reply.get_str("errmsg").unwrap().contains("inner"), "{reply}");
    // A failed savepoint command leaves the transaction usable.
    t.ok(&mut c, doc! {"rollbackToSavepoint": "outer"});
    assert!(ids_in(&mut t, &mut c, "t").is_empty());
    t.ok(&mut c, doc! {"insert": "t", "documents": [{"_id": 5}]});
    commit(&mut t, &mut c);
    assert_eq!(committed_ids(&mut c, "t"), vec![5]);
}

#[test]
fn rollback_to_a_savepoint_drops_the_ones_set_after_it() {
    let server = TestServer::start();
    let mut c = server.client();
    let mut t = Txn::new();
    t.ok(&mut c, doc! {"savepoint": "a"});
    t.ok(&mut c, doc! {"savepoint": "b"});
    t.ok(&mut c, doc! {"rollbackToSavepoint": "a"});
    let reply = t.cmd(&mut c, doc! {"releaseSavepoint": "b"});
    assert_eq!(reply.get_f64("ok").ok(), Some(0.0));
    assert!(reply.get_str("errmsg").unwrap().contains("no such savepoint \"b\""), "{reply}");
    t.ok(&mut c, doc! {"releaseSavepoint": "a"});
}

#[test]
fn unique_index_entries_are_restored() {
    let server = TestServer::start();
    let mut c = server.client();
    c.ok("db", doc! {"createIndexes": "u", "indexes": [{"key": {"email": 1}, "name": "email_1", "unique": true}]});
    let mut t = Txn::new();
    t.ok(&mut c, doc! {"insert": "u", "documents": [{"_id": 1, "email": "a@x"}]});
    t.ok(&mut c, doc! {"savepoint": "s1"});
    t.ok(&mut c, doc! {"insert": "u", "documents": [{"_id": 2, "email": "b@x"}]});
    // Changing the value moves its index entry; both must come back.
    t.ok(&mut c, doc! {"update": "u", "updates": [{"q": {"_id": 1}, "u": {"$set": {"email": "c@x"}}}]});
    t.ok(&mut c, doc! {"rollbackToSavepoint": "s1"});
    // b@x and c@x are free again; a@x is still taken by _id 1.
    t.ok(&mut c, doc! {"insert": "u", "documents": [{"_id": 3, "email": "b@x"}, {"_id": 4, "email": "c@x"}]});
    let reply = t.ok(&mut c, doc! {"insert": "u", "documents": [{"_id": 5, "email": "a@x"}]});
    assert_eq!(reply.get_array("writeErrors").unwrap()[0].as_document().unwrap().get_i32("code").ok(), Some(11000));
    let reply = t.ok(&mut c, doc! {"find": "u", "filter": {"email": "a@x"}});
    assert_eq!(ids(&reply), vec![1]);
    commit(&mut t, &mut c);
    assert_eq!(committed_ids(&mut c, "u"), vec![1, 3, 4]);
}

#[test]
fn failed_statement_after_a_savepoint_is_undone_alone() {
    let server = TestServer::start();
    let mut c = server.client();
    c.ok("db", doc! {"createIndexes": "u", "indexes": [{"key": {"k": 1}, "name": "k_1", "unique": true}]});
    let mut t = Txn::new();
    t.ok(&mut c, doc! {"insert": "u", "documents": [{"_id": 1, "k": 1}]});
    t.ok(&mut c, doc! {"savepoint": "s1"});
    // An ordered insert that fails on its third document: in SQL the whole
    // statement has no effect, and the transaction goes on.
    let reply = t.ok(&mut c, doc! {"insert": "u", "documents": [{"_id": 2, "k": 2}, {"_id": 3, "k": 3}, {"_id": 4, "k": 1}]});
    assert!(reply.get_array("writeErrors").is_ok());
    assert_eq!(ids_in(&mut t, &mut c, "u"), vec![1]);
    let reply = t.cmd(&mut c, doc! {"insert": "u", "documents": 5});
    assert_eq!(reply.get_f64("ok").ok(), Some(0.0));
    // The transaction lives on, so this is no reason to retry it.
    assert!(reply.get_array("errorLabels").is_err(), "{reply}");
    t.ok(&mut c, doc! {"rollbackToSavepoint": "s1"});
    t.ok(&mut c, doc! {"insert": "u", "documents": [{"_id": 2, "k": 2}]});
    commit(&mut t, &mut c);
    assert_eq!(committed_ids(&mut c, "u"), vec![1, 2]);
}

#[test]
fn collection_created_after_the_savepoint_disappears() {
    let server = TestServer::start();
    let mut c = server.client();
    c.ok("db", doc! {"create": "old"});
    let mut t = Txn::new();
    t.ok(&mut c, doc! {"insert": "kept", "documents": [{"_id": 1}]});
    t.ok(&mut c, doc! {"savepoint": "s1"});
    t.ok(&mut c, doc! {"create": "fresh"});
    t.ok(&mut c, doc! {"insert": "implicit", "documents": [{"_id": 1}]});
    t.ok(&mut c, doc! {"createIndexes": "kept", "indexes": [{"key": {"a": 1}, "name": "a_1"}]});
    t.ok(&mut c, doc! {"drop": "old"});
    t.ok(&mut c, doc! {"rollbackToSavepoint": "s1"});
    let reply = t.ok(&mut c, doc! {"listIndexes": "kept"});
    let batch = reply.get_document("cursor").unwrap().get_array("firstBatch").unwrap();
    assert_eq!(batch.len(), 1, "only _id_ is left: {reply}");
    // The catalog's id counter went back too: a new collection works.
    t.ok(&mut c, doc! {"create": "again"});
    t.ok(&mut c, doc! {"insert": "again", "documents": [{"_id": 7}]});
    commit(&mut t, &mut c);
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
    let reply = t.cmd(&mut c, doc! {"rollbackToSavepoint": "missing"});
    assert!(reply.get_str("errmsg").unwrap().contains("missing"), "{reply}");
    let reply = t.cmd(&mut c, doc! {"savepoint": 3});
    assert_eq!(reply.get_f64("ok").ok(), Some(0.0));
    // Still usable: those failures changed nothing.
    t.ok(&mut c, doc! {"insert": "t", "documents": [{"_id": 1}]});
    commit(&mut t, &mut c);
    assert_eq!(committed_ids(&mut c, "t"), vec![1]);
}
