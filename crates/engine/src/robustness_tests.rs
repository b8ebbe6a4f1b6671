//! Properties over random inputs: the engine answers every client document
//! with a result or an error, never a panic, and its core relations hold.
use crate::compare::tests::arb_bson;
use crate::compare::{bson_eq, cmp_bson};
use crate::expr::{eval_value, Vars};
use crate::pipeline::{run_pipeline, NoCollections};
use crate::query::Filter;
use crate::update::apply_update;
use bson::{doc, Bson, Document};
use proptest::prelude::*;
use std::cmp::Ordering;

const EXPR_OPS: &[&str] = &[
    "$add", "$subtract", "$multiply", "$divide", "$mod", "$abs", "$ceil", "$floor", "$round", "$trunc", "$pow",
    "$sqrt", "$exp", "$ln", "$log10", "$eq", "$ne", "$gt", "$lt", "$cmp", "$and", "$or", "$not", "$cond", "$ifNull",
    "$concat", "$substrCP", "$substrBytes", "$toLower", "$toUpper", "$strLenCP", "$indexOfCP", "$split",
    "$strcasecmp", "$type", "$toString", "$toInt", "$toLong", "$toDouble", "$toDecimal", "$toBool", "$toDate",
    "$in", "$size", "$arrayElemAt", "$first", "$last", "$concatArrays", "$isArray", "$slice", "$range",
    "$setUnion", "$setIntersection", "$year", "$month", "$dayOfWeek", "$isoWeek", "$week", "$mergeObjects",
    "$sum", "$avg", "$min", "$max", "$reverseArray", "$objectToArray", "$arrayToObject", "$indexOfArray",
];

const QUERY_OPS: &[&str] = &[
    "$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists", "$type", "$all", "$size", "$mod",
    "$elemMatch", "$not", "$regex",
];

const UPDATE_OPS: &[&str] =
    &["$set", "$unset", "$inc", "$mul", "$min", "$max", "$push", "$addToSet", "$pull", "$pop", "$rename", "$currentDate"];

fn arb_doc() -> impl Strategy<Value = Document> {
    prop::collection::vec(("[a-c]", arb_bson()), 0..4).prop_map(|kv| {
        let mut d = Document::new();
        for (k, v) in kv {
            d.insert(k, v);
        }
        d
    })
}

fn arb_arg() -> impl Strategy<Value = Bson> {
    prop_oneof![
        arb_bson(),
        "\\$[a-c](\\.[a-c0-9])?".prop_map(Bson::String),
        prop::collection::vec(prop_oneof![arb_bson(), "\\$[a-c]".prop_map(Bson::String)], 0..4).prop_map(Bson::Array),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn expressions_never_panic(op in prop::sample::select(EXPR_OPS), arg in arb_arg(), d in arb_doc()) {
        let mut e = Document::new();
        e.insert(op, arg);
        let _ = eval_value(&Bson::Document(e), &d, &Vars::new());
    }

    #[test]
    fn filters_never_panic(field in "[a-c](\\.[a-c0-9])?", op in prop::sample::select(QUERY_OPS), arg in arb_bson(), d in arb_doc()) {
        let mut inner = Document::new();
        inner.insert(op, arg);
        let mut f = Document::new();
        f.insert(field, inner);
        if let Ok(filter) = Filter::parse(&f) {
            let _ = filter.matches(&d);
        }
    }

    #[test]
    fn updates_never_panic(field in "[a-c](\\.[a-c0-9])?", op in prop::sample::select(UPDATE_OPS), arg in arb_bson(), d in arb_doc()) {
        let mut inner = Document::new();
        inner.insert(field, arg);
        let mut u = Document::new();
        u.insert(op, inner);
        let mut d = d;
        let _ = apply_update(&mut d, &Bson::Document(u), false);
    }

    #[test]
    fn set_then_query_matches(v in arb_bson(), d in arb_doc()) {
        if let Bson::Document(inner) = &v { prop_assume!(!crate::query::is_operator_doc(inner)); }
        let mut d = d;
        d.insert("_id", 1);
        apply_update(&mut d, &Bson::Document(doc! {"$set": {"f": v.clone()}}), false).unwrap();
        prop_assert!(bson_eq(d.get("f").unwrap_or(&Bson::Null), &v));
        let mut eq = Document::new();
        eq.insert("$eq", v);
        let filter = Filter::parse(&doc! {"f": eq}).unwrap();
        prop_assert!(filter.matches(&d).unwrap());
    }

    #[test]
    fn sort_stage_output_is_ordered(values in prop::collection::vec(arb_bson(), 0..8)) {
        // Scalars only: arrays sort by their extreme element, which this check does not model.
        let docs: Vec<Document> = values
            .into_iter()
            .filter(|v| !matches!(v, Bson::Array(_)))
            .map(|v| doc! {"k": v})
            .collect();
        let out = run_pipeline(&[doc! {"$sort": {"k": 1}}], docs, &NoCollections).unwrap();
        for w in out.windows(2) {
            let a = w[0].get("k").unwrap_or(&Bson::Null);
            let b = w[1].get("k").unwrap_or(&Bson::Null);
            prop_assert_ne!(cmp_bson(a, b), Ordering::Greater);
        }
    }

    #[test]
    fn group_count_adds_up(values in prop::collection::vec(arb_bson(), 0..10)) {
        let n = values.len() as i64;
        let docs: Vec<Document> = values.into_iter().map(|v| doc! {"k": v}).collect();
        let out = run_pipeline(&[doc! {"$group": {"_id": "$k", "n": {"$sum": 1}}}], docs, &NoCollections).unwrap();
        let total: i64 = out.iter().map(|d| i64::from(d.get_i32("n").unwrap_or(0))).sum();
        prop_assert_eq!(total, n);
        for (i, a) in out.iter().enumerate() {
            for b in out.iter().skip(i + 1) {
                prop_assert!(!bson_eq(a.get("_id").unwrap_or(&Bson::Null), b.get("_id").unwrap_or(&Bson::Null)));
            }
        }
    }
}
