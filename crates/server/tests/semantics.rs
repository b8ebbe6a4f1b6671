//! Write and read semantics that depend on the query engine (filters,
//! updates, sorting, projection) as seen through the server's commands.
mod common;

use bson::{doc, Bson, Document};
use common::TestServer;

fn batch(reply: &Document) -> Vec<Document> {
    reply.get_document("cursor").unwrap().get_array("firstBatch").unwrap().iter().map(|d| d.as_document().unwrap().clone()).collect()
}

#[test]
fn update_counts_and_upsert() {
    let server = TestServer::start();
    let mut c = server.client();
    c.ok("db", doc! {"insert": "c", "documents": [{"_id": 1, "n": 1}, {"_id": 2, "n": 2}, {"_id": 3, "n": 3}]});
    let reply = c.ok("db", doc! {"update": "c", "updates": [{"q": {"n": {"$gte": 2}}, "u": {"$set": {"big": true}}, "multi": true}]});
    assert_eq!((reply.get_i32("n").ok(), reply.get_i32("nModified").ok()), (Some(2), Some(2)));
    // Setting the same value matches but does not modify.
    let reply = c.ok("db", doc! {"update": "c", "updates": [{"q": {"_id": 2}, "u": {"$set": {"big": true}}}]});
    assert_eq!((reply.get_i32("n").ok(), reply.get_i32("nModified").ok()), (Some(1), Some(0)));
    let reply = c.ok("db", doc! {"update": "c", "updates": [{"q": {"_id": 7, "kind": "x"}, "u": {"$inc": {"n": 5}}, "upsert": true}]});
    assert_eq!(reply.get_i32("n").ok(), Some(1));
    assert_eq!(reply.get_array("upserted").unwrap()[0].as_document().unwrap().get_i32("_id").ok(), Some(7));
    let reply = c.ok("db", doc! {"find": "c", "filter": {"_id": 7}});
    assert_eq!(batch(&reply), vec![doc! {"_id": 7, "kind": "x", "n": 5}]);
    // Replacement keeps _id.
    c.ok("db", doc! {"update": "c", "updates": [{"q": {"_id": 1}, "u": {"fresh": 1}}]});
    let reply = c.ok("db", doc! {"find": "c", "filter": {"_id": 1}});
    assert_eq!(batch(&reply), vec![doc! {"_id": 1, "fresh": 1}]);
    // Changing _id is refused as a write error.
    let reply = c.ok("db", doc! {"update": "c", "updates": [{"q": {"_id": 1}, "u": {"$set": {"_id": 9}}}]});
    assert!(reply.get_array("writeErrors").is_ok());
    // arrayFilters pick the elements; a document without the array is a write error.
    c.ok("db", doc! {"insert": "c", "documents": [{"_id": 50, "a": [1, 2, 1]}]});
    let reply = c.ok("db", doc! {"update": "c", "updates": [{"q": {"_id": 50}, "u": {"$set": {"a.$[x]": 10}}, "arrayFilters": [{"x": 1}]}]});
    assert_eq!(reply.get_i32("nModified").ok(), Some(1));
    let reply = c.ok("db", doc! {"find": "c", "filter": {"_id": 50}});
    assert_eq!(batch(&reply), vec![doc! {"_id": 50, "a": [10, 2, 10]}]);
    let reply = c.ok("db", doc! {"update": "c", "updates": [{"q": {"_id": 7}, "u": {"$set": {"a.$[x]": 1}}, "arrayFilters": [{"x": 1}]}]});
    let err = reply.get_array("writeErrors").unwrap()[0].as_document().unwrap().clone();
    assert_eq!(err.get_i32("code").ok(), Some(2));
    assert!(err.get_str("errmsg").unwrap().contains("must exist in the document"));
}

