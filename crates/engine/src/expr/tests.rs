use super::*;
use bson::{doc, Bson, DateTime};

fn ev(e: Bson, d: &Document) -> Value {
    eval_value(&e, d, &Vars::new()).unwrap()
}

fn ev1(e: Bson) -> Bson {
    ev(e, &doc! {"a": 1, "s": "Hello", "n": null}).unwrap_or(Bson::Null)
}

#[test]
fn field_paths_and_missing() {
    let d = doc! {"a": {"b": 2}, "arr": [{"x": 1}, {"y": 2}, {"x": 3}]};
    assert_eq!(ev(Bson::String("$a.b".into()), &d), Some(Bson::Int32(2)));
    assert_eq!(ev(Bson::String("$zz".into()), &d), None);
    assert_eq!(ev(Bson::String("$arr.x".into()), &d), Some(Bson::Array(vec![1.into(), 3.into()])));
    assert_eq!(ev(Bson::String("$$REMOVE".into()), &d), None);
    assert_eq!(ev(Bson::String("$$ROOT.a.b".into()), &d), Some(Bson::Int32(2)));
    // Object literals omit missing fields; array literals turn them into null.
    assert_eq!(ev(Bson::Document(doc! {"p": "$a.b", "q": "$zz"}), &d), Some(Bson::Document(doc! {"p": 2})));
    assert_eq!(ev(bson::bson!(["$zz"]), &d), Some(bson::bson!([null])));
    assert_eq!(ev(Bson::Document(doc! {"$literal": "$a"}), &d), Some(Bson::String("$a".into())));
}

#[test]
fn undefined_variable_and_operator_errors() {
    let e = eval_value(&Bson::String("$$nope".into()), &doc! {}, &Vars::new()).unwrap_err();
    assert_eq!(e.code, 17276);
    let e = eval_value(&Bson::Document(doc! {"$frobnicate": 1}), &doc! {}, &Vars::new()).unwrap_err();
    assert_eq!(e.code, 168);
    assert!(e.message.contains("$frobnicate"));
}

#[test]
fn numeric_promotion() {
    assert_eq!(ev1(bson::bson!({"$add": [1, 2]})), Bson::Int32(3));
    assert_eq!(ev1(bson::bson!({"$add": [2147483647, 1]})), Bson::Int64(2147483648));
    assert_eq!(ev1(bson::bson!({"$add": [1, 2.5]})), Bson::Double(3.5));
    assert_eq!(ev1(bson::bson!({"$add": [1_i64, 2]})), Bson::Int64(3));
    assert_eq!(ev1(bson::bson!({"$divide": [6, 3]})), Bson::Double(2.0));
    assert_eq!(ev1(bson::bson!({"$multiply": ["$a", 4]})), Bson::Int32(4));
    assert_eq!(ev1(bson::bson!({"$subtract": [10, "$a"]})), Bson::Int32(9));
    assert_eq!(ev1(bson::bson!({"$mod": [7, 4]})), Bson::Int32(3));
    assert_eq!(ev1(bson::bson!({"$add": [1, "$missing"]})), Bson::Null);
    assert_eq!(ev1(bson::bson!({"$add": [1, "$n"]})), Bson::Null);
    assert_eq!(ev1(bson::bson!({"$round": [2.5]})), Bson::Double(2.0));
    assert_eq!(ev1(bson::bson!({"$round": [1.23456, 2]})), Bson::Double(1.23));
    assert_eq!(ev1(bson::bson!({"$trunc": [-3.7]})), Bson::Double(-3.0));
    assert_eq!(ev1(bson::bson!({"$abs": -5})), Bson::Int32(5));
    assert_eq!(ev1(bson::bson!({"$pow": [2, 10]})), Bson::Int32(1024));
    assert_eq!(ev1(bson::bson!({"$floor": 2.7})), Bson::Double(2.0));
    let dec: bson::Decimal128 = "1.10".parse().unwrap();
    assert_eq!(ev1(bson::bson!({"$add": [Bson::Decimal128(dec), 1]})).to_string(), "2.10");
    assert!(eval_value(&bson::bson!({"$add": ["$s", 1]}), &doc! {"s": "x"}, &Vars::new()).is_err());
}

