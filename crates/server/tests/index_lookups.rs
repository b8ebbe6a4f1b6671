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

/// Django's `annotate()` over a relation (`$lookup`, `$unwind`, `$group`)
/// gives the same groups, values and types as the stages run one by one
/// (decoded documents), whether the joined collection is scanned or probed
/// through an index, whatever the index (single field, compound, partial:
/// the joined documents are then read on their stored bytes, or decoded
/// where the plan must check them), and whether the planner probes the
/// index or, when the join reads most of the collection, scans it.
#[test]
fn a_group_over_a_join_gives_the_same_through_any_index() {
    let server = TestServer::start();
    let mut c = server.client();
    let entries: Vec<Document> = (0..60)
        .map(|i| {
            let author = match i % 6 {
                0 => Bson::Int32(i % 5),
                1 => Bson::Int64(i64::from(i % 5)),
                2 => Bson::Double(f64::from(i % 5)),
                3 => Bson::Array(vec![Bson::Int32(i % 5), Bson::Int32((i + 2) % 5)]),
                4 => Bson::String("x".into()),
                _ => Bson::Null,
            };
            let n = match i % 4 {
                0 => Bson::Double(f64::from(i) / 10.0),
                1 => Bson::Int32(i),
                2 => Bson::Null,
                _ => Bson::Int64(i64::from(i) << 33),
            };
            doc! {"_id": i, "author": author, "n": n, "id": i + 1, "body": "lorem"}
        })
        .collect();
    let collections = ["e_plain", "e_single", "e_compound", "e_partial"];
    for name in collections {
        c.ok("db", doc! {"insert": name, "documents": entries.clone()});
    }
    c.ok("db", doc! {"createIndexes": "e_single", "indexes": [{"key": {"author": 1}, "name": "author_1"}]});
    c.ok("db", doc! {"createIndexes": "e_compound", "indexes": [{"key": {"author": 1, "n": -1}, "name": "author_1_n_-1"}]});
    c.ok("db", doc! {"createIndexes": "e_partial", "indexes": [
        {"key": {"author": 1}, "name": "author_1", "partialFilterExpression": {"author": {"$type": "number"}}},
    ]});
    let authors: Vec<Document> = vec![
        doc! {"_id": 0, "id": 0, "name": "a"},
        doc! {"_id": 1, "id": 1_i64, "name": "b"},
        doc! {"_id": 2, "id": 2.0, "name": "c"},
        doc! {"_id": 3, "id": "x", "name": "d"},
        doc! {"_id": 4, "id": 9, "name": "e"},
        doc! {"_id": 5, "id": 3, "name": "f"},
        doc! {"_id": 6, "id": 4, "name": "g"},
    ];
    c.ok("db", doc! {"insert": "authors", "documents": authors});
    let groups = [
        doc! {"_id": {"g0": {"$ifNull": ["$id", null]}, "g1": {"$ifNull": ["$name", null]}},
              "a0": {"$sum": {"$cond": [{"$ne": [{"$ifNull": ["$j.id", null]}, null]}, 1, 0]}}, "a1": {"$avg": "$j.n"}},
        doc! {"_id": "$name", "s": {"$sum": "$j.n"}, "mn": {"$min": "$j.n"}, "mx": {"$max": "$j.n"}, "p": {"$push": "$j.n"}, "c": {"$sum": 1}},
        doc! {"_id": "$id", "f": {"$first": "$j._id"}, "l": {"$last": "$j.n"}, "big": {"$sum": {"$cond": {"if": {"$gte": ["$j.n", 10]}, "then": 1, "else": 0}}}},
    ];
    // Every author joins most entries: the planner reads the entries once
    // (a hash join); two of them join a few: it probes the index.
    for (selective, strategy) in [(false, "HashJoin"), (true, "IndexedLoopJoin")] {
        let only = if selective { doc! {"_id": {"$in": [0, 4]}} } else { Document::new() };
        let plan = c.ok("db", doc! {"explain": {"aggregate": "authors", "pipeline": [
            {"$match": only.clone()},
            {"$lookup": {"from": "e_single", "localField": "id", "foreignField": "author", "as": "j"}},
        ], "cursor": {}}, "verbosity": "executionStats"});
        let lookup = plan.get_array("stages").unwrap()[1].as_document().unwrap().clone();
        assert_eq!(lookup.get_str("strategy").unwrap(), strategy, "{lookup}");
        assert_eq!(lookup.get_document("joinEstimate").unwrap().get_i64("documents").unwrap(), 60, "{lookup}");
        // Django's annotate: one group per author, accumulated per join key
        // as the entries are read; grouped by a constant, per match.
        for (group, how) in [(&groups[0], "perJoinKey"), (&doc! {"_id": null, "n": {"$sum": "$j.n"}}, "perMatch")] {
            let plan = c.ok("db", doc! {"explain": {"aggregate": "authors", "pipeline": [
                {"$match": only.clone()},
                {"$lookup": {"from": "e_single", "localField": "id", "foreignField": "author", "as": "j"}},
                {"$unwind": {"path": "$j", "preserveNullAndEmptyArrays": true}},
                {"$group": group.clone()},
            ], "cursor": {}}, "verbosity": "executionStats"});
            let lookup = plan.get_array("stages").unwrap()[1].as_document().unwrap().clone();
            assert_eq!(lookup.get_str("strategy").unwrap(), strategy, "{lookup}");
            assert_eq!(lookup.get_str("groupedJoin").unwrap(), how, "{lookup}");
        }
        for group in &groups {
            for preserve in [true, false] {
                let run = |c: &mut common::Client, from: &str, one_by_one: bool| {
                    let mut pipeline = vec![
                        doc! {"$match": only.clone()},
                        doc! {"$lookup": {"from": from, "localField": "id", "foreignField": "author", "as": "j"}},
                        doc! {"$unwind": {"path": "$j", "preserveNullAndEmptyArrays": preserve}},
                        doc! {"$group": group.clone()},
                    ];
                    if one_by_one {
                        // A stage between the join and the group: no fused path.
                        pipeline.insert(3, doc! {"$project": {"not_a_field": 0}});
                    }
                    let reply = c.ok("db", doc! {"aggregate": "authors", "pipeline": pipeline, "cursor": {}});
                    reply.get_document("cursor").unwrap().get_array("firstBatch").unwrap().clone()
                };
                let expected = run(&mut c, "e_plain", true);
                assert!(!expected.is_empty());
                for from in collections {
                    assert_eq!(run(&mut c, from, false), expected, "{from}: {group} preserve={preserve}");
                    assert_eq!(run(&mut c, from, true), expected, "{from} one by one: {group} preserve={preserve}");
                }
            }
        }
    }
}