#[test]
fn update_respects_unique_indexes() {
    let server = TestServer::start();
    let mut c = server.client();
    c.ok("db", doc! {"createIndexes": "u", "indexes": [{"key": {"e": 1}, "name": "e_1", "unique": true}]});
    c.ok("db", doc! {"insert": "u", "documents": [{"_id": 1, "e": "a"}, {"_id": 2, "e": "b"}]});
    let reply = c.ok("db", doc! {"update": "u", "updates": [{"q": {"_id": 2}, "u": {"$set": {"e": "a"}}}]});
    let err = reply.get_array("writeErrors").unwrap()[0].as_document().unwrap().clone();
    assert_eq!(err.get_i32("code").ok(), Some(11000));
    // The failed update changed nothing, and the old key is still owned.
    c.ok("db", doc! {"update": "u", "updates": [{"q": {"_id": 2}, "u": {"$set": {"e": "c"}}}]});
    c.ok("db", doc! {"insert": "u", "documents": [{"_id": 3, "e": "b"}]});
    let reply = c.ok("db", doc! {"find": "u", "filter": {"e": "b"}});
    assert_eq!(batch(&reply), vec![doc! {"_id": 3, "e": "b"}]);
}

#[test]
fn an_update_moves_only_the_index_entries_that_change() {
    let server = TestServer::start();
    let mut c = server.client();
    c.ok("db", doc! {"createIndexes": "m", "indexes": [{"key": {"tags": 1}, "name": "tags_1"}, {"key": {"code": 1}, "name": "code_1", "unique": true}]});
    c.ok("db", doc! {"insert": "m", "documents": [{"_id": 1, "tags": ["a", "b"], "code": "x", "n": 0}]});
    // Some keys of a multikey index stay, one goes, one comes.
    c.ok("db", doc! {"update": "m", "updates": [{"q": {"_id": 1}, "u": {"$set": {"tags": ["b", "c"], "n": 1}}}]});
    for (tag, found) in [("a", 0), ("b", 1), ("c", 1)] {
        let reply = c.ok("db", doc! {"find": "m", "filter": {"tags": tag}, "hint": "tags_1"});
        assert_eq!(batch(&reply).len(), found, "tags: {tag}");
    }
    // An update leaving the unique key alone keeps it owned...
    c.ok("db", doc! {"update": "m", "updates": [{"q": {"_id": 1}, "u": {"$inc": {"n": 1}}}]});
    let reply = c.ok("db", doc! {"insert": "m", "documents": [{"_id": 2, "code": "x"}]});
    assert_eq!(reply.get_array("writeErrors").unwrap()[0].as_document().unwrap().get_i32("code").ok(), Some(11000));
    let reply = c.ok("db", doc! {"find": "m", "filter": {"code": "x"}, "hint": "code_1"});
    assert_eq!(batch(&reply), vec![doc! {"_id": 1, "tags": ["b", "c"], "code": "x", "n": 2}]);
    // ...and an update that changes it frees the old one.
    c.ok("db", doc! {"update": "m", "updates": [{"q": {"_id": 1}, "u": {"$set": {"code": "y"}}}]});
    c.ok("db", doc! {"insert": "m", "documents": [{"_id": 2, "code": "x"}]});
    let reply = c.ok("db", doc! {"find": "m", "filter": {"code": {"$in": ["x", "y"]}}, "hint": "code_1", "sort": {"code": 1}, "projection": {"code": 1}});
    assert_eq!(batch(&reply), vec![doc! {"_id": 2, "code": "x"}, doc! {"_id": 1, "code": "y"}]);
}

#[test]
fn partial_unique_index_allows_many_nulls() {
    let server = TestServer::start();
    let mut c = server.client();
    c.ok("db", doc! {"createIndexes": "p", "indexes": [{"key": {"nick": 1}, "name": "nick_1", "unique": true, "partialFilterExpression": {"nick": {"$type": "string"}}}]});
    let reply = c.ok("db", doc! {"insert": "p", "documents": [{"nick": Bson::Null}, {"nick": Bson::Null}, {}, {"nick": "x"}]});
    assert_eq!(reply.get_i32("n").ok(), Some(4));
    let reply = c.ok("db", doc! {"insert": "p", "documents": [{"nick": "x"}]});
    assert!(reply.get_array("writeErrors").is_ok());
}

