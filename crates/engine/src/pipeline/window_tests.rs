use super::*;
use bson::{doc, Bson};

fn run(stage: Document, input: Vec<Document>) -> Vec<Document> {
    run_pipeline(&[stage], input, &NoCollections).unwrap()
}

fn err(stage: Document, input: Vec<Document>) -> i32 {
    run_pipeline(&[stage], input, &NoCollections).unwrap_err().code
}

fn field(out: &[Document], name: &str) -> Vec<Bson> {
    out.iter().map(|d| d.get(name).cloned().unwrap_or(Bson::Null)).collect()
}

fn sales() -> Vec<Document> {
    vec![
        doc! {"_id": 1, "st": "b", "q": 3, "t": 10},
        doc! {"_id": 2, "st": "a", "q": 5, "t": 2},
        doc! {"_id": 3, "st": "b", "q": 3, "t": 1},
        doc! {"_id": 4, "st": "a", "q": 1, "t": 4},
        doc! {"_id": 5, "st": "b", "q": 7, "t": 3},
        doc! {"_id": 6, "st": "a", "q": 5.5, "t": 3},
    ]
}

#[test]
fn ranks_come_out_by_partition_then_sort() {
    let out = run(
        doc! {"$setWindowFields": {"partitionBy": "$st", "sortBy": {"q": 1}, "output": {
            "r": {"$rank": {}}, "d": {"$denseRank": {}}, "n": {"$documentNumber": {}},
        }}},
        sales(),
    );
    assert_eq!(field(&out, "_id"), vec![Bson::Int32(4), 2.into(), 6.into(), 1.into(), 3.into(), 5.into()]);
    assert_eq!(field(&out, "r"), vec![Bson::Int32(1), 2.into(), 3.into(), 1.into(), 1.into(), 3.into()]);
    assert_eq!(field(&out, "d"), vec![Bson::Int32(1), 2.into(), 3.into(), 1.into(), 1.into(), 2.into()]);
    assert_eq!(field(&out, "n"), vec![Bson::Int32(1), 2.into(), 3.into(), 1.into(), 2.into(), 3.into()]);
    // The rest of each document is kept.
    assert_eq!(out[0], doc! {"_id": 4, "st": "a", "q": 1, "t": 4, "r": 1, "d": 1, "n": 1});
}

#[test]
fn default_window_is_the_whole_partition_and_keeps_input_order_without_sort() {
    let out = run(
        doc! {"$setWindowFields": {"output": {
            "total": {"$sum": "$t"}, "first": {"$first": "$_id"}, "last": {"$last": "$_id"}, "c": {"$count": {}},
        }}},
        sales(),
    );
    assert_eq!(field(&out, "_id"), vec![Bson::Int32(1), 2.into(), 3.into(), 4.into(), 5.into(), 6.into()]);
    assert!(out.iter().all(|d| d.get_i32("total").ok() == Some(23) && d.get_i32("c").ok() == Some(6)));
    assert!(out.iter().all(|d| d.get_i32("first").ok() == Some(1) && d.get_i32("last").ok() == Some(6)));
    // With a sortBy but no window, still the whole partition.
    let out = run(
        doc! {"$setWindowFields": {"partitionBy": "$st", "sortBy": {"t": 1}, "output": {"s": {"$sum": "$q"}}}},
        sales(),
    );
    assert_eq!(field(&out, "s"), vec![Bson::Double(11.5), 11.5.into(), 11.5.into(), 13.into(), 13.into(), 13.into()]);
}

#[test]
fn document_windows_running_moving_and_empty() {
    let input: Vec<Document> = (1..=4).map(|i| doc! {"_id": i, "v": i * 10}).collect();
    let out = run(
        doc! {"$setWindowFields": {"sortBy": {"_id": 1}, "output": {
            "run": {"$sum": "$v", "window": {"documents": ["unbounded", "current"]}},
            "mov": {"$avg": "$v", "window": {"documents": [-1, 1]}},
            "next2": {"$push": "$v", "window": {"documents": [1, 2]}},
            "nextMin": {"$min": "$v", "window": {"documents": [1, "unbounded"]}},
            "nextFirst": {"$first": "$v", "window": {"documents": [1, 1]}},
            "cnt": {"$count": {}, "window": {"documents": ["current", 1]}},
        }}},
        input,
    );
    assert_eq!(field(&out, "run"), vec![Bson::Int32(10), 30.into(), 60.into(), 100.into()]);
    assert_eq!(field(&out, "mov"), vec![Bson::Double(15.0), 20.0.into(), 30.0.into(), 35.0.into()]);
    assert_eq!(out[0].get_array("next2").unwrap(), &vec![Bson::Int32(20), Bson::Int32(30)]);
    assert_eq!(out[3].get_array("next2").unwrap(), &Vec::<Bson>::new());
    assert_eq!(field(&out, "nextMin"), vec![Bson::Int32(20), 30.into(), 40.into(), Bson::Null]);
    assert_eq!(field(&out, "nextFirst"), vec![Bson::Int32(20), 30.into(), 40.into(), Bson::Null]);
    assert_eq!(field(&out, "cnt"), vec![Bson::Int32(2), 2.into(), 2.into(), 1.into()]);
}

