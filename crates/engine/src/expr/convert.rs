//! Type inspection and conversion: `$type`, `$isNumber`, `$convert` and the
//! `$toX` shorthands.
use super::{arg_list, arity, nullish, type_name, Ctx, Value};
use crate::num::{self, Num};
use crate::{EngineError, Result};
use bson::oid::ObjectId;
use bson::{Bson, DateTime};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use std::str::FromStr;

pub(super) fn dispatch(cx: &Ctx, op: &str, arg: &Bson) -> Option<Result<Value>> {
    let target = match op {
        "$type" => return Some(one(cx, op, arg).map(|v| Some(Bson::String(type_name(&v).to_string())))),
        "$isNumber" => {
            return Some(one(cx, op, arg).map(|v| Some(Bson::Boolean(v.as_ref().is_some_and(crate::types::is_number)))))
        }
        "$convert" => return Some(convert(cx, arg)),
        "$toString" => "string",
        "$toInt" => "int",
        "$toLong" => "long",
        "$toDouble" => "double",
        "$toDecimal" => "decimal",
        "$toBool" => "bool",
        "$toDate" => "date",
        "$toObjectId" => "objectId",
        _ => return None,
    };
    Some(one(cx, op, arg).and_then(|v| {
        if nullish(&v) {
            return Ok(Some(Bson::Null));
        }
        let v = v.unwrap_or(Bson::Null);
        convert_to(&v, target).map(Some)
    }))
}

fn one(cx: &Ctx, op: &str, arg: &Bson) -> Result<Value> {
    // `$type: "$a"` and `$type: ["$a"]` are both accepted.
    let args = arg_list(arg);
    arity(op, args, 1)?;
    cx.eval(&args[0])
}

fn failure(v: &Bson, target: &str) -> EngineError {
    EngineError::new(
        241,
        "ConversionFailure",
        format!("Unsupported conversion from {} to {target} in $convert with no onError value", crate::types::type_name(v)),
    )
}

fn parse_failure(s: &str, target: &str) -> EngineError {
    EngineError::new(241, "ConversionFailure", format!("Failed to parse {target} from string '{s}' in $convert with no onError value"))
}

/// Formats a double the way MongoDB's `$toString` does: integral values
/// without a fractional part, others in shortest round-trip form.
pub(crate) fn format_double(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f.is_infinite() {
        if f > 0.0 { "Infinity".into() } else { "-Infinity".into() }
    } else if f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{}", f as i64)
    } else {
        format!("{f}")
    }
}

pub(crate) fn to_string_value(v: &Bson) -> Option<String> {
    Some(match v {
        Bson::String(s) | Bson::Symbol(s) => s.clone(),
        Bson::Int32(i) => i.to_string(),
        Bson::Int64(i) => i.to_string(),
        Bson::Double(f) => format_double(*f),
        Bson::Decimal128(d) => d.to_string(),
        Bson::Boolean(b) => b.to_string(),
        Bson::DateTime(d) => super::date::format_iso(d.timestamp_millis()),
        Bson::ObjectId(o) => o.to_hex(),
        _ => return None,
    })
}

fn integral(n: Num, v: &Bson, target: &str) -> Result<i64> {
    let f = n.to_f64();
    if f.is_nan() || f.is_infinite() {
        return Err(failure(v, target));
    }
    match n {
        Num::Dec(d) => d.trunc().to_i64().ok_or_else(|| failure(v, target)),
        Num::Double(f) => {
            let t = f.trunc();
            if (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&t) {
                Ok(t as i64)
            } else {
                Err(failure(v, target))
            }
        }
        other => Ok(other.to_i64_exact().unwrap_or(0)),
    }
}