#[test]
fn find_sort_skip_limit_projection() {
    let server = TestServer::start();
    let mut c = server.client();
    let docs: Vec<Bson> = (0..10).map(|i| Bson::Document(doc! {"_id": i, "v": (i * 7) % 10, "x": "y"})).collect();
    c.ok("db", doc! {"insert": "c", "documents": docs});
    let reply = c.ok("db", doc! {"find": "c", "filter": {"v": {"$gt": 2}}, "sort": {"v": -1}, "skip": 1, "limit": 3, "projection": {"x": 0}});
    assert_eq!(batch(&reply), vec![doc! {"_id": 4, "v": 8}, doc! {"_id": 1, "v": 7}, doc! {"_id": 8, "v": 6}]);
    let reply = c.ok("db", doc! {"count": "c", "query": {"v": {"$lt": 5}}});
    assert_eq!(reply.get_i64("n").ok(), Some(5));
    let reply = c.ok("db", doc! {"distinct": "c", "key": "x"});
    assert_eq!(reply.get_array("values").unwrap(), &vec![Bson::String("y".into())]);
}

#[test]
fn index_lookup_matches_scan() {
    let server = TestServer::start();
    let mut c = server.client();
    c.ok("db", doc! {"createIndexes": "c", "indexes": [{"key": {"tag": 1}, "name": "tag_1"}]});
    c.ok("db", doc! {"insert": "c", "documents": [{"_id": 1, "tag": "a"}, {"_id": 2, "tag": ["a", "b"]}, {"_id": 3, "tag": "b"}, {"_id": 4, "tag": 1.0}]});
    let reply = c.ok("db", doc! {"find": "c", "filter": {"tag": "a"}});
    let ids: Vec<_> = batch(&reply).iter().map(|d| d.get("_id").cloned().unwrap()).collect();
    assert_eq!(ids, vec![Bson::Int32(1), Bson::Int32(2)]);
    let reply = c.ok("db", doc! {"find": "c", "filter": {"tag": {"$in": ["b", 1]}}});
    assert_eq!(batch(&reply).len(), 3);
    c.ok("db", doc! {"delete": "c", "deletes": [{"q": {"tag": "b"}, "limit": 0}]});
    let reply = c.ok("db", doc! {"find": "c", "filter": {"tag": "a"}});
    assert_eq!(batch(&reply).len(), 1);
}

#[test]
fn find_and_modify_variants() {
    let server = TestServer::start();
    let mut c = server.client();
    c.ok("db", doc! {"insert": "c", "documents": [{"_id": 1, "n": 1}, {"_id": 2, "n": 5}]});
    let reply = c.ok("db", doc! {"findAndModify": "c", "query": {}, "sort": {"n": -1}, "update": {"$inc": {"n": 1}}, "new": true});
    assert_eq!(reply.get_document("value").unwrap(), &doc! {"_id": 2, "n": 6});
    assert_eq!(reply.get_document("lastErrorObject").unwrap().get_bool("updatedExisting").ok(), Some(true));
    let reply = c.ok("db", doc! {"findAndModify": "c", "query": {"_id": 1}, "update": {"$inc": {"n": 1}}, "fields": {"n": 1, "_id": 0}});
    assert_eq!(reply.get_document("value").unwrap(), &doc! {"n": 1});
    let reply = c.ok("db", doc! {"findAndModify": "c", "query": {"_id": 3}, "update": {"$set": {"n": 0}}, "upsert": true, "new": true});
    assert_eq!(reply.get_document("value").unwrap(), &doc! {"_id": 3, "n": 0});
    let reply = c.ok("db", doc! {"findAndModify": "c", "query": {"_id": 3}, "remove": true});
    assert_eq!(reply.get_document("value").unwrap(), &doc! {"_id": 3, "n": 0});
    let reply = c.ok("db", doc! {"findAndModify": "c", "query": {"_id": 3}, "remove": true});
    assert_eq!(reply.get("value"), Some(&Bson::Null));
}