#[test]
fn dates_in_arithmetic() {
    let d = doc! {"t": DateTime::from_millis(1000)};
    assert_eq!(ev(bson::bson!({"$add": ["$t", 500]}), &d), Some(Bson::DateTime(DateTime::from_millis(1500))));
    assert_eq!(ev(bson::bson!({"$subtract": ["$t", "$t"]}), &d), Some(Bson::Int64(0)));
}

#[test]
fn comparisons_and_logic() {
    assert_eq!(ev1(bson::bson!({"$eq": [1, 1.0]})), Bson::Boolean(true));
    assert_eq!(ev1(bson::bson!({"$gt": ["abc", 5]})), Bson::Boolean(true), "strings sort after numbers");
    assert_eq!(ev1(bson::bson!({"$eq": ["$missing", null]})), Bson::Boolean(false));
    assert_eq!(ev1(bson::bson!({"$lt": ["$missing", null]})), Bson::Boolean(true));
    assert_eq!(ev1(bson::bson!({"$cmp": [2, 1]})), Bson::Int32(1));
    assert_eq!(ev1(bson::bson!({"$and": [1, "x", true]})), Bson::Boolean(true));
    assert_eq!(ev1(bson::bson!({"$or": [0, null, "$missing"]})), Bson::Boolean(false));
    assert_eq!(ev1(bson::bson!({"$not": [0]})), Bson::Boolean(true));
    assert_eq!(ev1(bson::bson!({"$cond": [{"$gt": ["$a", 0]}, "pos", "neg"]})), Bson::String("pos".into()));
    assert_eq!(ev1(bson::bson!({"$cond": {"if": false, "then": 1, "else": 2}})), Bson::Int32(2));
    assert_eq!(ev1(bson::bson!({"$ifNull": ["$missing", "$n", "dflt"]})), Bson::String("dflt".into()));
    assert_eq!(
        ev1(bson::bson!({"$switch": {"branches": [{"case": false, "then": 1}, {"case": true, "then": 2}], "default": 3}})),
        Bson::Int32(2)
    );
    assert!(eval_value(&bson::bson!({"$switch": {"branches": []}}), &doc! {}, &Vars::new()).is_err());
}

#[test]
fn strings() {
    assert_eq!(ev1(bson::bson!({"$concat": ["$s", " ", "world"]})), Bson::String("Hello world".into()));
    assert_eq!(ev1(bson::bson!({"$concat": ["$s", "$n"]})), Bson::Null);
    assert_eq!(ev1(bson::bson!({"$toLower": "$s"})), Bson::String("hello".into()));
    assert_eq!(ev1(bson::bson!({"$toUpper": "$n"})), Bson::String("".into()));
    assert_eq!(ev1(bson::bson!({"$substrCP": ["héllo", 1, 3]})), Bson::String("éll".into()));
    assert_eq!(ev1(bson::bson!({"$strLenCP": "héllo"})), Bson::Int32(5));
    assert_eq!(ev1(bson::bson!({"$strLenBytes": "héllo"})), Bson::Int32(6));
    assert_eq!(ev1(bson::bson!({"$trim": {"input": "  x  "}})), Bson::String("x".into()));
    assert_eq!(ev1(bson::bson!({"$ltrim": {"input": "xxyx", "chars": "x"}})), Bson::String("yx".into()));
    assert_eq!(ev1(bson::bson!({"$indexOfCP": ["hello", "l"]})), Bson::Int32(2));
    assert_eq!(ev1(bson::bson!({"$indexOfCP": ["hello", "z"]})), Bson::Int32(-1));
    assert_eq!(ev1(bson::bson!({"$split": ["a,b", ","]})), bson::bson!(["a", "b"]));
    assert_eq!(ev1(bson::bson!({"$regexMatch": {"input": "$s", "regex": "^h", "options": "i"}})), Bson::Boolean(true));
    assert_eq!(ev1(bson::bson!({"$regexMatch": {"input": "$n", "regex": "^h"}})), Bson::Boolean(false));
    assert_eq!(ev1(bson::bson!({"$replaceAll": {"input": "aXbX", "find": "X", "replacement": "-"}})), Bson::String("a-b-".into()));
    assert_eq!(ev1(bson::bson!({"$strcasecmp": ["abc", "ABC"]})), Bson::Int32(0));
}

