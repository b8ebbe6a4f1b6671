//! Date and time functions: EXTRACT, DATE_TRUNC, AT TIME ZONE and the casts
//! to `date` / `time`.
//!
//! Dates and datetimes are BSON dates (UTC, milliseconds). TimeField values
//! are ISO strings `HH:MM:SS[.ffffff]`, so the time parts and truncations
//! test the operand's type at run time (the compiler knows no schema) and
//! read strings by position.
use bson::{doc, Bson};

use super::expr::{lit, op1, opn};
use crate::plan::{DatePart, TruncUnit};

/// `$$x`: the operand, bound once by [`with_x`].
fn x() -> Bson {
    Bson::String("$$x".into())
}

/// `{$let: {vars: {x: value}, in: body}}`: `body` reads the operand as `$$x`.
/// A plain field path is substituted instead when `body` reads it once.
fn with_x(value: Bson, body: Bson) -> Bson {
    if matches!(&value, Bson::String(p) if p.starts_with('$') && !p.starts_with("$$")) && uses_of_x(&body) <= 1 {
        return substitute_x(body, &value);
    }
    Bson::Document(doc! { "$let": { "vars": { "x": value }, "in": body } })
}

fn uses_of_x(b: &Bson) -> usize {
    match b {
        Bson::String(s) => usize::from(s == "$$x"),
        Bson::Array(a) => a.iter().map(uses_of_x).sum(),
        Bson::Document(d) => d.values().map(uses_of_x).sum(),
        _ => 0,
    }
}

/// `body` with `$$x` replaced by `value`. Only called on bodies built here,
/// which bind no variable of their own named `x`.
fn substitute_x(b: Bson, value: &Bson) -> Bson {
    match b {
        Bson::String(s) if s == "$$x" => value.clone(),
        Bson::Array(a) => Bson::Array(a.into_iter().map(|v| substitute_x(v, value)).collect()),
        Bson::Document(d) => Bson::Document(d.into_iter().map(|(k, v)| (k, substitute_x(v, value))).collect()),
        other => other,
    }
}

fn is_string(v: Bson) -> Bson {
    opn("$eq", vec![op1("$type", v), lit("string")])
}

/// Characters `[start, start + len)` of the time string `$$x`.
fn time_chars(start: i32, len: i32) -> Bson {
    opn("$substrCP", vec![x(), Bson::Int32(start), Bson::Int32(len)])
}

/// Seconds of a time string, with the fraction when there is one.
fn time_seconds() -> Bson {
    opn(
        "$cond",
        vec![
            opn("$gt", vec![op1("$strLenCP", x()), Bson::Int32(8)]),
            op1("$toDouble", time_chars(6, 20)),
            op1("$toInt", time_chars(6, 2)),
        ],
    )
}

/// `EXTRACT(part FROM value)` with PostgreSQL's meaning of each part.
pub(crate) fn extract(part: DatePart, value: Bson) -> Bson {
    let d = |name: &str| op1(name, x());
    let on_date = match part {
        DatePart::Year => d("$year"),
        DatePart::Quarter => op1("$toInt", op1("$ceil", opn("$divide", vec![d("$month"), Bson::Int32(3)]))),
        DatePart::Month => d("$month"),
        DatePart::Week => d("$isoWeek"),
        DatePart::Day => d("$dayOfMonth"),
        DatePart::Dow => opn("$subtract", vec![d("$dayOfWeek"), Bson::Int32(1)]),
        DatePart::IsoDow => d("$isoDayOfWeek"),
        DatePart::DayOfYear => d("$dayOfYear"),
        DatePart::IsoYear => d("$isoWeekYear"),
        DatePart::Hour => d("$hour"),
        DatePart::Minute => d("$minute"),
        DatePart::Second => opn(
            "$cond",
            vec![
                opn("$eq", vec![d("$millisecond"), Bson::Int32(0)]),
                d("$second"),
                opn("$add", vec![d("$second"), opn("$divide", vec![d("$millisecond"), Bson::Int32(1000)])]),
            ],
        ),
        DatePart::Millisecond => opn("$add", vec![opn("$multiply", vec![d("$second"), Bson::Int32(1000)]), d("$millisecond")]),
        DatePart::Epoch => opn("$divide", vec![op1("$toLong", x()), Bson::Int32(1000)]),
    };
    let on_time = match part {
        DatePart::Hour => op1("$toInt", time_chars(0, 2)),
        DatePart::Minute => op1("$toInt", time_chars(3, 2)),
        DatePart::Second => time_seconds(),
        DatePart::Millisecond => opn("$multiply", vec![op1("$toDouble", time_chars(6, 20)), Bson::Int32(1000)]),
        // Seconds since midnight, as PostgreSQL gives for a time.
        DatePart::Epoch => opn(
            "$add",
            vec![
                opn("$multiply", vec![op1("$toInt", time_chars(0, 2)), Bson::Int32(3600)]),
                opn("$multiply", vec![op1("$toInt", time_chars(3, 2)), Bson::Int32(60)]),
                time_seconds(),
            ],
        ),
        // Date parts of a time are an error, as in SQL: the date operator raises it.
        _ => return with_x(value, on_date),
    };
    with_x(value, opn("$cond", vec![is_string(x()), on_time, on_date]))
}

