//! The plan cache as a client sees it: a query shape's winning plan is
//! cached after two trials that agree, runs alone afterwards, is replanned
//! when it does much worse than when it was cached, and is forgotten when
//! the collection's indexes, its name or the collection itself change —
//! while every query answers exactly what a collection scan answers.
mod common;

use bson::{doc, Bson, Document};
use common::{Client, TestServer};

/// 2,000 entries whose `n` and `at` both grow with `_id`, indexed on each.
fn entries(c: &mut Client, coll: &str) {
    let docs: Vec<Document> = (0..2000).map(|i| doc! {"_id": i, "n": i, "at": i, "pad": "x".repeat(20)}).collect();
    c.ok("db", doc! {"insert": coll, "documents": docs});
    c.ok("db", doc! {"createIndexes": coll, "indexes": [{"key": {"n": 1}, "name": "n_1"}, {"key": {"at": 1}, "name": "at_1"}]});
}

fn batch(reply: &Document) -> Vec<Bson> {
    let batch = reply.get_document("cursor").unwrap().get_array("firstBatch").unwrap();
    batch.iter().map(|d| d.as_document().unwrap().get("_id").unwrap().clone()).collect()
}

/// The benchmark's shape: a range on `n`, the newest first, 20 of them.
fn latest(c: &mut Client, coll: &str, below: i32) -> Vec<Bson> {
    batch(&c.ok("db", doc! {"find": coll, "filter": {"n": {"$lte": below}}, "sort": {"at": -1}, "limit": 20}))
}

/// The same query answered by a collection scan.
fn scanned(c: &mut Client, coll: &str, below: i32) -> Vec<Bson> {
    batch(&c.ok("db", doc! {"find": coll, "filter": {"n": {"$lte": below}}, "sort": {"at": -1}, "limit": 20, "hint": {"$natural": 1}}))
}

fn explain(c: &mut Client, coll: &str, below: i32) -> Document {
    let reply = c.ok("db", doc! {"explain": {"find": coll, "filter": {"n": {"$lte": below}}, "sort": {"at": -1}, "limit": 20}, "verbosity": "queryPlanner"});
    reply.get_document("queryPlanner").unwrap().clone()
}

/// The index names a plan (as explain shows it) reads.
fn indexes_of(plan: &Document) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(name) = plan.get_str("indexName") {
        out.push(name.to_string());
    }
    if let Ok(input) = plan.get_document("inputStage") {
        out.extend(indexes_of(input));
    }
    out
}

fn cache_stats(c: &mut Client, coll: &str) -> Vec<Document> {
    let reply = c.ok("db", doc! {"aggregate": coll, "pipeline": [{"$planCacheStats": {}}], "cursor": {}});
    reply.get_document("cursor").unwrap().get_array("firstBatch").unwrap().iter().map(|d| d.as_document().unwrap().clone()).collect()
}

fn is_cached(planner: &Document) -> bool {
    planner.get_document("winningPlan").unwrap().get_bool("isCached").unwrap()
}

#[test]
fn a_shape_is_cached_after_two_agreeing_trials_and_explain_shows_it() {
    let server = TestServer::start();
    let mut c = server.client();
    entries(&mut c, "e");
    let first = explain(&mut c, "e", 1990);
    assert!(!is_cached(&first));
    assert_eq!(first.get_str("queryHash").ok().unwrap().len(), 8);
    assert_eq!(indexes_of(first.get_document("winningPlan").unwrap()), vec!["at_1"]);
    let expected = scanned(&mut c, "e", 1990);
    assert_eq!(latest(&mut c, "e", 1990), expected);
    // One trial leaves an inactive entry: nothing is cached yet.
    let stats = cache_stats(&mut c, "e");
    assert_eq!(stats.len(), 1);
    assert_eq!(stats[0].get_bool("isActive").ok(), Some(false));
    assert!(!is_cached(&explain(&mut c, "e", 1990)));
    assert_eq!(latest(&mut c, "e", 1990), expected);
    let stats = cache_stats(&mut c, "e");
    assert_eq!(stats[0].get_bool("isActive").ok(), Some(true));
    assert_eq!(indexes_of(stats[0].get_document("cachedPlan").unwrap()), vec!["at_1"]);
    // Other values of the same shape share the entry.
    let planner = explain(&mut c, "e", 1500);
    assert!(is_cached(&planner));
    assert_eq!(planner.get_str("queryHash").ok(), first.get_str("queryHash").ok());
    assert_eq!(planner.get_str("planCacheKey").ok(), first.get_str("planCacheKey").ok());
    for rejected in planner.get_array("rejectedPlans").unwrap() {
        assert_eq!(rejected.as_document().unwrap().get_bool("isCached").ok(), Some(false));
    }
    assert_eq!(latest(&mut c, "e", 1500), scanned(&mut c, "e", 1500));
    // Explain neither uses nor makes entries.
    assert_eq!(cache_stats(&mut c, "e").len(), 1);
}

