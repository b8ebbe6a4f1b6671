//! `insert`'s `djongoCounter`: ids taken from a counter document in the
//! insert's own write (one command, one commit), over the wire.
mod common;

use bson::{doc, spec::BinarySubtype, Binary, Bson, Document};
use common::{Client, TestServer};

fn counter(filter: Document) -> Document {
    doc! {"collection": "__schema__", "filter": filter, "path": "auto.seq", "field": "id"}
}

fn seq(c: &mut Client) -> Bson {
    let reply = c.ok("db", doc! {"find": "__schema__", "filter": {"name": "t"}});
    let batch = reply.get_document("cursor").unwrap().get_array("firstBatch").unwrap();
    batch[0].as_document().unwrap().get_document("auto").unwrap().get("seq").unwrap().clone()
}

fn ids(c: &mut Client) -> Vec<Bson> {
    let reply = c.ok("db", doc! {"find": "t", "filter": {}, "sort": {"n": 1}, "projection": {"_id": 0, "id": 1}});
    let batch = reply.get_document("cursor").unwrap().get_array("firstBatch").unwrap();
    batch.iter().map(|d| d.as_document().unwrap().get("id").cloned().unwrap_or(Bson::Null)).collect()
}

fn setup(c: &mut Client) {
    c.ok("db", doc! {"insert": "__schema__", "documents": [{"name": "t", "auto": {"field_names": ["id"], "seq": 5}, "columns": [{"name": "id"}]}]});
}

#[test]
fn documents_without_the_field_are_numbered_after_the_counter_and_explicit_ids() {
    let server = TestServer::start();
    let mut c = server.client();
    setup(&mut c);
    let filter = doc! {"name": "t", "auto.field_names": ["id"], "columns": [{"name": "id"}]};
    let reply = c.ok("db", doc! {"insert": "t", "documents": [{"n": 1}, {"n": 2, "id": Bson::Null}], "djongoCounter": counter(filter.clone())});
    assert_eq!(reply.get_i32("n").unwrap(), 2);
    assert_eq!(reply.get_document("djongoCounter").unwrap(), &doc! {"first": 6i64, "count": 2i64});
    assert_eq!(seq(&mut c), Bson::Int32(7));
    // An explicit id raises the counter first, so the others come after it.
    let reply = c.ok("db", doc! {"insert": "t", "documents": [{"n": 3, "id": 20}, {"n": 4}], "djongoCounter": counter(filter.clone())});
    assert_eq!(reply.get_document("djongoCounter").unwrap(), &doc! {"first": 21i64, "count": 1i64});
    assert_eq!(ids(&mut c), vec![Bson::Int32(6), Bson::Int32(7), Bson::Int32(20), Bson::Int32(21)]);
    // Explicit ids below the counter leave it alone.
    let reply = c.ok("db", doc! {"insert": "t", "documents": [{"n": 5, "id": 1}], "djongoCounter": counter(filter)});
    assert_eq!(reply.get_document("djongoCounter").unwrap(), &doc! {"first": Bson::Null, "count": 0i64});
    assert_eq!(seq(&mut c), Bson::Int32(21));
}

#[test]
fn a_filter_that_matches_no_counter_writes_nothing() {
    let server = TestServer::start();
    let mut c = server.client();
    setup(&mut c);
    let stale = doc! {"name": "t", "columns": [{"name": "id"}, {"name": "added"}]};
    let reply = c.cmd("db", doc! {"insert": "t", "documents": [{"n": 1}], "djongoCounter": counter(stale)});
    assert_eq!(reply.get_i32("code").unwrap(), 47, "{reply}");
    assert_eq!(ids(&mut c), Vec::<Bson>::new());
    assert_eq!(seq(&mut c), Bson::Int32(5));
}

#[test]
fn a_retried_insert_gets_its_ids_again_and_is_not_applied_twice() {
    let server = TestServer::start();
    let mut c = server.client();
    setup(&mut c);
    let lsid = doc! {"id": Binary { subtype: BinarySubtype::Uuid, bytes: vec![7; 16] }};
    let insert = doc! {"insert": "t", "documents": [{"n": 1}], "djongoCounter": counter(doc! {"name": "t"}), "lsid": lsid, "txnNumber": 1i64};
    let first = c.ok("db", insert.clone());
    let again = c.ok("db", insert);
    assert_eq!(first.get_document("djongoCounter").unwrap(), again.get_document("djongoCounter").unwrap());
    assert_eq!(ids(&mut c), vec![Bson::Int32(6)]);
    assert_eq!(seq(&mut c), Bson::Int32(6));
}

