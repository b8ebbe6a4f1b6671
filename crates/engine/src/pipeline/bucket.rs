//! `$bucket`, `$bucketAuto` and `$sample`.
use super::group;
use crate::compare::{cmp_bson, type_rank};
use crate::expr::{self, Vars};
use crate::num::Num;
use crate::types::type_name;
use crate::{EngineError, Result};
use bson::{Bson, Document};
use std::cmp::Ordering;

/// What `$bucket`/`$bucketAuto` accept as `groupBy`: a `$`-path or an
/// expression object.
fn valid_group_by(v: &Bson) -> bool {
    matches!(v, Bson::String(s) if s.starts_with('$')) || matches!(v, Bson::Document(_))
}

fn default_output() -> Document {
    bson::doc! {"count": {"$sum": 1}}
}

fn output_spec(stage: &str, code: i32, v: Option<&Bson>) -> Result<Document> {
    match v {
        None => Ok(default_output()),
        Some(Bson::Document(d)) => Ok(d.clone()),
        Some(other) => Err(EngineError::location(
            code,
            format!("The {stage} 'output' field must be an object, but found type: {}.", type_name(other)),
        )),
    }
}

fn constant(v: &Bson) -> Result<Bson> {
    expr::eval(v, &Document::new(), &Vars::new())
}

pub(super) fn bucket(spec: &Bson, docs: Vec<Document>, vars: &Vars) -> Result<Vec<Document>> {
    let Bson::Document(spec) = spec else {
        return Err(EngineError::location(40201, format!("Argument to $bucket stage must be an object, but found type: {}.", type_name(spec))));
    };
    let (mut group_by, mut boundaries, mut default, mut output) = (None, None, None, None);
    for (k, v) in spec {
        match k.as_str() {
            "groupBy" => group_by = Some(v),
            "boundaries" => boundaries = Some(v),
            "default" => default = Some(v),
            "output" => output = Some(v),
            other => return Err(EngineError::location(40197, format!("Unrecognized option to $bucket: {other}."))),
        }
    }
    let (Some(group_by), Some(boundaries)) = (group_by, boundaries) else {
        return Err(EngineError::location(40198, "$bucket requires 'groupBy' and 'boundaries' to be specified."));
    };
    if !valid_group_by(group_by) {
        return Err(EngineError::location(
            40202,
            format!("The $bucket 'groupBy' field must be defined as a $-prefixed path or an expression, but found: {group_by}."),
        ));
    }
    let Bson::Array(raw) = boundaries else {
        return Err(EngineError::location(
            40200,
            format!("The $bucket 'boundaries' field must be an array, but found type: {}.", type_name(boundaries)),
        ));
    };
    if raw.len() < 2 {
        return Err(EngineError::location(
            40192,
            format!("The $bucket 'boundaries' field must have at least 2 values, but found {} value(s).", raw.len()),
        ));
    }
    let bounds = raw.iter().map(constant).collect::<Result<Vec<Bson>>>()?;
    for (i, pair) in bounds.windows(2).enumerate() {
        if type_rank(&pair[0]) != type_rank(&pair[1]) {
            return Err(EngineError::location(
                40193,
                format!(
                    "All values in the the 'boundaries' option to $bucket must have the same type. Found conflicting types {} and {}.",
                    type_name(&pair[0]),
                    type_name(&pair[1])
                ),
            ));
        }
        if cmp_bson(&pair[0], &pair[1]) != Ordering::Less {
            return Err(EngineError::location(
                40194,
                format!(
                    "The 'boundaries' option to $bucket must be sorted in ascending order, but elements {} and {} are not in ascending order ({} is not less than {}).",
                    i,
                    i + 1,
                    pair[0],
                    pair[1]
                ),
            ));
        }
    }
    let default = default.map(constant).transpose()?;
    if let (Some(d), Some(lo), Some(hi)) = (&default, bounds.first(), bounds.last()) {
        // A default of the boundaries' type must lie outside them, or it
        // would merge with a real bucket.
        if type_rank(d) == type_rank(lo) && cmp_bson(d, lo) != Ordering::Less && cmp_bson(d, hi) == Ordering::Less {
            return Err(EngineError::location(
                40199,
                "The $bucket 'default' field must be less than the lowest boundary or greater than or equal to the highest boundary.",
            ));
        }
    }
    let output = output_spec("$bucket", 40196, output)?;
    let mut ids = Vec::with_capacity(docs.len());
    for doc in &docs {
        // `$bucket` is MongoDB's $group over a $switch of `$gte`/`$lt`
        // branches, so values compare in BSON order across types and a
        // missing value falls through to the default.
        let value = expr::eval_value(group_by, doc, vars)?;
        let slot = value.as_ref().and_then(|v| {
            let upper = bounds.partition_point(|b| cmp_bson(b, v) != Ordering::Greater);
            (upper > 0 && upper < bounds.len()).then(|| bounds[upper - 1].clone())
        });
        match slot.or_else(|| default.clone()) {
            Some(id) => ids.push(id),
            None => {
                return Err(EngineError::location(
                    40066,
                    format!(
                        "$switch could not find a matching branch for an input, and no default was specified. (the $bucket groupBy value was {})",
                        value.unwrap_or(Bson::Null)
                    ),
                ))
            }
        }
    }
    let mut out = group::group_with_keys(&output, ids, &docs, vars)?;
    out.sort_by(|a, b| cmp_bson(a.get("_id").unwrap_or(&Bson::Null), b.get("_id").unwrap_or(&Bson::Null)));
    Ok(out)
}

