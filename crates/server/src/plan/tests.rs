//! Planned reads against the definition: every plan the planner can choose
//! (and every index forced by a hint) gives what a scan of the whole
//! collection, filtered and stably sorted, gives — the same documents in the
//! same order — on random documents with mixed types, arrays, nulls and
//! missing fields.
use super::*;
use crate::storage::Storage;
use crate::test_support::{arb_scalar, arb_value};
use bson::doc;
use djongo_engine::sort::SortSpec;
use proptest::prelude::*;
use std::time::Duration;

const FIELDS: [&str; 4] = ["a", "b", "c", "d.x"];

fn indexes() -> Vec<Document> {
    vec![
        doc! {"key": {"a": 1}, "name": "a_1"},
        doc! {"key": {"a": -1, "b": 1}, "name": "a_-1_b_1"},
        doc! {"key": {"b": 1, "a": 1}, "name": "b_1_a_1"},
        doc! {"key": {"c": 1}, "name": "c_sparse", "sparse": true},
        doc! {"key": {"d.x": -1}, "name": "dx_-1"},
        doc! {"key": {"c": -1, "b": -1}, "name": "c_typed",
              "partialFilterExpression": {"c": {"$type": ["int", "long", "double", "decimal", "string", "symbol"]}}},
    ]
}

fn arb_field_value() -> impl Strategy<Value = Option<Bson>> {
    prop_oneof![
        1 => Just(None),
        6 => arb_scalar().prop_map(Some),
        1 => prop::collection::vec(arb_scalar(), 0..3).prop_map(|v| Some(Bson::Array(v))),
        1 => arb_value().prop_map(Some),
    ]
}

fn arb_document() -> impl Strategy<Value = Document> {
    (arb_field_value(), arb_field_value(), arb_field_value(), arb_field_value(), any::<bool>()).prop_map(|(a, b, c, x, nest)| {
        let mut d = Document::new();
        for (k, v) in [("a", a), ("b", b), ("c", c)] {
            if let Some(v) = v {
                d.insert(k, v);
            }
        }
        if let Some(x) = x {
            d.insert("d", if nest { Bson::Document(doc! {"x": x}) } else { Bson::Array(vec![Bson::Document(doc! {"x": x})]) });
        }
        d
    })
}

fn arb_condition() -> impl Strategy<Value = (String, Bson)> {
    let field = prop::sample::select(FIELDS.to_vec()).prop_map(str::to_string);
    let op = prop_oneof![
        arb_scalar(),
        arb_scalar().prop_map(|v| Bson::Document(doc! {"$eq": v})),
        (prop::sample::select(vec!["$gt", "$gte", "$lt", "$lte"]), arb_scalar()).prop_map(|(op, v)| {
            let mut d = Document::new();
            d.insert(op, v);
            Bson::Document(d)
        }),
        (arb_scalar(), arb_scalar()).prop_map(|(lo, hi)| Bson::Document(doc! {"$gte": lo, "$lt": hi})),
        prop::collection::vec(arb_scalar(), 0..4).prop_map(|v| Bson::Document(doc! {"$in": v})),
        arb_scalar().prop_map(|v| Bson::Document(doc! {"$ne": v})),
        any::<bool>().prop_map(|b| Bson::Document(doc! {"$exists": b})),
    ];
    (field, op)
}

fn arb_filter() -> impl Strategy<Value = Document> {
    prop_oneof![
        4 => prop::collection::vec(arb_condition(), 0..3).prop_map(|conds| {
            let mut d = Document::new();
            let mut more = Vec::new();
            for (f, c) in conds {
                // A second condition on a field goes through $and.
                if d.contains_key(&f) {
                    let mut x = Document::new();
                    x.insert(f, c);
                    more.push(Bson::Document(x));
                } else {
                    d.insert(f, c);
                }
            }
            if !more.is_empty() {
                d.insert("$and", more);
            }
            d
        }),
        1 => (arb_condition(), arb_condition()).prop_map(|((f1, c1), (f2, c2))| {
            let mut x = Document::new();
            x.insert(f1, c1);
            let mut y = Document::new();
            y.insert(f2, c2);
            doc! {"$or": [x, y]}
        }),
        1 => (arb_condition(), arb_scalar()).prop_map(|((f, c), id)| {
            let mut d = doc! {"_id": {"$gte": id}};
            d.insert(f, c);
            d
        }),
    ]
}