#[test]
fn a_cached_plan_that_does_much_worse_is_replanned() {
    let server = TestServer::start();
    let mut c = server.client();
    entries(&mut c, "e");
    for _ in 0..2 {
        assert_eq!(latest(&mut c, "e", 1990), scanned(&mut c, "e", 1990));
    }
    assert!(is_cached(&explain(&mut c, "e", 1990)));
    // Six matches at the far end of the `at` index: the cached backward
    // scan of `at` would read the whole index, the `n` range six entries.
    let expected = scanned(&mut c, "e", 5);
    assert_eq!(expected.len(), 6);
    assert_eq!(latest(&mut c, "e", 5), expected);
    let stats = cache_stats(&mut c, "e");
    assert_eq!(stats.len(), 1);
    assert_eq!(indexes_of(stats[0].get_document("cachedPlan").unwrap()), vec!["n_1"], "{stats:?}");
    let planner = explain(&mut c, "e", 5);
    assert_eq!(indexes_of(planner.get_document("winningPlan").unwrap()), vec!["n_1"]);
    assert!(is_cached(&planner));
    assert_eq!(latest(&mut c, "e", 5), expected);
    // Back to values the `at` index serves better: the `n` plan still
    // answers correctly (it is only slower) until it too is replanned.
    for below in [1990, 1995, 1999] {
        assert_eq!(latest(&mut c, "e", below), scanned(&mut c, "e", below));
    }
}

#[test]
fn a_cached_plan_that_the_data_made_bad_is_replanned() {
    let server = TestServer::start();
    let mut c = server.client();
    entries(&mut c, "e");
    for _ in 0..2 {
        assert_eq!(latest(&mut c, "e", 1990), scanned(&mut c, "e", 1990));
    }
    assert_eq!(indexes_of(cache_stats(&mut c, "e")[0].get_document("cachedPlan").unwrap()), vec!["at_1"]);
    // The same query, the same values; but now the newest 5,000 entries all
    // fail `n <= 1990`, so the cached backward read of `at` must pass them
    // all before its first match: far past ten times its cached works.
    let newer: Vec<Document> = (0..5000).map(|i| doc! {"_id": 10_000 + i, "n": 100_000, "at": 10_000 + i}).collect();
    c.ok("db", doc! {"insert": "e", "documents": newer});
    let expected = scanned(&mut c, "e", 1990);
    assert_eq!(latest(&mut c, "e", 1990), expected);
    let stats = cache_stats(&mut c, "e");
    assert_eq!(stats.len(), 1);
    assert!(!stats[0].get_bool("isActive").unwrap(), "{stats:?}");
    assert!(!is_cached(&explain(&mut c, "e", 1990)));
    // Trials now pick the `n` range; its entry is cached once its works
    // have grown past the trial's (each worse trial doubles them).
    for _ in 0..12 {
        assert_eq!(latest(&mut c, "e", 1990), expected);
    }
    let stats = cache_stats(&mut c, "e");
    assert!(stats[0].get_bool("isActive").unwrap(), "{stats:?}");
    assert_eq!(indexes_of(stats[0].get_document("cachedPlan").unwrap()), vec!["n_1"]);
    assert!(is_cached(&explain(&mut c, "e", 1990)));
}