#[test]
fn conversions() {
    assert_eq!(ev1(bson::bson!({"$toString": 1.0})), Bson::String("1".into()));
    assert_eq!(ev1(bson::bson!({"$toString": 2.5})), Bson::String("2.5".into()));
    assert_eq!(ev1(bson::bson!({"$toInt": "42"})), Bson::Int32(42));
    assert_eq!(ev1(bson::bson!({"$toInt": 4.9})), Bson::Int32(4));
    assert_eq!(ev1(bson::bson!({"$toLong": true})), Bson::Int64(1));
    assert_eq!(ev1(bson::bson!({"$toDouble": "1.5"})), Bson::Double(1.5));
    assert_eq!(ev1(bson::bson!({"$toBool": 0})), Bson::Boolean(false));
    assert_eq!(ev1(bson::bson!({"$toBool": ""})), Bson::Boolean(true));
    assert_eq!(ev1(bson::bson!({"$toInt": "$missing"})), Bson::Null);
    assert_eq!(ev1(bson::bson!({"$type": "$missing"})), Bson::String("missing".into()));
    assert_eq!(ev1(bson::bson!({"$type": "$a"})), Bson::String("int".into()));
    assert_eq!(ev1(bson::bson!({"$isNumber": "$s"})), Bson::Boolean(false));
    assert_eq!(ev1(bson::bson!({"$convert": {"input": "x", "to": "int", "onError": -1}})), Bson::Int32(-1));
    assert_eq!(ev1(bson::bson!({"$convert": {"input": null, "to": "int", "onNull": 0}})), Bson::Int32(0));
    assert_eq!(ev1(bson::bson!({"$toDate": "2020-01-02T00:00:00Z"})), Bson::DateTime(DateTime::from_millis(1_577_923_200_000)));
    assert_eq!(ev1(bson::bson!({"$toDecimal": 1})).to_string(), "1");
    assert!(eval_value(&bson::bson!({"$toInt": "abc"}), &doc! {}, &Vars::new()).is_err());
}

#[test]
fn arrays() {
    let d = doc! {"l": [1, 2, 3, 4]};
    assert_eq!(ev(bson::bson!({"$size": "$l"}), &d), Some(Bson::Int32(4)));
    assert_eq!(ev(bson::bson!({"$arrayElemAt": ["$l", -1]}), &d), Some(Bson::Int32(4)));
    assert_eq!(ev(bson::bson!({"$arrayElemAt": ["$l", 10]}), &d), None);
    assert_eq!(ev(bson::bson!({"$in": [2.0, "$l"]}), &d), Some(Bson::Boolean(true)));
    assert_eq!(ev(bson::bson!({"$first": "$l"}), &d), Some(Bson::Int32(1)));
    assert_eq!(
        ev(bson::bson!({"$filter": {"input": "$l", "as": "x", "cond": {"$gt": ["$$x", 2]}}}), &d),
        Some(bson::bson!([3, 4]))
    );
    assert_eq!(ev(bson::bson!({"$map": {"input": "$l", "in": {"$multiply": ["$$this", 2]}}}), &d), Some(bson::bson!([2, 4, 6, 8])));
    assert_eq!(
        ev(bson::bson!({"$reduce": {"input": "$l", "initialValue": 0, "in": {"$add": ["$$value", "$$this"]}}}), &d),
        Some(Bson::Int32(10))
    );
    assert_eq!(ev(bson::bson!({"$concatArrays": ["$l", [5]]}), &d), Some(bson::bson!([1, 2, 3, 4, 5])));
    assert_eq!(ev(bson::bson!({"$sum": "$l"}), &d), Some(Bson::Int32(10)));
    assert_eq!(ev(bson::bson!({"$avg": "$l"}), &d), Some(Bson::Double(2.5)));
    assert_eq!(ev(bson::bson!({"$max": [1, "$missing", 7]}), &d), Some(Bson::Int32(7)));
    assert_eq!(ev(bson::bson!({"$setUnion": [[1, 2], [2.0, 3]]}), &d), Some(bson::bson!([1, 2, 3])));
    assert_eq!(ev(bson::bson!({"$slice": ["$l", -2]}), &d), Some(bson::bson!([3, 4])));
    assert_eq!(
        ev(bson::bson!({"$let": {"vars": {"x": 5}, "in": {"$add": ["$$x", 1]}}}), &d),
        Some(Bson::Int32(6))
    );
    assert_eq!(
        ev(bson::bson!({"$mergeObjects": [{"a": 1}, null, {"b": 2, "a": 3}]}), &d),
        Some(Bson::Document(doc! {"a": 3, "b": 2}))
    );
}

