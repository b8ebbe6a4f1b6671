//! `$percentile` and `$median` (accumulators and window functions; MongoDB
//! 7.0 knows only `method: "approximate"`).
//!
//! MongoDB 7.0 feeds the numbers to a t-digest. While the digest keeps every
//! value as its own centroid, which is the case for small inputs, its answer
//! is the input value of rank `ceil(p * n) - 1` in ascending order (p = 0 is
//! the smallest, p = 1 the largest): the median of [1, 2, 3, 4] is 2, not 2.5.
//! This engine always answers that exact value; on large inputs MongoDB's
//! digest merges values and interpolates, so its answer may differ slightly.
//! Non-numeric inputs and NaN are ignored; answers are doubles; with no
//! numbers `$median` is null and `$percentile` an array of nulls.
use crate::expr::{self, Vars};
use crate::num::Num;
use crate::{EngineError, Result};
use bson::{Bson, Document};

#[derive(Debug, Clone)]
pub(super) struct QuantileSpec {
    input: Bson,
    /// The requested percentiles; `None` for `$median`.
    ps: Option<Vec<f64>>,
}

impl QuantileSpec {
    /// Parses `{op: arg}` when `op` is `$percentile` or `$median`.
    pub(super) fn parse(op: &str, arg: &Bson) -> Result<Option<QuantileSpec>> {
        let median = match op {
            "$median" => true,
            "$percentile" => false,
            _ => return Ok(None),
        };
        let Bson::Document(d) = arg else {
            let code = if median { 7436100 } else { 7429703 };
            return Err(EngineError::location(code, format!("specification must be an object; found {arg}")));
        };
        let (mut input, mut p, mut method) = (None, None, None);
        for (k, v) in d {
            match k.as_str() {
                "input" => input = Some(v.clone()),
                "p" if !median => p = Some(v),
                "method" => method = Some(v),
                other => {
                    return Err(EngineError::location(40415, format!("BSON field '{op}.{other}' is an unknown field.")));
                }
            }
        }
        let missing = |f: &str| EngineError::location(40414, format!("BSON field '{op}.{f}' is missing but a required field"));
        let input = input.ok_or_else(|| missing("input"))?;
        let ps = if median { None } else { Some(parse_p(p.ok_or_else(|| missing("p"))?)?) };
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
        Ok(Some(QuantileSpec { input, ps }))
    }

    /// The number one document contributes, if any.
    pub(super) fn sample(&self, doc: &Document, vars: &Vars) -> Result<Option<f64>> {
        let v = expr::eval_value(&self.input, doc, vars)?;
        Ok(v.as_ref().and_then(Num::from_bson).map(Num::to_f64).filter(|f| !f.is_nan()))
    }

    /// The answer over the collected numbers.
    pub(super) fn finish(&self, mut samples: Vec<f64>) -> Bson {
        samples.sort_by(f64::total_cmp);
        let at = |p: f64| -> Bson {
            if samples.is_empty() {
                return Bson::Null;
            }
            let n = samples.len();
            let rank = if p >= 1.0 {
                n - 1
            } else {
                // ceil(p * n) - 1, clamped to the data.
                ((p * n as f64).ceil() as usize).saturating_sub(1).min(n - 1)
            };
            Bson::Double(samples[rank])
        };
        match &self.ps {
            None => at(0.5),
            Some(ps) => Bson::Array(ps.iter().map(|p| at(*p)).collect()),
        }
    }
}

/// `p` must be a constant array of numbers in [0, 1].
fn parse_p(p: &Bson) -> Result<Vec<f64>> {
    if refers_to_fields(p) {
        return Err(EngineError::location(
            7750300,
            format!("The $percentile 'p' field must be an array of constant values, but found value: {p}."),
        ));
    }
    let msg = "The $percentile 'p' field must be an array of numbers from [0.0, 1.0], but found: ";
    let value = expr::eval(p, &Document::new(), &Vars::new())?;
    let Bson::Array(items) = value else {
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

/// Whether an expression reads a field path (so is not a constant).
fn refers_to_fields(e: &Bson) -> bool {
    match e {
        Bson::String(s) => s.starts_with('$') && !s.starts_with("$$"),
        Bson::Array(items) => items.iter().any(refers_to_fields),
        Bson::Document(d) => !d.contains_key("$literal") && d.values().any(refers_to_fields),
        _ => false,
    }
}
