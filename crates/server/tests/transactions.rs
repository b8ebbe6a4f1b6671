//! Concurrent multi-document transactions over the wire: snapshot reads,
//! per-document write conflicts, and what happens to the documents of a
//! transaction whose client goes away.
//!
//! Most tests interleave two transactions from one thread: had a command
//! waited for the other transaction, the test could not go on, so passing
//! shows that nothing waited.
mod common;

use bson::{doc, Bson, Document};
use common::{Client, TestServer, Txn};
use djongo_server::ServerOptions;
use std::time::Duration;

fn code(reply: &Document) -> Option<i32> {
    reply.get_i32("code").ok()
}

fn labels(reply: &Document) -> Vec<String> {
    reply.get_array("errorLabels").map(|a| a.iter().filter_map(|l| l.as_str().map(String::from)).collect()).unwrap_or_default()
}

fn first(reply: &Document) -> Option<Document> {
    let batch = reply.get_document("cursor").unwrap().get_array("firstBatch").unwrap();
    batch.first().map(|d| d.as_document().unwrap().clone())
}

fn value_of(c: &mut Client, coll: &str, id: i32) -> Option<Bson> {
    let reply = c.ok("db", doc! {"find": coll, "filter": {"_id": id}});
    first(&reply).and_then(|d| d.get("n").cloned())
}

fn setup(server: &TestServer, docs: Vec<Document>) -> Client {
    let mut c = server.client();
    c.ok("db", doc! {"insert": "t", "documents": docs});
    c
}

#[test]
fn transactions_on_different_documents_both_commit_without_waiting() {
    let server = TestServer::start();
    let mut c = setup(&server, vec![doc! {"_id": 1, "n": 0}, doc! {"_id": 2, "n": 0}]);
    let (mut a, mut b) = (Txn::new(), Txn::new());
    a.ok(&mut c, doc! {"update": "t", "updates": [{"q": {"_id": 1}, "u": {"$inc": {"n": 1}}}]});
    b.ok(&mut c, doc! {"update": "t", "updates": [{"q": {"_id": 2}, "u": {"$inc": {"n": 10}}}]});
    // New documents, in the same collection, from both.
    a.ok(&mut c, doc! {"insert": "t", "documents": [{"_id": 3, "n": 3}]});
    b.ok(&mut c, doc! {"insert": "t", "documents": [{"_id": 4, "n": 4}]});
    // Neither sees the other's uncommitted writes; each sees its own.
    assert_eq!(first(&a.ok(&mut c, doc! {"find": "t", "filter": {"_id": 2}})).unwrap().get_i32("n").ok(), Some(0));
    assert!(first(&a.ok(&mut c, doc! {"find": "t", "filter": {"_id": 4}})).is_none());
    assert_eq!(first(&b.ok(&mut c, doc! {"find": "t", "filter": {"_id": 2}})).unwrap().get_i32("n").ok(), Some(10));
    assert_eq!(b.commit(&mut c).get_f64("ok").ok(), Some(1.0));
    assert_eq!(a.commit(&mut c).get_f64("ok").ok(), Some(1.0));
    assert_eq!(value_of(&mut c, "t", 1), Some(Bson::Int32(1)));
    assert_eq!(value_of(&mut c, "t", 2), Some(Bson::Int32(10)));
    assert_eq!(c.find_all("db", "t").len(), 4);
}

