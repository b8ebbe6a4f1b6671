//! Comparison, boolean and conditional operators, and object helpers.
//!
//! Aggregation comparisons are not type-bracketed (unlike query operators):
//! they use the full BSON order, with "missing" sorting below null, so
//! `{$eq: ["$nope", null]}` is false while `{$ifNull: ...}` sees both as null.
use super::{arg_list, arity, nullish, truthy_value, Ctx, Value};
use crate::compare::cmp_bson;
use crate::{EngineError, Result};
use bson::{Bson, Document};
use std::cmp::Ordering;

pub(super) fn dispatch(cx: &Ctx, op: &str, arg: &Bson) -> Option<Result<Value>> {
    Some(match op {
        "$eq" | "$ne" | "$gt" | "$gte" | "$lt" | "$lte" | "$cmp" => compare(cx, op, arg),
        "$and" => and_or(cx, arg, true),
        "$or" => and_or(cx, arg, false),
        "$not" => not(cx, arg),
        "$cond" => cond(cx, arg),
        "$ifNull" => if_null(cx, arg),
        "$switch" => switch(cx, arg),
        "$mergeObjects" => merge_objects(cx, arg),
        "$getField" => get_field(cx, arg),
        _ => return None,
    })
}

/// Orders two evaluated values; missing is below every value, null included.
pub(crate) fn cmp_values(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(x), Some(y)) => cmp_bson(x, y),
    }
}

fn compare(cx: &Ctx, op: &str, arg: &Bson) -> Result<Value> {
    let args = arg_list(arg);
    arity(op, args, 2)?;
    let a = cx.eval(&args[0])?;
    let b = cx.eval(&args[1])?;
    Ok(Some(compared(op, &a, &b)))
}

/// What comparison operator `op` (`$eq`, ..., `$cmp`) answers for `a` and `b`.
pub(crate) fn compared(op: &str, a: &Value, b: &Value) -> Bson {
    let o = cmp_values(a, b);
    match op {
        "$cmp" => Bson::Int32(match o {
            Ordering::Less => -1,
            Ordering::Equal => 0,
            Ordering::Greater => 1,
        }),
        "$eq" => Bson::Boolean(o == Ordering::Equal),
        "$ne" => Bson::Boolean(o != Ordering::Equal),
        "$gt" => Bson::Boolean(o == Ordering::Greater),
        "$gte" => Bson::Boolean(o != Ordering::Less),
        "$lt" => Bson::Boolean(o == Ordering::Less),
        _ => Bson::Boolean(o != Ordering::Greater),
    }
}

fn and_or(cx: &Ctx, arg: &Bson, is_and: bool) -> Result<Value> {
    for a in arg_list(arg) {
        let t = truthy_value(&cx.eval(a)?);
        if is_and && !t {
            return Ok(Some(Bson::Boolean(false)));
        }
        if !is_and && t {
            return Ok(Some(Bson::Boolean(true)));
        }
    }
    Ok(Some(Bson::Boolean(is_and)))
}

fn not(cx: &Ctx, arg: &Bson) -> Result<Value> {
    let args = arg_list(arg);
    arity("$not", args, 1)?;
    Ok(Some(Bson::Boolean(!truthy_value(&cx.eval(&args[0])?))))
}

fn cond(cx: &Ctx, arg: &Bson) -> Result<Value> {
    let (i, t, e) = match arg {
        Bson::Array(a) if a.len() == 3 => (&a[0], &a[1], &a[2]),
        Bson::Document(d) => {
            for k in d.keys() {
                if !matches!(k.as_str(), "if" | "then" | "else") {
                    return Err(EngineError::location(17083, format!("Unrecognized parameter to $cond: {k}")));
                }
            }
            match (d.get("if"), d.get("then"), d.get("else")) {
                (Some(i), Some(t), Some(e)) => (i, t, e),
                (None, _, _) => return Err(EngineError::location(17080, "Missing 'if' parameter to $cond")),
                (_, None, _) => return Err(EngineError::location(17081, "Missing 'then' parameter to $cond")),
                _ => return Err(EngineError::location(17082, "Missing 'else' parameter to $cond")),
            }
        }
        _ => {
            return Err(EngineError::location(16020, "Expression $cond takes exactly 3 arguments."));
        }
    };
    if truthy_value(&cx.eval(i)?) {
        cx.eval(t)
    } else {
        cx.eval(e)
    }
}