#[test]
fn date_parts_and_formatting() {
    // 2021-01-03T04:05:06.007Z is a Sunday, ISO week 53 of 2020.
    let ms = super::date::parse_date("2021-01-03T04:05:06.007Z").unwrap();
    let d = doc! {"t": DateTime::from_millis(ms)};
    let part = |op: &str| ev(Bson::Document(doc! {op: "$t"}), &d).unwrap_or(Bson::Null);
    assert_eq!(part("$year"), Bson::Int32(2021));
    assert_eq!(part("$month"), Bson::Int32(1));
    assert_eq!(part("$dayOfMonth"), Bson::Int32(3));
    assert_eq!(part("$hour"), Bson::Int32(4));
    assert_eq!(part("$dayOfWeek"), Bson::Int32(1));
    assert_eq!(part("$isoDayOfWeek"), Bson::Int32(7));
    assert_eq!(part("$isoWeek"), Bson::Int32(53));
    assert_eq!(part("$isoWeekYear"), Bson::Int32(2020));
    assert_eq!(part("$week"), Bson::Int32(1));
    assert_eq!(part("$dayOfYear"), Bson::Int32(3));
    assert_eq!(
        ev(bson::bson!({"$dateToString": {"date": "$t", "format": "%Y-%m-%d %H:%M:%S.%L"}}), &d),
        Some(Bson::String("2021-01-03 04:05:06.007".into()))
    );
    assert_eq!(
        ev(bson::bson!({"$hour": {"date": "$t", "timezone": "+05:30"}}), &d),
        Some(Bson::Int32(9))
    );
    let trunc = ev(bson::bson!({"$dateTrunc": {"date": "$t", "unit": "month"}}), &d).unwrap();
    assert_eq!(trunc, Bson::DateTime(DateTime::from_millis(super::date::parse_date("2021-01-01").unwrap())));
    let trunc = ev(bson::bson!({"$dateTrunc": {"date": "$t", "unit": "week"}}), &d).unwrap();
    assert_eq!(trunc, Bson::DateTime(DateTime::from_millis(super::date::parse_date("2021-01-03").unwrap())));
    let added = ev(bson::bson!({"$dateAdd": {"startDate": "$t", "unit": "month", "amount": 1}}), &d).unwrap();
    assert_eq!(added, Bson::DateTime(DateTime::from_millis(super::date::parse_date("2021-02-03T04:05:06.007Z").unwrap())));
    let diff = ev(
        bson::bson!({"$dateDiff": {"startDate": "$t", "endDate": {"$dateFromParts": {"year": 2021, "month": 3, "day": 1}}, "unit": "month"}}),
        &d,
    );
    assert_eq!(diff, Some(Bson::Int64(2)));
    let from_parts = ev(bson::bson!({"$dateFromParts": {"year": 2020, "month": 14, "day": 1}}), &d).unwrap();
    assert_eq!(from_parts, Bson::DateTime(DateTime::from_millis(super::date::parse_date("2021-02-01").unwrap())));
    assert_eq!(ev(bson::bson!({"$year": "$missing"}), &d), Some(Bson::Null));
    // 04:05 UTC on 3 January is 23:05 on 2 January in New York (UTC-5 in winter).
    assert_eq!(ev(bson::bson!({"$hour": {"date": "$t", "timezone": "America/New_York"}}), &d), Some(Bson::Int32(23)));
    let local_day = ev(bson::bson!({"$dateTrunc": {"date": "$t", "unit": "day", "timezone": "America/New_York"}}), &d).unwrap();
    assert_eq!(local_day, Bson::DateTime(DateTime::from_millis(super::date::parse_date("2021-01-02T05:00:00Z").unwrap())));
}

