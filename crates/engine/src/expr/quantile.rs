//! `$median` and `$percentile` as expressions: over the numbers of an array
//! (or a single number), with MongoDB 7.0's only method, "approximate".
//!
//! MongoDB 7.0 answers from a t-digest; while the digest keeps every value
//! apart, which holds for the small arrays an expression sees, its answer is
//! the value of rank `ceil(p * n) - 1` in ascending order (the median of
//! [1, 2, 3, 4] is 2, not 2.5). This is that value, as a double. Non-numbers
//! and NaN are ignored; with no numbers `$median` is null and `$percentile`
//! null for each `p`.
use super::{Ctx, Value};
use crate::num::Num;
use crate::{EngineError, Result};
use bson::Bson;

pub(super) fn dispatch(cx: &Ctx, op: &str, arg: &Bson) -> Option<Result<Value>> {
    Some(match op {
        "$median" | "$percentile" => quantile(cx, op, arg),
        _ => return None,
    })
}

/// `p`: a non-empty array of numbers in [0, 1].
fn parse_p(cx: &Ctx, p: &Bson) -> Result<Vec<f64>> {
    let msg = "The $percentile 'p' field must be an array of numbers from [0.0, 1.0], but found: ";
    let value = cx.eval_null(p)?;
    let Bson::Array(items) = &value else {
        return Err(EngineError::location(7750301, format!("{msg}{value}")));
    };
    if items.is_empty() {
        return Err(EngineError::location(7750301, format!("{msg}[]")));
    }
    items
        .iter()
        .map(|item| {
            let f = Num::from_bson(item).map(Num::to_f64).ok_or_else(|| EngineError::location(7750302, format!("{msg}{item}")))?;
            if !(0.0..=1.0).contains(&f) {
                return Err(EngineError::location(7750303, format!("{msg}{f}")));
            }
            Ok(f)
        })
        .collect()
}

fn quantile(cx: &Ctx, op: &str, arg: &Bson) -> Result<Value> {
    let median = op == "$median";
    let Bson::Document(spec) = arg else {
        let code = if median { 7436100 } else { 7429703 };
        return Err(EngineError::location(code, format!("specification must be an object; found {arg}")));
    };
    let (mut input, mut p, mut method) = (None, None, None);
    for (k, v) in spec {
        match k.as_str() {
            "input" => input = Some(v),
            "p" if !median => p = Some(v),
            "method" => method = Some(v),
            other => return Err(EngineError::location(40415, format!("BSON field '{op}.{other}' is an unknown field."))),
        }
    }
    let missing = |f: &str| EngineError::location(40414, format!("BSON field '{op}.{f}' is missing but a required field"));
    let input = input.ok_or_else(|| missing("input"))?;
    let ps = match (median, p) {
        (true, _) => vec![0.5],
        (false, Some(p)) => parse_p(cx, p)?,
        (false, None) => return Err(missing("p")),
    };
    match method.ok_or_else(|| missing("method"))? {
        Bson::String(m) if m == "approximate" => {}
        Bson::String(_) => return Err(EngineError::bad_value("Currently only 'approximate' can be used as percentile 'method'.")),
        other => {
            return Err(EngineError::type_mismatch(format!(
                "BSON field '{op}.method' is the wrong type '{}', expected type 'string'",
                crate::types::type_name(other)
            )))
        }
    }
    let values = match cx.eval(input)? {
        Some(Bson::Array(items)) => items,
        Some(single) => vec![single],
        None => Vec::new(),
    };
    let mut numbers: Vec<f64> =
        values.iter().filter_map(Num::from_bson).map(Num::to_f64).filter(|f| !f.is_nan()).collect();
    numbers.sort_by(f64::total_cmp);
    let at = |p: f64| -> Bson {
        let n = numbers.len();
        if n == 0 {
            return Bson::Null;
        }
        let rank = ((p * n as f64).ceil() as usize).saturating_sub(1).min(n - 1);
        numbers.get(rank).map_or(Bson::Null, |f| Bson::Double(*f))
    };
    Ok(Some(if median { at(0.5) } else { Bson::Array(ps.iter().map(|p| at(*p)).collect()) }))
}