#[test]
fn aggregate_lookup_and_out() {
    let server = TestServer::start();
    let mut c = server.client();
    c.ok("db", doc! {"insert": "authors", "documents": [{"_id": 1, "name": "ann"}]});
    c.ok("db", doc! {"insert": "books", "documents": [{"_id": 10, "author": 1}, {"_id": 11, "author": 1}]});
    let reply = c.ok("db", doc! {"aggregate": "authors", "pipeline": [
        {"$lookup": {"from": "books", "localField": "_id", "foreignField": "author", "as": "books"}},
        {"$project": {"name": 1, "count": {"$size": "$books"}}},
    ], "cursor": {}});
    assert_eq!(batch(&reply), vec![doc! {"_id": 1, "name": "ann", "count": 2}]);
    c.ok("db", doc! {"aggregate": "books", "pipeline": [{"$match": {"author": 1}}, {"$out": "copy"}], "cursor": {}});
    assert_eq!(c.find_all("db", "copy").len(), 2);
}

#[test]
fn whole_collection_counts() {
    let server = TestServer::start();
    let mut c = server.client();
    let reply = c.ok("db", doc! {"aggregate": "c", "pipeline": [{"$count": "n"}], "cursor": {}});
    assert!(batch(&reply).is_empty());
    c.ok("db", doc! {"insert": "c", "documents": [{"a": 1}, {"a": 2}, {"a": 3}]});
    let reply = c.ok("db", doc! {"aggregate": "c", "pipeline": [{"$count": "n"}], "cursor": {}});
    assert_eq!(batch(&reply), vec![doc! {"n": 3}]);
    let reply = c.ok("db", doc! {"aggregate": "c", "pipeline": [{"$match": {}}, {"$group": {"_id": 1, "n": {"$sum": 1}}}], "cursor": {}});
    assert_eq!(batch(&reply), vec![doc! {"_id": 1, "n": 3}]);
    // A real filter takes the general path.
    let reply = c.ok("db", doc! {"aggregate": "c", "pipeline": [{"$match": {"a": {"$gt": 1}}}, {"$count": "n"}], "cursor": {}});
    assert_eq!(batch(&reply), vec![doc! {"n": 2}]);
}