#[test]
fn creating_or_dropping_an_index_forgets_the_collection_plans() {
    let server = TestServer::start();
    let mut c = server.client();
    entries(&mut c, "e");
    let expected = scanned(&mut c, "e", 1990);
    for _ in 0..2 {
        assert_eq!(latest(&mut c, "e", 1990), expected);
    }
    let cached = explain(&mut c, "e", 1990);
    assert!(is_cached(&cached));
    c.ok("db", doc! {"dropIndexes": "e", "index": "at_1"});
    assert!(cache_stats(&mut c, "e").is_empty());
    let planner = explain(&mut c, "e", 1990);
    assert!(!is_cached(&planner));
    assert_eq!(indexes_of(planner.get_document("winningPlan").unwrap()), vec!["n_1"]);
    assert_eq!(planner.get_str("queryHash").ok(), cached.get_str("queryHash").ok());
    assert_ne!(planner.get_str("planCacheKey").ok(), cached.get_str("planCacheKey").ok());
    assert_eq!(latest(&mut c, "e", 1990), expected);
    // A new index, even under the old name, starts afresh.
    c.ok("db", doc! {"createIndexes": "e", "indexes": [{"key": {"at": 1}, "name": "at_1"}]});
    assert!(cache_stats(&mut c, "e").is_empty());
    assert!(!is_cached(&explain(&mut c, "e", 1990)));
    for _ in 0..2 {
        assert_eq!(latest(&mut c, "e", 1990), expected);
    }
    assert!(is_cached(&explain(&mut c, "e", 1990)));
    // Hiding an index changes what may be used: its plans go too.
    c.ok("db", doc! {"collMod": "e", "index": {"name": "at_1", "hidden": true}});
    let planner = explain(&mut c, "e", 1990);
    assert!(!is_cached(&planner));
    assert_eq!(indexes_of(planner.get_document("winningPlan").unwrap()), vec!["n_1"]);
    assert_eq!(latest(&mut c, "e", 1990), expected);
}

#[test]
fn dropping_renaming_or_clearing_forgets_the_plans() {
    let server = TestServer::start();
    let mut c = server.client();
    entries(&mut c, "e");
    for _ in 0..2 {
        latest(&mut c, "e", 1990);
    }
    assert!(is_cached(&explain(&mut c, "e", 1990)));
    c.ok("admin", doc! {"renameCollection": "db.e", "to": "db.f"});
    assert!(cache_stats(&mut c, "f").is_empty());
    assert!(!is_cached(&explain(&mut c, "f", 1990)));
    for _ in 0..2 {
        latest(&mut c, "f", 1990);
    }
    assert!(is_cached(&explain(&mut c, "f", 1990)));
    c.ok("db", doc! {"drop": "f"});
    entries(&mut c, "f");
    assert!(cache_stats(&mut c, "f").is_empty());
    assert_eq!(latest(&mut c, "f", 1990), scanned(&mut c, "f", 1990));
    // planCacheClear with a query drops that shape's entries, without one all.
    for _ in 0..2 {
        latest(&mut c, "f", 1990);
        c.ok("db", doc! {"find": "f", "filter": {"n": {"$gte": 3}, "at": {"$lt": 100}}});
    }
    assert_eq!(cache_stats(&mut c, "f").len(), 2);
    c.ok("db", doc! {"planCacheClear": "f", "query": {"n": {"$lte": 0}}, "sort": {"at": -1}});
    let left = cache_stats(&mut c, "f");
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].get_document("createdFromQuery").unwrap().get_document("query").unwrap(), &doc! {"n": {"$gte": 3}, "at": {"$lt": 100}});
    c.ok("db", doc! {"planCacheClear": "f"});
    assert!(cache_stats(&mut c, "f").is_empty());
    c.ok("db", doc! {"planCacheClear": "missing"});
}
