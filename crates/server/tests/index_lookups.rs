//! Finds served by an index return exactly what a collection scan returns:
//! compound indexes by their leading fields (GridFS reads chunks by
//! `{files_id, n}` and files by `{filename, uploadDate}`), and partial indexes
//! (Django's unique constraints allow many NULLs) for the values they hold.
mod common;

use bson::{doc, Bson, Document};
use common::TestServer;

fn ids(reply: &Document) -> Vec<Bson> {
    let batch = reply.get_document("cursor").unwrap().get_array("firstBatch").unwrap();
    batch.iter().map(|d| d.as_document().unwrap().get("_id").unwrap().clone()).collect()
}

fn find(c: &mut common::Client, collection: &str, filter: Document) -> Vec<Bson> {
    let mut found = ids(&c.ok("db", doc! {"find": collection, "filter": filter, "sort": {"_id": 1}}));
    found.sort_by_key(|b| b.as_i32());
    found
}

#[test]
fn compound_and_partial_indexes_find_what_a_scan_finds() {
    let server = TestServer::start();
    let mut c = server.client();
    let docs = vec![
        doc! {"_id": 1, "f": 1, "n": 0, "tag": "a"},
        doc! {"_id": 2, "f": 1, "n": 1, "tag": Bson::Null},
        doc! {"_id": 3, "f": 2, "n": 0},
        doc! {"_id": 4, "f": [1, 3], "n": 5, "tag": "b"},
        doc! {"_id": 5, "f": 1.0, "n": 2_i64, "tag": ["a", "c"]},
        doc! {"_id": 6, "f": "1", "n": 0},
    ];
    let filters = vec![
        doc! {"f": 1},
        doc! {"f": 1, "n": 0},
        doc! {"f": 1, "n": {"$gte": 1}},
        doc! {"f": {"$in": [1, 2]}, "n": {"$in": [0, 2]}},
        doc! {"f": 3},
        doc! {"tag": "a"},
        doc! {"tag": {"$in": ["a", "b"]}},
        doc! {"tag": Bson::Null},
        doc! {"f": "1"},
    ];
    c.ok("db", doc! {"insert": "plain", "documents": docs.clone()});
    c.ok("db", doc! {"insert": "indexed", "documents": docs});
    c.ok("db", doc! {"createIndexes": "indexed", "indexes": [
        {"key": {"f": 1, "n": 1}, "name": "f_1_n_1"},
        {"key": {"tag": 1}, "name": "tag_1", "partialFilterExpression": {"tag": {"$type": "string"}}},
    ]});
    for filter in filters {
        let expected = find(&mut c, "plain", filter.clone());
        assert_eq!(find(&mut c, "indexed", filter.clone()), expected, "{filter}");
    }
    // A unique compound index answers a prefix with every document under it.
    c.ok("db", doc! {"createIndexes": "chunks", "indexes": [{"key": {"files_id": 1, "n": 1}, "name": "files_id_1_n_1", "unique": true}]});
    c.ok("db", doc! {"insert": "chunks", "documents": [
        {"_id": 1, "files_id": 10, "n": 0}, {"_id": 2, "files_id": 10, "n": 1}, {"_id": 3, "files_id": 11, "n": 0},
    ]});
    assert_eq!(find(&mut c, "chunks", doc! {"files_id": 10}), vec![Bson::Int32(1), Bson::Int32(2)]);
    assert_eq!(find(&mut c, "chunks", doc! {"files_id": 10, "n": 1}), vec![Bson::Int32(2)]);
}
