//! End-to-end tests over the wire protocol against a server spawned via
//! the embedding API on 127.0.0.1:0.
mod common;

use bson::{doc, spec::BinarySubtype, Binary, Bson};
use common::TestServer;
use std::io::Write;

#[test]
fn legacy_handshake_and_hello() {
    let server = TestServer::start();
    let mut c = server.client();
    let reply = c.legacy_query("admin.$cmd", doc! {"isMaster": 1});
    assert_eq!(reply.get_bool("ismaster").ok(), Some(true));
    assert_eq!(reply.get_str("setName").ok(), Some("djongo"));
    assert_eq!(reply.get_i32("maxWireVersion").ok(), Some(21));
    let addr = server.handle.as_ref().unwrap().address();
    assert_eq!(reply.get_array("hosts").unwrap(), &vec![Bson::String(addr.clone())]);
    let reply = c.ok("admin", doc! {"hello": 1});
    assert_eq!(reply.get_bool("isWritablePrimary").ok(), Some(true));
    assert_eq!(reply.get_str("me").ok(), Some(addr.as_str()));
    assert!(reply.get_document("topologyVersion").is_ok());
}

#[test]
fn unknown_command_is_named() {
    let server = TestServer::start();
    let mut c = server.client();
    let reply = c.cmd("db", doc! {"frobnicate": 1});
    assert_eq!(reply.get_i32("code").ok(), Some(59));
    assert!(reply.get_str("errmsg").unwrap().contains("frobnicate"));
}

#[test]
fn insert_find_and_cursor_batches() {
    let server = TestServer::start();
    let mut c = server.client();
    let docs: Vec<_> = (0..250).map(|i| doc! {"i": i}).collect();
    let reply = c.cmd_seq("db", doc! {"insert": "c"}, "documents", &docs);
    assert_eq!(reply.get_i32("n").ok(), Some(250));
    let reply = c.ok("db", doc! {"find": "c", "batchSize": 100});
    let cursor = reply.get_document("cursor").unwrap();
    assert_eq!(cursor.get_array("firstBatch").unwrap().len(), 100);
    let id = cursor.get_i64("id").unwrap();
    assert_ne!(id, 0);
    let reply = c.ok("db", doc! {"getMore": id, "collection": "c", "batchSize": 100});
    assert_eq!(reply.get_document("cursor").unwrap().get_array("nextBatch").unwrap().len(), 100);
    let reply = c.ok("db", doc! {"getMore": id, "collection": "c"});
    let cursor = reply.get_document("cursor").unwrap();
    assert_eq!(cursor.get_array("nextBatch").unwrap().len(), 50);
    assert_eq!(cursor.get_i64("id").ok(), Some(0));
    let reply = c.cmd("db", doc! {"getMore": id, "collection": "c"});
    assert_eq!(reply.get_i32("code").ok(), Some(43));
    // Every inserted document got an ObjectId _id, stored first.
    let all = c.find_all("db", "c");
    assert!(matches!(all[0].iter().next(), Some((k, Bson::ObjectId(_))) if k == "_id"));
}

#[test]
fn kill_cursors() {
    let server = TestServer::start();
    let mut c = server.client();
    let docs: Vec<_> = (0..10).map(|i| doc! {"i": i}).collect();
    c.cmd_seq("db", doc! {"insert": "c"}, "documents", &docs);
    let reply = c.ok("db", doc! {"find": "c", "batchSize": 2});
    let id = reply.get_document("cursor").unwrap().get_i64("id").unwrap();
    let reply = c.ok("db", doc! {"killCursors": "c", "cursors": [id, 12345i64]});
    assert_eq!(reply.get_array("cursorsKilled").unwrap(), &vec![Bson::Int64(id)]);
    assert_eq!(reply.get_array("cursorsNotFound").unwrap(), &vec![Bson::Int64(12345)]);
}

