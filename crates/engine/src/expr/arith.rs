//! Arithmetic operators. A null or missing operand makes the result null;
//! the numeric type of the result follows [`crate::num`].
use super::{arg_list, arity, arity_range, nullish, type_name, Ctx, Value};
use crate::num::{self, Num};
use crate::{EngineError, Result};
use bson::{Bson, DateTime};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};

pub(super) fn dispatch(cx: &Ctx, op: &str, arg: &Bson) -> Option<Result<Value>> {
    Some(match op {
        "$add" => add(cx, arg),
        "$subtract" => subtract(cx, arg),
        "$multiply" => multiply(cx, arg),
        "$divide" => binary(cx, op, arg, |a, b| {
            num::div(a, b).ok_or_else(|| EngineError::location(2, "can't $divide by zero"))
        }),
        "$mod" => binary(cx, op, arg, |a, b| {
            num::rem(a, b).ok_or_else(|| EngineError::location(16610, "can't $mod by zero"))
        }),
        "$pow" => binary(cx, op, arg, pow),
        "$log" => binary(cx, op, arg, |a, b| Ok(Num::Double(a.to_f64().ln() / b.to_f64().ln()))),
        "$abs" => unary(cx, op, arg, |n| {
            Ok(match n {
                Num::Int(i) => i.checked_abs().map(Num::Int).unwrap_or(Num::Long(-i64::from(i))),
                Num::Long(i) => i.checked_abs().map(Num::Long).unwrap_or(Num::Double((i as f64).abs())),
                Num::Double(f) => Num::Double(f.abs()),
                Num::Dec(d) => Num::Dec(d.abs()),
            })
        }),
        "$ceil" => unary(cx, op, arg, |n| Ok(map_float(n, f64::ceil, |d| d.ceil()))),
        "$floor" => unary(cx, op, arg, |n| Ok(map_float(n, f64::floor, |d| d.floor()))),
        "$sqrt" => unary(cx, op, arg, |n| {
            if n.to_f64() < 0.0 {
                return Err(EngineError::location(28714, "$sqrt's argument must be greater than or equal to 0"));
            }
            Ok(Num::Double(n.to_f64().sqrt()))
        }),
        "$exp" => unary(cx, op, arg, |n| Ok(Num::Double(n.to_f64().exp()))),
        "$ln" => unary(cx, op, arg, |n| Ok(Num::Double(n.to_f64().ln()))),
        "$log10" => unary(cx, op, arg, |n| Ok(Num::Double(n.to_f64().log10()))),
        "$sin" => trig(cx, op, arg, f64::sin, None),
        "$cos" => trig(cx, op, arg, f64::cos, None),
        "$tan" => trig(cx, op, arg, f64::tan, None),
        "$asin" => trig(cx, op, arg, f64::asin, Some((-1.0, 1.0))),
        "$acos" => trig(cx, op, arg, f64::acos, Some((-1.0, 1.0))),
        "$atan" => trig(cx, op, arg, f64::atan, None),
        "$sinh" => trig(cx, op, arg, f64::sinh, None),
        "$cosh" => trig(cx, op, arg, f64::cosh, None),
        "$tanh" => trig(cx, op, arg, f64::tanh, None),
        "$asinh" => trig(cx, op, arg, f64::asinh, None),
        "$acosh" => trig(cx, op, arg, f64::acosh, Some((1.0, f64::INFINITY))),
        "$atanh" => trig(cx, op, arg, f64::atanh, Some((-1.0, 1.0))),
        "$degreesToRadians" => trig(cx, op, arg, f64::to_radians, None),
        "$radiansToDegrees" => trig(cx, op, arg, f64::to_degrees, None),
        "$atan2" => binary(cx, op, arg, |a, b| Ok(float_like(a, b, a.to_f64().atan2(b.to_f64())))),
        "$rand" => rand(arg),
        "$bitAnd" => bits(cx, op, arg, |a, b| a & b, -1),
        "$bitOr" => bits(cx, op, arg, |a, b| a | b, 0),
        "$bitXor" => bits(cx, op, arg, |a, b| a ^ b, 0),
        "$bitNot" => bit_not(cx, arg),
        "$round" => round(cx, op, arg, RoundingStrategy::MidpointNearestEven),
        "$trunc" => round(cx, op, arg, RoundingStrategy::ToZero),
        _ => return None,
    })
}

fn non_numeric(op: &str, v: &Value) -> EngineError {
    EngineError::location(16554, format!("{op} only supports numeric types, not {}", type_name(v)))
}

fn number(op: &str, v: &Value) -> Result<Num> {
    v.as_ref().and_then(Num::from_bson).ok_or_else(|| non_numeric(op, v))
}

fn map_float(n: Num, f: fn(f64) -> f64, d: fn(&Decimal) -> Decimal) -> Num {
    match n {
        Num::Double(x) => Num::Double(f(x)),
        Num::Dec(x) => Num::Dec(d(&x)),
        other => other,
    }
}