fn arb_sort() -> impl Strategy<Value = Option<Document>> {
    let key = (prop::sample::select(vec!["a", "b", "c", "d.x", "_id"]), prop::sample::select(vec![1, -1]));
    prop::option::of(prop::collection::vec(key, 1..3).prop_map(|keys| {
        let mut d = Document::new();
        for (k, dir) in keys {
            if !d.contains_key(k) {
                d.insert(k, dir);
            }
        }
        d
    }))
}

/// What the caller reads of each document: a few fields, or all.
fn arb_fields() -> impl Strategy<Value = Option<Vec<String>>> {
    prop::option::of(prop::sample::subsequence(vec!["a", "b", "c", "d"], 0..3).prop_map(|f| f.into_iter().map(str::to_string).collect()))
}

/// The definition: every document, filtered, stably sorted (a scan is in
/// `_id` order, so ties stay in `_id` order), skipped and limited.
fn reference(all: &[Document], query: &Query) -> Vec<Document> {
    let filter = Filter::parse(&query.filter).unwrap();
    let mut docs: Vec<Document> = all.iter().filter(|d| filter.matches(d).unwrap()).cloned().collect();
    if let Some(s) = &query.sort {
        SortSpec::parse(s).unwrap().sort(&mut docs);
    }
    let docs = docs.into_iter().skip(query.skip);
    match query.limit {
        Some(l) => docs.take(l).collect(),
        None => docs.collect(),
    }
}

fn ids(docs: &[Document]) -> Vec<Vec<u8>> {
    docs.iter().map(|d| crate::keyenc::encode_one(d.get("_id").unwrap())).collect()
}

proptest! {
    // Each case builds a store; PROPTEST_CASES=N runs more of them.
    #![proptest_config(ProptestConfig { cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64), ..ProptestConfig::default() })]

    #[test]
    fn every_plan_answers_as_a_full_scan(
        docs in prop::collection::vec(arb_document(), 0..40),
        queries in prop::collection::vec((arb_filter(), arb_sort(), 0usize..3, prop::option::of(1usize..6), arb_fields()), 1..6),
        string_ids in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path()).unwrap();
        let wtxn = storage.begin_write(Duration::from_secs(5)).unwrap().unwrap();
        let mut t = Tables::open_write(&wtxn).unwrap();
        let mut meta = t.create_collection("db", "c", Document::new()).unwrap();
        // Half the indexes before the inserts, half after (built from the data).
        let specs = indexes();
        for spec in &specs[..3] {
            t.create_index(&mut meta, spec).unwrap();
        }
        let mut stored = Vec::new();
        for (i, mut d) in docs.into_iter().enumerate() {
            let id = if string_ids && i % 3 == 0 { Bson::String(format!("s{i}")) } else { Bson::Int32(i as i32) };
            d.insert("_id", id);
            t.insert(&meta, &d).unwrap();
            stored.push(d);
        }
        for spec in &specs[3..] {
            t.create_index(&mut meta, spec).unwrap();
        }
        stored.sort_by_key(|d| crate::keyenc::encode_one(d.get("_id").unwrap()));
        for (filter, sort, skip, limit, fields) in queries {
            let query = Query { filter: filter.clone(), sort: sort.clone(), skip, limit, fields, ..Query::default() };
            let expected = reference(&stored, &query);
            let mut hints: Vec<Option<Bson>> = vec![None, Some(Bson::Document(doc! {"$natural": 1}))];
            // A hint forces an index even when it cannot hold every match (a
            // sparse or partial one), as in MongoDB; hint only those that can.
            let preds = predicates::Predicates::analyze(&filter);
            hints.extend(meta.indexes.iter().filter(|ix| usable::index_serves(ix, &preds)).map(|ix| Some(Bson::String(ix.name.clone()))));
            for hint in hints {
                let q = Query { hint: hint.clone(), ..query.clone() };
                let got = find(&t, &meta, &q).unwrap();
                // Without a sort, documents come in `_id` order whatever the
                // plan: the order of the reference's scan.
                prop_assert_eq!(ids(&got), ids(&expected), "{:?} hint {:?}", query, hint);
            }
            let everything = reference(&stored, &Query::filter(&filter));
            prop_assert_eq!(count(&t, &meta, &filter).unwrap(), everything.len() as u64, "count {:?}", filter);
            for verbosity in [Verbosity::QueryPlanner, Verbosity::AllPlansExecution] {
                explain_find(&t, Some(&meta), "db.c", &query, verbosity).unwrap();
                explain_count(&t, Some(&meta), "db.c", &filter, verbosity).unwrap();
            }
        }
    }
}