#[test]
fn not_inside_a_transaction() {
    let server = TestServer::start();
    let mut c = server.client();
    setup(&mut c);
    let lsid = doc! {"id": Binary { subtype: BinarySubtype::Uuid, bytes: vec![8; 16] }};
    let reply = c.cmd("db", doc! {"insert": "t", "documents": [{"n": 1}], "djongoCounter": counter(doc! {"name": "t"}),
        "lsid": lsid, "txnNumber": 1i64, "autocommit": false, "startTransaction": true});
    assert_eq!(reply.get_i32("code").unwrap(), 263, "{reply}");
}

#[test]
fn change_streams_see_the_counters_update_before_the_inserts() {
    let server = TestServer::start();
    let mut c = server.client();
    setup(&mut c);
    let opened = c.ok("db", doc! {"aggregate": 1, "pipeline": [{"$changeStream": {}}], "cursor": {}});
    let cursor = opened.get_document("cursor").unwrap().get_i64("id").unwrap();
    c.ok("db", doc! {"insert": "t", "documents": [{"n": 1}], "djongoCounter": counter(doc! {"name": "t"})});
    let more = c.ok("db", doc! {"getMore": cursor, "collection": "$cmd.aggregate", "maxTimeMS": 2000});
    let events: Vec<(String, String)> = more.get_document("cursor").unwrap().get_array("nextBatch").unwrap().iter()
        .map(|e| {
            let e = e.as_document().unwrap();
            (e.get_str("operationType").unwrap().to_owned(), e.get_document("ns").unwrap().get_str("coll").unwrap().to_owned())
        })
        .collect();
    assert_eq!(events, vec![("update".to_owned(), "__schema__".to_owned()), ("insert".to_owned(), "t".to_owned())]);
}

fn digest(reply: &Document) -> Bson {
    reply.get_document("djongoCounter").unwrap().get("digest").cloned().expect("the reply carries the digest")
}

fn with_digest(filter: Document, digest: Bson) -> Document {
    let mut spec = counter(filter);
    spec.insert("digest", digest);
    spec
}

#[test]
fn the_digest_is_asked_for_with_null_and_stays_while_only_the_counter_moves() {
    let server = TestServer::start();
    let mut c = server.client();
    setup(&mut c);
    let full = doc! {"name": "t", "auto.field_names": ["id"], "columns": [{"name": "id"}]};
    let first = c.ok("db", doc! {"insert": "t", "documents": [{"n": 1}], "djongoCounter": with_digest(full, Bson::Null)});
    let known = digest(&first);
    assert!(matches!(&known, Bson::Binary(b) if b.bytes.len() == 32), "{known}");
    // Only the name and the digest: numbered as before, the digest unchanged.
    let reply = c.ok("db", doc! {"insert": "t", "documents": [{"n": 2}, {"n": 3}], "djongoCounter": with_digest(doc! {"name": "t"}, known.clone())});
    assert_eq!(reply.get_document("djongoCounter").unwrap().get_i64("first").unwrap(), 7);
    assert_eq!(digest(&reply), known);
    assert_eq!(ids(&mut c), vec![Bson::Int32(6), Bson::Int32(7), Bson::Int32(8)]);
    // Without "digest", the reply has none (as for older backends).
    let reply = c.ok("db", doc! {"insert": "t", "documents": [{"n": 4}], "djongoCounter": counter(doc! {"name": "t"})});
    assert!(!reply.get_document("djongoCounter").unwrap().contains_key("digest"), "{reply}");
}

