use crate::pipeline::{run_pipeline, NoCollections};
use bson::{doc, Bson, Document};

fn run(spec: Document, input: Vec<Document>) -> Vec<Document> {
    run_pipeline(&[doc! {"$fill": spec}], input, &NoCollections).unwrap()
}

fn err(spec: Bson, input: Vec<Document>) -> i32 {
    run_pipeline(&[doc! {"$fill": spec}], input, &NoCollections).unwrap_err().code
}

fn values(out: &[Document], f: &str) -> Vec<Bson> {
    out.iter().map(|d| d.get(f).cloned().unwrap_or(Bson::Null)).collect()
}

#[test]
fn value_fills_null_and_missing_and_keeps_order() {
    let input = vec![doc! {"_id": 2, "a": null, "b": 5}, doc! {"_id": 1, "a": 7}, doc! {"_id": 3}];
    let out = run(doc! {"output": {"a": {"value": 0}, "b": {"value": {"$multiply": ["$_id", 10]}}}}, input);
    assert_eq!(values(&out, "_id"), vec![Bson::Int32(2), 1.into(), 3.into()]);
    assert_eq!(values(&out, "a"), vec![Bson::Int32(0), 7.into(), 0.into()]);
    assert_eq!(values(&out, "b"), vec![Bson::Int32(5), 10.into(), 30.into()]);
}

#[test]
fn locf_and_linear_by_partition_in_sort_order() {
    let input = vec![
        doc! {"_id": 1, "g": "x", "t": 3, "v": null, "w": 30},
        doc! {"_id": 2, "g": "x", "t": 1, "v": 10, "w": 10},
        doc! {"_id": 3, "g": "x", "t": 2, "w": null},
        doc! {"_id": 4, "g": "y", "t": 1, "v": null, "w": 1},
    ];
    let out = run(
        doc! {"sortBy": {"t": 1}, "partitionByFields": ["g"], "output": {"v": {"method": "locf"}, "w": {"method": "linear"}}},
        input.clone(),
    );
    assert_eq!(values(&out, "_id"), vec![Bson::Int32(2), 3.into(), 1.into(), 4.into()]);
    assert_eq!(values(&out, "v"), vec![Bson::Int32(10), 10.into(), 10.into(), Bson::Null]);
    assert_eq!(values(&out, "w"), vec![Bson::Int32(10), Bson::Double(20.0), 30.into(), 1.into()]);
    // A field still without a value becomes null.
    assert!(out[3].contains_key("v"));
    let out = run(doc! {"sortBy": {"t": 1}, "partitionBy": "$g", "output": {"v": {"method": "locf"}, "w": {"value": -1}}}, input);
    assert_eq!(values(&out, "w"), vec![Bson::Int32(10), (-1).into(), 30.into(), 1.into()]);
}

#[test]
fn bad_specs_carry_mongodb_codes() {
    let one = || vec![doc! {"a": 1}];
    let spec = |d: Document| Bson::Document(d);
    assert_eq!(err(Bson::String("a".into()), one()), 9);
    assert_eq!(err(spec(doc! {"sortBy": {"a": 1}}), one()), 40414);
    assert_eq!(err(spec(doc! {"output": {"a": {"value": 1}}, "extra": 1}), one()), 40415);
    assert_eq!(err(spec(doc! {"output": {}}), one()), 6050203);
    assert_eq!(err(spec(doc! {"output": {"a": 1}}), one()), 6050200);
    assert_eq!(err(spec(doc! {"output": {"a": {"value": 1, "method": "locf"}}}), one()), 6050201);
    assert_eq!(err(spec(doc! {"output": {"a": {"method": "spline"}}}), one()), 6050202);
    assert_eq!(err(spec(doc! {"output": {"a": {"method": "locf", "how": 1}}}), one()), 40415);
    assert_eq!(err(spec(doc! {"partitionBy": "$a", "partitionByFields": ["a"], "output": {"a": {"value": 1}}}), one()), 6050204);
    assert_eq!(err(spec(doc! {"output": {"a": {"method": "linear"}}}), one()), 605001);
}