fn store_with(docs: Vec<Document>, specs: &[Document]) -> (tempfile::TempDir, Storage) {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(dir.path()).unwrap();
    {
        let wtxn = storage.begin_write(Duration::from_secs(5)).unwrap().unwrap();
        let mut t = Tables::open_write(&wtxn).unwrap();
        let mut meta = t.create_collection("db", "c", Document::new()).unwrap();
        for spec in specs {
            t.create_index(&mut meta, spec).unwrap();
        }
        for d in docs {
            t.insert(&meta, &d).unwrap();
        }
        drop(t);
        wtxn.commit().unwrap();
    }
    (dir, storage)
}

fn winning(storage: &Storage, query: &Query) -> Document {
    let rtxn = storage.begin_read().unwrap();
    let t = Tables::open_read(&rtxn).unwrap();
    let meta = t.collection("db", "c").unwrap().unwrap();
    let e = explain_find(&t, Some(&meta), "db.c", query, Verbosity::ExecutionStats).unwrap();
    e.get_document("queryPlanner").unwrap().get_document("winningPlan").unwrap().clone()
}

fn stages(plan: &Document) -> Vec<String> {
    let mut out = vec![plan.get_str("stage").unwrap().to_string()];
    if let Ok(input) = plan.get_document("inputStage") {
        out.extend(stages(input));
    }
    out
}

fn entries(n: i32) -> Vec<Document> {
    (0..n).map(|i| doc! {"_id": i, "n": i, "at": 1000 - i, "rating": f64::from(i % 100) / 10.0, "tag": format!("t{}", i % 7)}).collect()
}

#[test]
fn a_sort_with_a_limit_reads_the_index_backward_and_stops() {
    let (_d, storage) = store_with(entries(2000), &[doc! {"key": {"n": 1}, "name": "n_1"}, doc! {"key": {"at": 1}, "name": "at_1"}]);
    let q = Query { filter: doc! {"n": {"$gte": 100}}, sort: Some(doc! {"at": -1}), limit: Some(20), ..Query::default() };
    let plan = winning(&storage, &q);
    // Read backward, equal `at` values would come in descending `_id` order.
    assert_eq!(stages(&plan), ["LIMIT", "ORDER_TIES", "FETCH", "IXSCAN"], "{plan}");
    let scan = plan.get_document("inputStage").unwrap().get_document("inputStage").unwrap().get_document("inputStage").unwrap();
    assert_eq!(scan.get_str("indexName").unwrap(), "at_1");
    assert_eq!(scan.get_str("direction").unwrap(), "backward");
}

#[test]
fn a_selective_range_uses_its_index_and_a_top_k_sort() {
    let (_d, storage) = store_with(entries(2000), &[doc! {"key": {"n": 1}, "name": "n_1"}, doc! {"key": {"at": 1}, "name": "at_1"}]);
    let q = Query { filter: doc! {"n": {"$gte": 1990}}, sort: Some(doc! {"at": -1}), limit: Some(20), ..Query::default() };
    let plan = winning(&storage, &q);
    assert_eq!(stages(&plan), ["LIMIT", "SORT", "FETCH", "IXSCAN"], "{plan}");
    let scan = plan.get_document("inputStage").unwrap().get_document("inputStage").unwrap().get_document("inputStage").unwrap();
    assert_eq!(scan.get_document("indexBounds").unwrap(), &doc! {"n": ["[1990, inf.0]"]});
}

#[test]
fn equality_prefix_then_sort_on_the_next_field() {
    let specs = [doc! {"key": {"tag": 1, "at": -1}, "name": "tag_at"}];
    let (_d, storage) = store_with(entries(500), &specs);
    let q = Query { filter: doc! {"tag": "t3"}, sort: Some(doc! {"at": 1}), limit: Some(5), ..Query::default() };
    let plan = winning(&storage, &q);
    assert_eq!(stages(&plan), ["LIMIT", "ORDER_TIES", "FETCH", "IXSCAN"], "{plan}");
    let q = Query { filter: doc! {"tag": "t3"}, sort: Some(doc! {"at": -1}), limit: Some(5), ..Query::default() };
    let plan = winning(&storage, &q);
    assert_eq!(stages(&plan), ["LIMIT", "FETCH", "IXSCAN"], "{plan}");
}