#[test]
fn the_second_writer_of_a_document_gets_a_write_conflict_at_once() {
    let server = TestServer::start();
    let mut c = setup(&server, vec![doc! {"_id": 1, "n": 0}]);
    let (mut a, mut b) = (Txn::new(), Txn::new());
    a.ok(&mut c, doc! {"update": "t", "updates": [{"q": {"_id": 1}, "u": {"$inc": {"n": 1}}}]});
    let reply = b.cmd(&mut c, doc! {"update": "t", "updates": [{"q": {"_id": 1}, "u": {"$inc": {"n": 10}}}]});
    assert_eq!(code(&reply), Some(112), "{reply}");
    assert_eq!(reply.get_str("codeName").ok(), Some("WriteConflict"));
    assert_eq!(labels(&reply), vec!["TransientTransactionError"]);
    // The loser is aborted; the winner commits.
    assert_eq!(code(&b.commit(&mut c)), Some(251));
    assert_eq!(a.commit(&mut c).get_f64("ok").ok(), Some(1.0));
    // Retried from the start, the loser now succeeds on the new value.
    b.ok(&mut c, doc! {"update": "t", "updates": [{"q": {"_id": 1}, "u": {"$inc": {"n": 10}}}]});
    assert_eq!(b.commit(&mut c).get_f64("ok").ok(), Some(1.0));
    assert_eq!(value_of(&mut c, "t", 1), Some(Bson::Int32(11)));
}

#[test]
fn a_document_committed_after_the_snapshot_conflicts_first_updater_wins() {
    let server = TestServer::start();
    let mut c = setup(&server, vec![doc! {"_id": 1, "n": 0}, doc! {"_id": 2, "n": 0}]);
    let mut a = Txn::new();
    // The snapshot is taken at the first statement.
    let seen = a.ok(&mut c, doc! {"find": "t", "filter": {"_id": 1}});
    assert_eq!(first(&seen).unwrap().get_i32("n").ok(), Some(0));
    c.ok("db", doc! {"update": "t", "updates": [{"q": {"_id": 1}, "u": {"$set": {"n": 5}}}]});
    // Snapshot reads: the transaction still sees 0.
    assert_eq!(first(&a.ok(&mut c, doc! {"find": "t", "filter": {"_id": 1}})).unwrap().get_i32("n").ok(), Some(0));
    // Writing another document is fine; this one would lose the update.
    a.ok(&mut c, doc! {"update": "t", "updates": [{"q": {"_id": 2}, "u": {"$set": {"n": 1}}}]});
    let reply = a.cmd(&mut c, doc! {"update": "t", "updates": [{"q": {"_id": 1}, "u": {"$inc": {"n": 1}}}]});
    assert_eq!(code(&reply), Some(112), "{reply}");
    assert_eq!(labels(&reply), vec!["TransientTransactionError"]);
    assert_eq!(value_of(&mut c, "t", 1), Some(Bson::Int32(5)));
    assert_eq!(value_of(&mut c, "t", 2), Some(Bson::Int32(0)));
}

#[test]
fn concurrent_inserts_of_one_unique_value_are_never_both_kept() {
    let server = TestServer::start();
    let mut c = server.client();
    c.ok("db", doc! {"createIndexes": "u", "indexes": [{"key": {"email": 1}, "name": "email_1", "unique": true}]});
    let (mut a, mut b) = (Txn::new(), Txn::new());
    a.ok(&mut c, doc! {"insert": "u", "documents": [{"_id": 1, "email": "x@example.com"}]});
    let reply = b.cmd(&mut c, doc! {"insert": "u", "documents": [{"_id": 2, "email": "x@example.com"}]});
    assert_eq!(code(&reply), Some(112), "{reply}");
    b.end(&mut c, "abortTransaction");
    a.commit(&mut c);
    // Retried after the first committed: a plain duplicate key.
    let reply = b.cmd(&mut c, doc! {"insert": "u", "documents": [{"_id": 2, "email": "x@example.com"}]});
    let errors = reply.get_array("writeErrors").unwrap();
    assert_eq!(errors[0].as_document().unwrap().get_i32("code").ok(), Some(11000), "{reply}");
    // And the same _id from two transactions.
    let (mut d, mut e) = (Txn::new(), Txn::new());
    d.ok(&mut c, doc! {"insert": "u", "documents": [{"_id": 9, "email": "d"}]});
    assert_eq!(code(&e.cmd(&mut c, doc! {"insert": "u", "documents": [{"_id": 9, "email": "e"}]})), Some(112));
    d.commit(&mut c);
    assert_eq!(c.find_all("db", "u").len(), 2);
}