#[test]
fn unique_index_duplicate_is_write_error_11000() {
    let server = TestServer::start();
    let mut c = server.client();
    c.ok("db", doc! {"createIndexes": "u", "indexes": [{"key": {"email": 1}, "name": "email_1", "unique": true}]});
    let reply = c.ok("db", doc! {"insert": "u", "documents": [{"email": "a@x"}, {"email": "a@x"}, {"email": "b@x"}]});
    assert_eq!(reply.get_i32("n").ok(), Some(1));
    let errors = reply.get_array("writeErrors").unwrap();
    let e = errors[0].as_document().unwrap();
    assert_eq!(e.get_i32("index").ok(), Some(1));
    assert_eq!(e.get_i32("code").ok(), Some(11000));
    assert_eq!(
        e.get_str("errmsg").ok(),
        Some("E11000 duplicate key error collection: db.u index: email_1 dup key: { email: \"a@x\" }")
    );
    assert_eq!(e.get_document("keyValue").unwrap(), &doc! {"email": "a@x"});
    // Unordered inserts continue past the failure.
    let reply = c.ok("db", doc! {"insert": "u", "ordered": false, "documents": [{"email": "a@x"}, {"email": "c@x"}]});
    assert_eq!(reply.get_i32("n").ok(), Some(1));
    // Building a unique index over duplicates fails and leaves nothing behind.
    c.ok("db", doc! {"insert": "v", "documents": [{"k": 1}, {"k": 1.0}]});
    let reply = c.cmd("db", doc! {"createIndexes": "v", "indexes": [{"key": {"k": 1}, "name": "k_1", "unique": true}]});
    assert_eq!(reply.get_i32("code").ok(), Some(11000));
    let reply = c.ok("db", doc! {"listIndexes": "v"});
    assert_eq!(reply.get_document("cursor").unwrap().get_array("firstBatch").unwrap().len(), 1);
}

#[test]
fn duplicate_id_is_rejected() {
    let server = TestServer::start();
    let mut c = server.client();
    c.ok("db", doc! {"insert": "c", "documents": [{"_id": 1}]});
    let reply = c.ok("db", doc! {"insert": "c", "documents": [{"_id": 1.0}]});
    let e = reply.get_array("writeErrors").unwrap()[0].as_document().unwrap().clone();
    assert_eq!(e.get_i32("code").ok(), Some(11000));
    assert!(e.get_str("errmsg").unwrap().contains("index: _id_ dup key: { _id: 1 }"));
}

#[test]
fn unique_index_without_partial_filter_treats_missing_as_null() {
    let server = TestServer::start();
    let mut c = server.client();
    c.ok("db", doc! {"createIndexes": "p", "indexes": [{"key": {"a": 1, "b": 1}, "name": "ab", "unique": true}]});
    c.ok("db", doc! {"insert": "p", "documents": [{"a": 1, "b": 1}, {"a": 1, "b": 2}, {"x": 1}]});
    let reply = c.ok("db", doc! {"insert": "p", "documents": [{"y": 1}]});
    let e = reply.get_array("writeErrors").unwrap()[0].as_document().unwrap().clone();
    assert!(e.get_str("errmsg").unwrap().ends_with("dup key: { a: null, b: null }"), "{e}");
    let reply = c.ok("db", doc! {"insert": "p", "documents": [{"a": 1, "b": 2}]});
    assert!(reply.get_array("writeErrors").is_ok());
}

