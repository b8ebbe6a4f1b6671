use super::*;
use bson::{doc, Bson};
use std::str::FromStr;

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

fn approx(v: &Bson, want: f64) -> bool {
    matches!(v, Bson::Double(f) if (f - want).abs() < 1e-9)
}

#[test]
fn exp_moving_avg_with_n_or_alpha_ignores_non_numbers() {
    // MongoDB's manual example: MDB prices 13, 15.4, 12, 11.7 with N = 2.
    let input = vec![
        doc! {"_id": 1, "s": "MDB", "d": 1, "p": 13},
        doc! {"_id": 2, "s": "MDB", "d": 2, "p": 15.4},
        doc! {"_id": 3, "s": "MDB", "d": 3, "p": 12},
        doc! {"_id": 4, "s": "MDB", "d": 4, "p": 11.7},
        doc! {"_id": 5, "s": "X", "d": 1, "p": null},
        doc! {"_id": 6, "s": "X", "d": 2, "p": "n/a"},
        doc! {"_id": 7, "s": "X", "d": 3, "p": 8},
        doc! {"_id": 8, "s": "X", "d": 4},
        doc! {"_id": 9, "s": "X", "d": 5, "p": 4},
    ];
    let out = run(
        doc! {"$setWindowFields": {"partitionBy": "$s", "sortBy": {"d": 1}, "output": {
            "n2": {"$expMovingAvg": {"input": "$p", "N": 2}},
            "a": {"$expMovingAvg": {"input": "$p", "alpha": 0.75}},
        }}},
        input,
    );
    let n2 = field(&out, "n2");
    assert_eq!(n2[0], Bson::Double(13.0));
    assert!(approx(&n2[1], 14.6) && approx(&n2[2], 12.866666666666667) && approx(&n2[3], 12.088888888888889));
    // Before the first number the average is null; non-numbers leave it as is.
    assert_eq!(&n2[4..7], &[Bson::Null, Bson::Null, Bson::Double(8.0)]);
    assert_eq!(n2[7], Bson::Double(8.0));
    assert!(approx(&n2[8], 4.0 * 2.0 / 3.0 + 8.0 / 3.0));
    let a = field(&out, "a");
    assert!(approx(&a[1], 15.4 * 0.75 + 13.0 * 0.25));
    // A decimal input makes the answer decimal.
    let dec = bson::Decimal128::from_str("2.5").unwrap();
    let out = run(
        doc! {"$setWindowFields": {"sortBy": {"_id": 1}, "output": {"e": {"$expMovingAvg": {"input": "$v", "alpha": 0.5}}}}},
        vec![doc! {"_id": 1, "v": 1}, doc! {"_id": 2, "v": dec}],
    );
    assert_eq!(out[0].get("e"), Some(&Bson::Double(1.0)));
    assert!(matches!(out[1].get("e"), Some(Bson::Decimal128(d)) if d.to_string() == "1.75"));
}

#[test]
fn exp_moving_avg_bad_specs_fail_to_parse() {
    let one = || vec![doc! {"_id": 1, "a": 1}];
    let ema = |arg: Document, sort: bool| {
        let mut s = doc! {"output": {"e": {"$expMovingAvg": arg}}};
        if sort {
            s.insert("sortBy", doc! {"a": 1});
        }
        doc! {"$setWindowFields": s}
    };
    assert_eq!(err(ema(doc! {"input": "$a", "N": 2}, false), one()), 9);
    assert_eq!(err(ema(doc! {"input": "$a", "N": 2, "alpha": 0.5}, true), one()), 9);
    assert_eq!(err(ema(doc! {"input": "$a", "N": 0}, true), one()), 9);
    assert_eq!(err(ema(doc! {"input": "$a", "N": 1.5}, true), one()), 9);
    assert_eq!(err(ema(doc! {"input": "$a", "alpha": 1}, true), one()), 9);
    assert_eq!(err(ema(doc! {"input": "$a", "beta": 1}, true), one()), 9);
    let windowed = doc! {"$setWindowFields": {"sortBy": {"a": 1}, "output": {
        "e": {"$expMovingAvg": {"input": "$a", "N": 2}, "window": {"documents": [-1, 0]}}}}};
    assert_eq!(err(windowed, one()), 9);
}

