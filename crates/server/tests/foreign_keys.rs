//! Foreign keys (the `foreignKeys` collection option), over the wire: what
//! any client sees, Django or not.
mod common;

use bson::{doc, Bson, Document};
use common::{Client, TestServer, Txn};

fn fk(name: &str, field: &str, references: &str, referenced: &str) -> Document {
    doc! {"name": name, "field": field, "references": references, "referencedField": referenced}
}

/// `author {_id, id}` (unique index on `id`), `book {_id, author_id}` with an
/// index on `author_id` and a constraint to `author.id`.
fn setup(c: &mut Client) {
    c.ok("db", doc! {"createIndexes": "author", "indexes": [{"key": {"id": 1}, "name": "author_id_uniq", "unique": true,
        "partialFilterExpression": {"id": {"$type": ["int", "long"]}}}]});
    c.ok("db", doc! {"createIndexes": "book", "indexes": [{"key": {"author_id": 1}, "name": "book_author_id"}]});
    c.ok("db", doc! {"insert": "author", "documents": [{"_id": 1, "id": 10}, {"_id": 2, "id": 20}]});
    c.ok("db", doc! {"collMod": "book", "foreignKeys": [fk("book_author_fk", "author_id", "author", "id")]});
}

fn code(reply: &Document) -> Option<i32> {
    reply.get_i32("code").ok()
}

fn count(c: &mut Client, coll: &str) -> usize {
    c.find_all("db", coll).len()
}

#[test]
fn a_reference_to_no_document_is_refused_and_nothing_is_applied() {
    let server = TestServer::start();
    let mut c = server.client();
    setup(&mut c);
    c.ok("db", doc! {"insert": "book", "documents": [{"_id": 1, "author_id": 10}, {"_id": 2, "author_id": Bson::Null}, {"_id": 3}]});
    // Equal by value: a long refers to an int.
    c.ok("db", doc! {"insert": "book", "documents": [{"_id": 4, "author_id": 20i64}]});
    let reply = c.cmd("db", doc! {"insert": "book", "documents": [{"_id": 5, "author_id": 10}, {"_id": 6, "author_id": 99}]});
    assert_eq!(code(&reply), Some(121), "{reply}");
    assert_eq!(reply.get_document("errInfo").unwrap().get_str("foreignKey").unwrap(), "book_author_fk");
    assert_eq!(count(&mut c, "book"), 4, "the whole command is undone");
    let reply = c.cmd("db", doc! {"update": "book", "updates": [{"q": {"_id": 1}, "u": {"$set": {"author_id": 30}}}]});
    assert_eq!(code(&reply), Some(121), "{reply}");
}

#[test]
fn a_referenced_document_stays_while_referred_to() {
    let server = TestServer::start();
    let mut c = server.client();
    setup(&mut c);
    c.ok("db", doc! {"insert": "book", "documents": [{"_id": 1, "author_id": 10}]});
    let reply = c.cmd("db", doc! {"delete": "author", "deletes": [{"q": {"id": 10}, "limit": 0}]});
    assert_eq!(code(&reply), Some(121), "{reply}");
    let reply = c.cmd("db", doc! {"update": "author", "updates": [{"q": {"id": 10}, "u": {"$set": {"id": 11}}}]});
    assert_eq!(code(&reply), Some(121), "{reply}");
    // Another field may change; an unreferenced author may go.
    c.ok("db", doc! {"update": "author", "updates": [{"q": {"id": 10}, "u": {"$set": {"name": "x"}}}]});
    c.ok("db", doc! {"delete": "author", "deletes": [{"q": {"id": 20}, "limit": 0}]});
    // Both in one command: the book first, then its author.
    c.ok("db", doc! {"delete": "book", "deletes": [{"q": {}, "limit": 0}]});
    c.ok("db", doc! {"delete": "author", "deletes": [{"q": {"id": 10}, "limit": 0}]});
    assert_eq!(count(&mut c, "author"), 0);
}

#[test]
fn checks_are_deferred_to_the_commit() {
    let server = TestServer::start();
    let mut c = server.client();
    setup(&mut c);
    // A reference before its document: fine at commit.
    let mut t = Txn::new();
    t.cmd(&mut c, doc! {"insert": "book", "documents": [{"_id": 1, "author_id": 30}]});
    let reply = t.cmd(&mut c, doc! {"checkForeignKeys": 1});
    assert_eq!(code(&reply), Some(121), "checked now: {reply}");
    t.cmd(&mut c, doc! {"insert": "author", "documents": [{"_id": 3, "id": 30}]});
    assert_eq!(t.cmd(&mut c, doc! {"checkForeignKeys": 1}).get_f64("ok").unwrap(), 1.0);
    assert_eq!(t.commit(&mut c).get_f64("ok").unwrap(), 1.0);
    assert_eq!(count(&mut c, "book"), 1);
    // A dangling one at commit: nothing of the transaction is applied.
    let mut t = Txn::new();
    t.cmd(&mut c, doc! {"insert": "author", "documents": [{"_id": 4, "id": 40}]});
    t.cmd(&mut c, doc! {"insert": "book", "documents": [{"_id": 2, "author_id": 50}]});
    let reply = t.commit(&mut c);
    assert_eq!(code(&reply), Some(121), "{reply}");
    assert_eq!(count(&mut c, "book"), 1);
    assert_eq!(count(&mut c, "author"), 3);
}