#[test]
fn a_digest_the_counter_document_no_longer_has_writes_nothing() {
    let server = TestServer::start();
    let mut c = server.client();
    setup(&mut c);
    let first = c.ok("db", doc! {"insert": "t", "documents": [{"n": 1}], "djongoCounter": with_digest(doc! {"name": "t"}, Bson::Null)});
    let known = digest(&first);
    // Another process's migration adds a column (any writer: a plain update).
    c.ok("db", doc! {"update": "__schema__", "updates": [{"q": {"name": "t"}, "u": {"$push": {"columns": {"name": "added", "default": "x"}}}}]});
    let reply = c.cmd("db", doc! {"insert": "t", "documents": [{"n": 2}], "djongoCounter": with_digest(doc! {"name": "t"}, known.clone())});
    assert_eq!(reply.get_i32("code").unwrap(), 47, "{reply}");
    assert_eq!(ids(&mut c), vec![Bson::Int32(6)]);
    assert_eq!(seq(&mut c), Bson::Int32(6));
    // A change put back (the same record again) is the same digest: the
    // digest is of what is stored, not of who wrote it.
    c.ok("db", doc! {"update": "__schema__", "updates": [{"q": {"name": "t"}, "u": {"$pop": {"columns": 1}}}]});
    let reply = c.ok("db", doc! {"insert": "t", "documents": [{"n": 3}], "djongoCounter": with_digest(doc! {"name": "t"}, known.clone())});
    assert_eq!(reply.get_document("djongoCounter").unwrap().get_i64("first").unwrap(), 7);
    // A counter moved by another writer ($inc, as Djongo's allocation) is
    // not a change of the record.
    c.ok("db", doc! {"update": "__schema__", "updates": [{"q": {"name": "t"}, "u": {"$inc": {"auto.seq": 10}}}]});
    let again = c.ok("db", doc! {"insert": "t", "documents": [{"n": 4}], "djongoCounter": with_digest(doc! {"name": "t"}, Bson::Null)});
    assert_eq!(again.get_document("djongoCounter").unwrap().get_i64("first").unwrap(), 18);
    assert_eq!(digest(&again), known);
}

#[test]
fn a_digest_that_is_not_binary_is_a_type_mismatch() {
    let server = TestServer::start();
    let mut c = server.client();
    setup(&mut c);
    let reply = c.cmd("db", doc! {"insert": "t", "documents": [{"n": 1}], "djongoCounter": with_digest(doc! {"name": "t"}, Bson::String("abc".into()))});
    assert_eq!(reply.get_i32("code").unwrap(), 14, "{reply}");
    assert_eq!(ids(&mut c), Vec::<Bson>::new());
}

fn wide_record(seq: i64) -> Document {
    let columns: Vec<Document> = (0..120).map(|i| doc! {"name": format!("field{i}"), "type": "varchar", "null": false, "primary_key": false, "default": null}).collect();
    doc! {"_id": 1, "name": "t", "auto": {"field_names": ["id"], "seq": seq}, "columns": columns}
}

fn record(c: &mut Client) -> Document {
    let reply = c.ok("db", doc! {"find": "__schema__", "filter": {"name": "t"}});
    reply.get_document("cursor").unwrap().get_array("firstBatch").unwrap()[0].as_document().unwrap().clone()
}

/// A record as large as a 120-column model's (its own pages in the store),
/// found by the unique index on `name` as Django's migrations create it:
/// the counter moves, 32-bit while it fits and 64-bit after, and nothing
/// else in the record does; the digest stays; change streams see the
/// counter's path.
#[test]
fn a_wide_record_keeps_all_but_its_counter() {
    let server = TestServer::start();
    let mut c = server.client();
    let start = i64::from(i32::MAX) - 1;
    c.ok("db", doc! {"insert": "__schema__", "documents": [wide_record(start)]});
    c.ok("db", doc! {"createIndexes": "__schema__", "indexes": [{"key": {"name": 1}, "name": "name_1", "unique": true}]});
    let opened = c.ok("db", doc! {"aggregate": "__schema__", "pipeline": [{"$changeStream": {}}], "cursor": {}});
    let cursor = opened.get_document("cursor").unwrap().get_i64("id").unwrap();
    let reply = c.ok("db", doc! {"insert": "t", "documents": [{"n": 1}], "djongoCounter": with_digest(doc! {"name": "t"}, Bson::Null)});
    let known = digest(&reply);
    let mut expected = wide_record(start);
    expected.get_document_mut("auto").unwrap().insert("seq", i32::MAX);
    assert_eq!(record(&mut c), expected);
    // Past 32 bits: the number widens, the rest of the record is the same.
    let reply = c.ok("db", doc! {"insert": "t", "documents": [{"n": 2}, {"n": 3}], "djongoCounter": with_digest(doc! {"name": "t"}, known.clone())});
    assert_eq!(reply.get_document("djongoCounter").unwrap().get_i64("first").unwrap(), i64::from(i32::MAX) + 1);
    assert_eq!(digest(&reply), known);
    expected.get_document_mut("auto").unwrap().insert("seq", i64::from(i32::MAX) + 2);
    assert_eq!(record(&mut c), expected);
    assert_eq!(ids(&mut c), vec![Bson::Int32(i32::MAX), Bson::Int64(i64::from(i32::MAX) + 1), Bson::Int64(i64::from(i32::MAX) + 2)]);
    let more = c.ok("db", doc! {"getMore": cursor, "collection": "__schema__", "maxTimeMS": 2000});
    let updated: Vec<Document> = more.get_document("cursor").unwrap().get_array("nextBatch").unwrap().iter()
        .map(|e| e.as_document().unwrap().get_document("updateDescription").unwrap().get_document("updatedFields").unwrap().clone())
        .collect();
    assert_eq!(updated, vec![doc! {"auto.seq": i32::MAX}, doc! {"auto.seq": i64::from(i32::MAX) + 2}]);
    // A changed record no longer has the digest.
    c.ok("db", doc! {"update": "__schema__", "updates": [{"q": {"name": "t"}, "u": {"$set": {"columns.0.null": true}}}]});
    let reply = c.cmd("db", doc! {"insert": "t", "documents": [{"n": 4}], "djongoCounter": with_digest(doc! {"name": "t"}, known)});
    assert_eq!(reply.get_i32("code").unwrap(), 47, "{reply}");
}