#[test]
fn derivative_over_numbers_and_dates() {
    let input = vec![
        doc! {"_id": 1, "t": 0, "miles": 0},
        doc! {"_id": 2, "t": 2, "miles": 10},
        doc! {"_id": 3, "t": 4, "miles": 30.5},
    ];
    let out = run(
        doc! {"$setWindowFields": {"sortBy": {"t": 1}, "output": {
            "rate": {"$derivative": {"input": "$miles"}, "window": {"documents": [-1, 0]}},
            "overall": {"$derivative": {"input": "$miles"}, "window": {"documents": ["unbounded", "unbounded"]}},
        }}},
        input,
    );
    // A one-document window has no run: null.
    assert_eq!(field(&out, "rate"), vec![Bson::Null, Bson::Double(5.0), Bson::Double(10.25)]);
    assert_eq!(field(&out, "overall"), vec![Bson::Double(7.625); 3]);
    // With dates and a unit the rate is per unit (here miles per hour).
    let at = |min: i64| bson::DateTime::from_millis(min * 60_000);
    let input = vec![doc! {"_id": 1, "at": at(0), "m": 0}, doc! {"_id": 2, "at": at(30), "m": 40}];
    let out = run(
        doc! {"$setWindowFields": {"sortBy": {"at": 1}, "output": {
            "mph": {"$derivative": {"input": "$m", "unit": "hour"}, "window": {"range": [-30, 0], "unit": "minute"}},
        }}},
        input,
    );
    assert_eq!(field(&out, "mph"), vec![Bson::Null, Bson::Double(80.0)]);
}

#[test]
fn derivative_and_integral_refuse_bad_specs_and_inputs() {
    let nums = || vec![doc! {"_id": 1, "t": 1, "v": 1}, doc! {"_id": 2, "t": 2, "v": null}];
    let dates = || vec![doc! {"_id": 1, "t": bson::DateTime::from_millis(0), "v": 1}];
    let w = doc! {"documents": [-1, 0]};
    let swf = |f: Document| doc! {"$setWindowFields": {"sortBy": {"t": 1}, "output": {"r": f}}};
    assert_eq!(err(swf(doc! {"$derivative": {"input": "$v"}}), nums()), 9);
    assert_eq!(err(doc! {"$setWindowFields": {"output": {"r": {"$derivative": {"input": "$v"}, "window": w.clone()}}}}, nums()), 9);
    assert_eq!(
        err(doc! {"$setWindowFields": {"sortBy": {"t": 1, "v": 1}, "output": {"r": {"$integral": {"input": "$v"}}}}}, nums()),
        9
    );
    assert_eq!(err(swf(doc! {"$derivative": {"input": "$v", "unit": "month"}, "window": w.clone()}), dates()), 5490710);
    assert_eq!(err(swf(doc! {"$derivative": {"input": "$v", "unit": "fortnight"}, "window": w.clone()}), dates()), 9);
    assert_eq!(err(swf(doc! {"$derivative": {"input": "$v"}, "window": w.clone()}), dates()), 5624901);
    assert_eq!(err(swf(doc! {"$derivative": {"input": "$v", "unit": "day"}, "window": w.clone()}), nums()), 5624900);
    assert_eq!(err(swf(doc! {"$derivative": {"input": "$v"}, "window": w.clone()}), nums()), 5624903);
    assert_eq!(err(swf(doc! {"$derivative": {"v": "$v"}, "window": w.clone()}), nums()), 9);
    assert_eq!(err(swf(doc! {"$integral": {"input": "$v"}}), nums()), 5423900);
    assert_eq!(err(swf(doc! {"$integral": {"input": "$v", "unit": "day"}}), vec![doc! {"t": 1, "v": 1}]), 5423901);
    assert_eq!(err(swf(doc! {"$integral": {"input": "$v"}}), dates()), 5423902);
}

#[test]
fn integral_by_trapezoids() {
    let input = vec![doc! {"_id": 1, "x": 0, "y": 2}, doc! {"_id": 2, "x": 1, "y": 4}, doc! {"_id": 3, "x": 3, "y": 4}];
    let out = run(
        doc! {"$setWindowFields": {"sortBy": {"x": 1}, "output": {
            "run": {"$integral": {"input": "$y"}, "window": {"documents": ["unbounded", "current"]}},
            "all": {"$integral": {"input": "$y"}},
            "none": {"$integral": {"input": "$y"}, "window": {"documents": [5, 6]}},
        }}},
        input,
    );
    assert_eq!(field(&out, "run"), vec![Bson::Int32(0), Bson::Double(3.0), Bson::Double(11.0)]);
    assert_eq!(field(&out, "all"), vec![Bson::Double(11.0); 3]);
    assert_eq!(field(&out, "none"), vec![Bson::Null; 3]);
    // kW over hours with unit "hour": kWh.
    let at = |h: i64| bson::DateTime::from_millis(h * 3_600_000);
    let out = run(
        doc! {"$setWindowFields": {"sortBy": {"at": 1}, "output": {"kwh": {"$integral": {"input": "$kw", "unit": "hour"}}}}},
        vec![doc! {"at": at(0), "kw": 10}, doc! {"at": at(1), "kw": 20}],
    );
    assert_eq!(field(&out, "kwh"), vec![Bson::Double(15.0); 2]);
}