/// Converts `v` (not null) to the named type, as `$convert` does.
pub(crate) fn convert_to(v: &Bson, target: &str) -> Result<Bson> {
    match target {
        "string" => to_string_value(v).map(Bson::String).ok_or_else(|| failure(v, target)),
        "int" | "long" => {
            let i: i64 = match v {
                Bson::Boolean(b) => i64::from(*b),
                Bson::String(s) => s.trim().parse::<i64>().map_err(|_| parse_failure(s, target))?,
                Bson::DateTime(d) if target == "long" => d.timestamp_millis(),
                other => match Num::from_bson(other) {
                    Some(n) => integral(n, v, target)?,
                    None => return Err(failure(v, target)),
                },
            };
            if target == "int" {
                i32::try_from(i).map(Bson::Int32).map_err(|_| failure(v, target))
            } else {
                Ok(Bson::Int64(i))
            }
        }
        "double" => Ok(Bson::Double(match v {
            Bson::Boolean(b) => f64::from(u8::from(*b)),
            Bson::String(s) => parse_double(s).ok_or_else(|| parse_failure(s, target))?,
            Bson::DateTime(d) => d.timestamp_millis() as f64,
            other => Num::from_bson(other).ok_or_else(|| failure(v, target))?.to_f64(),
        })),
        "decimal" => Ok(match v {
            Bson::Boolean(b) => num::decimal_to_bson(Decimal::from(u8::from(*b))),
            Bson::String(s) => Bson::Decimal128(
                bson::Decimal128::from_str(s.trim()).map_err(|_| parse_failure(s, target))?,
            ),
            Bson::DateTime(d) => num::decimal_to_bson(Decimal::from(d.timestamp_millis())),
            Bson::Double(f) => num::f64_to_decimal_bson(*f),
            Bson::Decimal128(_) => v.clone(),
            other => match Num::from_bson(other).and_then(Num::to_dec) {
                Some(d) => num::decimal_to_bson(d),
                None => return Err(failure(v, target)),
            },
        }),
        "bool" => Ok(Bson::Boolean(match v {
            Bson::Boolean(b) => *b,
            other => match Num::from_bson(other) {
                Some(n) => !n.is_zero(),
                None => true,
            },
        })),
        "date" => Ok(Bson::DateTime(DateTime::from_millis(match v {
            Bson::DateTime(d) => d.timestamp_millis(),
            Bson::ObjectId(o) => o.timestamp().timestamp_millis(),
            Bson::String(s) => super::date::parse_date(s).ok_or_else(|| parse_failure(s, target))?,
            Bson::Timestamp(t) => i64::from(t.time) * 1000,
            other => match Num::from_bson(other) {
                Some(n) => integral(n, v, target)?,
                None => return Err(failure(v, target)),
            },
        }))),
        "objectId" => match v {
            Bson::ObjectId(_) => Ok(v.clone()),
            Bson::String(s) => ObjectId::parse_str(s).map(Bson::ObjectId).map_err(|_| parse_failure(s, target)),
            _ => Err(failure(v, target)),
        },
        "null" => Ok(Bson::Null),
        "object" | "array" | "regex" | "binData" | "timestamp" | "minKey" | "maxKey" => {
            if crate::types::type_name(v) == target {
                Ok(v.clone())
            } else {
                Err(failure(v, target))
            }
        }
        _ => Err(EngineError::bad_value(format!("Unknown type name: {target}"))),
    }
}

fn parse_double(s: &str) -> Option<f64> {
    let t = s.trim();
    match t {
        "NaN" | "nan" => return Some(f64::NAN),
        "Infinity" | "inf" => return Some(f64::INFINITY),
        "-Infinity" | "-inf" => return Some(f64::NEG_INFINITY),
        _ => {}
    }
    if t.is_empty() || t.chars().any(|c| c.is_alphabetic() && c != 'e' && c != 'E') {
        return None;
    }
    t.parse().ok()
}

fn target_name(v: &Bson) -> Result<String> {
    match v {
        Bson::String(s) => Ok(s.clone()),
        other => {
            let code = Num::from_bson(other).and_then(Num::to_i64_exact).unwrap_or(0);
            let name = match code {
                1 => "double",
                2 => "string",
                3 => "object",
                4 => "array",
                5 => "binData",
                7 => "objectId",
                8 => "bool",
                9 => "date",
                10 => "null",
                11 => "regex",
                16 => "int",
                17 => "timestamp",
                18 => "long",
                19 => "decimal",
                _ => return Err(EngineError::bad_value(format!("Invalid numeric type code for $convert: {other}"))),
            };
            Ok(name.to_string())
        }
    }
}

fn convert(cx: &Ctx, arg: &Bson) -> Result<Value> {
    let Bson::Document(spec) = arg else {
        return Err(EngineError::location(34441, "$convert expects an object of named arguments but found: ".to_string() + crate::types::type_name(arg)));
    };
    let (Some(input), Some(to)) = (spec.get("input"), spec.get("to")) else {
        return Err(EngineError::location(34442, "Missing 'input' or 'to' parameter to $convert"));
    };
    let to = match cx.eval(to)? {
        Some(Bson::Document(d)) => d.get("type").cloned().unwrap_or(Bson::Null),
        Some(t) => t,
        None => Bson::Null,
    };
    let v = cx.eval(input)?;
    if nullish(&v) {
        return match spec.get("onNull") {
            Some(e) => cx.eval(e),
            None => Ok(Some(Bson::Null)),
        };
    }
    if matches!(to, Bson::Null) {
        return Ok(Some(Bson::Null));
    }
    let target = target_name(&to)?;
    let v = v.unwrap_or(Bson::Null);
    match convert_to(&v, &target) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.code == 241 => match spec.get("onError") {
            Some(on_error) => cx.eval(on_error),
            None => Err(e),
        },
        Err(e) => Err(e),
    }
}