/// explain (executionStats) of a join then `$limit`: the query feeding the
/// pipeline reads only what the stages pulled, as the aggregate itself does,
/// not the whole collection; each `$lookup` probes the joined index.
#[test]
fn an_aggregate_explain_counts_what_its_stages_pulled() {
    let server = TestServer::start();
    let mut c = server.client();
    // Enough authors that 20 entries' authors are a small share of them (a
    // join that would fetch most of its collection scans it instead).
    let authors: Vec<Document> = (1..=100).map(|i| doc! {"_id": i, "id": i}).collect();
    c.ok("db", doc! {"insert": "authors", "documents": authors});
    c.ok("db", doc! {"createIndexes": "authors", "indexes": [{"key": {"id": 1}, "name": "id_1", "unique": true}]});
    let entries: Vec<Document> = (0..1000).map(|i| doc! {"_id": i, "author_id": i % 100 + 1}).collect();
    c.ok("db", doc! {"insert": "entries", "documents": entries});
    let join = doc! {"$lookup": {"from": "authors", "localField": "author_id", "foreignField": "id", "as": "a"}};
    let explain = |c: &mut common::Client, pipeline: Vec<Document>| {
        let reply = c.ok("db", doc! {"explain": {"aggregate": "entries", "pipeline": pipeline, "cursor": {}}, "verbosity": "executionStats"});
        let stages = reply.get_array("stages").unwrap().clone();
        let stats = stages[0].as_document().unwrap().get_document("$cursor").unwrap().get_document("executionStats").unwrap().clone();
        let lookup = stages[1].as_document().unwrap().clone();
        (stats.get_i64("nReturned").unwrap(), stats.get_i64("totalDocsExamined").unwrap(), lookup)
    };
    let limited = vec![join.clone(), doc! {"$unwind": "$a"}, doc! {"$limit": 20}];
    let (returned, examined, lookup) = explain(&mut c, limited.clone());
    assert_eq!((returned, examined), (20, 20));
    assert_eq!(lookup.get_array("indexesUsed").unwrap(), &vec![Bson::String("id_1".into())]);
    assert_eq!(lookup.get_i64("collectionScans").unwrap(), 0);
    // Without a limit every entry is read.
    let (returned, examined, _) = explain(&mut c, vec![join, doc! {"$unwind": "$a"}]);
    assert_eq!((returned, examined), (1000, 1000));
    // And the aggregate itself returns what its explain ran.
    let reply = c.ok("db", doc! {"aggregate": "entries", "pipeline": limited, "cursor": {}});
    assert_eq!(ids(&reply), (0..20).map(Bson::Int32).collect::<Vec<_>>());
}