fn unary(cx: &Ctx, op: &str, arg: &Bson, f: impl Fn(Num) -> Result<Num>) -> Result<Value> {
    let args = arg_list(arg);
    arity(op, args, 1)?;
    let v = cx.eval(&args[0])?;
    if nullish(&v) {
        return Ok(Some(Bson::Null));
    }
    Ok(Some(f(number(op, &v)?)?.to_bson()))
}

fn binary(cx: &Ctx, op: &str, arg: &Bson, f: impl Fn(Num, Num) -> Result<Num>) -> Result<Value> {
    let args = arg_list(arg);
    arity(op, args, 2)?;
    let a = cx.eval(&args[0])?;
    let b = cx.eval(&args[1])?;
    if nullish(&a) || nullish(&b) {
        return Ok(Some(Bson::Null));
    }
    Ok(Some(f(number(op, &a)?, number(op, &b)?)?.to_bson()))
}

/// A double result, or a decimal one when an operand is a decimal (MongoDB's
/// rule for the trigonometric operators).
fn float_like(a: Num, b: Num, r: f64) -> Num {
    if matches!(a, Num::Dec(_)) || matches!(b, Num::Dec(_)) {
        if let Ok(d) = Decimal::try_from(r) {
            return Num::Dec(d);
        }
    }
    Num::Double(r)
}

/// A trigonometric operator; `domain` is the closed input range, outside
/// which MongoDB raises an error.
fn trig(cx: &Ctx, op: &str, arg: &Bson, f: fn(f64) -> f64, domain: Option<(f64, f64)>) -> Result<Value> {
    unary(cx, op, arg, |n| {
        let x = n.to_f64();
        if let Some((lo, hi)) = domain {
            if !(lo..=hi).contains(&x) && !x.is_nan() {
                return Err(EngineError::location(
                    50989,
                    format!("cannot apply {op} to {x}, value must be in [{lo}, {hi}]"),
                ));
            }
        }
        Ok(float_like(n, n, f(x)))
    })
}

/// `$rand`: a double in [0, 1), from the standard library's randomly keyed
/// hasher over a counter and the clock.
fn rand(arg: &Bson) -> Result<Value> {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    // mongod takes `{}` and also `[]` (an empty argument list).
    if !matches!(arg, Bson::Document(d) if d.is_empty()) && !matches!(arg, Bson::Array(a) if a.is_empty()) {
        return Err(EngineError::location(10065, "$rand takes an empty object as its argument"));
    }
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    h.write_u128(nanos);
    Ok(Some(Bson::Double((h.finish() >> 11) as f64 / (1u64 << 53) as f64)))
}

/// An integer operand of a bitwise operator: (value, is it a long).
fn bit_operand(op: &str, v: &Value) -> Result<(i64, bool)> {
    match v {
        Some(Bson::Int32(i)) => Ok((i64::from(*i), false)),
        Some(Bson::Int64(i)) => Ok((*i, true)),
        _ => Err(EngineError::location(28834, format!("{op} only supports int and long, not: {}", type_name(v)))),
    }
}

fn bits_result(v: i64, long: bool) -> Bson {
    match (long, i32::try_from(v)) {
        (false, Ok(i)) => Bson::Int32(i),
        _ => Bson::Int64(v),
    }
}

fn bits(cx: &Ctx, op: &str, arg: &Bson, f: fn(i64, i64) -> i64, identity: i64) -> Result<Value> {
    let mut acc = identity;
    let mut long = false;
    let mut null = false;
    for a in arg_list(arg) {
        let v = cx.eval(a)?;
        if nullish(&v) {
            null = true;
            continue;
        }
        let (x, l) = bit_operand(op, &v)?;
        acc = f(acc, x);
        long |= l;
    }
    Ok(Some(if null { Bson::Null } else { bits_result(acc, long) }))
}

fn bit_not(cx: &Ctx, arg: &Bson) -> Result<Value> {
    let args = arg_list(arg);
    arity("$bitNot", args, 1)?;
    let v = cx.eval(&args[0])?;
    if nullish(&v) {
        return Ok(Some(Bson::Null));
    }
    let (x, long) = bit_operand("$bitNot", &v)?;
    Ok(Some(bits_result(!x, long)))
}

fn pow(a: Num, b: Num) -> Result<Num> {
    if a.is_zero() && b.to_f64() < 0.0 {
        return Err(EngineError::location(28764, "$pow cannot take a base of 0 and a negative exponent"));
    }
    if let (Num::Int(_) | Num::Long(_), Num::Int(_) | Num::Long(_)) = (a, b) {
        let base = a.to_i64_exact().unwrap_or(0);
        let exp = b.to_i64_exact().unwrap_or(0);
        if exp >= 0 {
            if let Some(r) = u32::try_from(exp).ok().and_then(|e| base.checked_pow(e)) {
                let both_int = matches!((a, b), (Num::Int(_), Num::Int(_)));
                return Ok(match i32::try_from(r) {
                    Ok(i) if both_int => Num::Int(i),
                    _ => Num::Long(r),
                });
            }
        }
    }
    if let (Num::Dec(x), _) | (_, Num::Dec(x)) = (a, b) {
        let _ = x;
        let r = a.to_f64().powf(b.to_f64());
        return Ok(Num::Dec(Decimal::try_from(r).unwrap_or_default()));
    }
    Ok(Num::Double(a.to_f64().powf(b.to_f64())))
}