#[test]
fn catalog_commands() {
    let server = TestServer::start();
    let mut c = server.client();
    c.ok("db", doc! {"create": "a"});
    let reply = c.cmd("db", doc! {"create": "a"});
    assert_eq!(reply.get_i32("code").ok(), Some(48));
    c.ok("db", doc! {"insert": "b", "documents": [{"x": 1}]});
    let reply = c.ok("db", doc! {"listCollections": 1, "nameOnly": true});
    let names: Vec<_> = reply.get_document("cursor").unwrap().get_array("firstBatch").unwrap().iter().map(|d| d.as_document().unwrap().get_str("name").unwrap().to_string()).collect();
    assert_eq!(names, vec!["a", "b"]);
    let reply = c.ok("db", doc! {"listCollections": 1, "filter": {"name": "b"}});
    assert_eq!(reply.get_document("cursor").unwrap().get_array("firstBatch").unwrap().len(), 1);
    c.ok("admin", doc! {"renameCollection": "db.b", "to": "db.c"});
    assert_eq!(c.find_all("db", "c").len(), 1);
    assert_eq!(c.find_all("db", "b").len(), 0);
    let reply = c.cmd("admin", doc! {"renameCollection": "db.c", "to": "db.a"});
    assert_eq!(reply.get_i32("code").ok(), Some(48));
    c.ok("admin", doc! {"renameCollection": "db.c", "to": "db.a", "dropTarget": true});
    let reply = c.ok("admin", doc! {"listDatabases": 1});
    assert_eq!(reply.get_array("databases").unwrap().len(), 1);
    c.ok("db", doc! {"drop": "a"});
    c.ok("db", doc! {"drop": "a"});
    c.ok("other", doc! {"insert": "z", "documents": [{}]});
    c.ok("other", doc! {"dropDatabase": 1});
    let reply = c.ok("admin", doc! {"listDatabases": 1});
    assert_eq!(reply.get_array("databases").unwrap().len(), 0);
    let reply = c.cmd("db", doc! {"listIndexes": "nope"});
    assert_eq!(reply.get_i32("code").ok(), Some(26));
}

#[test]
fn drop_indexes() {
    let server = TestServer::start();
    let mut c = server.client();
    c.ok("db", doc! {"createIndexes": "c", "indexes": [{"key": {"a": 1}, "name": "a_1"}, {"key": {"b": -1}, "name": "b_-1"}]});
    c.ok("db", doc! {"dropIndexes": "c", "index": {"a": 1}});
    let reply = c.ok("db", doc! {"listIndexes": "c"});
    assert_eq!(reply.get_document("cursor").unwrap().get_array("firstBatch").unwrap().len(), 2);
    c.ok("db", doc! {"dropIndexes": "c", "index": "*"});
    let reply = c.cmd("db", doc! {"dropIndexes": "c", "index": "zz"});
    assert_eq!(reply.get_i32("code").ok(), Some(27));
}

#[test]
fn delete_and_count() {
    let server = TestServer::start();
    let mut c = server.client();
    c.ok("db", doc! {"insert": "c", "documents": [{"_id": 1}, {"_id": 2}, {"_id": 3}]});
    let reply = c.ok("db", doc! {"count": "c"});
    assert_eq!(reply.get_i64("n").ok(), Some(3));
    let reply = c.ok("db", doc! {"delete": "c", "deletes": [{"q": {"_id": 2}, "limit": 1}]});
    assert_eq!(reply.get_i32("n").ok(), Some(1));
    let reply = c.ok("db", doc! {"delete": "c", "deletes": [{"q": {}, "limit": 0}]});
    assert_eq!(reply.get_i32("n").ok(), Some(2));
    assert!(c.find_all("db", "c").is_empty());
}

#[test]
fn find_by_id_uses_point_lookup() {
    let server = TestServer::start();
    let mut c = server.client();
    c.ok("db", doc! {"insert": "c", "documents": [{"_id": 1, "v": "a"}, {"_id": 2, "v": "b"}]});
    let reply = c.ok("db", doc! {"find": "c", "filter": {"_id": 2}});
    let batch = reply.get_document("cursor").unwrap().get_array("firstBatch").unwrap().clone();
    assert_eq!(batch, vec![Bson::Document(doc! {"_id": 2, "v": "b"})]);
}

