//! A find's projection is parsed once per distinct projection and reused:
//! the answers stay those of each command's own projection and filter.
mod common;

use bson::{doc, Bson, Document};
use common::TestServer;

fn first_batch(reply: &Document) -> Vec<Document> {
    reply.get_document("cursor").unwrap().get_array("firstBatch").unwrap().iter().map(|d| d.as_document().unwrap().clone()).collect()
}

#[test]
fn a_reused_projection_answers_each_query_as_its_own() {
    let server = TestServer::start();
    let mut c = server.client();
    c.ok("db", doc! {"insert": "p", "documents": [
        {"_id": 1, "a": [1, 2, 3], "b": "x", "c": 10},
        {"_id": 2, "a": [4, 5], "b": "y", "c": 20},
    ]});
    // The same renaming projection (Django's shape), twice, over different filters.
    let renames = doc! {"_id": 0, "c0": "$b", "c1": "$c"};
    for (id, b, cv) in [(1, "x", 10), (2, "y", 20), (1, "x", 10)] {
        let reply = c.ok("db", doc! {"find": "p", "filter": {"_id": id}, "projection": renames.clone()});
        assert_eq!(first_batch(&reply), vec![doc! {"c0": b, "c1": cv}]);
    }
    // A positional projection depends on the filter: never one query's for another's.
    for (value, expected) in [(2, 2), (3, 3), (5, 5)] {
        let reply = c.ok("db", doc! {"find": "p", "filter": {"a": value}, "projection": {"a.$": 1}});
        assert_eq!(first_batch(&reply)[0].get("a"), Some(&Bson::Array(vec![Bson::Int32(expected)])));
    }
    // A refused projection is refused every time, not remembered as good.
    for _ in 0..2 {
        let reply = c.cmd("db", doc! {"find": "p", "projection": {"a": 1, "b": 0}});
        assert_eq!(reply.get_f64("ok").ok(), Some(0.0), "{reply}");
    }
    let reply = c.cmd("db", doc! {"find": "p", "projection": 1});
    assert_eq!(reply.get_f64("ok").ok(), Some(0.0), "{reply}");
}