#[test]
fn covariance_population_and_sample() {
    let input = vec![
        doc! {"_id": 1, "x": 1, "y": 2},
        doc! {"_id": 2, "x": "skip", "y": 100},
        doc! {"_id": 3, "x": 2, "y": 4},
        doc! {"_id": 4, "x": 3, "y": 7},
    ];
    let out = run(
        doc! {"$setWindowFields": {"sortBy": {"_id": 1}, "output": {
            "pop": {"$covariancePop": ["$x", "$y"]},
            "samp": {"$covarianceSamp": ["$x", "$y"]},
            "runPop": {"$covariancePop": ["$x", "$y"], "window": {"documents": ["unbounded", "current"]}},
            "runSamp": {"$covarianceSamp": ["$x", "$y"], "window": {"documents": ["unbounded", "current"]}},
            "notPair": {"$covariancePop": "$x"},
        }}},
        input,
    );
    assert!(approx(&out[0].get("pop").cloned().unwrap_or(Bson::Null), 5.0 / 3.0));
    assert!(approx(&out[0].get("samp").cloned().unwrap_or(Bson::Null), 2.5));
    // One pair: population 0, sample null; the non-numeric pair is ignored.
    assert_eq!(field(&out, "runPop")[..2], [Bson::Double(0.0), Bson::Double(0.0)]);
    assert_eq!(field(&out, "runSamp")[..2], [Bson::Null, Bson::Null]);
    assert!(approx(&field(&out, "runSamp")[2], 1.0));
    assert_eq!(field(&out, "notPair"), vec![Bson::Null; 4]);
}

#[test]
fn locf_carries_the_last_non_null_value_forward() {
    let input = vec![
        doc! {"_id": 1, "g": "a", "v": null},
        doc! {"_id": 2, "g": "a", "v": 1},
        doc! {"_id": 3, "g": "a"},
        doc! {"_id": 4, "g": "a", "v": null},
        doc! {"_id": 5, "g": "a", "v": "three"},
        doc! {"_id": 6, "g": "b"},
    ];
    let out = run(
        doc! {"$setWindowFields": {"partitionBy": "$g", "sortBy": {"_id": 1}, "output": {"f": {"$locf": "$v"}}}},
        input,
    );
    assert_eq!(field(&out, "f"), vec![Bson::Null, 1.into(), 1.into(), 1.into(), "three".into(), Bson::Null]);
    assert_eq!(err(doc! {"$setWindowFields": {"output": {"f": {"$locf": "$v", "window": {"documents": [-1, 0]}}}}}, vec![]), 9);
}

#[test]
fn linear_fill_interpolates_between_known_values() {
    let input = vec![
        doc! {"_id": 1, "x": 1, "y": null},
        doc! {"_id": 2, "x": 2, "y": 10},
        doc! {"_id": 3, "x": 4},
        doc! {"_id": 4, "x": 5, "y": 40},
        doc! {"_id": 5, "x": 6, "y": null},
    ];
    let out = run(doc! {"$setWindowFields": {"sortBy": {"x": 1}, "output": {"y": {"$linearFill": "$y"}}}}, input);
    assert_eq!(field(&out, "y"), vec![Bson::Null, 10.into(), Bson::Double(30.0), 40.into(), Bson::Null]);
    // Dates measure in milliseconds.
    let day = |d: i64| bson::DateTime::from_millis(d * 86_400_000);
    let out = run(
        doc! {"$setWindowFields": {"sortBy": {"at": 1}, "output": {"y": {"$linearFill": "$y"}}}},
        vec![doc! {"at": day(0), "y": 0}, doc! {"at": day(1)}, doc! {"at": day(4), "y": 8}],
    );
    assert_eq!(field(&out, "y"), vec![0.into(), Bson::Double(2.0), 8.into()]);
    let lf = doc! {"$setWindowFields": {"sortBy": {"x": 1}, "output": {"y": {"$linearFill": "$y"}}}};
    assert_eq!(err(lf.clone(), vec![doc! {"x": 1, "y": "s"}]), 14);
    assert_eq!(err(lf.clone(), vec![doc! {"x": "a", "y": 1}]), 14);
    assert_eq!(err(lf.clone(), vec![doc! {"x": 1, "y": 1}, doc! {"x": 1, "y": 2}]), 6050106);
    assert_eq!(err(lf, vec![doc! {"x": 1, "y": 1}, doc! {"x": day(1), "y": 2}]), 14);
    assert_eq!(err(doc! {"$setWindowFields": {"output": {"y": {"$linearFill": "$y"}}}}, vec![]), 605001);
}

