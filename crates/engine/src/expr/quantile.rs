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
use crate::pipeline::quantile::{answer, check_p, QuantileArgs};
use crate::{EngineError, Result};
use bson::Bson;

pub(super) fn dispatch(cx: &Ctx, op: &str, arg: &Bson) -> Option<Result<Value>> {
    Some(match op {
        "$median" | "$percentile" => quantile(cx, op, arg),
        _ => return None,
    })
}

fn quantile(cx: &Ctx, op: &str, arg: &Bson) -> Result<Value> {
    let Some(args) = QuantileArgs::parse(op, arg)? else {
        return Err(EngineError::invalid_operator(format!("Unrecognized expression '{op}'")));
    };
    let ps = match args.p {
        Some(p) => Some(check_p(&cx.eval_null(p)?)?),
        None => None,
    };
    args.check_method()?;
    let values = match cx.eval(args.input)? {
        Some(Bson::Array(items)) => items,
        Some(single) => vec![single],
        None => Vec::new(),
    };
    let numbers = values.iter().filter_map(Num::from_bson).map(Num::to_f64).filter(|f| !f.is_nan()).collect();
    Ok(Some(answer(numbers, ps.as_deref())))
}