#[test]
fn a_write_outside_a_transaction_waits_for_it_and_loses_nothing() {
    let server = TestServer::start();
    let mut c = setup(&server, vec![doc! {"_id": 1, "n": 0}]);
    let mut a = Txn::new();
    a.ok(&mut c, doc! {"update": "t", "updates": [{"q": {"_id": 1}, "u": {"$inc": {"n": 1}}}]});
    let address = server.handle.as_ref().unwrap().address();
    let writer = std::thread::spawn(move || {
        let mut other = Client::connect(&address);
        other.cmd("db", doc! {"update": "t", "updates": [{"q": {"_id": 1}, "u": {"$inc": {"n": 10}}}]})
    });
    // Other documents stay writable meanwhile.
    c.ok("db", doc! {"insert": "t", "documents": [{"_id": 2, "n": 0}]});
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(a.commit(&mut c).get_f64("ok").ok(), Some(1.0));
    let reply = writer.join().unwrap();
    assert_eq!(reply.get_f64("ok").ok(), Some(1.0), "{reply}");
    assert_eq!(reply.get_i32("nModified").ok(), Some(1));
    assert_eq!(value_of(&mut c, "t", 1), Some(Bson::Int32(11)));
}

#[test]
fn rolling_back_to_a_savepoint_frees_the_documents_written_since() {
    let server = TestServer::start();
    let mut c = setup(&server, vec![doc! {"_id": 1, "n": 0}, doc! {"_id": 2, "n": 0}]);
    let (mut a, mut b) = (Txn::new(), Txn::new());
    a.ok(&mut c, doc! {"update": "t", "updates": [{"q": {"_id": 1}, "u": {"$inc": {"n": 1}}}]});
    a.ok(&mut c, doc! {"savepoint": "s1"});
    a.ok(&mut c, doc! {"update": "t", "updates": [{"q": {"_id": 2}, "u": {"$inc": {"n": 1}}}]});
    a.ok(&mut c, doc! {"rollbackToSavepoint": "s1"});
    // Document 2 is free again; document 1 is still the transaction's.
    b.ok(&mut c, doc! {"update": "t", "updates": [{"q": {"_id": 2}, "u": {"$inc": {"n": 10}}}]});
    let mut d = Txn::new();
    assert_eq!(code(&d.cmd(&mut c, doc! {"update": "t", "updates": [{"q": {"_id": 1}, "u": {"$inc": {"n": 10}}}]})), Some(112));
    assert_eq!(b.commit(&mut c).get_f64("ok").ok(), Some(1.0));
    assert_eq!(a.commit(&mut c).get_f64("ok").ok(), Some(1.0));
    assert_eq!(value_of(&mut c, "t", 1), Some(Bson::Int32(1)));
    assert_eq!(value_of(&mut c, "t", 2), Some(Bson::Int32(10)));
}

#[test]
fn a_blocked_write_gives_up_after_its_max_time_ms() {
    let server = TestServer::start();
    let mut c = setup(&server, vec![doc! {"_id": 1, "n": 0}]);
    let mut a = Txn::new();
    a.ok(&mut c, doc! {"update": "t", "updates": [{"q": {"_id": 1}, "u": {"$inc": {"n": 1}}}]});
    let reply = c.cmd("db", doc! {"findAndModify": "t", "query": {"_id": 1}, "update": {"$inc": {"n": 10}}, "maxTimeMS": 50});
    assert_eq!(code(&reply), Some(50), "{reply}");
    assert_eq!(reply.get_str("codeName").ok(), Some("MaxTimeMSExpired"));
    // Nothing applied, and the transaction is untouched.
    assert_eq!(a.commit(&mut c).get_f64("ok").ok(), Some(1.0));
    assert_eq!(value_of(&mut c, "t", 1), Some(Bson::Int32(1)));
}