fn if_null(cx: &Ctx, arg: &Bson) -> Result<Value> {
    let args = arg_list(arg);
    if args.len() < 2 {
        return Err(EngineError::location(1257300, "$ifNull needs at least two arguments"));
    }
    let (last, init) = args.split_last().ok_or_else(|| EngineError::bad_value("$ifNull needs arguments"))?;
    for a in init {
        let v = cx.eval(a)?;
        if !nullish(&v) {
            return Ok(v);
        }
    }
    cx.eval(last)
}

fn switch(cx: &Ctx, arg: &Bson) -> Result<Value> {
    let Bson::Document(spec) = arg else {
        return Err(EngineError::location(40060, "$switch requires an object as an argument"));
    };
    let Some(Bson::Array(branches)) = spec.get("branches") else {
        return Err(EngineError::location(40061, "$switch expected an array for 'branches'"));
    };
    for b in branches {
        let Bson::Document(b) = b else {
            return Err(EngineError::location(40062, "$switch expected each branch to be an object"));
        };
        let (Some(case), Some(then)) = (b.get("case"), b.get("then")) else {
            return Err(EngineError::location(40064, "$switch requires each branch have a 'case' and 'then' expression"));
        };
        if truthy_value(&cx.eval(case)?) {
            return cx.eval(then);
        }
    }
    match spec.get("default") {
        Some(d) => cx.eval(d),
        None => Err(EngineError::location(
            40066,
            "$switch could not find a matching branch for an input, and no default was specified.",
        )),
    }
}

/// One `$mergeObjects` input (expression or accumulator): a document's fields
/// overwrite `out`'s; null and missing are skipped; anything else is an error.
pub(crate) fn merge_into(out: &mut Document, value: Option<Bson>) -> Result<()> {
    match value {
        None | Some(Bson::Null) | Some(Bson::Undefined) => Ok(()),
        Some(Bson::Document(d)) => {
            for (k, v) in d {
                out.insert(k, v);
            }
            Ok(())
        }
        Some(other) => Err(EngineError::location(
            40400,
            format!("$mergeObjects requires object inputs, but input {other} is of type {}", crate::types::type_name(&other)),
        )),
    }
}

fn merge_objects(cx: &Ctx, arg: &Bson) -> Result<Value> {
    let mut out = Document::new();
    for a in arg_list(arg) {
        merge_into(&mut out, cx.eval(a)?)?;
    }
    Ok(Some(Bson::Document(out)))
}

fn get_field(cx: &Ctx, arg: &Bson) -> Result<Value> {
    let (field, input) = match arg {
        Bson::Document(d) if d.contains_key("field") => {
            (d.get("field").cloned().unwrap_or(Bson::Null), d.get("input").cloned().unwrap_or(Bson::String("$$CURRENT".into())))
        }
        other => (other.clone(), Bson::String("$$CURRENT".into())),
    };
    let Some(Bson::String(name)) = cx.eval(&field)? else {
        return Err(EngineError::location(3041704, "$getField requires 'field' to evaluate to type String"));
    };
    // As mongod answers: a null input gives null; a missing input, or one
    // that is not a document (a number, a string, an array), gives missing.
    match cx.eval(&input)? {
        Some(Bson::Document(d)) => Ok(d.get(&name).cloned()),
        Some(Bson::Null | Bson::Undefined) => Ok(Some(Bson::Null)),
        _ => Ok(None),
    }
}
