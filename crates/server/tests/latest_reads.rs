//! Reads outside a transaction share the latest snapshot's open tables
//! until the next commit (storage/latest.rs). What a client must still see:
//! every write acknowledged before its read, whichever connection made it
//! and however it committed, and nothing newer inside a transaction or at a
//! point in time.
mod common;

use bson::{doc, Bson, Document};
use common::{Client, TestServer, Txn};

fn ids(reply: &Document) -> Vec<Bson> {
    let batch = reply.get_document("cursor").unwrap().get_array("firstBatch").unwrap();
    batch.iter().map(|d| d.as_document().unwrap().get("_id").unwrap().clone()).collect()
}

/// The point read benches/orm measures, through the `k` index.
fn by_k(c: &mut Client, coll: &str, k: i32) -> Vec<Bson> {
    ids(&c.ok("db", doc! {"find": coll, "filter": {"k": k}, "projection": {"_id": 1}, "limit": 21}))
}

#[test]
fn a_read_sees_every_write_acknowledged_before_it_on_any_connection() {
    let server = TestServer::start();
    let (mut reader, mut writer) = (server.client(), server.client());
    writer.ok("db", doc! {"createIndexes": "t", "indexes": [{"key": {"k": 1}, "name": "k_1"}]});
    assert!(by_k(&mut reader, "t", 1).is_empty());
    // An autocommit insert on another connection.
    writer.ok("db", doc! {"insert": "t", "documents": [{"_id": 1, "k": 1}]});
    assert_eq!(by_k(&mut reader, "t", 1), vec![Bson::Int32(1)]);
    // A write that does not wait for the disk is visible at once too.
    writer.ok("db", doc! {"update": "t", "updates": [{"q": {"_id": 1}, "u": {"$set": {"k": 2}}}], "writeConcern": {"j": false}});
    assert!(by_k(&mut reader, "t", 1).is_empty());
    assert_eq!(by_k(&mut reader, "t", 2), vec![Bson::Int32(1)]);
    // The reader's own write.
    reader.ok("db", doc! {"delete": "t", "deletes": [{"q": {"_id": 1}, "limit": 1}]});
    assert!(by_k(&mut reader, "t", 2).is_empty());
}

#[test]
fn a_collection_dropped_and_created_again_under_its_name_is_read_anew() {
    let server = TestServer::start();
    let (mut reader, mut writer) = (server.client(), server.client());
    writer.ok("db", doc! {"insert": "t", "documents": [{"_id": "old", "k": 1}]});
    writer.ok("db", doc! {"createIndexes": "t", "indexes": [{"key": {"k": 1}, "name": "k_1"}]});
    assert_eq!(by_k(&mut reader, "t", 1), vec![Bson::String("old".into())]);
    writer.ok("db", doc! {"drop": "t"});
    assert!(by_k(&mut reader, "t", 1).is_empty());
    writer.ok("db", doc! {"insert": "t", "documents": [{"_id": "new", "k": 1}]});
    assert_eq!(by_k(&mut reader, "t", 1), vec![Bson::String("new".into())]);
    // The index went with the old collection: a hint naming it now fails.
    let hinted = reader.cmd("db", doc! {"find": "t", "filter": {"k": 1}, "hint": "k_1"});
    assert_eq!(hinted.get_f64("ok").ok(), Some(0.0), "{hinted}");
    writer.ok("db", doc! {"createIndexes": "t", "indexes": [{"key": {"k": 1}, "name": "k_1"}]});
    assert_eq!(ids(&reader.ok("db", doc! {"find": "t", "filter": {"k": 1}, "hint": "k_1"})), vec![Bson::String("new".into())]);
}

#[test]
fn a_transaction_reads_its_own_snapshot_and_its_commit_is_read_outside() {
    let server = TestServer::start();
    let (mut outside, mut inside) = (server.client(), server.client());
    outside.ok("db", doc! {"insert": "t", "documents": [{"_id": 1, "k": 1}]});
    let mut txn = Txn::new();
    assert_eq!(ids(&txn.ok(&mut inside, doc! {"find": "t", "filter": {"k": 1}})), vec![Bson::Int32(1)]);
    txn.ok(&mut inside, doc! {"insert": "t", "documents": [{"_id": 2, "k": 1}]});
    // Committed after the transaction's snapshot: not seen inside it.
    outside.ok("db", doc! {"insert": "t", "documents": [{"_id": 3, "k": 1}]});
    assert_eq!(ids(&txn.ok(&mut inside, doc! {"find": "t", "filter": {"k": 1}})), vec![Bson::Int32(1), Bson::Int32(2)]);
    assert_eq!(by_k(&mut outside, "t", 1), vec![Bson::Int32(1), Bson::Int32(3)]);
    let committed = txn.commit(&mut inside);
    assert_eq!(committed.get_f64("ok").ok(), Some(1.0), "{committed}");
    assert_eq!(by_k(&mut outside, "t", 1), vec![Bson::Int32(1), Bson::Int32(2), Bson::Int32(3)]);
}

#[test]
fn a_read_at_a_cluster_time_keeps_reading_the_data_of_that_time() {
    let server = TestServer::start();
    let mut c = server.client();
    c.ok("db", doc! {"insert": "t", "documents": [{"_id": 1, "k": 1}]});
    assert_eq!(by_k(&mut c, "t", 1), vec![Bson::Int32(1)]);
    // A snapshot read keeps its version for later reads at its time.
    let first = c.ok("db", doc! {"find": "t", "filter": {"k": 1}, "readConcern": {"level": "snapshot"}});
    let at = first.get_document("cursor").unwrap().get_timestamp("atClusterTime").unwrap();
    c.ok("db", doc! {"insert": "t", "documents": [{"_id": 2, "k": 1}]});
    let then = c.ok("db", doc! {"find": "t", "filter": {"k": 1}, "readConcern": {"level": "snapshot", "atClusterTime": at}});
    assert_eq!(ids(&then), vec![Bson::Int32(1)]);
    assert_eq!(by_k(&mut c, "t", 1), vec![Bson::Int32(1), Bson::Int32(2)]);
}

#[test]
fn an_index_that_becomes_multikey_after_a_read_is_read_as_multikey() {
    let server = TestServer::start();
    let (mut reader, mut writer) = (server.client(), server.client());
    writer.ok("db", doc! {"createIndexes": "t", "indexes": [{"key": {"k": 1}, "name": "k_1"}]});
    writer.ok("db", doc! {"insert": "t", "documents": [{"_id": 1, "k": 1}]});
    let range = doc! {"find": "t", "filter": {"k": {"$gte": 1}}, "hint": "k_1"};
    assert_eq!(ids(&reader.ok("db", range.clone())), vec![Bson::Int32(1)]);
    // Two entries in the range for one document: returned once.
    writer.ok("db", doc! {"insert": "t", "documents": [{"_id": 2, "k": [2, 3]}]});
    assert_eq!(ids(&reader.ok("db", range)), vec![Bson::Int32(1), Bson::Int32(2)]);
}
