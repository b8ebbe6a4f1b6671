//! The `$group` over a `$lookup` and its `$unwind`, run on the joined
//! documents' stored bytes (per join key, or per match), against the same
//! stages run one by one on decoded documents, on generated collections.
use super::super::stream::run_pipeline_from;
use super::super::{run_pipeline, CollectionSource, JoinExecution};
use crate::Result;
use bson::{doc, Bson, Decimal128, Document, RawDocumentBuf};
use proptest::prelude::*;
use std::cell::RefCell;
use std::str::FromStr;

/// The joined collection, readable as stored bytes (all of it, or through
/// an "index" on any field when `indexed`), noting how a group over it ran.
struct Joined {
    entries: Vec<Document>,
    indexed: bool,
    executions: RefCell<Vec<JoinExecution>>,
}

fn raw(d: &Document) -> Result<RawDocumentBuf> {
    RawDocumentBuf::try_from(d).map_err(crate::expr::raw::corrupt)
}

impl CollectionSource for Joined {
    fn scan(&self, collection: &str) -> Result<Vec<Document>> {
        Ok(if collection == "entry" { self.entries.clone() } else { Vec::new() })
    }

    fn visit_all(&self, collection: &str, visit: &mut dyn FnMut(&bson::RawDocument) -> Result<()>) -> Result<bool> {
        if collection == "entry" {
            for d in &self.entries {
                visit(&raw(d)?)?;
            }
        }
        Ok(true)
    }

    fn visit_equal(&self, collection: &str, field: &str, values: &[Bson], visit: &mut dyn FnMut(&bson::RawDocument) -> Result<()>) -> Result<bool> {
        if !self.indexed {
            return Ok(false);
        }
        let filter = crate::query::Filter::parse(&doc! {field: {"$in": values.to_vec()}})?;
        if collection == "entry" {
            for d in &self.entries {
                if filter.matches(d)? {
                    visit(&raw(d)?)?;
                }
            }
        }
        Ok(true)
    }

    fn note_join(&self, _collection: &str, execution: JoinExecution) {
        self.executions.borrow_mut().push(execution);
    }
}

/// Join keys: integers of three types (equal across types), a fraction,
/// a decimal, a string, null, and arrays.
fn key() -> impl Strategy<Value = Option<Bson>> {
    prop_oneof![
        4 => (0..4i32).prop_map(|k| Some(Bson::Int32(k))),
        2 => (0..4i64).prop_map(|k| Some(Bson::Int64(k))),
        2 => (0..4i32).prop_map(|k| Some(Bson::Double(f64::from(k)))),
        1 => Just(Some(Bson::Double(1.5))),
        1 => (0..4i32).prop_map(|k| Some(Bson::Decimal128(Decimal128::from_str(&k.to_string()).unwrap()))),
        1 => Just(Some(Bson::String("1".into()))),
        1 => Just(Some(Bson::Null)),
        1 => Just(None),
        1 => (0..4i32, 0..4i32).prop_map(|(a, b)| Some(Bson::Array(vec![Bson::Int32(a), Bson::Int32(b)]))),
    ]
}

/// Accumulated values: every numeric type (and sums that overflow int32
/// and int64), non-numbers, null and missing.
fn value() -> impl Strategy<Value = Option<Bson>> {
    prop_oneof![
        3 => (-5..50i32).prop_map(|n| Some(Bson::Int32(n))),
        1 => Just(Some(Bson::Int32(i32::MAX))),
        1 => (-5..50i64).prop_map(|n| Some(Bson::Int64(n))),
        1 => Just(Some(Bson::Int64(i64::MAX - 1))),
        2 => (-100..100i32).prop_map(|n| Some(Bson::Double(f64::from(n) / 8.0 + 0.1))),
        1 => (-50..50i32).prop_map(|n| Some(Bson::Decimal128(Decimal128::from_str(&format!("{n}.25")).unwrap()))),
        1 => Just(Some(Bson::Double(f64::NAN))),
        1 => Just(Some(Bson::String("x".into()))),
        1 => Just(Some(Bson::Null)),
        1 => Just(None),
    ]
}

