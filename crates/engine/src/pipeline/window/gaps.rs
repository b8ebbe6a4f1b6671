//! Gap filling: `$locf` (last observation carried forward) and `$linearFill`
//! (straight-line interpolation between the neighbouring known values).
//! `$fill` is built on both.
use crate::compare::cmp_bson;
use crate::num::{self, Num};
use crate::{EngineError, Result};
use bson::Bson;
use std::cmp::Ordering;

fn nullish(v: &Option<Bson>) -> bool {
    matches!(v, None | Some(Bson::Null) | Some(Bson::Undefined))
}

/// `$locf`: each document gets the last non-null value up to and including
/// itself, in partition order; null when there is none yet.
pub(super) fn locf(values: Vec<Option<Bson>>) -> Vec<Bson> {
    let mut last = Bson::Null;
    values
        .into_iter()
        .map(|v| {
            if !nullish(&v) {
                last = v.unwrap_or(Bson::Null);
            }
            last.clone()
        })
        .collect()
}

/// A position on the `sortBy` axis.
#[derive(Clone, Copy)]
enum Axis {
    Number(Num),
    Date(i64),
}

impl Axis {
    fn minus(self, earlier: Axis) -> Num {
        match (self, earlier) {
            (Axis::Number(a), Axis::Number(b)) => num::sub(a, b),
            (Axis::Date(a), Axis::Date(b)) => Num::Long(a.saturating_sub(b)),
            // Mixed kinds are refused before any arithmetic.
            _ => Num::Int(0),
        }
    }
}

/// `$linearFill`: a null or missing value between two known ones gets
/// y1 + (x - x1) * (y2 - y1) / (x2 - x1), with x the `sortBy` value; values
/// before the first or after the last known one stay null. Values must be
/// numbers (14), `sortBy` values numbers or dates of one kind (14) and all
/// different (6050106).
pub(super) fn linear_fill(values: Vec<Option<Bson>>, axis: &[Option<Bson>]) -> Result<Vec<Bson>> {
    let mut xs = Vec::with_capacity(values.len());
    let mut previous: Option<&Bson> = None;
    for (v, x) in values.iter().zip(axis) {
        let numeric = v.as_ref().and_then(Num::from_bson).is_some();
        if !nullish(v) && !numeric {
            return Err(EngineError::type_mismatch(format!(
                "Value to be filled must be numeric or nullish, but found {}",
                v.as_ref().map_or("missing", crate::types::type_name)
            )));
        }
        let point = match (x, x.as_ref().and_then(Num::from_bson)) {
            (Some(Bson::DateTime(d)), _) => Axis::Date(d.timestamp_millis()),
            (_, Some(n)) => Axis::Number(n),
            (other, None) => {
                return Err(EngineError::type_mismatch(format!(
                    "Value of the sortBy field must be numeric or a date, but found {}",
                    other.as_ref().map_or("missing", crate::types::type_name)
                )));
            }
        };
        if let (Some(prev), Some(cur)) = (previous, x.as_ref()) {
            if cmp_bson(prev, cur) == Ordering::Equal {
                return Err(EngineError::location(6050106, "There can be no repeated values in the sort field"));
            }
            if matches!(prev, Bson::DateTime(_)) != matches!(cur, Bson::DateTime(_)) {
                return Err(EngineError::type_mismatch(format!(
                    "Conflicting sort value types, previously received type {}, but found {}",
                    crate::types::type_name(prev),
                    crate::types::type_name(cur)
                )));
            }
        }
        previous = x.as_ref();
        xs.push(point);
    }
    let known: Vec<Option<Num>> = values.iter().map(|v| v.as_ref().and_then(Num::from_bson)).collect();
    let mut out = Vec::with_capacity(values.len());
    let mut left: Option<usize> = None;
    let mut right: Option<usize> = None;
    for i in 0..values.len() {
        if let Some(y) = known[i] {
            left = Some(i);
            out.push(y.to_bson());
            continue;
        }
        if right.is_none_or(|r| r < i) {
            right = (i + 1..values.len()).find(|j| known[*j].is_some());
        }
        let (Some(l), Some(r)) = (left, right) else {
            out.push(Bson::Null);
            continue;
        };
        let (Some(y1), Some(y2)) = (known[l], known[r]) else {
            out.push(Bson::Null);
            continue;
        };
        let slope = num::div(num::sub(y2, y1), xs[r].minus(xs[l]));
        out.push(match slope {
            Some(s) => num::add(y1, num::mul(xs[i].minus(xs[l]), s)).to_bson(),
            None => Bson::Null,
        });
    }
    Ok(out)
}