#[test]
fn date_trunc_across_a_dst_gap_and_fold() {
    let at = |s: &str| Bson::DateTime(DateTime::from_millis(super::date::parse_date(s).unwrap()));
    let trunc = |t: &str, unit: &str, tz: &str| {
        ev(bson::bson!({"$dateTrunc": {"date": at(t), "unit": unit, "timezone": tz}}), &doc! {}).unwrap()
    };
    // Sao Paulo skipped 2016-10-16T00:00 (clocks went to 01:00 -02:00): the
    // day starts at 01:00 local, 03:00Z, not in the day before.
    assert_eq!(trunc("2016-10-16T13:00:00Z", "day", "America/Sao_Paulo"), at("2016-10-16T03:00:00Z"));
    // An hour truncated on a normal day is unaffected.
    assert_eq!(trunc("2016-02-21T01:30:00Z", "hour", "America/Sao_Paulo"), at("2016-02-21T01:00:00Z"));
    // New York's 2021-11-07T01:30 happened twice: the earlier (EDT) reading.
    assert_eq!(trunc("2021-11-07T06:40:00Z", "hour", "America/New_York"), at("2021-11-07T05:00:00Z"));
}

#[test]
fn trigonometry_and_bits() {
    assert_eq!(ev1(bson::bson!({"$cos": 0})), Bson::Double(1.0));
    assert_eq!(ev1(bson::bson!({"$atan2": [1, 1]})), Bson::Double(std::f64::consts::FRAC_PI_4));
    assert_eq!(ev1(bson::bson!({"$radiansToDegrees": std::f64::consts::PI})), Bson::Double(180.0));
    assert_eq!(ev1(bson::bson!({"$sin": null})), Bson::Null);
    let e = eval_value(&bson::bson!({"$acos": 2}), &doc! {}, &Vars::new()).unwrap_err();
    assert!(e.message.contains("$acos"));
    assert_eq!(ev1(bson::bson!({"$bitAnd": [12, 10]})), Bson::Int32(8));
    assert_eq!(ev1(bson::bson!({"$bitOr": [12_i64, 3]})), Bson::Int64(15));
    assert_eq!(ev1(bson::bson!({"$bitXor": [12, 10]})), Bson::Int32(6));
    assert_eq!(ev1(bson::bson!({"$bitNot": 0})), Bson::Int32(-1));
    assert_eq!(ev1(bson::bson!({"$bitAnd": [1, "$n"]})), Bson::Null);
    assert!(eval_value(&bson::bson!({"$bitAnd": [1, 1.5]}), &doc! {}, &Vars::new()).is_err());
    let Bson::Double(r) = ev1(bson::bson!({"$rand": {}})) else { panic!("$rand is a double") };
    assert!((0.0..1.0).contains(&r));
    let Bson::Double(r) = ev1(bson::bson!({"$rand": []})) else { panic!("$rand: [] is a double too") };
    assert!((0.0..1.0).contains(&r));
    assert!(eval_value(&bson::bson!({"$rand": [1]}), &doc! {}, &Vars::new()).is_err());
}

