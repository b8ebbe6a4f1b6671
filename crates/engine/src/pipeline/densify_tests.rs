use crate::pipeline::{run_pipeline, NoCollections};
use bson::{doc, Bson, Document};

fn run(spec: Document, input: Vec<Document>) -> Vec<Document> {
    run_pipeline(&[doc! {"$densify": spec}], input, &NoCollections).unwrap()
}

fn err(spec: Bson, input: Vec<Document>) -> i32 {
    run_pipeline(&[doc! {"$densify": spec}], input, &NoCollections).unwrap_err().code
}

fn values(out: &[Document], f: &str) -> Vec<Bson> {
    out.iter().map(|d| d.get(f).cloned().unwrap_or(Bson::Null)).collect()
}

fn ints(v: &[i32]) -> Vec<Bson> {
    v.iter().map(|i| Bson::Int32(*i)).collect()
}

#[test]
fn full_range_keeps_off_grid_documents_and_the_grid() {
    let input = vec![doc! {"_id": 1, "v": 7}, doc! {"_id": 2, "v": 0}, doc! {"_id": 3, "v": 3}, doc! {"_id": 4}];
    let out = run(doc! {"field": "v", "range": {"step": 2, "bounds": "full"}}, input);
    // The document without the field passes (it sorts first); the grid is
    // 0, 2, 4, 6 from the smallest value; 3 and 7 stay as they are.
    assert_eq!(values(&out, "v"), vec![Bson::Null, 0.into(), 2.into(), 3.into(), 4.into(), 6.into(), 7.into()]);
    assert_eq!(out[2], doc! {"v": 2});
    assert_eq!(out[3].get_i32("_id").unwrap(), 3);
}

#[test]
fn explicit_bounds_exclude_the_upper_bound_and_fill_after_the_last_document() {
    let out = run(
        doc! {"field": "v", "range": {"step": 3, "bounds": [0, 10]}},
        vec![doc! {"v": 4}, doc! {"v": 12}, doc! {"v": -5}],
    );
    assert_eq!(values(&out, "v"), ints(&[-5, 0, 3, 4, 6, 9, 12]));
    let out = run(doc! {"field": "v", "range": {"step": 4, "bounds": [0, 10]}}, vec![doc! {"v": 1}]);
    assert_eq!(values(&out, "v"), ints(&[0, 1, 4, 8]));
    // With no documents at all the whole range is generated.
    let out = run(doc! {"field": "v", "range": {"step": 0.5, "bounds": [0.0, 1.5]}}, vec![]);
    assert_eq!(values(&out, "v"), vec![Bson::Double(0.0), 0.5.into(), 1.0.into()]);
}

#[test]
fn partitions_with_explicit_and_partition_bounds() {
    let input = vec![
        doc! {"p": "b", "v": 2},
        doc! {"p": "a", "v": 1},
        doc! {"p": "a", "v": 4},
        doc! {"p": "b", "v": null},
    ];
    let out = run(
        doc! {"field": "v", "partitionByFields": ["p"], "range": {"step": 1, "bounds": [0, 3]}},
        input.clone(),
    );
    let pairs: Vec<(Bson, Bson)> = out.iter().map(|d| (d.get("p").cloned().unwrap(), d.get("v").cloned().unwrap_or(Bson::Null))).collect();
    let want = |p: &str, v: Bson| (Bson::String(p.to_string()), v);
    assert_eq!(
        pairs,
        vec![
            want("a", 0.into()),
            want("a", 1.into()),
            want("a", 2.into()),
            want("a", 4.into()),
            want("b", Bson::Null),
            want("b", 0.into()),
            want("b", 1.into()),
            want("b", 2.into()),
        ]
    );
    // Generated documents carry the partition fields and the field only.
    assert_eq!(out[0], doc! {"p": "a", "v": 0});
    let out = run(doc! {"field": "v", "partitionByFields": ["p"], "range": {"step": 1, "bounds": "partition"}}, input);
    assert_eq!(values(&out, "v"), vec![1.into(), 2.into(), 3.into(), 4.into(), Bson::Null, 2.into()]);
}

#[test]
fn full_bounds_with_partitions_fill_every_partition_to_the_overall_ends() {
    let input = vec![doc! {"p": "A", "v": 1}, doc! {"p": "A", "v": 5}, doc! {"p": "B", "v": 3}];
    let out = run(doc! {"field": "v", "partitionByFields": ["p"], "range": {"step": 2, "bounds": "full"}}, input);
    let pairs: Vec<String> = out.iter().map(|d| format!("{}{}", d.get_str("p").unwrap(), d.get_i32("v").unwrap())).collect();
    // Sorted by the field alone; B is completed up to 5 after the input ends.
    assert_eq!(pairs, vec!["A1", "B1", "B3", "A3", "A5", "B5"]);
}