#[test]
fn counts_come_from_the_index_when_it_decides_the_filter() {
    let (_d, storage) = store_with(entries(1000), &[doc! {"key": {"rating": 1}, "name": "rating_1"}]);
    let rtxn = storage.begin_read().unwrap();
    let t = Tables::open_read(&rtxn).unwrap();
    let meta = t.collection("db", "c").unwrap().unwrap();
    let e = explain_count(&t, Some(&meta), "db.c", &doc! {"rating": {"$lt": 5.0}}, Verbosity::ExecutionStats).unwrap();
    let plan = e.get_document("queryPlanner").unwrap().get_document("winningPlan").unwrap();
    assert_eq!(stages(plan), ["COUNT", "COUNT_SCAN"]);
    assert_eq!(count(&t, &meta, &doc! {"rating": {"$lt": 5.0}}).unwrap(), 500);
    // A condition the index does not hold needs the documents.
    let e = explain_count(&t, Some(&meta), "db.c", &doc! {"rating": {"$lt": 5.0}, "n": 3}, Verbosity::QueryPlanner).unwrap();
    let plan = e.get_document("queryPlanner").unwrap().get_document("winningPlan").unwrap();
    assert_eq!(stages(plan), ["COUNT", "FETCH", "IXSCAN"]);
}

#[test]
fn an_id_equality_is_a_lookup() {
    let (_d, storage) = store_with(entries(100), &[doc! {"key": {"n": 1}, "name": "n_1"}]);
    let plan = winning(&storage, &Query::filter(&doc! {"_id": 7, "n": 7}));
    assert_eq!(stages(&plan), ["IDHACK"]);
    let plan = winning(&storage, &Query::filter(&doc! {"tag": "t1"}));
    assert_eq!(stages(&plan), ["COLLSCAN"]);
}

#[test]
fn a_plan_that_fails_drops_out_of_the_trial() {
    // $strLenCP fails on the number in document 2, which only a collection
    // scan reads: the index plan answers.
    let docs = vec![doc! {"_id": 1, "n": 5, "s": "x"}, doc! {"_id": 2, "n": 100, "s": 3}];
    let (_d, storage) = store_with(docs, &[doc! {"key": {"n": 1}, "name": "n_1"}]);
    let rtxn = storage.begin_read().unwrap();
    let t = Tables::open_read(&rtxn).unwrap();
    let meta = t.collection("db", "c").unwrap().unwrap();
    let filter = doc! {"$expr": {"$gt": [{"$strLenCP": "$s"}, 0]}, "n": {"$lt": 10}};
    let found = find(&t, &meta, &Query::filter(&filter)).unwrap();
    assert_eq!(found.len(), 1);
    // Forced to scan, it fails.
    let scan = Query { hint: Some(Bson::Document(doc! {"$natural": 1})), ..Query::filter(&filter) };
    assert!(find(&t, &meta, &scan).is_err());
}

#[test]
fn keys_of_a_unique_index_are_read_without_racing_a_collection_scan() {
    // 100 keys of 300 documents: a collection scan racing the index plan would
    // read its way through the whole collection before the index plan (which
    // collects its keys to answer in `_id` order) is done.
    let (_d, storage) = store_with(entries(300), &[doc! {"key": {"n": 1}, "name": "n_1", "unique": true}]);
    let keys: Vec<Bson> = (0..100).map(|i| Bson::Int32(i * 3)).collect();
    let q = Query::filter(&doc! {"n": {"$in": keys.clone()}});
    let rtxn = storage.begin_read().unwrap();
    let t = Tables::open_read(&rtxn).unwrap();
    let meta = t.collection("db", "c").unwrap().unwrap();
    let e = explain_find(&t, Some(&meta), "db.c", &q, Verbosity::ExecutionStats).unwrap();
    let planner = e.get_document("queryPlanner").unwrap();
    assert_eq!(stages(planner.get_document("winningPlan").unwrap()), ["FETCH", "SORT", "IXSCAN"], "{e}");
    assert!(planner.get_array("rejectedPlans").unwrap().is_empty(), "{e}");
    assert_eq!(e.get_document("executionStats").unwrap().get_i64("totalDocsExamined").unwrap(), 100, "{e}");
    let found = find(&t, &meta, &q).unwrap();
    assert_eq!(found.iter().map(|d| d.get("n").unwrap().clone()).collect::<Vec<_>>(), keys);
    // The same keys on an index that is not unique may match any number of
    // documents: the scan still competes.
    drop((t, rtxn));
    let (_d2, storage) = store_with(entries(300), &[doc! {"key": {"n": 1}, "name": "n_1"}]);
    let rtxn = storage.begin_read().unwrap();
    let t = Tables::open_read(&rtxn).unwrap();
    let meta = t.collection("db", "c").unwrap().unwrap();
    let e = explain_find(&t, Some(&meta), "db.c", &q, Verbosity::QueryPlanner).unwrap();
    assert_eq!(e.get_document("queryPlanner").unwrap().get_array("rejectedPlans").unwrap().len(), 1, "{e}");
}