#[test]
fn get_field_of_a_non_document_is_missing() {
    let d = doc! {"obj": {"k": 1}, "num": 5, "s": "x", "arr": [{"k": 2}], "nul": null};
    let get = |input: &str| ev(bson::bson!({"$getField": {"field": "k", "input": input}}), &d);
    assert_eq!(get("$obj"), Some(Bson::Int32(1)));
    assert_eq!(get("$num"), None);
    assert_eq!(get("$s"), None);
    assert_eq!(get("$arr"), None);
    assert_eq!(get("$absent"), None);
    assert_eq!(get("$nul"), Some(Bson::Null));
    // A missing result drops the field, as with any missing expression.
    let projected = crate::projection::apply_projection(&d, &doc! {"v": {"$getField": {"field": "k", "input": "$num"}}}).unwrap();
    assert!(!projected.contains_key("v"));
}

fn err_code(e: Bson) -> i32 {
    eval_value(&e, &doc! {"a": 1}, &Vars::new()).unwrap_err().code
}

#[test]
fn sort_array_by_value_and_by_fields() {
    use bson::bson;
    assert_eq!(ev1(bson!({"$sortArray": {"input": [3, "b", 1, null, 2.5], "sortBy": 1}})), bson!([null, 1, 2.5, 3, "b"]));
    assert_eq!(ev1(bson!({"$sortArray": {"input": [3, 1, 2], "sortBy": -1}})), bson!([3, 2, 1]));
    let team = bson!([{"name": "pat", "age": 30}, {"name": "dallas", "age": 36}, {"name": "charlie", "age": 42}, {"name": "ann", "age": 30}]);
    assert_eq!(
        ev1(bson!({"$sortArray": {"input": team, "sortBy": {"age": -1, "name": 1}}})),
        bson!([{"name": "charlie", "age": 42}, {"name": "dallas", "age": 36}, {"name": "ann", "age": 30}, {"name": "pat", "age": 30}])
    );
    assert_eq!(ev1(bson!({"$sortArray": {"input": "$nope", "sortBy": 1}})), Bson::Null);
    assert_eq!(err_code(bson!({"$sortArray": {"input": 5, "sortBy": 1}})), 2942504);
    assert_eq!(err_code(bson!({"$sortArray": {"input": [1]}})), 2942503);
    assert_eq!(err_code(bson!({"$sortArray": {"input": [1], "sortBy": 1, "x": 1}})), 2942501);
}

#[test]
fn first_last_max_min_n_over_arrays() {
    use bson::bson;
    assert_eq!(ev1(bson!({"$firstN": {"n": 2, "input": [5, null, 3]}})), bson!([5, null]));
    assert_eq!(ev1(bson!({"$lastN": {"n": 5, "input": [5, null, 3]}})), bson!([5, null, 3]));
    assert_eq!(ev1(bson!({"$maxN": {"n": 2, "input": [5, null, 3, 9]}})), bson!([9, 5]));
    assert_eq!(ev1(bson!({"$minN": {"n": "$a", "input": [5, null, 3, 9]}})), bson!([3]));
    assert_eq!(err_code(bson!({"$firstN": {"n": 0, "input": [1]}})), 5787908);
    assert_eq!(err_code(bson!({"$firstN": {"n": 1.5, "input": [1]}})), 5787903);
    assert_eq!(err_code(bson!({"$lastN": {"n": 1, "input": 3}})), 5788200);
    assert_eq!(err_code(bson!({"$maxN": {"input": [1]}})), 5787906);
}

#[test]
fn zip_transposes_arrays() {
    use bson::bson;
    assert_eq!(ev1(bson!({"$zip": {"inputs": [[1, 2, 3], ["a", "b"]]}})), bson!([[1, "a"], [2, "b"]]));
    assert_eq!(
        ev1(bson!({"$zip": {"inputs": [[1, 2, 3], ["a"]], "useLongestLength": true, "defaults": [0, "z"]}})),
        bson!([[1, "a"], [2, "z"], [3, "z"]])
    );
    assert_eq!(ev1(bson!({"$zip": {"inputs": [[1], "$nope"]}})), Bson::Null);
    assert_eq!(err_code(bson!({"$zip": {"inputs": [[1], 2]}})), 34468);
    assert_eq!(err_code(bson!({"$zip": {"inputs": [[1]], "defaults": [0]}})), 34466);
    assert_eq!(err_code(bson!({"$zip": {"inputs": [[1]], "useLongestLength": true, "defaults": []}})), 34467);
}