#[test]
fn deleting_and_referring_to_one_document_cannot_both_commit() {
    let server = TestServer::start();
    let mut c = server.client();
    let mut d = server.client();
    setup(&mut c);
    // Deleter first, referrer commits while the deleter is open.
    let mut deleter = Txn::new();
    deleter.cmd(&mut c, doc! {"delete": "author", "deletes": [{"q": {"id": 10}, "limit": 1}]});
    let mut referrer = Txn::new();
    referrer.cmd(&mut d, doc! {"insert": "book", "documents": [{"_id": 1, "author_id": 10}]});
    assert_eq!(code(&referrer.commit(&mut d)), Some(112), "the author is the deleter's");
    assert_eq!(deleter.commit(&mut c).get_f64("ok").unwrap(), 1.0);
    // Referrer first: the deleter's commit finds no reference on its
    // snapshot and commits; the referrer's claim of the author then fails.
    let mut referrer = Txn::new();
    referrer.cmd(&mut d, doc! {"insert": "book", "documents": [{"_id": 2, "author_id": 20}]});
    let mut deleter = Txn::new();
    deleter.cmd(&mut c, doc! {"delete": "author", "deletes": [{"q": {"id": 20}, "limit": 1}]});
    assert_eq!(deleter.commit(&mut c).get_f64("ok").unwrap(), 1.0);
    assert_eq!(code(&referrer.commit(&mut d)), Some(112));
    assert_eq!(count(&mut c, "book"), 0);
}

#[test]
fn constraints_follow_renames_and_go_with_drops() {
    let server = TestServer::start();
    let mut c = server.client();
    setup(&mut c);
    c.ok("db", doc! {"insert": "book", "documents": [{"_id": 1, "author_id": 10}]});
    c.ok("admin", doc! {"renameCollection": "db.author", "to": "db.writer"});
    let options = |c: &mut Client, name: &str| {
        let reply = c.ok("db", doc! {"listCollections": 1, "filter": {"name": name}});
        let batch = reply.get_document("cursor").unwrap().get_array("firstBatch").unwrap().clone();
        batch[0].as_document().unwrap().get_document("options").unwrap().clone()
    };
    let fks = options(&mut c, "book");
    assert_eq!(fks.get_array("foreignKeys").unwrap()[0].as_document().unwrap().get_str("references").unwrap(), "writer");
    let reply = c.cmd("db", doc! {"delete": "writer", "deletes": [{"q": {"id": 10}, "limit": 0}]});
    assert_eq!(code(&reply), Some(121), "still enforced after the rename: {reply}");
    c.ok("admin", doc! {"renameCollection": "db.book", "to": "db.volume"});
    let reply = c.cmd("db", doc! {"delete": "writer", "deletes": [{"q": {"id": 10}, "limit": 0}]});
    assert_eq!(code(&reply), Some(121), "the referrer renamed: {reply}");
    c.ok("db", doc! {"drop": "writer"});
    assert!(!options(&mut c, "volume").contains_key("foreignKeys"), "dropped with the referenced collection");
    c.ok("db", doc! {"insert": "volume", "documents": [{"_id": 2, "author_id": 12345}]});
}

#[test]
fn adding_a_constraint_checks_the_documents_present() {
    let server = TestServer::start();
    let mut c = server.client();
    c.ok("db", doc! {"insert": "author", "documents": [{"_id": 1, "id": 10}]});
    c.ok("db", doc! {"insert": "book", "documents": [{"_id": 1, "author_id": 11}]});
    let reply = c.cmd("db", doc! {"collMod": "book", "foreignKeys": [fk("f", "author_id", "author", "id")]});
    assert_eq!(code(&reply), Some(121), "{reply}");
    let reply = c.cmd("db", doc! {"collMod": "book", "foreignKeys": [{"name": "f", "field": "a.b", "references": "author", "referencedField": "id"}]});
    assert_eq!(code(&reply), Some(72), "{reply}");
    // A constraint to a collection created later, and bypassing the check.
    c.ok("db", doc! {"delete": "book", "deletes": [{"q": {}, "limit": 0}]});
    c.ok("db", doc! {"collMod": "book", "foreignKeys": [fk("f", "shelf_id", "shelf", "_id")]});
    let reply = c.cmd("db", doc! {"insert": "book", "documents": [{"_id": 2, "shelf_id": 1}]});
    assert_eq!(code(&reply), Some(121), "{reply}");
    c.ok("db", doc! {"insert": "shelf", "documents": [{"_id": 1}]});
    c.ok("db", doc! {"insert": "book", "documents": [{"_id": 2, "shelf_id": 1}]});
    let reply = c.cmd("db", doc! {"delete": "shelf", "deletes": [{"q": {}, "limit": 0}]});
    assert_eq!(code(&reply), Some(121), "the shelf created after the constraint is protected: {reply}");
    c.ok("db", doc! {"insert": "book", "documents": [{"_id": 3, "shelf_id": 7}], "bypassDocumentValidation": true});
}
