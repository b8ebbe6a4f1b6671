//! `$setWindowFields`: window functions over partitions of the input.
//!
//! Documents are grouped by `partitionBy` (an expression; missing counts as
//! null, an array is refused), each partition is sorted by `sortBy`, and every
//! `output` field is computed from a window of neighbouring documents. Output
//! documents come grouped by partition (partitions in ascending key order) and
//! sorted by `sortBy` within it, as MongoDB returns them.
//!
//! Windows, and how SQL frames map onto them (the compiler relies on this):
//! - no `window` (or `window: {}`): the whole partition, whatever `sortBy` is.
//!   SQL's default frame with ORDER BY (RANGE UNBOUNDED PRECEDING .. CURRENT
//!   ROW) must therefore be spelled out as `range: ["unbounded", 0]`.
//! - `documents: [lo, hi]`: positions relative to the current document
//!   (negative = before, "current" = 0, "unbounded"); SQL ROWS frames.
//!   Anything but `["unbounded", "unbounded"]` needs a `sortBy`.
//! - `range: [lo, hi]` (optionally with `unit` for dates): sortBy values
//!   within `[v + lo, v + hi]` of the current document's value `v`; needs a
//!   single-field `sortBy` whose values are numbers (dates with `unit`). A
//!   numeric 0 includes the current document's peers (SQL RANGE CURRENT ROW);
//!   the keyword "current" stops at the current document itself.
//! - `$rank`, `$denseRank`, `$documentNumber` take `{}`, no window, and a
//!   `sortBy` with exactly one field (MongoDB's restriction); `$shift`
//!   (`{output, by, default}`) needs a `sortBy` and takes no window: SQL
//!   LAG(x, n, d) is `by: -n`, LEAD is `by: n`.
//! - Functions over the whole ordered partition or a window, each in its own
//!   module: `$derivative`/`$integral` (calculus.rs), `$locf`/`$linearFill`
//!   (gaps.rs), `$expMovingAvg` and covariances (stats.rs), the n-ary
//!   accumulators (../nary.rs) and `$median`/`$percentile` (../quantile.rs).
use super::group::{self, Kind};
use super::nary::NarySpec;
use super::quantile::QuantileSpec;
use crate::compare::cmp_bson;
use crate::expr::{self, Vars};
use crate::num::Num;
use crate::sort::SortSpec;
use crate::{path, EngineError, Result};
use bson::{Bson, Document};
use std::cmp::Ordering;

mod calculus;
mod gaps;
mod stats;