#[test]
fn set_and_unset_field_by_literal_name() {
    use bson::bson;
    let d = doc! {"item": {"price.usd": 4, "qty": 2}};
    assert_eq!(
        ev(bson!({"$setField": {"field": "price.usd", "input": "$item", "value": 5}}), &d),
        Some(bson!({"price.usd": 5, "qty": 2}))
    );
    assert_eq!(
        ev(bson!({"$setField": {"field": {"$literal": "$cost"}, "input": "$item", "value": 1}}), &d),
        Some(bson!({"price.usd": 4, "qty": 2, "$cost": 1}))
    );
    assert_eq!(ev(bson!({"$unsetField": {"field": "price.usd", "input": "$item"}}), &d), Some(bson!({"qty": 2})));
    assert_eq!(ev(bson!({"$setField": {"field": "qty", "input": "$item", "value": "$$REMOVE"}}), &d), Some(bson!({"price.usd": 4})));
    assert_eq!(ev(bson!({"$unsetField": {"field": "x", "input": "$nope"}}), &d), Some(Bson::Null));
    assert_eq!(err_code(bson!({"$setField": {"field": "$x", "input": {}, "value": 1}})), 4161108);
    assert_eq!(err_code(bson!({"$setField": {"field": "x", "input": 3, "value": 1}})), 4161105);
    assert_eq!(err_code(bson!({"$setField": {"field": "x", "input": {}}})), 4161104);
}

#[test]
fn sizes_and_timestamp_parts() {
    use bson::{bson, Timestamp};
    assert_eq!(ev1(bson!({"$bsonSize": {"a": 1}})), Bson::Int32(12));
    assert_eq!(ev1(bson!({"$bsonSize": "$$ROOT"})), Bson::Int32(28));
    assert_eq!(ev1(bson!({"$binarySize": "héllo"})), Bson::Int32(6));
    assert_eq!(ev1(bson!({"$binarySize": "$n"})), Bson::Null);
    assert_eq!(err_code(bson!({"$bsonSize": 3})), 31393);
    assert_eq!(err_code(bson!({"$binarySize": 3})), 51276);
    let ts = Bson::Timestamp(Timestamp { time: 1_700_000_000, increment: 7 });
    assert_eq!(ev1(Bson::Document(doc! {"$tsSecond": ts.clone()})), Bson::Int64(1_700_000_000));
    assert_eq!(ev1(Bson::Document(doc! {"$tsIncrement": ts})), Bson::Int64(7));
    assert_eq!(err_code(bson!({"$tsSecond": 5})), 5687301);
    assert_eq!(ev1(bson!({"$isoDayOfWeek": {"$toDate": "2024-06-09T00:00:00Z"}})), Bson::Int32(7));
}

#[test]
fn median_and_percentile_over_arrays() {
    use bson::bson;
    assert_eq!(ev1(bson!({"$median": {"input": [4, 1, "x", 3, 2], "method": "approximate"}})), Bson::Double(2.0));
    assert_eq!(
        ev1(bson!({"$percentile": {"input": [10, 20, 30, 40, 50], "p": [0.0, 0.5, 0.95, 1], "method": "approximate"}})),
        bson!([10.0, 30.0, 50.0, 50.0])
    );
    assert_eq!(ev1(bson!({"$median": {"input": "$a", "method": "approximate"}})), Bson::Double(1.0));
    assert_eq!(ev1(bson!({"$percentile": {"input": [], "p": [0.5], "method": "approximate"}})), bson!([null]));
    assert_eq!(err_code(bson!({"$median": {"input": [1]}})), 40414);
    assert_eq!(err_code(bson!({"$percentile": {"input": [1], "p": [1.5], "method": "approximate"}})), 7750303);
    assert_eq!(err_code(bson!({"$median": {"input": [1], "method": "exact"}})), 2);
}