/// Runs `f` on a write transaction's tables and the collection's entry, and commits.
fn ddl(storage: &Storage, f: impl FnOnce(&mut Tables<'_>, &mut CollectionMeta)) {
    let wtxn = storage.begin_write(Duration::from_secs(5)).unwrap().unwrap();
    let mut t = Tables::open_write(&wtxn).unwrap();
    let mut meta = t.collection("db", "c").unwrap().unwrap();
    f(&mut t, &mut meta);
    drop(t);
    wtxn.commit().unwrap();
}

/// The stages of the plan `query` wins with on the collection as `storage`
/// holds it now, after running it once (so its shape's facts are kept).
fn planned(storage: &Storage, query: &Query) -> Vec<String> {
    let rtxn = storage.begin_read().unwrap();
    let t = Tables::open_read(&rtxn).unwrap();
    let meta = t.collection("db", "c").unwrap().unwrap();
    find(&t, &meta, query).unwrap();
    stages(&winning(storage, query))
}

#[test]
fn an_index_created_or_dropped_between_two_queries_of_one_shape_is_seen() {
    let (_d, storage) = store_with(entries(500), &[doc! {"key": {"n": 1}, "name": "n_1"}]);
    let q = |tag: &str| Query::filter(&doc! {"tag": tag});
    assert_eq!(planned(&storage, &q("t1")), ["COLLSCAN"]);
    // A read transaction begun now keeps the catalog of its snapshot.
    let before = storage.begin_read().unwrap();
    ddl(&storage, |t, meta| {
        t.create_index(meta, &doc! {"key": {"tag": 1}, "name": "tag_1"}).unwrap();
    });
    assert!(planned(&storage, &q("t2")).contains(&"IXSCAN".to_string()));
    let e = winning(&storage, &q("t3"));
    assert!(e.to_string().contains("\"tag_1\""), "{e}");
    {
        let t = Tables::open_read(&before).unwrap();
        let meta = t.collection("db", "c").unwrap().unwrap();
        let old = explain_find(&t, Some(&meta), "db.c", &q("t4"), Verbosity::QueryPlanner).unwrap();
        assert_eq!(stages(old.get_document("queryPlanner").unwrap().get_document("winningPlan").unwrap()), ["COLLSCAN"], "{old}");
        assert_eq!(find(&t, &meta, &q("t4")).unwrap().len(), (0..500).filter(|i| i % 7 == 4).count());
    }
    drop(before);
    // Dropped and made again on other fields: a different index id.
    ddl(&storage, |t, meta| {
        t.drop_index(meta, "tag_1").unwrap();
        t.create_index(meta, &doc! {"key": {"at": 1, "tag": 1}, "name": "at_1_tag_1"}).unwrap();
    });
    assert_eq!(planned(&storage, &q("t5")), ["COLLSCAN"]);
    ddl(&storage, |t, meta| {
        t.create_index(meta, &doc! {"key": {"tag": -1}, "name": "tag_-1"}).unwrap();
    });
    let e = winning(&storage, &q("t6"));
    assert!(e.to_string().contains("tag_-1"), "{e}");
}

#[test]
fn fields_named_only_inside_expr_are_decoded_for_every_query() {
    // Two filters of one shape whose `$expr` reads different fields: the
    // fields the second decodes must be its own.
    let (_d, storage) = store_with(entries(50), &[]);
    let rtxn = storage.begin_read().unwrap();
    let t = Tables::open_read(&rtxn).unwrap();
    let meta = t.collection("db", "c").unwrap().unwrap();
    let q = |field: &str| Query {
        filter: doc! {"$expr": {"$eq": [format!("${field}"), 7]}},
        fields: Some(vec!["_id".to_string()]),
        ..Query::default()
    };
    assert_eq!(find(&t, &meta, &q("n")).unwrap().len(), 1);
    assert_eq!(find(&t, &meta, &q("at")).unwrap().len(), 0);
    assert_eq!(find(&t, &meta, &Query { filter: doc! {"$expr": {"$eq": ["$at", 993]}}, ..q("at") }).unwrap().len(), 1);
}
