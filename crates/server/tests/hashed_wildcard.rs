//! Hashed and wildcard indexes: finds use them (explain shows the scan) and
//! return what a collection scan returns.
mod common;

use bson::{doc, Bson, Document};
use common::{Client, TestServer};

fn batch(reply: &Document) -> Vec<Document> {
    let cursor = reply.get_document("cursor").unwrap();
    cursor.get_array("firstBatch").unwrap().iter().map(|d| d.as_document().unwrap().clone()).collect()
}

fn ids(c: &mut Client, coll: &str, filter: Document) -> Vec<i32> {
    let mut ids: Vec<i32> = batch(&c.ok("db", doc! {"find": coll, "filter": filter})).iter().map(|d| d.get_i32("_id").unwrap()).collect();
    ids.sort();
    ids
}

/// The index the winning plan scans, if any.
fn index_used(c: &mut Client, coll: &str, filter: Document) -> Option<(String, Document)> {
    let reply = c.ok("db", doc! {"explain": {"find": coll, "filter": filter}, "verbosity": "queryPlanner"});
    fn find_ixscan(stage: &Document) -> Option<(String, Document)> {
        if stage.get_str("stage").ok() == Some("IXSCAN") {
            return Some((stage.get_str("indexName").ok()?.to_string(), stage.get_document("keyPattern").ok()?.clone()));
        }
        stage.get_document("inputStage").ok().and_then(find_ixscan)
    }
    find_ixscan(reply.get_document("queryPlanner").unwrap().get_document("winningPlan").unwrap())
}

fn error_code(c: &mut Client, body: Document) -> i32 {
    let reply = c.cmd("db", body);
    assert_eq!(reply.get_f64("ok").ok(), Some(0.0), "expected an error: {reply}");
    reply.get_i32("code").unwrap()
}

#[test]
fn hashed_indexes_answer_equality() {
    let server = TestServer::start();
    let mut c = server.client();
    c.ok("db", doc! {"createIndexes": "users", "indexes": [{"key": {"email": "hashed"}, "name": "email_hashed"}]});
    let docs: Vec<Document> = (0..50).map(|i| doc! {"_id": i, "email": format!("u{i}@x.org"), "n": i % 5}).collect();
    c.ok("db", doc! {"insert": "users", "documents": docs});
    c.ok("db", doc! {"insert": "users", "documents": [{"_id": 100, "email": 7}, {"_id": 101, "email": 7.0}, {"_id": 102}]});
    assert_eq!(ids(&mut c, "users", doc! {"email": "u7@x.org"}), [7]);
    assert_eq!(ids(&mut c, "users", doc! {"email": {"$in": ["u1@x.org", "u2@x.org", "nobody"]}}), [1, 2]);
    // Equal numbers of any type share a hash; null finds the missing field.
    assert_eq!(ids(&mut c, "users", doc! {"email": Bson::Int64(7)}), [100, 101]);
    assert_eq!(ids(&mut c, "users", doc! {"email": null}), [102]);
    assert_eq!(index_used(&mut c, "users", doc! {"email": "u7@x.org"}).map(|(n, _)| n).as_deref(), Some("email_hashed"));
    // Ranges cannot use a hashed index; they still answer.
    assert_eq!(index_used(&mut c, "users", doc! {"email": {"$gte": "u9"}}), None);
    assert_eq!(ids(&mut c, "users", doc! {"email": {"$gte": "u9"}}), [9]);
    // Arrays and unique are refused, as by MongoDB.
    let reply = c.ok("db", doc! {"insert": "users", "documents": [{"_id": 200, "email": ["a", "b"]}]});
    assert_eq!(reply.get_array("writeErrors").unwrap()[0].as_document().unwrap().get_i32("code").unwrap(), 16766);
    assert_eq!(error_code(&mut c, doc! {"createIndexes": "users", "indexes": [{"key": {"n": "hashed"}, "name": "u", "unique": true}]}), 16764);
    let listed = batch(&c.ok("db", doc! {"listIndexes": "users"}));
    assert_eq!(listed[1].get_document("key").unwrap(), &doc! {"email": "hashed"});
}