#[test]
fn range_windows_over_numbers() {
    let input = vec![doc! {"_id": 1, "x": 1}, doc! {"_id": 2, "x": 2}, doc! {"_id": 3, "x": 2}, doc! {"_id": 4, "x": 4.5}];
    let out = run(
        doc! {"$setWindowFields": {"sortBy": {"x": 1}, "output": {
            // SQL's RANGE UNBOUNDED PRECEDING: peers of the current row are included ...
            "peers": {"$push": "$_id", "window": {"range": ["unbounded", 0]}},
            // ... while the keyword "current" stops at the current document.
            "upto": {"$push": "$_id", "window": {"range": ["unbounded", "current"]}},
            "near": {"$sum": 1, "window": {"range": [-1, 1]}},
            "ahead": {"$max": "$x", "window": {"range": [2, 3]}},
        }}},
        input.clone(),
    );
    let ids = |d: &Document, f: &str| d.get_array(f).unwrap().iter().map(|b| b.as_i32().unwrap()).collect::<Vec<_>>();
    assert_eq!(ids(&out[1], "peers"), vec![1, 2, 3]);
    assert_eq!(ids(&out[1], "upto"), vec![1, 2]);
    assert_eq!(field(&out, "near"), vec![Bson::Int32(3), 3.into(), 3.into(), 1.into()]);
    assert_eq!(field(&out, "ahead"), vec![Bson::Null, 4.5.into(), 4.5.into(), Bson::Null]);
    // A descending sort counts "before" in sort order: larger values.
    let out = run(
        doc! {"$setWindowFields": {"sortBy": {"x": -1}, "output": {
            "prev": {"$push": "$_id", "window": {"range": [-2, -1]}},
        }}},
        input,
    );
    assert_eq!(field(&out, "_id"), vec![Bson::Int32(4), 2.into(), 3.into(), 1.into()]);
    assert_eq!(ids(&out[3], "prev"), vec![2, 3]);
    assert_eq!(ids(&out[1], "prev"), Vec::<i32>::new());
}

#[test]
fn range_windows_over_dates_with_unit() {
    let day = |d: i64| bson::DateTime::from_millis(d * 86_400_000);
    let input = vec![
        doc! {"_id": 1, "at": day(0), "v": 1},
        doc! {"_id": 2, "at": day(1), "v": 2},
        doc! {"_id": 3, "at": day(5), "v": 4},
        doc! {"_id": 4, "at": day(31), "v": 8},
    ];
    let out = run(
        doc! {"$setWindowFields": {"sortBy": {"at": 1}, "output": {
            "week": {"$sum": "$v", "window": {"range": [-6, 0], "unit": "day"}},
            "month": {"$sum": "$v", "window": {"range": [-1, 0], "unit": "month"}},
        }}},
        input,
    );
    assert_eq!(field(&out, "week"), vec![Bson::Int32(1), 3.into(), 7.into(), 8.into()]);
    // Day 31 is 1970-02-01; one month back is day 0 itself.
    assert_eq!(field(&out, "month"), vec![Bson::Int32(1), 3.into(), 7.into(), 15.into()]);
}

#[test]
fn shift_with_default_and_statistics() {
    let input: Vec<Document> = vec![doc! {"_id": 1, "v": 2}, doc! {"_id": 2, "v": 4}, doc! {"_id": 3, "v": 4}];
    let out = run(
        doc! {"$setWindowFields": {"sortBy": {"_id": 1}, "output": {
            "lag": {"$shift": {"output": "$v", "by": -1, "default": "none"}},
            "lead": {"$shift": {"output": {"$multiply": ["$v", 10]}, "by": 1}},
            "pop": {"$stdDevPop": "$v"},
            "samp": {"$stdDevSamp": "$v", "window": {"documents": ["unbounded", "current"]}},
            "set": {"$addToSet": "$v"},
            "mx": {"$max": "$v", "window": {"documents": [-1, 0]}},
        }}},
        input,
    );
    assert_eq!(field(&out, "lag"), vec![Bson::String("none".into()), 2.into(), 4.into()]);
    assert_eq!(field(&out, "lead"), vec![Bson::Int32(40), 40.into(), Bson::Null]);
    let pop = out[0].get_f64("pop").unwrap();
    assert!((pop - (8.0f64 / 9.0).sqrt()).abs() < 1e-12);
    assert_eq!(out[0].get("samp"), Some(&Bson::Null));
    assert!((out[1].get_f64("samp").unwrap() - 2.0f64.sqrt()).abs() < 1e-12);
    assert_eq!(out[2].get_array("set").unwrap(), &vec![Bson::Int32(2), Bson::Int32(4)]);
    assert_eq!(field(&out, "mx"), vec![Bson::Int32(2), 4.into(), 4.into()]);
}