fn with(mut d: Document, name: &str, v: Option<Bson>) -> Document {
    if let Some(v) = v {
        d.insert(name, v);
    }
    d
}

fn entries() -> impl Strategy<Value = Vec<Document>> {
    prop::collection::vec((key(), value(), prop::option::of(0..100i32)), 0..40).prop_map(|rows| {
        rows.into_iter()
            .enumerate()
            .map(|(i, (author, n, id))| {
                let d = with(doc! {"_id": i as i32}, "id", id.map(Bson::Int32));
                let d = with(d, "author", author);
                let d = with(d, "n", n);
                with(d, "sub", Some(Bson::Document(doc! {"v": (i % 3) as i32})))
            })
            .collect()
    })
}

fn authors() -> impl Strategy<Value = Vec<Document>> {
    prop::collection::vec((key(), 0..3i32, value()), 0..8).prop_map(|rows| {
        rows.into_iter()
            .enumerate()
            .map(|(i, (id, name, w))| with(with(doc! {"_id": i as i32, "name": name}, "id", id), "w", w))
            .collect()
    })
}

/// Group keys: Django's (the local primary key and columns: one group per
/// author unless ids repeat), and coarser ones (several authors per group).
fn group_id() -> impl Strategy<Value = Bson> {
    prop_oneof![
        Just(Bson::Document(doc! {"g0": {"$ifNull": ["$id", null]}, "g1": {"$ifNull": ["$name", null]}})),
        Just(Bson::String("$_id".into())),
        Just(Bson::String("$name".into())),
        Just(Bson::Null),
    ]
}

/// Accumulators: Django's Count and Avg over the relation, the other
/// single-argument ones over joined fields, and some over the local side.
fn accumulators() -> impl Strategy<Value = Vec<Bson>> {
    let one = prop_oneof![
        Just(Bson::Document(doc! {"$sum": {"$cond": [{"$ne": [{"$ifNull": ["$e.id", null]}, null]}, 1, 0]}})),
        Just(Bson::Document(doc! {"$avg": "$e.n"})),
        Just(Bson::Document(doc! {"$sum": "$e.n"})),
        Just(Bson::Document(doc! {"$min": "$e.n"})),
        Just(Bson::Document(doc! {"$max": "$e.n"})),
        Just(Bson::Document(doc! {"$first": "$e.n"})),
        Just(Bson::Document(doc! {"$last": "$e.id"})),
        Just(Bson::Document(doc! {"$push": "$e.n"})),
        Just(Bson::Document(doc! {"$addToSet": "$e.sub.v"})),
        Just(Bson::Document(doc! {"$stdDevSamp": "$e.n"})),
        Just(Bson::Document(doc! {"$sum": {"$ifNull": ["$e.n", 0]}})),
        Just(Bson::Document(doc! {"$sum": 1})),
        Just(Bson::Document(doc! {"$sum": "$w"})),
        Just(Bson::Document(doc! {"$count": {}})),
        Just(Bson::Document(doc! {"$first": "$name"})),
    ];
    prop::collection::vec(one, 1..4)
}