#[test]
fn wildcard_indexes_serve_any_covered_field() {
    let server = TestServer::start();
    let mut c = server.client();
    c.ok("db", doc! {"createIndexes": "products", "indexes": [{"key": {"attributes.$**": 1}, "name": "attrs"}]});
    c.ok(
        "db",
        doc! {"insert": "products", "documents": [
            {"_id": 1, "name": "shirt", "attributes": {"size": "M", "color": "red", "tags": ["cotton", "summer"]}},
            {"_id": 2, "name": "mug", "attributes": {"capacity": 350, "color": "white"}},
            {"_id": 3, "name": "lamp", "attributes": {"watts": 40, "color": "red", "parts": [{"kind": "bulb"}]}},
            {"_id": 4, "name": "box"},
        ]},
    );
    assert_eq!(ids(&mut c, "products", doc! {"attributes.color": "red"}), [1, 3]);
    assert_eq!(ids(&mut c, "products", doc! {"attributes.capacity": {"$gte": 300}}), [2]);
    assert_eq!(ids(&mut c, "products", doc! {"attributes.tags": "summer"}), [1]);
    assert_eq!(ids(&mut c, "products", doc! {"attributes.parts.kind": "bulb"}), [3]);
    let (name, pattern) = index_used(&mut c, "products", doc! {"attributes.color": "red"}).unwrap();
    assert_eq!(name, "attrs");
    assert_eq!(pattern, doc! {"$_path": 1, "attributes.color": 1});
    // Not covered, or a condition the index cannot hold (null: missing
    // fields have no entry): a collection scan, with the right answer.
    assert_eq!(index_used(&mut c, "products", doc! {"name": "mug"}), None);
    assert_eq!(index_used(&mut c, "products", doc! {"attributes.color": null}), None);
    assert_eq!(ids(&mut c, "products", doc! {"attributes.color": null}), [4]);
    // Writes keep it in step.
    c.ok("db", doc! {"update": "products", "updates": [{"q": {"_id": 2}, "u": {"$set": {"attributes.color": "red"}}}]});
    assert_eq!(ids(&mut c, "products", doc! {"attributes.color": "red"}), [1, 2, 3]);
    c.ok("db", doc! {"delete": "products", "deletes": [{"q": {"_id": 1}, "limit": 1}]});
    assert_eq!(ids(&mut c, "products", doc! {"attributes.color": "red"}), [2, 3]);
}

#[test]
fn wildcard_projection_and_errors() {
    let server = TestServer::start();
    let mut c = server.client();
    c.ok("db", doc! {"createIndexes": "things", "indexes": [{"key": {"$**": 1}, "name": "all_but_notes", "wildcardProjection": {"notes": 0}}]});
    c.ok("db", doc! {"insert": "things", "documents": [{"_id": 1, "a": 5, "notes": "x"}, {"_id": 2, "a": 6, "notes": "y"}]});
    assert_eq!(index_used(&mut c, "things", doc! {"a": 5}).map(|(n, _)| n).as_deref(), Some("all_but_notes"));
    assert_eq!(index_used(&mut c, "things", doc! {"notes": "x"}), None);
    assert_eq!(ids(&mut c, "things", doc! {"notes": "x"}), [1]);
    assert_eq!(
        error_code(&mut c, doc! {"createIndexes": "things", "indexes": [{"key": {"a.$**": 1}, "name": "w", "wildcardProjection": {"a": 1}}]}),
        67
    );
    assert_eq!(error_code(&mut c, doc! {"createIndexes": "things", "indexes": [{"key": {"$**": 1}, "name": "u", "unique": true}]}), 67);
}

#[test]
fn hidden_indexes_are_kept_but_not_used_until_unhidden() {
    let server = TestServer::start();
    let mut c = server.client();
    c.ok("db", doc! {"createIndexes": "t", "indexes": [
        {"key": {"k": 1}, "name": "k_1", "hidden": true, "unique": true},
        {"key": {"body": "text"}, "name": "body_text", "hidden": true},
    ]});
    let docs: Vec<Document> = (0..20).map(|i| doc! {"_id": i, "k": i, "body": format!("word{i}")}).collect();
    c.ok("db", doc! {"insert": "t", "documents": docs});
    // Neither the planner nor a hint uses it; $text finds no text index.
    assert_eq!(index_used(&mut c, "t", doc! {"k": 5}), None);
    assert_eq!(ids(&mut c, "t", doc! {"k": 5}), [5]);
    assert_eq!(error_code(&mut c, doc! {"find": "t", "filter": {"k": 5}, "hint": "k_1"}), 2);
    assert_eq!(error_code(&mut c, doc! {"find": "t", "filter": {"$text": {"$search": "word3"}}}), 27);
    // It is still maintained: its unique constraint holds.
    let reply = c.ok("db", doc! {"insert": "t", "documents": [{"_id": 99, "k": 5}]});
    assert_eq!(reply.get_array("writeErrors").unwrap()[0].as_document().unwrap().get_i32("code").unwrap(), 11000);
    // Unhidden, the same queries use it.
    c.ok("db", doc! {"collMod": "t", "index": {"name": "k_1", "hidden": false}});
    c.ok("db", doc! {"collMod": "t", "index": {"name": "body_text", "hidden": false}});
    assert_eq!(index_used(&mut c, "t", doc! {"k": 5}).map(|(n, _)| n).as_deref(), Some("k_1"));
    assert_eq!(ids(&mut c, "t", doc! {"$text": {"$search": "word3"}}), [3]);
}
