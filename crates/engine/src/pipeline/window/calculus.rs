//! `$derivative` and `$integral`: rates of change and areas along the
//! `sortBy` axis of a window.
//!
//! The axis is the value of the (single) `sortBy` field: numbers, or dates
//! when a `unit` is given. For dates MongoDB measures distances in
//! milliseconds and then re-expresses the answer per `unit` (`week` or
//! smaller, since months and years have no fixed length).
use crate::num::{self, Num};
use crate::{EngineError, Result};
use bson::Bson;

/// Milliseconds in a `unit` accepted by `$derivative`/`$integral`.
pub(super) fn unit_millis(op: &str, unit: &Bson) -> Result<i64> {
    let Bson::String(u) = unit else {
        return Err(super::failed_to_parse(format!("{op} 'unit' must be a string, but got {unit}")));
    };
    Ok(match u.as_str() {
        "week" => 604_800_000,
        "day" => 86_400_000,
        "hour" => 3_600_000,
        "minute" => 60_000,
        "second" => 1_000,
        "millisecond" => 1,
        "year" | "quarter" | "month" => {
            return Err(EngineError::location(5490710, "unit must be 'week' or smaller"));
        }
        other => return Err(super::failed_to_parse(format!("unknown time unit value: {other}"))),
    })
}

/// A position on the axis: a number, or a date in milliseconds.
#[derive(Clone, Copy)]
enum Point {
    Number(Num),
    Date(i64),
}

impl Point {
    fn of(v: &Option<Bson>) -> Option<Point> {
        match v {
            Some(Bson::DateTime(d)) => Some(Point::Date(d.timestamp_millis())),
            Some(b) => Num::from_bson(b).map(Point::Number),
            None => None,
        }
    }

    /// `self - earlier` as a number (milliseconds between dates).
    fn minus(self, earlier: Point) -> Num {
        match (self, earlier) {
            (Point::Date(a), Point::Date(b)) => Num::Long(a.saturating_sub(b)),
            (Point::Number(a), Point::Number(b)) => num::sub(a, b),
            (Point::Date(a), Point::Number(b)) => num::sub(Num::Long(a), b),
            (Point::Number(a), Point::Date(b)) => num::sub(a, Num::Long(b)),
        }
    }
}

fn is_nan(n: Num) -> bool {
    match n {
        Num::Double(f) => f.is_nan(),
        _ => false,
    }
}

/// `$derivative`: (input at the window's last document − input at its first)
/// ÷ (their axis distance), per `unit` for dates. An empty or one-point
/// window (distance 0) gives null.
pub(super) fn derivative(
    values: &[Option<Bson>],
    axis: &[Option<Bson>],
    frames: &[(usize, usize)],
    unit_ms: Option<i64>,
) -> Result<Vec<Bson>> {
    let mut out = Vec::with_capacity(frames.len());
    for &(a, b) in frames {
        if b <= a {
            out.push(Bson::Null);
            continue;
        }
        let (left, right) = (a, b - 1);
        let (lt, rt) = (Point::of(&axis[left]), Point::of(&axis[right]));
        let dates = matches!((lt, rt), (Some(Point::Date(_)), Some(Point::Date(_))));
        let (lt, rt) = match (unit_ms, lt, rt) {
            (Some(_), Some(l), Some(r)) if dates => (l, r),
            (Some(_), _, _) => {
                return Err(EngineError::location(5624900, "$derivative with 'unit' expects the sortBy field to be a Date"));
            }
            (None, Some(Point::Date(_)), _) | (None, _, Some(Point::Date(_))) => {
                return Err(EngineError::location(5624901, "$derivative where the sortBy is a Date requires an 'unit'"));
            }
            (None, Some(l), Some(r)) => (l, r),
            (None, _, _) => {
                return Err(EngineError::location(5624902, "$derivative (with no 'unit') expects the sortBy field to be numeric"));
            }
        };
        let run = rt.minus(lt);
        let rise = difference(&values[right], &values[left])?;
        let Some(rate) = num::div(rise, run) else {
            out.push(Bson::Null);
            continue;
        };
        out.push(match unit_ms {
            Some(ms) => num::mul(rate, Num::Long(ms)).to_bson(),
            None => rate.to_bson(),
        });
    }
    Ok(out)
}