#[test]
fn aggregate_with_documents_stage() {
    let server = TestServer::start();
    let mut c = server.client();
    let reply = c.ok("db", doc! {"aggregate": 1, "pipeline": [{"$documents": [{"a": 1}, {"a": 2}]}], "cursor": {}});
    assert_eq!(reply.get_document("cursor").unwrap().get_array("firstBatch").unwrap().len(), 2);
}

fn lsid() -> Bson {
    Bson::Document(doc! {"id": Binary { subtype: BinarySubtype::Uuid, bytes: rand_bytes() }})
}

fn rand_bytes() -> Vec<u8> {
    use std::time::{SystemTime, UNIX_EPOCH};
    let n = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    n.to_le_bytes().to_vec()
}

#[test]
fn transaction_commit_and_abort_isolation() {
    let server = TestServer::start();
    let mut c = server.client();
    let mut other = server.client();
    let s = lsid();
    c.ok("db", doc! {"insert": "t", "documents": [{"_id": 1}], "lsid": s.clone(), "txnNumber": 1i64, "startTransaction": true, "autocommit": false});
    // Visible inside the transaction, invisible outside.
    let reply = c.ok("db", doc! {"find": "t", "lsid": s.clone(), "txnNumber": 1i64, "autocommit": false});
    assert_eq!(reply.get_document("cursor").unwrap().get_array("firstBatch").unwrap().len(), 1);
    assert!(other.find_all("db", "t").is_empty());
    c.ok("admin", doc! {"commitTransaction": 1, "lsid": s.clone(), "txnNumber": 1i64, "autocommit": false});
    assert_eq!(other.find_all("db", "t").len(), 1);
    // A retried commit succeeds.
    c.ok("admin", doc! {"commitTransaction": 1, "lsid": s.clone(), "txnNumber": 1i64, "autocommit": false});

    c.ok("db", doc! {"insert": "t", "documents": [{"_id": 2}], "lsid": s.clone(), "txnNumber": 2i64, "startTransaction": true, "autocommit": false});
    c.ok("admin", doc! {"abortTransaction": 1, "lsid": s.clone(), "txnNumber": 2i64, "autocommit": false});
    assert_eq!(other.find_all("db", "t").len(), 1);
    let reply = c.cmd("db", doc! {"find": "t", "lsid": s.clone(), "txnNumber": 2i64, "autocommit": false});
    assert_eq!(reply.get_i32("code").ok(), Some(251));
    assert!(reply.get_array("errorLabels").unwrap().contains(&Bson::String("TransientTransactionError".into())));
}

#[test]
fn failed_statement_aborts_transaction() {
    let server = TestServer::start();
    let mut c = server.client();
    let s = lsid();
    c.ok("db", doc! {"insert": "t", "documents": [{"_id": 1}]});
    c.ok("db", doc! {"insert": "t", "documents": [{"_id": 2}], "lsid": s.clone(), "txnNumber": 1i64, "startTransaction": true, "autocommit": false});
    let reply = c.ok("db", doc! {"insert": "t", "documents": [{"_id": 1}], "lsid": s.clone(), "txnNumber": 1i64, "autocommit": false});
    assert!(reply.get_array("writeErrors").is_ok());
    let reply = c.cmd("admin", doc! {"commitTransaction": 1, "lsid": s.clone(), "txnNumber": 1i64, "autocommit": false});
    assert_eq!(reply.get_i32("code").ok(), Some(251));
    assert_eq!(c.find_all("db", "t").len(), 1);
}