pub(super) fn bucket_auto(spec: &Bson, docs: Vec<Document>, vars: &Vars) -> Result<Vec<Document>> {
    let Bson::Document(spec) = spec else {
        return Err(EngineError::location(40240, format!("The argument to $bucketAuto must be an object, but found type: {}.", type_name(spec))));
    };
    let (mut group_by, mut buckets, mut output) = (None, None, None);
    for (k, v) in spec {
        match k.as_str() {
            "groupBy" => group_by = Some(v),
            "buckets" => buckets = Some(v),
            "output" => output = Some(v),
            "granularity" => return Err(EngineError::unsupported("$bucketAuto granularity")),
            other => return Err(EngineError::location(40245, format!("Unrecognized option to $bucketAuto: {other}."))),
        }
    }
    let (Some(group_by), Some(buckets)) = (group_by, buckets) else {
        return Err(EngineError::location(40246, "$bucketAuto requires 'groupBy' and 'buckets' to be specified"));
    };
    if !valid_group_by(group_by) {
        return Err(EngineError::location(
            40239,
            format!("The $bucketAuto 'groupBy' field must be defined as a $-prefixed path or an expression object, but found: {group_by}."),
        ));
    }
    let n_buckets = match Num::from_bson(buckets).and_then(Num::to_i64_exact).and_then(|n| i32::try_from(n).ok()) {
        Some(n) if n > 0 => n as usize,
        Some(n) => {
            return Err(EngineError::location(40243, format!("The $bucketAuto 'buckets' field must be greater than 0, but found: {n}")))
        }
        None => {
            return Err(EngineError::location(
                40241,
                format!("The $bucketAuto 'buckets' field must be a numeric value, but found type: {}", type_name(buckets)),
            ))
        }
    };
    let output = output_spec("$bucketAuto", 40244, output)?;
    let mut keyed = Vec::with_capacity(docs.len());
    for doc in docs {
        let v = expr::eval_value(group_by, &doc, vars)?.unwrap_or(Bson::Null);
        keyed.push((v, doc));
    }
    keyed.sort_by(|a, b| cmp_bson(&a.0, &b.0));
    let total = keyed.len();
    // Each bucket takes about total/buckets documents, then any further
    // documents equal to its largest value, so equal values never straddle
    // two buckets; the last bucket takes the rest.
    let per_bucket = ((total as f64 / n_buckets as f64).round() as usize).max(1);
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    let mut start = 0;
    while start < total {
        let end = if ranges.len() + 1 == n_buckets {
            total
        } else {
            let mut end = (start + per_bucket).min(total);
            while end < total && cmp_bson(&keyed[end].0, &keyed[end - 1].0) == Ordering::Equal {
                end += 1;
            }
            end
        };
        ranges.push((start, end));
        start = end;
    }
    let mut ids = Vec::with_capacity(total);
    for (i, (a, b)) in ranges.iter().enumerate() {
        ids.extend(std::iter::repeat_n(Bson::Int64(i as i64), b - a));
    }
    let (values, docs): (Vec<Bson>, Vec<Document>) = keyed.into_iter().unzip();
    let grouped = group::group_with_keys(&output, ids, &docs, vars)?;
    let mut out = Vec::with_capacity(grouped.len());
    for (i, (mut g, (a, b))) in grouped.into_iter().zip(ranges.iter()).enumerate() {
        // A bucket's max is the next bucket's min; the last one's is its own
        // largest value.
        let max = match ranges.get(i + 1) {
            Some((next, _)) => values[*next].clone(),
            None => values[b - 1].clone(),
        };
        g.insert("_id", bson::doc! {"min": values[*a].clone(), "max": max});
        out.push(g);
    }
    Ok(out)
}

pub(super) fn sample(spec: &Bson, mut docs: Vec<Document>) -> Result<Vec<Document>> {
    use rand::seq::SliceRandom;
    let Bson::Document(spec) = spec else {
        return Err(EngineError::location(28745, "the $sample stage specification must be an object"));
    };
    let mut size = None;
    for (k, v) in spec {
        match k.as_str() {
            "size" => size = Some(v),
            other => return Err(EngineError::location(28748, format!("unrecognized option to $sample: {other}"))),
        }
    }
    let Some(size) = size else {
        return Err(EngineError::location(28749, "$sample stage must specify a size"));
    };
    let Some(n) = Num::from_bson(size) else {
        return Err(EngineError::location(28746, "size argument to $sample must be a number"));
    };
    let n = n.to_f64();
    if n < 0.0 || n.is_nan() {
        return Err(EngineError::location(28747, "size argument to $sample must not be negative"));
    }
    let k = (n as usize).min(docs.len());
    let (chosen, _) = docs.partial_shuffle(&mut rand::rng(), k);
    Ok(chosen.to_vec())
}
