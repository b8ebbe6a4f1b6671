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

/// The fields of a `$median`/`$percentile` specification, checked for
/// unknown and missing names; shared with the expression forms.
pub(crate) struct QuantileArgs<'a> {
    pub median: bool,
    pub input: &'a Bson,
    /// `p`, present for `$percentile` (`None` for `$median`).
    pub p: Option<&'a Bson>,
    method: Option<&'a Bson>,
}

impl<'a> QuantileArgs<'a> {
    /// Reads `{op: arg}` when `op` is `$percentile` or `$median`.
    pub(crate) fn parse(op: &str, arg: &'a Bson) -> Result<Option<QuantileArgs<'a>>> {
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
                "input" => input = Some(v),
                "p" if !median => p = Some(v),
                "method" => method = Some(v),
                other => {
                    return Err(EngineError::location(40415, format!("BSON field '{op}.{other}' is an unknown field.")));
                }
            }
        }
        let missing = |f: &str| EngineError::location(40414, format!("BSON field '{op}.{f}' is missing but a required field"));
        let input = input.ok_or_else(|| missing("input"))?;
        if !median && p.is_none() {
            return Err(missing("p"));
        }
        Ok(Some(QuantileArgs { median, input, p, method }))
    }

    /// `method` is required, and MongoDB 7.0 knows only "approximate".
    /// Checked after `p`, whose errors are reported first.
    pub(crate) fn check_method(&self) -> Result<()> {
        let op = if self.median { "$median" } else { "$percentile" };
        let Some(method) = self.method else {
            return Err(EngineError::location(40414, format!("BSON field '{op}.method' is missing but a required field")));
        };
        match method {
            Bson::String(m) if m == "approximate" => Ok(()),
            Bson::String(_) => Err(EngineError::bad_value("Currently only 'approximate' can be used as percentile 'method'.")),
            other => {
                Err(EngineError::type_mismatch(format!(
                    "BSON field '{op}.method' is the wrong type '{}', expected type 'string'",
                    crate::types::type_name(other)
                )))
            }
        }
    }
}

/// `p`'s value: a non-empty array of numbers in [0, 1].
pub(crate) fn check_p(value: &Bson) -> Result<Vec<f64>> {
    let msg = "The $percentile 'p' field must be an array of numbers from [0.0, 1.0], but found: ";
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

/// The answer over `samples` (numbers, NaN already left out): the value of
/// rank `ceil(p * n) - 1` as a double, null with no samples; `$median`
/// (`ps` None) answers one value, `$percentile` an array.
pub(crate) fn answer(mut samples: Vec<f64>, ps: Option<&[f64]>) -> Bson {
    samples.sort_by(f64::total_cmp);
    let at = |p: f64| -> Bson {
        let n = samples.len();
        if n == 0 {
            return Bson::Null;
        }
        // ceil(p * n) - 1, clamped to the data.
        let rank = ((p * n as f64).ceil() as usize).saturating_sub(1).min(n - 1);
        Bson::Double(samples[rank])
    };
    match ps {
        None => at(0.5),
        Some(ps) => Bson::Array(ps.iter().map(|p| at(*p)).collect()),
    }
}

impl QuantileSpec {
    /// Parses `{op: arg}` when `op` is `$percentile` or `$median`.
    pub(super) fn parse(op: &str, arg: &Bson) -> Result<Option<QuantileSpec>> {
        let Some(args) = QuantileArgs::parse(op, arg)? else { return Ok(None) };
        let ps = match args.p {
            Some(p) => Some(parse_p(p)?),
            None => None,
        };
        args.check_method()?;
        Ok(Some(QuantileSpec { input: args.input.clone(), ps }))
    }

    /// The number one document contributes, if any.
    pub(super) fn sample(&self, doc: &Document, vars: &Vars) -> Result<Option<f64>> {
        let v = expr::eval_value(&self.input, doc, vars)?;
        Ok(v.as_ref().and_then(Num::from_bson).map(Num::to_f64).filter(|f| !f.is_nan()))
    }

    /// The answer over the collected numbers.
    pub(super) fn finish(&self, samples: Vec<f64>) -> Bson {
        answer(samples, self.ps.as_deref())
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
    check_p(&expr::eval(p, &Document::new(), &Vars::new())?)
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
