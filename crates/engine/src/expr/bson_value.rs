//! Operators about a value's BSON representation: `$bsonSize`,
//! `$binarySize`, and the parts of a Timestamp, `$tsSecond` and
//! `$tsIncrement`. Each answers null for a null or missing argument.
use super::{arg_list, arity, nullish, type_name, Ctx, Value};
use crate::{EngineError, Result};
use bson::Bson;

pub(super) fn dispatch(cx: &Ctx, op: &str, arg: &Bson) -> Option<Result<Value>> {
    Some(match op {
        "$bsonSize" | "$binarySize" | "$tsSecond" | "$tsIncrement" => unary(cx, op, arg),
        _ => return None,
    })
}

fn unary(cx: &Ctx, op: &str, arg: &Bson) -> Result<Value> {
    let args = arg_list(arg);
    arity(op, args, 1)?;
    let v = cx.eval(&args[0])?;
    if nullish(&v) {
        return Ok(Some(Bson::Null));
    }
    let size = |n: usize| Bson::Int32(i32::try_from(n).unwrap_or(i32::MAX));
    Ok(Some(match (op, &v) {
        ("$bsonSize", Some(Bson::Document(d))) => {
            let bytes = d.to_vec().map_err(|e| EngineError::bad_value(format!("$bsonSize: {e}")))?;
            size(bytes.len())
        }
        ("$bsonSize", _) => {
            return Err(EngineError::location(31393, format!("$bsonSize requires a document input, found: {}", type_name(&v))))
        }
        ("$binarySize", Some(Bson::String(s))) => size(s.len()),
        ("$binarySize", Some(Bson::Binary(b))) => size(b.bytes.len()),
        ("$binarySize", _) => {
            return Err(EngineError::location(51276, format!("$binarySize requires a string or BinData argument, found: {}", type_name(&v))))
        }
        ("$tsSecond", Some(Bson::Timestamp(t))) => Bson::Int64(i64::from(t.time)),
        ("$tsIncrement", Some(Bson::Timestamp(t))) => Bson::Int64(i64::from(t.increment)),
        _ => {
            let code = if op == "$tsSecond" { 5687301 } else { 5687302 };
            return Err(EngineError::location(code, format!("Argument to {op} must be a timestamp, but is {}", type_name(&v))));
        }
    }))
}