/// `later - earlier` for `$derivative`'s input, with `$subtract`'s refusals.
fn difference(later: &Option<Bson>, earlier: &Option<Bson>) -> Result<Num> {
    let nullish = |v: &Option<Bson>| matches!(v, None | Some(Bson::Null) | Some(Bson::Undefined));
    if nullish(later) || nullish(earlier) {
        return Err(EngineError::location(5624903, "$derivative input must not be null or missing"));
    }
    match (Point::of(later), Point::of(earlier)) {
        (Some(l), Some(e)) => Ok(l.minus(e)),
        _ => Err(EngineError::location(
            16556,
            format!(
                "cant $subtract {} from {}",
                earlier.as_ref().map_or("missing", crate::types::type_name),
                later.as_ref().map_or("missing", crate::types::type_name)
            ),
        )),
    }
}

/// `$integral`: the trapezoidal-rule area under the input along the axis,
/// over each window, per `unit` for dates. Every document in a window must
/// have a numeric input (5423900) and an axis value of the right kind
/// (5423901/5423902). A NaN makes the answer NaN; an empty window is null,
/// a one-point window 0.
pub(super) fn integral(
    values: &[Option<Bson>],
    axis: &[Option<Bson>],
    frames: &[(usize, usize)],
    unit_ms: Option<i64>,
) -> Result<Vec<Bson>> {
    let mut points = Vec::with_capacity(values.len());
    for (v, x) in values.iter().zip(axis) {
        let y = v.as_ref().and_then(Num::from_bson);
        let x_point = Point::of(x);
        let (Some(y), Some(x_point)) = (y, x_point) else {
            return Err(EngineError::location(
                5423900,
                "The input value of $integral window function must be a vector of 2 value, the first value must be numeric or date type and the second must be numeric.",
            ));
        };
        match (unit_ms, x_point) {
            (Some(_), Point::Number(_)) => {
                return Err(EngineError::location(5423901, "$integral with 'outputUnit' expects the sortBy field to be a Date"));
            }
            (None, Point::Date(_)) => {
                return Err(EngineError::location(5423902, "$integral (with no 'outputUnit') expects the sortBy field to be numeric"));
            }
            _ => {}
        }
        points.push((x_point, y));
    }
    // Area of each trapezoid between neighbours i-1 and i.
    let slices: Vec<Num> = (1..points.len())
        .map(|i| {
            let ((x0, y0), (x1, y1)) = (points[i - 1], points[i]);
            let width = x1.minus(x0);
            if is_nan(y0) || is_nan(y1) || is_nan(width) {
                return Num::Int(0);
            }
            let height = num::add(y0, y1);
            num::div(num::mul(height, width), Num::Double(2.0)).unwrap_or(Num::Int(0))
        })
        .collect();
    let mut out = Vec::with_capacity(frames.len());
    for &(a, b) in frames {
        if b <= a {
            out.push(Bson::Null);
            continue;
        }
        let any_nan = points[a..b].iter().any(|(x, y)| is_nan(*y) || matches!(x, Point::Number(n) if is_nan(*n)));
        if any_nan {
            out.push(Bson::Double(f64::NAN));
            continue;
        }
        let area = slices[a..b - 1].iter().fold(Num::Int(0), |acc, s| num::add(acc, *s));
        out.push(match unit_ms {
            Some(ms) => num::div(area, Num::Long(ms)).unwrap_or(area).to_bson(),
            None => area.to_bson(),
        });
    }
    Ok(out)
}
