//! A find whose projection only renames top-level fields (every SQL read's)
//! answers with documents built from the stored bytes: through the socket
//! they read as the decoded documents would, first batch, getMore batches,
//! transactions and snapshot reads alike.
mod common;

use bson::{doc, Bson, Document};
use common::{TestServer, Txn};

fn batch(reply: &Document, field: &str) -> Vec<Document> {
    let cursor = reply.get_document("cursor").unwrap_or_else(|_| panic!("no cursor: {reply}"));
    cursor.get_array(field).unwrap().iter().map(|d| d.as_document().unwrap().clone()).collect()
}

fn cursor_id(reply: &Document) -> i64 {
    reply.get_document("cursor").unwrap().get_i64("id").unwrap()
}

fn load(c: &mut common::Client) {
    c.ok("db", doc! {"createIndexes": "e", "indexes": [{"key": {"h": 1}, "name": "h_1"}, {"key": {"id": 1}, "name": "id_1", "unique": true}]});
    let docs: Vec<Document> = (1..=7)
        .map(|i| {
            let mut d = doc! {"_id": i * 10, "id": i, "h": if i % 2 == 0 { "even" } else { "odd" }, "n": Bson::Double(f64::from(i) / 2.0)};
            if i != 3 {
                d.insert("body", doc! {"tags": [i, "t"], "at": bson::DateTime::from_millis(i64::from(i))});
            }
            if i == 5 {
                d.insert("n", Bson::Double(f64::NAN));
            }
            d
        })
        .collect();
    c.ok("db", doc! {"insert": "e", "documents": docs});
}

/// Django's shape: `_id` excluded, the columns renamed, in an order other
/// than the stored one, one column read twice, one never stored.
fn projection() -> Document {
    doc! {"_id": 0, "c0": "$n", "c1": "$id", "c2": "$body", "c3": "$missing", "c4": "$id"}
}

fn expected(i: i32) -> Document {
    let mut d = doc! {"c0": if i == 5 { f64::NAN } else { f64::from(i) / 2.0 }, "c1": i};
    if i != 3 {
        d.insert("c2", doc! {"tags": [i, "t"], "at": bson::DateTime::from_millis(i64::from(i))});
    }
    d.insert("c4", i);
    d
}

/// Documents compared as printed: NaN is not equal to itself.
fn printed(docs: &[Document]) -> Vec<String> {
    docs.iter().map(|d| format!("{d:?}")).collect()
}

#[test]
fn an_indexed_read_answers_the_renamed_fields_of_each_document() {
    let server = TestServer::start();
    let mut c = server.client();
    load(&mut c);
    // One document by a unique index (a `get(pk)`).
    let reply = c.ok("db", doc! {"find": "e", "filter": {"id": 3}, "projection": projection(), "limit": 21, "singleBatch": true});
    assert_eq!(printed(&batch(&reply, "firstBatch")), printed(&[expected(3)]));
    assert_eq!(cursor_id(&reply), 0);
    // Several by a non-unique one (a `filter(h=...)[:20]`), in `_id` order.
    let reply = c.ok("db", doc! {"find": "e", "filter": {"h": "odd"}, "projection": projection(), "limit": 20});
    assert_eq!(printed(&batch(&reply, "firstBatch")), printed(&[1, 3, 5, 7].map(expected)));
    // A filter the index does not decide, and a sort: the documents are
    // read decoded, the answer is the same.
    let reply = c.ok("db", doc! {"find": "e", "filter": {"h": "odd", "id": {"$gt": 1}}, "sort": {"id": -1}, "projection": projection()});
    assert_eq!(printed(&batch(&reply, "firstBatch")), printed(&[7, 5, 3].map(expected)));
    // Nothing found.
    let reply = c.ok("db", doc! {"find": "e", "filter": {"h": "none"}, "projection": projection()});
    assert!(batch(&reply, "firstBatch").is_empty());
}

#[test]
fn get_more_serves_the_rest_in_batches() {
    let server = TestServer::start();
    let mut c = server.client();
    load(&mut c);
    let reply = c.ok("db", doc! {"find": "e", "filter": {"h": {"$in": ["odd", "even"]}}, "projection": projection(), "batchSize": 3});
    let mut seen = batch(&reply, "firstBatch");
    assert_eq!(seen.len(), 3);
    let mut id = cursor_id(&reply);
    while id != 0 {
        let more = c.ok("db", doc! {"getMore": id, "collection": "e", "batchSize": 3});
        let next = batch(&more, "nextBatch");
        assert!(!next.is_empty() && next.len() <= 3);
        seen.extend(next);
        id = cursor_id(&more);
    }
    assert_eq!(printed(&seen), printed(&(1..=7).map(expected).collect::<Vec<_>>()));
}

#[test]
fn a_transaction_reads_its_own_writes_and_a_snapshot_read_its_time() {
    let server = TestServer::start();
    let mut c = server.client();
    load(&mut c);
    let mut txn = Txn::new();
    txn.ok(&mut c, doc! {"insert": "e", "documents": [{"_id": 80, "id": 8, "h": "odd", "n": 4.0}]});
    let reply = txn.ok(&mut c, doc! {"find": "e", "filter": {"id": 8}, "projection": projection()});
    assert_eq!(batch(&reply, "firstBatch"), vec![doc! {"c0": 4.0, "c1": 8, "c4": 8}]);
    txn.commit(&mut c);
    let reply = c.ok("db", doc! {"find": "e", "filter": {"id": 8}, "projection": projection(), "readConcern": {"level": "snapshot"}});
    assert_eq!(batch(&reply, "firstBatch"), vec![doc! {"c0": 4.0, "c1": 8, "c4": 8}]);
    let cursor = reply.get_document("cursor").unwrap();
    assert!(cursor.contains_key("atClusterTime"), "{reply}");
    assert_eq!(cursor.keys().collect::<Vec<_>>(), ["firstBatch", "id", "ns", "atClusterTime"]);
}