pub(crate) fn trunc_date(date: Bson, unit: &str) -> Bson {
    let mut spec = doc! { "date": date, "unit": unit };
    if unit == "week" {
        spec.insert("startOfWeek", "monday");
    }
    Bson::Document(doc! { "$dateTrunc": spec })
}

/// `DATE_TRUNC('unit', value)`.
pub(crate) fn trunc(unit: TruncUnit, value: Bson) -> Bson {
    let name = match unit {
        TruncUnit::Year => "year",
        TruncUnit::Quarter => "quarter",
        TruncUnit::Month => "month",
        TruncUnit::Week => "week",
        TruncUnit::Day => "day",
        TruncUnit::Hour => "hour",
        TruncUnit::Minute => "minute",
        TruncUnit::Second => "second",
    };
    let on_time = match unit {
        TruncUnit::Hour => opn("$concat", vec![time_chars(0, 2), lit(":00:00")]),
        TruncUnit::Minute => opn("$concat", vec![time_chars(0, 5), lit(":00")]),
        TruncUnit::Second => time_chars(0, 8),
        _ => return trunc_date(value, name),
    };
    with_x(value, opn("$cond", vec![is_string(x()), on_time, trunc_date(x(), name)]))
}

/// `value AT TIME ZONE tz`: the wall-clock time of the instant in `tz`.
pub(crate) fn at_time_zone(value: Bson, tz: Bson) -> Bson {
    let part = |name: &str| Bson::String(format!("$$p.{name}"));
    let rebuilt = doc! { "$dateFromParts": {
        "year": part("year"), "month": part("month"), "day": part("day"),
        "hour": part("hour"), "minute": part("minute"), "second": part("second"),
        "millisecond": part("millisecond"),
    } };
    let parts = doc! { "$dateToParts": { "date": value, "timezone": tz } };
    Bson::Document(doc! { "$let": {
        "vars": { "p": parts },
        "in": { "$cond": [ { "$eq": [ { "$ifNull": ["$$p", null] }, null ] }, null, rebuilt ] },
    } })
}

/// The instant at which the wall clock in zone `tz` shows `value` (a
/// zone-less date): the inverse of [`at_time_zone`].
pub(crate) fn from_wall_clock(value: Bson, tz: Bson) -> Bson {
    let part = |name: &str| Bson::String(format!("$$p.{name}"));
    let rebuilt = doc! { "$dateFromParts": {
        "year": part("year"), "month": part("month"), "day": part("day"),
        "hour": part("hour"), "minute": part("minute"), "second": part("second"),
        "millisecond": part("millisecond"), "timezone": tz,
    } };
    let parts = doc! { "$dateToParts": { "date": value } };
    Bson::Document(doc! { "$let": {
        "vars": { "p": parts },
        "in": { "$cond": [ { "$eq": [ { "$ifNull": ["$$p", null] }, null ] }, null, rebuilt ] },
    } })
}

/// `CAST(value AS time)`: a time string stays as it is; a date gives its
/// time of day in the stored form (`HH:MM:SS`, or `HH:MM:SS.ffffff` when
/// there is a fraction, as Python's `time.isoformat()` writes it).
pub(crate) fn cast_time(value: Bson) -> Bson {
    let fmt = |f: &str| Bson::Document(doc! { "$dateToString": { "date": x(), "format": f } });
    let of_date = opn(
        "$cond",
        vec![
            opn("$eq", vec![op1("$millisecond", x()), Bson::Int32(0)]),
            fmt("%H:%M:%S"),
            opn("$concat", vec![fmt("%H:%M:%S.%L"), lit("000")]),
        ],
    );
    let body = opn(
        "$cond",
        vec![
            opn("$eq", vec![opn("$ifNull", vec![x(), Bson::Null]), Bson::Null]),
            Bson::Null,
            opn("$cond", vec![is_string(x()), x(), of_date]),
        ],
    );
    with_x(value, body)
}