/// The stages, and the same with a stage between the `$unwind` and the
/// `$group` that changes nothing but keeps the group off the join.
fn pipelines(foreign: &str, preserve: bool, id: &Bson, accs: &[Bson]) -> (Vec<Document>, Vec<Document>) {
    let mut group = doc! {"_id": id.clone()};
    for (i, acc) in accs.iter().enumerate() {
        group.insert(format!("a{i}"), acc.clone());
    }
    let stages = vec![
        doc! {"$lookup": {"from": "entry", "localField": "id", "foreignField": foreign, "as": "e"}},
        doc! {"$unwind": {"path": "$e", "preserveNullAndEmptyArrays": preserve}},
        doc! {"$group": group},
    ];
    let mut decoded = stages.clone();
    decoded.insert(2, doc! {"$match": {}});
    (stages, decoded)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn the_group_over_a_join_on_stored_bytes_gives_the_general_paths_results(
        entries in entries(),
        authors in authors(),
        preserve in any::<bool>(),
        indexed in any::<bool>(),
        nested in prop::bool::weighted(0.2),
        id in group_id(),
        accs in accumulators(),
    ) {
        let foreign = if nested { "sub.v" } else { "author" };
        let (stages, decoded) = pipelines(foreign, preserve, &id, &accs);
        let source = Joined { entries, indexed, executions: RefCell::default() };
        // Results as text (NaN equals NaN), failures by code.
        let shown = |r: Result<Vec<Document>>| r.map(|docs| format!("{docs:?}")).map_err(|e| e.code);
        let one_by_one = shown(run_pipeline(&stages, authors.clone(), &source));
        let general = shown(run_pipeline_from(&decoded, &mut authors.clone().into_iter().map(Ok), &source));
        prop_assert!(source.executions.borrow().is_empty());
        let fused = shown(run_pipeline_from(&stages, &mut authors.clone().into_iter().map(Ok), &source));
        prop_assert_eq!(&general, &one_by_one);
        prop_assert_eq!(&fused, &one_by_one, "ran as {:?}", source.executions.borrow());
    }
}

#[test]
fn djangos_annotate_groups_per_join_key() {
    // Authors 1 and 2 with entries (of three numeric key types), author 3
    // without: count 0 and avg null, as the SQL's LEFT JOIN and AVG give.
    let entries = vec![
        doc! {"_id": 1, "id": 1, "author": 1, "n": 2},
        doc! {"_id": 2, "id": 2, "author": 2_i64, "n": 5_i64},
        doc! {"_id": 3, "id": 3, "author": 1.0, "n": 4},
        doc! {"_id": 4, "id": 4, "author": 2, "n": 2.5},
        doc! {"_id": 5, "id": 5, "author": Bson::Null, "n": 7},
    ];
    let authors = vec![doc! {"_id": 1, "id": 1, "name": "a"}, doc! {"_id": 2, "id": 2, "name": "b"}, doc! {"_id": 3, "id": 3, "name": "c"}];
    let accs = [Bson::Document(doc! {"$sum": {"$cond": [{"$ne": [{"$ifNull": ["$e.id", null]}, null]}, 1, 0]}}), Bson::Document(doc! {"$avg": "$e.n"})];
    let id = Bson::Document(doc! {"g0": {"$ifNull": ["$id", null]}, "g1": {"$ifNull": ["$name", null]}});
    let (stages, _) = pipelines("author", true, &id, &accs);
    for indexed in [true, false] {
        let source = Joined { entries: entries.clone(), indexed, executions: RefCell::default() };
        let out = run_pipeline_from(&stages, &mut authors.clone().into_iter().map(Ok), &source).unwrap();
        assert_eq!(*source.executions.borrow(), vec![JoinExecution::GroupPerKey]);
        assert_eq!(
            out,
            vec![
                doc! {"_id": {"g0": 1, "g1": "a"}, "a0": 2, "a1": 3.0},
                doc! {"_id": {"g0": 2, "g1": "b"}, "a0": 2, "a1": 3.75},
                doc! {"_id": {"g0": 3, "g1": "c"}, "a0": 0, "a1": Bson::Null},
            ]
        );
    }
    // Two authors in one group: their matches accumulate one author after
    // the other, so the group runs per match.
    let id = Bson::String("$name".into());
    let (stages, _) = pipelines("author", true, &id, &accs);
    let same_name = authors.into_iter().map(|mut a| {
        a.insert("name", "x");
        a
    });
    let source = Joined { entries, indexed: false, executions: RefCell::default() };
    let out = run_pipeline_from(&stages, &mut same_name.map(Ok), &source).unwrap();
    assert_eq!(*source.executions.borrow(), vec![JoinExecution::GroupPerMatch]);
    assert_eq!(out, vec![doc! {"_id": "x", "a0": 4, "a1": 3.375}]);
}