#[test]
fn n_ary_accumulators_as_window_functions() {
    let input = vec![
        doc! {"_id": 1, "s": 5, "v": "a"},
        doc! {"_id": 2, "s": 3, "v": "b"},
        doc! {"_id": 3, "s": 5, "v": "c"},
        doc! {"_id": 4, "s": null, "v": "d"},
    ];
    let out = run(
        doc! {"$setWindowFields": {"sortBy": {"_id": 1}, "output": {
            "top2": {"$topN": {"n": 2, "sortBy": {"s": -1}, "output": "$v"}},
            "bottom": {"$bottom": {"sortBy": {"s": -1}, "output": "$v"}},
            "first2": {"$firstN": {"input": "$s", "n": 2}, "window": {"documents": ["current", 1]}},
            "last2": {"$lastN": {"input": "$s", "n": 2}, "window": {"documents": [-1, 0]}},
            "max2": {"$maxN": {"input": "$s", "n": 2}},
            "min2": {"$minN": {"input": "$s", "n": 2}},
            "empty": {"$topN": {"n": 1, "sortBy": {"s": 1}, "output": "$v"}, "window": {"documents": [5, 6]}},
            "emptyTop": {"$top": {"sortBy": {"s": 1}, "output": "$v"}, "window": {"documents": [5, 6]}},
        }}},
        input,
    );
    let strs = |v: &[&str]| Bson::Array(v.iter().map(|s| Bson::String(s.to_string())).collect());
    // Tied on s = 5: the earlier document first.
    assert_eq!(out[0].get("top2"), Some(&strs(&["a", "c"])));
    // Null sorts lowest, so last in a descending sortBy.
    assert_eq!(out[0].get("bottom"), Some(&Bson::String("d".into())));
    assert_eq!(field(&out, "first2")[3], Bson::Array(vec![Bson::Null]));
    assert_eq!(field(&out, "last2")[0], Bson::Array(vec![Bson::Int32(5)]));
    assert_eq!(out[0].get("max2"), Some(&Bson::Array(vec![5.into(), 5.into()])));
    assert_eq!(out[0].get("min2"), Some(&Bson::Array(vec![3.into(), 5.into()])));
    assert_eq!(out[0].get("empty"), Some(&Bson::Array(vec![])));
    assert_eq!(out[0].get("emptyTop"), Some(&Bson::Null));
    // In a window, n is a constant: a field path reads nothing.
    let bad_n = doc! {"$setWindowFields": {"output": {"t": {"$firstN": {"input": "$s", "n": "$s"}}}}};
    assert_eq!(err(bad_n, vec![doc! {"s": 1}]), 5787902);
    let extra = doc! {"$setWindowFields": {"output": {"t": {"$firstN": {"input": "$s", "n": 1}, "bogus": 1}}}};
    assert_eq!(err(extra, vec![doc! {"s": 1}]), 9);
}

#[test]
fn median_and_percentile_as_window_functions() {
    let input: Vec<Document> = [1, 2, 3, 4].iter().map(|v| doc! {"_id": v, "v": v}).collect();
    let out = run(
        doc! {"$setWindowFields": {"sortBy": {"_id": 1}, "output": {
            "med": {"$median": {"input": "$v", "method": "approximate"}},
            "runMed": {"$median": {"input": "$v", "method": "approximate"}, "window": {"documents": ["unbounded", "current"]}},
            "pct": {"$percentile": {"input": "$v", "p": [0.25, 0.9], "method": "approximate"}, "window": {"documents": [5, 6]}},
        }}},
        input,
    );
    assert_eq!(field(&out, "med"), vec![Bson::Double(2.0); 4]);
    assert_eq!(field(&out, "runMed"), vec![Bson::Double(1.0), 1.0.into(), 2.0.into(), 2.0.into()]);
    assert_eq!(out[0].get("pct"), Some(&Bson::Array(vec![Bson::Null, Bson::Null])));
}