#[test]
fn dates_step_by_calendar_units() {
    let day = |d: i64| bson::DateTime::from_millis(d * 86_400_000);
    let out = run(
        doc! {"field": "at", "range": {"step": 1, "unit": "day", "bounds": [day(0), day(3)]}},
        vec![doc! {"at": day(1), "x": 1}],
    );
    assert_eq!(values(&out, "at"), vec![day(0).into(), day(1).into(), day(2).into()]);
    // Months are added one after another: Jan 31, Feb 28, Mar 28, Apr 28.
    let date = |s: &str| Bson::DateTime(bson::DateTime::parse_rfc3339_str(s).unwrap());
    let out = run(
        doc! {"field": "at", "range": {"step": 1, "unit": "month", "bounds": "full"}},
        vec![doc! {"at": date("1970-01-31T00:00:00Z")}, doc! {"at": date("1970-04-30T00:00:00Z")}],
    );
    assert_eq!(
        values(&out, "at"),
        vec![
            date("1970-01-31T00:00:00Z"),
            date("1970-02-28T00:00:00Z"),
            date("1970-03-28T00:00:00Z"),
            date("1970-04-28T00:00:00Z"),
            date("1970-04-30T00:00:00Z"),
        ]
    );
}

#[test]
fn bad_specs_and_values_carry_mongodb_codes() {
    let one = || vec![doc! {"v": 1}];
    let range = |r: Document| Bson::Document(doc! {"field": "v", "range": r});
    assert_eq!(err(Bson::Int32(1), one()), 9);
    assert_eq!(err(Bson::Document(doc! {"range": {"step": 1, "bounds": "full"}}), one()), 40414);
    assert_eq!(err(Bson::Document(doc! {"field": "v", "range": {"step": 1, "bounds": "full"}, "x": 1}), one()), 40415);
    assert_eq!(err(range(doc! {"step": 0, "bounds": "full"}), one()), 5733401);
    assert_eq!(err(range(doc! {"step": 1.5, "unit": "day", "bounds": "full"}), one()), 6586400);
    assert_eq!(err(range(doc! {"step": 1, "unit": "fortnight", "bounds": "full"}), one()), 9);
    assert_eq!(err(range(doc! {"step": 1, "bounds": [0, 1, 2]}), one()), 5733403);
    assert_eq!(err(range(doc! {"step": 1, "bounds": [2, 1]}), one()), 5733402);
    assert_eq!(err(range(doc! {"step": 1, "unit": "day", "bounds": [0, 1]}), one()), 5733409);
    assert_eq!(err(range(doc! {"step": 1, "bounds": [0, bson::DateTime::from_millis(0)]}), one()), 5733406);
    assert_eq!(err(range(doc! {"step": 1.0, "bounds": [0, 1]}), one()), 5876900);
    let t = bson::DateTime::from_millis(0);
    // A timestamp sorts above dates, so the pair is ascending but mixed.
    let ts = Bson::Timestamp(bson::Timestamp { time: 1, increment: 1 });
    assert_eq!(err(range(doc! {"step": 1, "unit": "day", "bounds": [t, ts]}), one()), 5733405);
    assert_eq!(err(range(doc! {"step": 1, "unit": "day", "bounds": [t, "z"]}), one()), 5733402);
    assert_eq!(err(range(doc! {"step": 1, "bounds": [t, t]}), one()), 5733410);
    assert_eq!(err(range(doc! {"step": 1, "bounds": ["a", "b"]}), one()), 5946800);
    assert_eq!(err(range(doc! {"step": 1, "bounds": "everything"}), one()), 5946802);
    assert_eq!(err(range(doc! {"step": 1, "bounds": 5}), one()), 5733404);
    assert_eq!(err(range(doc! {"step": 1, "bounds": "partition"}), one()), 5733408);
    assert_eq!(err(range(doc! {"step": 1, "bounds": "full"}), vec![doc! {"v": "x"}]), 5733201);
    assert_eq!(err(range(doc! {"step": 1, "bounds": "full"}), vec![doc! {"v": t}]), 6053600);
    assert_eq!(err(range(doc! {"step": 1, "unit": "day", "bounds": "full"}), one()), 6053600);
}