#[test]
fn a_closed_connection_aborts_its_transaction_and_frees_its_documents() {
    // Long enough that only the abort on close can let the write through.
    let server = TestServer::start_with(ServerOptions { write_lock_timeout: Some(Duration::from_secs(30)), ..Default::default() });
    let mut c = setup(&server, vec![doc! {"_id": 1, "n": 0}]);
    let mut dying = server.client();
    let mut a = Txn::new();
    a.ok(&mut dying, doc! {"update": "t", "updates": [{"q": {"_id": 1}, "u": {"$inc": {"n": 1}}}]});
    drop(dying);
    let reply = c.cmd("db", doc! {"update": "t", "updates": [{"q": {"_id": 1}, "u": {"$inc": {"n": 10}}}]});
    assert_eq!(reply.get_f64("ok").ok(), Some(1.0), "{reply}");
    assert_eq!(value_of(&mut c, "t", 1), Some(Bson::Int32(10)));
    // Its session learns it is gone.
    assert_eq!(code(&a.commit(&mut c)), Some(251));
}

#[test]
fn an_idle_transaction_is_aborted_after_the_lifetime_limit() {
    let options = ServerOptions { transaction_lifetime_limit: Some(Duration::from_secs(1)), ..Default::default() };
    let server = TestServer::start_with(options);
    let mut c = setup(&server, vec![doc! {"_id": 1, "n": 0}]);
    let reply = c.ok("admin", doc! {"getParameter": 1, "transactionLifetimeLimitSeconds": 1});
    assert_eq!(reply.get_i64("transactionLifetimeLimitSeconds").ok(), Some(1));
    let mut a = Txn::new();
    a.ok(&mut c, doc! {"update": "t", "updates": [{"q": {"_id": 1}, "u": {"$inc": {"n": 1}}}]});
    std::thread::sleep(Duration::from_millis(2500));
    let reply = a.cmd(&mut c, doc! {"find": "t", "filter": {}});
    assert_eq!(code(&reply), Some(251), "{reply}");
    c.ok("db", doc! {"update": "t", "updates": [{"q": {"_id": 1}, "u": {"$inc": {"n": 10}}}]});
    assert_eq!(value_of(&mut c, "t", 1), Some(Bson::Int32(10)));
}

#[test]
fn killing_or_ending_a_session_aborts_its_transaction() {
    let server = TestServer::start_with(ServerOptions { write_lock_timeout: Some(Duration::from_secs(30)), ..Default::default() });
    let mut c = setup(&server, vec![doc! {"_id": 1, "n": 0}, doc! {"_id": 2, "n": 0}]);
    let (mut killed, mut ended) = (Txn::new(), Txn::new());
    killed.ok(&mut c, doc! {"update": "t", "updates": [{"q": {"_id": 1}, "u": {"$inc": {"n": 1}}}]});
    ended.ok(&mut c, doc! {"update": "t", "updates": [{"q": {"_id": 2}, "u": {"$inc": {"n": 1}}}]});
    let mut admin = server.client();
    admin.ok("admin", doc! {"killSessions": [{"id": killed.id()}]});
    admin.ok("admin", doc! {"endSessions": [{"id": ended.id()}]});
    admin.ok("db", doc! {"update": "t", "updates": [{"q": {}, "u": {"$inc": {"n": 5}}, "multi": true}]});
    assert_eq!(value_of(&mut c, "t", 1), Some(Bson::Int32(5)));
    assert_eq!(value_of(&mut c, "t", 2), Some(Bson::Int32(5)));
    // Killing sessions is not something a transaction may do to itself.
    let mut t = Txn::new();
    let reply = t.cmd(&mut c, doc! {"killSessions": []});
    assert_eq!(code(&reply), Some(263), "{reply}");
}

#[test]
fn a_collection_redefined_under_a_transaction_fails_its_commit() {
    let server = TestServer::start();
    let mut c = setup(&server, vec![doc! {"_id": 1, "k": 1}]);
    let mut a = Txn::new();
    a.ok(&mut c, doc! {"insert": "t", "documents": [{"_id": 2, "k": 1}]});
    // An index built now cannot see the transaction's document.
    c.ok("db", doc! {"createIndexes": "t", "indexes": [{"key": {"k": 1}, "name": "k_1"}]});
    let reply = a.commit(&mut c);
    assert_eq!(code(&reply), Some(112), "{reply}");
    assert_eq!(labels(&reply), vec!["TransientTransactionError"]);
    // Nothing of it was applied, and the index is whole.
    let reply = c.ok("db", doc! {"find": "t", "filter": {"k": 1}});
    let batch = reply.get_document("cursor").unwrap().get_array("firstBatch").unwrap();
    assert_eq!(batch.len(), 1);
}