fn failed_to_parse(message: impl Into<String>) -> EngineError {
    EngineError::new(9, "FailedToParse", message)
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Bound<T> {
    Unbounded,
    Current,
    At(T),
}

#[derive(Debug, Clone)]
enum Window {
    Documents(Bound<i64>, Bound<i64>),
    /// Numeric offsets; with a unit they are whole counts of that unit.
    Range(Bound<f64>, Bound<f64>, Option<String>),
}

#[derive(Debug, Clone)]
enum Func {
    Acc(Kind, Bson),
    Rank,
    DenseRank,
    DocumentNumber,
    Shift { output: Bson, by: i64, default: Bson },
    Nary(NarySpec),
    Quantile(QuantileSpec),
    ExpMovingAvg { input: Bson, smoothing: stats::Smoothing },
    Derivative { input: Bson, unit_ms: Option<i64> },
    Integral { input: Bson, unit_ms: Option<i64> },
    Covariance { args: Bson, sample: bool },
    Locf(Bson),
    LinearFill(Bson),
}

#[derive(Debug, Clone)]
struct OutputField {
    path: String,
    func: Func,
    /// `None` is the whole partition.
    window: Option<Window>,
}

const TIME_UNITS: [&str; 9] = ["year", "quarter", "month", "week", "day", "hour", "minute", "second", "millisecond"];

fn constant(v: &Bson) -> Result<Bson> {
    expr::eval(v, &Document::new(), &Vars::new())
}

fn parse_bound<T>(v: &Bson, number: impl Fn(&Bson) -> Result<T>) -> Result<Bound<T>> {
    match v {
        Bson::String(s) if s == "unbounded" => Ok(Bound::Unbounded),
        Bson::String(s) if s == "current" => Ok(Bound::Current),
        Bson::String(_) => Err(failed_to_parse("Window bounds must be 'unbounded', 'current', or a number.")),
        other => number(&constant(other)?).map(Bound::At),
    }
}

fn check_forward<T: PartialOrd + Copy + std::fmt::Display + Default>(lo: Bound<T>, hi: Bound<T>) -> Result<()> {
    let normal = |b: Bound<T>| match b {
        Bound::Current => Some(T::default()),
        Bound::At(v) => Some(v),
        Bound::Unbounded => None,
    };
    if let (Some(l), Some(h)) = (normal(lo), normal(hi)) {
        if l > h {
            return Err(EngineError::location(5339900, format!("Lower bound must not exceed upper bound: [{l}, {h}]")));
        }
    }
    Ok(())
}

fn integral(v: &Bson) -> Option<i64> {
    Num::from_bson(v).and_then(Num::to_i64_exact)
}

fn parse_window(spec: &Bson, sort: Option<&SortSpec>) -> Result<Option<Window>> {
    let Bson::Document(w) = spec else {
        return Err(failed_to_parse("'window' field must be an object"));
    };
    let (documents, range, unit) = (w.get("documents"), w.get("range"), w.get("unit"));
    if documents.is_some() && range.is_some() {
        return Err(failed_to_parse("Window bounds can specify either 'documents' or 'range', not both."));
    }
    if range.is_none() && unit.is_some() {
        return Err(failed_to_parse("Window bounds can only specify 'unit' with range-based bounds."));
    }
    let pair = |e: &Bson| -> Result<(Bson, Bson)> {
        match e {
            Bson::Array(a) if a.len() == 2 => Ok((a[0].clone(), a[1].clone())),
            _ => Err(failed_to_parse(format!("Window bounds must be a 2-element array: {e}"))),
        }
    };
    if let Some(d) = documents {
        if w.len() != 1 {
            return Err(failed_to_parse("'window' field that specifies documents cannot have other fields"));
        }
        let (l, h) = pair(d)?;
        let int = |v: &Bson| integral(v).ok_or_else(|| failed_to_parse("Numeric document-based bounds must be an integer"));
        let (lo, hi) = (parse_bound(&l, int)?, parse_bound(&h, int)?);
        check_forward(lo, hi)?;
        let unbounded = lo == Bound::Unbounded && hi == Bound::Unbounded;
        if !unbounded && sort.is_none() {
            return Err(EngineError::location(5339901, "Document-based bounds require a sortBy"));
        }
        return Ok(Some(Window::Documents(lo, hi)));
    }
    let Some(r) = range else {
        if !w.is_empty() {
            return Err(failed_to_parse(
                "'window' field can only contain 'documents' as the only argument or 'range' with an optional 'unit' field",
            ));
        }
        return Ok(None);
    };
    let (l, h) = pair(r)?;
    let window = match unit {
        Some(u) => {
            if w.len() != 2 {
                return Err(failed_to_parse("'window' field that specifies unit cannot have other fields besides 'range'"));
            }
            let Bson::String(u) = u else {
                return Err(failed_to_parse("'unit' must be a string"));
            };
            if !TIME_UNITS.contains(&u.as_str()) {
                return Err(failed_to_parse(format!("unknown time unit value: {u}")));
            }
            let int = |v: &Bson| {
                integral(v)
                    .map(|i| i as f64)
                    .ok_or_else(|| failed_to_parse("With 'unit', range-based bounds must be an integer"))
            };
            let (lo, hi) = (parse_bound(&l, int)?, parse_bound(&h, int)?);
            check_forward(lo, hi)?;
            Window::Range(lo, hi, Some(u.clone()))
        }
        None => {
            if w.len() != 1 {
                return Err(failed_to_parse("'window' field that specifies range cannot have other fields besides 'unit'"));
            }
            let number = |v: &Bson| {
                Num::from_bson(v).map(Num::to_f64).ok_or_else(|| failed_to_parse("Range-based bounds expression must be a number"))
            };
            let (lo, hi) = (parse_bound(&l, number)?, parse_bound(&h, number)?);
            check_forward(lo, hi)?;
            Window::Range(lo, hi, None)
        }
    };
    if sort.is_none_or(|s| s.fields().len() != 1) {
        return Err(EngineError::location(5339902, "Range-based bounds require sortBy a single field"));
    }
    Ok(Some(window))
}

fn parse_output(path: &str, spec: &Bson, sort: Option<&SortSpec>) -> Result<OutputField> {
    if path.starts_with('$') || path.is_empty() {
        return Err(EngineError::location(16410, format!("FieldPath field names may not start with '$'. Given: {path}")));
    }
    let Bson::Document(d) = spec else {
        return Err(failed_to_parse(format!("The field '{path}' must be an object, found {spec}")));
    };
    let mut func: Option<(&str, &Bson)> = None;
    let mut window: Option<&Bson> = None;
    let mut unknown: Option<&str> = None;
    for (k, v) in d {
        if k == "window" {
            window = Some(v);
        } else if k.starts_with('$') {
            if func.is_some() {
                return Err(failed_to_parse(format!("Cannot specify two functions in window function spec: {d}")));
            }
            func = Some((k.as_str(), v));
        } else if unknown.is_none() {
            unknown = Some(k.as_str());
        }
    }
    let Some((name, arg)) = func else {
        return Err(failed_to_parse(format!("Expected a $-prefixed window function, found {d}")));
    };
    if let Some(k) = unknown {
        return Err(failed_to_parse(format!("Window function {name} found an unknown argument: {k}")));
    }
    let single_sort = sort.is_some_and(|s| s.fields().len() == 1);
    let func = match name {
        "$rank" | "$denseRank" | "$documentNumber" => {
            if window.is_some() {
                return Err(EngineError::location(5371601, "Rank style window functions take no other arguments"));
            }
            if !matches!(arg, Bson::Document(a) if a.is_empty()) {
                return Err(EngineError::location(5371603, format!("{name} must be specified with '{{}}' as the value")));
            }
            if !single_sort {
                return Err(EngineError::location(
                    5371602,
                    format!("{name} must be specified with a top level sortBy expression with exactly one element"),
                ));
            }
            match name {
                "$rank" => Func::Rank,
                "$denseRank" => Func::DenseRank,
                _ => Func::DocumentNumber,
            }
        }
        "$shift" => {
            if sort.is_none() {
                return Err(failed_to_parse("$shift requires a sortBy"));
            }
            if window.is_some() {
                return Err(failed_to_parse("$shift does not accept a 'window' field"));
            }
            let Bson::Document(a) = arg else {
                return Err(failed_to_parse("Argument to $shift must be an object"));
            };
            let mut output = None;
            let mut by = None;
            let mut default = Bson::Null;
            for (k, v) in a {
                match k.as_str() {
                    "output" => output = Some(v.clone()),
                    "by" => {
                        by = Some(integral(v).ok_or_else(|| {
                            failed_to_parse(format!("'$shift:by' field must be an integer, but found {v}"))
                        })?)
                    }
                    "default" => default = constant(v)?,
                    other => return Err(failed_to_parse(format!("Unknown argument in $shift: {other}"))),
                }
            }
            let output = output.ok_or_else(|| failed_to_parse("$shift requires an 'output' expression."))?;
            let by = by.ok_or_else(|| failed_to_parse("$shift requires 'by' as an integer value."))?;
            Func::Shift { output, by, default }
        }
        "$expMovingAvg" => parse_exp_moving_avg(d, arg, sort)?,
        "$derivative" | "$integral" => {
            let (input, unit_ms) = parse_with_unit(name, arg, sort)?;
            if name == "$derivative" {
                if window.is_none() {
                    return Err(failed_to_parse("$derivative requires explicit window bounds"));
                }
                Func::Derivative { input, unit_ms }
            } else {
                Func::Integral { input, unit_ms }
            }
        }
        "$covariancePop" | "$covarianceSamp" => Func::Covariance { args: arg.clone(), sample: name == "$covarianceSamp" },
        "$locf" | "$linearFill" => {
            if window.is_some() {
                return Err(failed_to_parse(format!("'window' field is not allowed in {name}")));
            }
            if name == "$locf" {
                Func::Locf(arg.clone())
            } else {
                if !single_sort {
                    return Err(EngineError::location(
                        605001,
                        "$linearFill must be specified with a top level sortBy expression with exactly one element",
                    ));
                }
                Func::LinearFill(arg.clone())
            }
        }
        _ => match Kind::parse(name) {
            Some(Kind::MergeObjects) | None => {
                if let Some(spec) = NarySpec::parse(name, arg)? {
                    Func::Nary(spec)
                } else if let Some(spec) = QuantileSpec::parse(name, arg)? {
                    Func::Quantile(spec)
                } else {
                    return Err(failed_to_parse(format!("Unrecognized window function, {name}")));
                }
            }
            Some(Kind::Count) => {
                if !matches!(arg, Bson::Document(a) if a.is_empty()) {
                    return Err(failed_to_parse("$count only accepts an empty object as input"));
                }
                Func::Acc(Kind::Count, Bson::Null)
            }
            Some(kind) => Func::Acc(kind, arg.clone()),
        },
    };
    let window = match window {
        Some(w) => parse_window(w, sort)?,
        None => None,
    };
    Ok(OutputField { path: path.to_string(), func, window })
}

/// `{$expMovingAvg: {input, N | alpha}}`: no window (it always runs from
/// the partition's start to the current document) and a `sortBy`.
fn parse_exp_moving_avg(whole: &Document, arg: &Bson, sort: Option<&SortSpec>) -> Result<Func> {
    let Bson::Document(a) = arg else {
        return Err(failed_to_parse("$expMovingAvg must have exactly one argument that is an object"));
    };
    if whole.len() != 1 {
        return Err(failed_to_parse("$expMovingAvg must have exactly one argument that is an object"));
    }
    let shape = "$expMovingAvg sub object must have exactly two fields: An 'input' field, and either an 'N' field or an 'alpha' field";
    let Some(input) = a.get("input").filter(|_| a.len() == 2) else {
        return Err(failed_to_parse(shape));
    };
    if sort.is_none() {
        return Err(failed_to_parse("$expMovingAvg requires an explicit 'sortBy'"));
    }
    let smoothing = if let Some(n) = a.get("N") {
        let Some(num) = Num::from_bson(n) else {
            return Err(failed_to_parse(format!("'N' field must be an integer, but found type {}", crate::types::type_name(n))));
        };
        let Some(n) = num.to_i64_exact() else {
            return Err(failed_to_parse(format!(
                "'N' field must be an integer, but found {n}. To use a non-integer, use the 'alpha' argument instead"
            )));
        };
        if n <= 0 {
            return Err(failed_to_parse(format!("'N' must be greater than zero. Got {n}")));
        }
        stats::Smoothing::N(n)
    } else if let Some(alpha) = a.get("alpha") {
        let Some(f) = Num::from_bson(alpha).map(Num::to_f64) else {
            return Err(failed_to_parse("'alpha' must be a number"));
        };
        if !(f > 0.0 && f < 1.0) {
            return Err(failed_to_parse(format!("'alpha' must be between 0 and 1 (exclusive), found {alpha}")));
        }
        stats::Smoothing::Alpha(f)
    } else {
        return Err(failed_to_parse(format!("Got unrecognized field in $expMovingAvg. {shape}")));
    };
    Ok(Func::ExpMovingAvg { input: input.clone(), smoothing })
}

/// `{input, unit?}` of `$derivative`/`$integral`, which need a `sortBy` on
/// exactly one field.
fn parse_with_unit(name: &str, arg: &Bson, sort: Option<&SortSpec>) -> Result<(Bson, Option<i64>)> {
    let Some(sort) = sort else {
        return Err(failed_to_parse(format!("{name} requires a sortBy")));
    };
    if sort.fields().len() != 1 {
        return Err(failed_to_parse(format!("{name} requires a non-compound sortBy")));
    }
    let Bson::Document(a) = arg else {
        return Err(failed_to_parse(format!("{name} expects an object, but got a {}: {arg}", crate::types::type_name(arg))));
    };
    let (mut input, mut unit) = (None, None);
    for (k, v) in a {
        match k.as_str() {
            "input" => input = Some(v.clone()),
            "unit" => unit = Some(calculus::unit_millis(name, v)?),
            other => return Err(failed_to_parse(format!("{name} got unexpected argument: {other}"))),
        }
    }
    let input = input.ok_or_else(|| failed_to_parse(format!("{name} requires an 'input' expression")))?;
    Ok((input, unit))
}

struct Spec {
    partition_by: Option<Bson>,
    sort: Option<SortSpec>,
    outputs: Vec<OutputField>,
}

fn parse(spec: &Bson) -> Result<Spec> {
    let Bson::Document(d) = spec else {
        return Err(failed_to_parse("the $setWindowFields stage specification must be an object"));
    };
    let mut partition_by = None;
    let mut sort = None;
    let mut output = None;
    for (k, v) in d {
        match k.as_str() {
            "partitionBy" => {
                if matches!(v, Bson::Array(_)) {
                    return Err(EngineError::type_mismatch("An array cannot be used as a partition key"));
                }
                partition_by = Some(v.clone());
            }
            "sortBy" => match v {
                Bson::Document(s) => sort = Some(SortSpec::parse(s)?),
                _ => {
                    return Err(EngineError::type_mismatch(format!(
                        "BSON field '$setWindowFields.sortBy' is the wrong type '{}', expected type 'object'",
                        crate::types::type_name(v)
                    )))
                }
            },
            "output" => match v {
                Bson::Document(o) => output = Some(o),
                _ => {
                    return Err(EngineError::type_mismatch(format!(
                        "BSON field '$setWindowFields.output' is the wrong type '{}', expected type 'object'",
                        crate::types::type_name(v)
                    )))
                }
            },
            other => {
                return Err(EngineError::location(40415, format!("BSON field '$setWindowFields.{other}' is an unknown field.")));
            }
        }
    }
    let Some(output) = output else {
        return Err(EngineError::location(40414, "BSON field '$setWindowFields.output' is missing but a required field"));
    };
    let outputs = output.iter().map(|(k, v)| parse_output(k, v, sort.as_ref())).collect::<Result<_>>()?;
    Ok(Spec { partition_by, sort, outputs })
}

/// A document with what the stage sorts it by.
struct Row {
    partition: Bson,
    sort_key: Vec<Bson>,
    doc: Document,
}

pub(super) fn set_window_fields(spec: &Bson, docs: Vec<Document>, vars: &Vars) -> Result<Vec<Document>> {
    let spec = parse(spec)?;
    let mut rows = Vec::with_capacity(docs.len());
    for doc in docs {
        let partition = match &spec.partition_by {
            Some(e) => match expr::eval_value(e, &doc, vars)? {
                Some(Bson::Array(_)) => {
                    return Err(EngineError::type_mismatch("An array cannot be used as a partition key"));
                }
                v => v.unwrap_or(Bson::Null),
            },
            None => Bson::Null,
        };
        let sort_key = spec.sort.as_ref().map(|s| s.key_of(&doc)).unwrap_or_default();
        rows.push(Row { partition, sort_key, doc });
    }
    if spec.partition_by.is_some() || spec.sort.is_some() {
        rows.sort_by(|a, b| {
            cmp_bson(&a.partition, &b.partition).then_with(|| match &spec.sort {
                Some(s) => s.compare_keys(&a.sort_key, &b.sort_key),
                None => Ordering::Equal,
            })
        });
    }
    let mut out = Vec::with_capacity(rows.len());
    let mut start = 0;
    while start < rows.len() {
        let mut end = start + 1;
        while end < rows.len() && cmp_bson(&rows[start].partition, &rows[end].partition) == Ordering::Equal {
            end += 1;
        }
        let part = &rows[start..end];
        let mut columns = Vec::with_capacity(spec.outputs.len());
        for o in &spec.outputs {
            columns.push(compute(o, part, spec.sort.as_ref(), vars)?);
        }
        for (i, row) in rows[start..end].iter_mut().enumerate() {
            let mut doc = std::mem::take(&mut row.doc);
            for (o, col) in spec.outputs.iter().zip(columns.iter_mut()) {
                let parts: Vec<&str> = o.path.split('.').collect();
                path::assign(&mut doc, &parts, Some(std::mem::replace(&mut col[i], Bson::Null)));
            }
            out.push(doc);
        }
        start = end;
    }
    Ok(out)
}

/// One output field's values for every document of a partition.
fn compute(o: &OutputField, part: &[Row], sort: Option<&SortSpec>, vars: &Vars) -> Result<Vec<Bson>> {
    let n = part.len();
    match &o.func {
        Func::DocumentNumber => Ok((1..=n).map(crate::num::count_bson).collect()),
        Func::Rank | Func::DenseRank => {
            let Some(sort) = sort else { return Ok(vec![Bson::Null; n]) };
            let mut out = Vec::with_capacity(n);
            let (mut rank, mut dense) = (0, 0);
            for i in 0..n {
                if i == 0 || sort.compare_keys(&part[i - 1].sort_key, &part[i].sort_key) != Ordering::Equal {
                    rank = i + 1;
                    dense += 1;
                }
                out.push(crate::num::count_bson(if matches!(o.func, Func::Rank) { rank } else { dense }));
            }
            Ok(out)
        }
        Func::Shift { output, by, default } => (0..n)
            .map(|i| {
                let target = i64::try_from(i).ok().and_then(|i| i.checked_add(*by));
                match target.and_then(|t| usize::try_from(t).ok()).filter(|t| *t < n) {
                    Some(t) => expr::eval(output, &part[t].doc, vars),
                    None => Ok(default.clone()),
                }
            })
            .collect(),
        Func::Nary(spec) => {
            let n = spec.n_for(&Document::new(), vars)?;
            let items = part.iter().map(|r| spec.item(&r.doc, vars)).collect::<Result<Vec<_>>>()?;
            let sliding = lower_bound_moves(o.window.as_ref());
            let frames = frames(o.window.as_ref(), part, sort)?;
            Ok(frames.iter().map(|&(a, b)| spec.finish(&items[a..b.max(a)], n, sliding)).collect())
        }
        Func::Quantile(spec) => {
            let samples = part.iter().map(|r| spec.sample(&r.doc, vars)).collect::<Result<Vec<_>>>()?;
            let frames = frames(o.window.as_ref(), part, sort)?;
            Ok(frames.iter().map(|&(a, b)| spec.finish(samples[a..b.max(a)].iter().flatten().copied().collect())).collect())
        }
        Func::ExpMovingAvg { input, smoothing } => Ok(stats::exp_moving_avg(&eval_all(input, part, vars)?, *smoothing)),
        Func::Covariance { args, sample } => {
            let frames = frames(o.window.as_ref(), part, sort)?;
            Ok(stats::covariance(&eval_all(args, part, vars)?, &frames, *sample))
        }
        Func::Derivative { input, unit_ms } | Func::Integral { input, unit_ms } => {
            let values = eval_all(input, part, vars)?;
            let axis = sort_axis(part, sort);
            let frames = frames(o.window.as_ref(), part, sort)?;
            if matches!(o.func, Func::Derivative { .. }) {
                calculus::derivative(&values, &axis, &frames, *unit_ms)
            } else {
                calculus::integral(&values, &axis, &frames, *unit_ms)
            }
        }
        Func::Locf(input) => Ok(gaps::locf(eval_all(input, part, vars)?)),
        Func::LinearFill(input) => gaps::linear_fill(eval_all(input, part, vars)?, &sort_axis(part, sort)),
        Func::Acc(kind, arg) => {
            let values: Vec<Option<Bson>> = match kind {
                Kind::Count => vec![None; n],
                _ => part.iter().map(|r| expr::eval_value(arg, &r.doc, vars)).collect::<Result<_>>()?,
            };
            let frames = frames(o.window.as_ref(), part, sort)?;
            accumulate_frames(*kind, &values, &frames)
        }
    }
}

/// `input` evaluated against each document of the partition.
fn eval_all(input: &Bson, part: &[Row], vars: &Vars) -> Result<Vec<Option<Bson>>> {
    part.iter().map(|r| expr::eval_value(input, &r.doc, vars)).collect()
}

/// Each document's value of the (first) `sortBy` field: the axis that
/// `$derivative`, `$integral` and `$linearFill` measure along.
fn sort_axis(part: &[Row], sort: Option<&SortSpec>) -> Vec<Option<Bson>> {
    let Some((field, _)) = sort.and_then(|s| s.fields().first()) else {
        return vec![None; part.len()];
    };
    let parts: Vec<&str> = field.iter().map(String::as_str).collect();
    part.iter().map(|r| path::expr_value(&r.doc, &parts)).collect()
}

/// Whether the window's first document changes from one document to the
/// next (MongoDB then keeps removable state, which breaks some ties
/// differently).
fn lower_bound_moves(window: Option<&Window>) -> bool {
    match window {
        None => false,
        Some(Window::Documents(lo, _)) => *lo != Bound::Unbounded,
        Some(Window::Range(lo, _, _)) => *lo != Bound::Unbounded,
    }
}

/// Runs an accumulator over each `[a, b)` frame, extending the previous
/// frame's state when the new frame only grows at its end (running totals),
/// so the common cumulative windows cost one pass instead of n.
fn accumulate_frames(kind: Kind, values: &[Option<Bson>], frames: &[(usize, usize)]) -> Result<Vec<Bson>> {
    let mut out = Vec::with_capacity(frames.len());
    let mut prev: Option<(usize, usize, group::State)> = None;
    for &(a, b) in frames {
        let (from, mut state) = match prev.take() {
            Some((pa, pb, st)) if pa == a && pb <= b => (pb, st),
            _ => (a, group::initial(kind)),
        };
        for v in &values[from..b] {
            group::accumulate(&mut state, kind, v.clone())?;
        }
        out.push(group::finish(state.clone(), kind));
        prev = Some((a, b, state));
    }
    Ok(out)
}

/// The `[a, b)` index range of each document's window within the partition.
fn frames(window: Option<&Window>, part: &[Row], sort: Option<&SortSpec>) -> Result<Vec<(usize, usize)>> {
    let n = part.len();
    let clamp = |x: i64| usize::try_from(x.max(0)).unwrap_or(0).min(n);
    let frames: Vec<(usize, usize)> = match window {
        None => vec![(0, n); n],
        Some(Window::Documents(lo, hi)) => (0..n)
            .map(|i| {
                let i = i as i64;
                let a = match lo {
                    Bound::Unbounded => 0,
                    Bound::Current => clamp(i),
                    Bound::At(k) => clamp(i.saturating_add(*k)),
                };
                let b = match hi {
                    Bound::Unbounded => n,
                    Bound::Current => clamp(i + 1),
                    Bound::At(k) => clamp(i.saturating_add(*k).saturating_add(1)),
                };
                (a, b.max(a))
            })
            .collect(),
        Some(Window::Range(lo, hi, unit)) => {
            let Some(sort) = sort else { return Ok(vec![(0, n); n]) };
            let Some((field, descending)) = sort.fields().first() else { return Ok(vec![(0, n); n]) };
            let parts: Vec<&str> = field.iter().map(String::as_str).collect();
            let values = part
                .iter()
                .map(|r| range_value(path::expr_value(&r.doc, &parts), unit.is_some()))
                .collect::<Result<Vec<f64>>>()?;
            // Values run ascending (or descending) through the partition, so
            // each bound is a partition point.
            let before = |v: f64, t: f64| if *descending { v > t } else { v < t };
            let at_or_before = |v: f64, t: f64| if *descending { v >= t } else { v <= t };
            let sign = if *descending { -1.0 } else { 1.0 };
            let mut frames = Vec::with_capacity(n);
            for i in 0..n {
                let shifted = |k: f64| -> Result<f64> {
                    match unit {
                        Some(u) => add_units(values[i], (sign * k) as i64, u),
                        None => Ok(values[i] + sign * k),
                    }
                };
                let a = match lo {
                    Bound::Unbounded => 0,
                    Bound::Current => i,
                    Bound::At(k) => {
                        let t = shifted(*k)?;
                        values.partition_point(|v| before(*v, t))
                    }
                };
                let b = match hi {
                    Bound::Unbounded => n,
                    Bound::Current => i + 1,
                    Bound::At(k) => {
                        let t = shifted(*k)?;
                        values.partition_point(|v| at_or_before(*v, t))
                    }
                };
                frames.push((a, b.max(a)));
            }
            frames
        }
    };
    Ok(frames)
}

fn range_value(v: Option<Bson>, dates: bool) -> Result<f64> {
    let type_name = |v: &Option<Bson>| v.as_ref().map_or("missing", crate::types::type_name);
    if dates {
        match v {
            Some(Bson::DateTime(d)) => Ok(d.timestamp_millis() as f64),
            other => Err(EngineError::location(
                5429513,
                format!("Invalid range: Expected the sortBy field to be a Date, but it was {}", type_name(&other)),
            )),
        }
    } else {
        match v.as_ref().and_then(Num::from_bson) {
            Some(n) => Ok(n.to_f64()),
            None => Err(EngineError::location(
                5429413,
                format!("Invalid range: Expected the sortBy field to be a number, but it was {}", type_name(&v)),
            )),
        }
    }
}

/// `millis` plus `amount` calendar units, the way `$dateAdd` counts them (UTC).
fn add_units(millis: f64, amount: i64, unit: &str) -> Result<f64> {
    let start = Bson::DateTime(bson::DateTime::from_millis(millis as i64));
    let e = bson::doc! {"$dateAdd": {"startDate": {"$literal": start}, "unit": unit, "amount": amount}};
    match expr::eval(&Bson::Document(e), &Document::new(), &Vars::new())? {
        Bson::DateTime(d) => Ok(d.timestamp_millis() as f64),
        _ => Ok(millis),
    }
}