#[test]
fn writer_blocked_by_transaction_times_out_with_clear_error() {
    let server = TestServer::start_with_lock_timeout(std::time::Duration::from_millis(500));
    let mut c = server.client();
    let mut other = server.client();
    let s = lsid();
    c.ok("db", doc! {"insert": "t", "documents": [{"_id": 1}], "lsid": s.clone(), "txnNumber": 1i64, "startTransaction": true, "autocommit": false});
    let started = std::time::Instant::now();
    let reply = other.cmd("db", doc! {"insert": "t", "documents": [{"_id": 2}]});
    assert_eq!(reply.get_i32("code").ok(), Some(24), "{reply}");
    assert!(started.elapsed() >= std::time::Duration::from_millis(500));
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    // Ending the session aborts its transaction and frees the writer lock.
    c.ok("admin", doc! {"endSessions": [s.as_document().unwrap().clone()]});
    other.ok("db", doc! {"insert": "t", "documents": [{"_id": 2}]});
    assert_eq!(other.find_all("db", "t").len(), 1);
}

#[test]
fn data_survives_restart() {
    let mut server = TestServer::start();
    {
        let mut c = server.client();
        c.ok("db", doc! {"createIndexes": "c", "indexes": [{"key": {"k": 1}, "name": "k_1", "unique": true}]});
        c.ok("db", doc! {"insert": "c", "documents": [{"_id": 1, "k": "x"}]});
    }
    server.restart();
    let mut c = server.client();
    assert_eq!(c.find_all("db", "c"), vec![doc! {"_id": 1, "k": "x"}]);
    let reply = c.ok("db", doc! {"insert": "c", "documents": [{"_id": 2, "k": "x"}]});
    assert_eq!(reply.get_array("writeErrors").unwrap()[0].as_document().unwrap().get_i32("code").ok(), Some(11000));
}

#[test]
fn second_server_on_same_directory_is_refused() {
    let server = TestServer::start();
    let err = djongo_server::spawn(djongo_server::ServerConfig {
        data_dir: server.dir.path().to_path_buf(),
        bind: djongo_server::Bind::Tcp("127.0.0.1:0".into()),
    });
    let msg = err.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(msg.contains("already in use"), "{msg}");
}

#[test]
fn garbage_input_closes_or_errors_without_killing_server() {
    let server = TestServer::start();
    {
        let mut raw = server.client();
        raw.stream.write_all(&[0xFF; 64]).unwrap();
    }
    {
        // A well-framed OP_MSG with a broken body gets an error reply.
        let mut raw = server.client();
        let mut msg = Vec::new();
        msg.extend_from_slice(&26i32.to_le_bytes());
        msg.extend_from_slice(&1i32.to_le_bytes());
        msg.extend_from_slice(&0i32.to_le_bytes());
        msg.extend_from_slice(&2013i32.to_le_bytes());
        msg.extend_from_slice(&0u32.to_le_bytes());
        msg.extend_from_slice(&[0, 5, 0, 0, 0, 1, 0]);
        raw.stream.write_all(&msg[..26]).unwrap();
        let (h, p) = djongo_server::wire::read_message(&mut raw.stream).unwrap().unwrap();
        let reply = djongo_server::wire::parse_reply(&h, &p).unwrap();
        assert_eq!(reply.get_f64("ok").ok(), Some(0.0));
    }
    let mut c = server.client();
    c.ok("admin", doc! {"ping": 1});
}

#[cfg(unix)]
#[test]
fn unix_socket() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("s.sock");
    let handle = djongo_server::spawn(djongo_server::ServerConfig { data_dir: dir.path().join("data"), bind: djongo_server::Bind::Unix(sock.clone()) }).unwrap();
    assert_eq!(handle.address(), sock.display().to_string());
    let mut s = std::os::unix::net::UnixStream::connect(&sock).unwrap();
    let bytes = djongo_server::wire::encode_msg(1, 0, 0, &doc! {"ping": 1, "$db": "admin"}).unwrap();
    s.write_all(&bytes).unwrap();
    let (h, p) = djongo_server::wire::read_message(&mut s).unwrap().unwrap();
    assert_eq!(djongo_server::wire::parse_reply(&h, &p).unwrap().get_f64("ok").ok(), Some(1.0));
    handle.shutdown();
    assert!(!sock.exists());
}