/// The digest is the SHA-256 of the record's BSON with null for the
/// counter, the record as a client reads it.
#[test]
fn the_digest_is_the_records_bson_with_the_counter_left_out() {
    use sha2::{Digest as _, Sha256};
    let server = TestServer::start();
    let mut c = server.client();
    c.ok("db", doc! {"insert": "__schema__", "documents": [wide_record(3)]});
    let reply = c.ok("db", doc! {"insert": "t", "documents": [{"n": 1}], "djongoCounter": with_digest(doc! {"name": "t"}, Bson::Null)});
    let mut read = record(&mut c);
    read.get_document_mut("auto").unwrap().insert("seq", Bson::Null);
    let expected = Binary { subtype: BinarySubtype::Generic, bytes: Sha256::digest(read.to_vec().unwrap()).to_vec() };
    assert_eq!(digest(&reply), Bson::Binary(expected));
}

/// An index that reads the counter keeps its entries right.
#[test]
fn an_index_on_the_counter_follows_it() {
    let server = TestServer::start();
    let mut c = server.client();
    c.ok("db", doc! {"insert": "__schema__", "documents": [wide_record(3)]});
    c.ok("db", doc! {"createIndexes": "__schema__", "indexes": [{"key": {"auto.seq": 1}, "name": "seq_1"}]});
    c.ok("db", doc! {"insert": "t", "documents": [{"n": 1}, {"n": 2}], "djongoCounter": counter(doc! {"name": "t"})});
    for (seq, found) in [(3, 0), (5, 1)] {
        let reply = c.ok("db", doc! {"find": "__schema__", "filter": {"auto.seq": seq}, "hint": "seq_1", "projection": {"name": 1}});
        assert_eq!(reply.get_document("cursor").unwrap().get_array("firstBatch").unwrap().len(), found, "seq {seq}");
    }
}

/// A counter inside `_id` is refused as any change of `_id` is.
#[test]
fn a_counter_in_the_id_is_immutable() {
    let server = TestServer::start();
    let mut c = server.client();
    c.ok("db", doc! {"insert": "__schema__", "documents": [{"_id": {"seq": 1}, "name": "t"}]});
    let spec = doc! {"collection": "__schema__", "filter": {"name": "t"}, "path": "_id.seq", "field": "id"};
    let reply = c.cmd("db", doc! {"insert": "t", "documents": [{"n": 1}], "djongoCounter": spec});
    assert_eq!(reply.get_i32("code").unwrap(), 66, "{reply}");
    assert_eq!(ids(&mut c), Vec::<Bson>::new());
}

/// The backend takes a sequence's ids with `writeConcern: {j: false}`: the
/// update is applied and seen at once, and the journaled write that uses
/// the ids makes it durable with it (here: across a restart).
#[test]
fn an_unjournaled_counter_update_is_seen_at_once_and_kept_by_the_next_journaled_write() {
    let mut server = TestServer::start();
    let mut c = server.client();
    setup(&mut c);
    let reply = c.ok("db", doc! {"findAndModify": "__schema__", "query": {"name": "t"}, "update": {"$inc": {"auto.seq": 10}}, "new": true, "writeConcern": {"w": 1, "j": false}});
    assert_eq!(reply.get_document("value").unwrap().get_document("auto").unwrap().get("seq"), Some(&Bson::Int32(15)));
    assert_eq!(seq(&mut c), Bson::Int32(15));
    c.ok("db", doc! {"insert": "t", "documents": [{"n": 1, "id": 15}]});
    drop(c);
    server.restart();
    let mut c = server.client();
    assert_eq!(seq(&mut c), Bson::Int32(15));
    assert_eq!(ids(&mut c), vec![Bson::Int32(15)]);
}