#[test]
fn dotted_output_paths_and_null_partitions() {
    let input = vec![doc! {"_id": 1, "g": null}, doc! {"_id": 2}, doc! {"_id": 3, "g": 1}, doc! {"_id": 4, "g": 1.0}];
    let out = run(
        doc! {"$setWindowFields": {"partitionBy": "$g", "output": {"w.count": {"$count": {}}}}},
        input,
    );
    // Missing and null share a partition; 1 and 1.0 are one key; null sorts first.
    assert_eq!(out[0], doc! {"_id": 1, "g": null, "w": {"count": 2}});
    assert_eq!(out[1], doc! {"_id": 2, "w": {"count": 2}});
    assert_eq!(out[3].get_document("w").unwrap().get_i32("count").unwrap(), 2);
}

#[test]
fn invalid_specs_carry_mongodb_codes() {
    let one = || vec![doc! {"_id": 1, "a": 1, "arr": [1]}];
    let swf = |s: Document| doc! {"$setWindowFields": s};
    assert_eq!(err(doc! {"$setWindowFields": "x"}, one()), 9);
    assert_eq!(err(swf(doc! {"output": {"r": {"$rank": {}}}}), one()), 5371602);
    assert_eq!(err(swf(doc! {"sortBy": {"a": 1, "_id": 1}, "output": {"r": {"$denseRank": {}}}}), one()), 5371602);
    assert_eq!(
        err(swf(doc! {"sortBy": {"a": 1}, "output": {"r": {"$rank": {}, "window": {"documents": [-1, 0]}}}}), one()),
        5371601
    );
    assert_eq!(err(swf(doc! {"sortBy": {"a": 1}, "output": {"r": {"$documentNumber": 1}}}), one()), 5371603);
    assert_eq!(err(swf(doc! {"output": {"s": {"$sum": 1, "window": {"documents": ["unbounded", "current"]}}}}), one()), 5339901);
    assert_eq!(err(swf(doc! {"output": {"s": {"$sum": 1, "window": {"range": ["unbounded", "unbounded"]}}}}), one()), 5339902);
    assert_eq!(
        err(swf(doc! {"sortBy": {"a": 1}, "output": {"s": {"$sum": 1, "window": {"documents": [1, -1]}}}}), one()),
        5339900
    );
    assert_eq!(
        err(swf(doc! {"sortBy": {"a": 1}, "output": {"s": {"$sum": 1, "window": {"documents": [0.5, 1]}}}}), one()),
        9
    );
    assert_eq!(
        err(swf(doc! {"sortBy": {"_id": 1}, "output": {"s": {"$sum": 1, "window": {"range": [-1, 0]}}}}), vec![doc! {"_id": "x"}]),
        5429413
    );
    assert_eq!(
        err(swf(doc! {"sortBy": {"a": 1}, "output": {"s": {"$sum": 1, "window": {"range": [-1, 0], "unit": "day"}}}}), one()),
        5429513
    );
    assert_eq!(err(swf(doc! {"partitionBy": "$arr", "output": {"c": {"$count": {}}}}), one()), 14);
    assert_eq!(err(swf(doc! {"output": {"m": {"$mergeObjects": "$a"}}}), one()), 9);
    assert_eq!(err(swf(doc! {"output": {"m": {"$sum": "$a", "bogus": 1}}}), one()), 9);
    assert_eq!(err(swf(doc! {"output": {"m": {"$shift": {"output": "$a", "by": 1}}}}), one()), 9);
    assert_eq!(err(swf(doc! {"output": {}, "what": 1}), one()), 40415);
    assert_eq!(err(swf(doc! {"sortBy": {"a": 1}}), one()), 40414);
    assert_eq!(err(swf(doc! {"sortBy": "a", "output": {}}), one()), 14);
}