/// Writes mongod refuses are refused with its codes and messages, and
/// nothing is stored (issue 13).
#[test]
fn writes_to_system_collections_and_dollar_ids_are_refused() {
    let server = TestServer::start();
    let mut c = server.client();
    let code = |reply: &Document| (reply.get_f64("ok").ok(), reply.get_i32("code").ok(), reply.get_str("errmsg").unwrap_or("").to_string());
    let reply = c.cmd("admin", doc! {"insert": "system.users", "documents": [{"_id": "admin.x", "user": "x", "db": "admin"}]});
    assert_eq!(code(&reply), (Some(0.0), Some(73), "Invalid system namespace: admin.system.users".into()));
    let reply = c.cmd("blog", doc! {"insert": "system.indexes", "documents": [{"ns": "blog.t", "key": {"a": 1}, "name": "a_1"}]});
    assert_eq!(code(&reply), (Some(0.0), Some(73), "Invalid system namespace: blog.system.indexes".into()));
    let reply = c.cmd("blog", doc! {"update": "system.views", "updates": [{"q": {}, "u": {"$set": {"a": 1}}, "upsert": true}]});
    assert_eq!(code(&reply), (Some(0.0), Some(73), "cannot write to blog.system.views".into()));
    let reply = c.cmd("blog", doc! {"delete": "system.js", "deletes": [{"q": {}, "limit": 0}]});
    assert_eq!(code(&reply).1, Some(73));
    let reply = c.cmd("blog", doc! {"findAndModify": "system.profile", "query": {}, "update": {"$set": {"a": 1}}, "upsert": true});
    assert_eq!(code(&reply).1, Some(73));
    let reply = c.cmd("blog", doc! {"create": "system.indexes"});
    assert_eq!(code(&reply).1, Some(73));
    let reply = c.cmd("blog", doc! {"createIndexes": "system.users", "indexes": [{"key": {"a": 1}, "name": "a_1"}]});
    assert_eq!(code(&reply).1, Some(73));
    let reply = c.cmd("blog", doc! {"insert": "a.system.b", "documents": [{"x": 1}]});
    assert_eq!(code(&reply), (Some(0.0), Some(2), "Invalid namespace: blog.a.system.b".into()));
    c.ok("blog", doc! {"insert": "t", "documents": [{"_id": 1}]});
    let reply = c.cmd("admin", doc! {"renameCollection": "blog.t", "to": "blog.system.users"});
    assert_eq!(code(&reply).1, Some(73));
    let reply = c.ok("admin", doc! {"listCollections": 1});
    assert!(batch(&reply).is_empty(), "{reply:?}");

    // `$`-prefixed keys in _id, at any depth; a DBRef is allowed.
    let reply = c.ok("blog", doc! {"insert": "t", "documents": [{"_id": {"$gt": 1}}, {"_id": {"a": [{"b": {"$x": 1}}]}}, {"_id": 2}]});
    let errors = reply.get_array("writeErrors").unwrap();
    let first = errors[0].as_document().unwrap();
    assert_eq!(first.get_i32("code").ok(), Some(52));
    assert_eq!(first.get_str("errmsg").ok(), Some("_id fields may not contain '$'-prefixed fields: $gt is not valid for storage."));
    assert_eq!(reply.get_i32("n").ok(), Some(0), "ordered insert stops at the first error");
    let reply = c.ok("blog", doc! {"insert": "t", "documents": [{"_id": {"a": [{"b": {"$x": 1}}]}}], "ordered": false});
    assert_eq!(reply.get_array("writeErrors").unwrap()[0].as_document().unwrap().get_i32("code").ok(), Some(52));
    let reply = c.ok("blog", doc! {"update": "t", "updates": [{"q": {"_id": {"$eq": 9}}, "u": {"_id": {"$k": 1}, "v": 1}, "upsert": true}]});
    assert_eq!(reply.get_array("writeErrors").unwrap()[0].as_document().unwrap().get_i32("code").ok(), Some(52));
    let reply = c.ok("blog", doc! {"insert": "t", "documents": [{"_id": {"$ref": "c", "$id": 1, "$db": "d"}}]});
    assert!(reply.get_array("writeErrors").is_err(), "{reply:?}");
    assert_eq!(c.find_all("blog", "t").len(), 2);

    // The same rule holds for documents an aggregation writes with $out or $merge.
    let computed_id = doc! {"$project": {"_id": {"$literal": {"$gt": 1}}, "v": "$_id"}};
    let reply = c.cmd("blog", doc! {"aggregate": "t", "pipeline": [computed_id.clone(), {"$out": "copied"}], "cursor": {}});
    assert_eq!(code(&reply).1, Some(52), "{reply:?}");
    let reply = c.cmd("blog", doc! {"aggregate": "t", "pipeline": [computed_id.clone(), {"$merge": {"into": "merged"}}], "cursor": {}});
    assert_eq!(code(&reply).1, Some(52), "{reply:?}");
    let reply = c.cmd("blog", doc! {"aggregate": "t", "pipeline": [computed_id, {"$merge": {"into": "merged", "whenMatched": "fail"}}], "cursor": {}});
    assert_eq!(code(&reply).1, Some(52), "{reply:?}");
    assert!(c.find_all("blog", "copied").is_empty() && c.find_all("blog", "merged").is_empty());
}