fn round(cx: &Ctx, op: &str, arg: &Bson, strategy: RoundingStrategy) -> Result<Value> {
    let args = arg_list(arg);
    arity_range(op, args, 1, 2)?;
    let v = cx.eval(&args[0])?;
    let place = match args.get(1) {
        Some(p) => {
            let pv = cx.eval(p)?;
            if nullish(&pv) {
                return Ok(Some(Bson::Null));
            }
            let place = number(op, &pv)?.to_i64_exact().unwrap_or(0);
            if !(-20..=100).contains(&place) {
                return Err(EngineError::bad_value(format!("invalid {op} place value: {place}")));
            }
            place
        }
        None => 0,
    };
    if nullish(&v) {
        return Ok(Some(Bson::Null));
    }
    let n = number(op, &v)?;
    let rounded = match n {
        Num::Int(_) | Num::Long(_) if place >= 0 => n,
        Num::Double(f) if !f.is_finite() => n,
        _ => {
            let Some(d) = n.to_dec() else { return Ok(Some(n.to_bson())) };
            let r = if place >= 0 {
                d.round_dp_with_strategy(place as u32, strategy)
            } else {
                let scale = Decimal::from(10_i64.pow((-place).min(18) as u32));
                (d / scale).round_dp_with_strategy(0, strategy).checked_mul(scale).unwrap_or(d)
            };
            match n {
                Num::Int(_) => r.to_i32().map(Num::Int).unwrap_or(Num::Long(r.to_i64().unwrap_or(0))),
                Num::Long(_) => Num::Long(r.to_i64().unwrap_or(0)),
                Num::Double(_) => Num::Double(r.to_f64().unwrap_or(0.0)),
                Num::Dec(_) => Num::Dec(r),
            }
        }
    };
    Ok(Some(rounded.to_bson()))
}

fn add(cx: &Ctx, arg: &Bson) -> Result<Value> {
    let mut total = Num::Int(0);
    let mut date: Option<i64> = None;
    let mut null = false;
    for a in arg_list(arg) {
        let v = cx.eval(a)?;
        match &v {
            None | Some(Bson::Null) | Some(Bson::Undefined) => null = true,
            Some(Bson::DateTime(d)) => {
                if date.is_some() {
                    return Err(EngineError::location(16612, "only one date allowed in an $add expression"));
                }
                date = Some(d.timestamp_millis());
            }
            Some(b) => match Num::from_bson(b) {
                Some(n) => total = num::add(total, n),
                None => {
                    return Err(EngineError::location(
                        16554,
                        format!("$add only supports numeric or date types, not {}", type_name(&v)),
                    ))
                }
            },
        }
    }
    if null {
        return Ok(Some(Bson::Null));
    }
    Ok(Some(match date {
        Some(ms) => Bson::DateTime(DateTime::from_millis(ms.saturating_add(total.to_f64().round() as i64))),
        None => total.to_bson(),
    }))
}

fn subtract(cx: &Ctx, arg: &Bson) -> Result<Value> {
    let args = arg_list(arg);
    arity("$subtract", args, 2)?;
    let a = cx.eval(&args[0])?;
    let b = cx.eval(&args[1])?;
    if nullish(&a) || nullish(&b) {
        return Ok(Some(Bson::Null));
    }
    Ok(Some(match (&a, &b) {
        (Some(Bson::DateTime(x)), Some(Bson::DateTime(y))) => {
            Bson::Int64(x.timestamp_millis().saturating_sub(y.timestamp_millis()))
        }
        (Some(Bson::DateTime(x)), Some(n)) => match Num::from_bson(n) {
            Some(n) => Bson::DateTime(DateTime::from_millis(x.timestamp_millis().saturating_sub(n.to_f64().round() as i64))),
            None => return Err(non_subtractable(&a, &b)),
        },
        (Some(x), Some(y)) => match (Num::from_bson(x), Num::from_bson(y)) {
            (Some(x), Some(y)) => num::sub(x, y).to_bson(),
            _ => return Err(non_subtractable(&a, &b)),
        },
        _ => Bson::Null,
    }))
}

fn non_subtractable(a: &Value, b: &Value) -> EngineError {
    EngineError::location(
        16556,
        format!("cant $subtract a {} from a {}", type_name(b), type_name(a)),
    )
}

fn multiply(cx: &Ctx, arg: &Bson) -> Result<Value> {
    let mut total = Num::Int(1);
    let mut null = false;
    for a in arg_list(arg) {
        let v = cx.eval(a)?;
        if nullish(&v) {
            null = true;
            continue;
        }
        total = num::mul(total, number("$multiply", &v)?);
    }
    Ok(Some(if null { Bson::Null } else { total.to_bson() }))
}