#[test]
fn collections_created_by_concurrent_transactions_get_distinct_ids() {
    let mut server = TestServer::start();
    let mut c = server.client();
    let (mut a, mut b) = (Txn::new(), Txn::new());
    a.ok(&mut c, doc! {"insert": "one", "documents": [{"_id": 1}]});
    b.ok(&mut c, doc! {"insert": "two", "documents": [{"_id": 2}]});
    // The same new collection from two transactions is a conflict.
    let mut d = Txn::new();
    assert_eq!(code(&d.cmd(&mut c, doc! {"insert": "one", "documents": [{"_id": 3}]})), Some(112));
    b.commit(&mut c);
    a.commit(&mut c);
    server.restart();
    let mut c = server.client();
    c.ok("db", doc! {"insert": "three", "documents": [{"_id": 3}]});
    for (coll, id) in [("one", 1), ("two", 2), ("three", 3)] {
        let docs = c.find_all("db", coll);
        assert_eq!(docs.len(), 1, "{coll}: {docs:?}");
        assert_eq!(docs[0].get_i32("_id").ok(), Some(id));
    }
}

#[test]
fn transaction_options_get_mongods_errors() {
    let server = TestServer::start();
    let mut c = server.client();
    let mut t = Txn::new();
    let reply = t.cmd(&mut c, doc! {"find": "t", "readConcern": {"level": "linearizable"}});
    assert_eq!(code(&reply), Some(72), "{reply}");
    let mut t = Txn::new();
    let reply = t.cmd(&mut c, doc! {"find": "t", "readConcern": {"level": "nope"}});
    assert_eq!(code(&reply), Some(9), "{reply}");
    let mut t = Txn::new();
    t.ok(&mut c, doc! {"find": "t", "readConcern": {"level": "snapshot"}});
    let reply = t.cmd(&mut c, doc! {"find": "t", "readConcern": {"level": "snapshot"}});
    assert_eq!(code(&reply), Some(72), "{reply}");
    let reply = t.cmd(&mut c, doc! {"insert": "t", "documents": [{"_id": 1}], "writeConcern": {"w": 1}});
    assert_eq!(code(&reply), Some(72), "{reply}");
    // Still open: option errors do not abort it.
    t.ok(&mut c, doc! {"insert": "t", "documents": [{"_id": 1}]});
    let commit = |wc: Bson, extra: Document, t: &Txn, c: &mut Client| {
        let mut body = t.ending("commitTransaction");
        body.insert("writeConcern", wc);
        body.extend(extra);
        c.cmd("admin", body)
    };
    assert_eq!(code(&commit(Bson::String("majority".into()), doc! {}, &t, &mut c)), Some(14));
    assert_eq!(code(&commit(Bson::Document(doc! {"w": "majority", "x": 1}), doc! {}, &t, &mut c)), Some(40415));
    assert_eq!(code(&commit(Bson::Document(doc! {"w": -2}), doc! {}, &t, &mut c)), Some(9));
    assert_eq!(code(&commit(Bson::Document(doc! {}), doc! {"maxTimeMS": "soon"}, &t, &mut c)), Some(14));
    assert_eq!(code(&commit(Bson::Document(doc! {}), doc! {"maxTimeMS": -5}, &t, &mut c)), Some(2));
    let reply = commit(Bson::Document(doc! {"w": "majority", "wtimeout": 1000}), doc! {"maxTimeMS": 1000}, &t, &mut c);
    assert_eq!(reply.get_f64("ok").ok(), Some(1.0), "{reply}");
    assert_eq!(c.find_all("db", "t").len(), 1);
}
