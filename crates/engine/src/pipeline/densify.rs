//! `$densify`: adds documents so that a numeric or date field has a value
//! at every `step` over a range, within each partition.
//!
//! `{field, partitionByFields?, range: {step, unit?, bounds}}`. Documents are
//! sorted by the partition fields and `field` (by `field` alone for
//! `bounds: "full"`); those whose `field` is null or missing pass through.
//! Within a partition the generated values lie on a grid that starts at the
//! range's lower end (the lower bound of `[lo, hi]`, the partition's first
//! value for `"partition"`, the smallest value of all for `"full"`) and
//! advances by `step` (`$dateAdd` of `step` `unit`s for dates), skipping
//! values a document already has; a document off the grid is kept and does
//! not move it. `[lo, hi]` excludes `hi` and also fills partitions past
//! their last document; `"full"` fills every partition up to the overall
//! largest value (included when it is on the grid). A generated document
//! holds only the partition fields and `field`.
//!
//! This follows MongoDB's streaming implementation step by step, so the
//! output order is MongoDB's too, except that with `"full"` and partitions
//! the partitions completed after the last input document come in
//! first-seen order (MongoDB takes them from a hash table).
use crate::compare::{canonical_key, cmp_bson};
use crate::expr::{self, Vars};
use crate::num::{self, Num};
use crate::sort::SortSpec;
use crate::{path, EngineError, Result};
use bson::{Bson, Document};
use std::cmp::Ordering;
use std::collections::HashMap;

/// MongoDB's `internalQueryMaxAllowedDensifyDocs` default: a spec that
/// would generate more documents fails (5897900) instead of exhausting memory.
const MAX_GENERATED: usize = 500_000;

const TIME_UNITS: [&str; 9] = ["year", "quarter", "month", "week", "day", "hour", "minute", "second", "millisecond"];

/// A value of the densified field: a number, or a date in milliseconds.
#[derive(Debug, Clone, Copy)]
enum Point {
    Number(Num),
    Date(i64),
}

#[derive(Debug, Clone)]
enum Bounds {
    Full,
    Partition,
    Explicit(Point, Point),
}

struct Spec {
    field: Vec<String>,
    partition_fields: Vec<Vec<String>>,
    step: Num,
    unit: Option<String>,
    bounds: Bounds,
}

impl Point {
    fn to_bson(self) -> Bson {
        match self {
            Point::Number(n) => n.to_bson(),
            Point::Date(ms) => Bson::DateTime(bson::DateTime::from_millis(ms)),
        }
    }

    fn cmp(self, other: Point) -> Ordering {
        match (self, other) {
            (Point::Number(a), Point::Number(b)) => num::cmp_num(a, b),
            (Point::Date(a), Point::Date(b)) => a.cmp(&b),
            (Point::Number(_), Point::Date(_)) => Ordering::Less,
            (Point::Date(_), Point::Number(_)) => Ordering::Greater,
        }
    }

    fn lt(self, other: Point) -> bool {
        self.cmp(other) == Ordering::Less
    }
}

fn failed_to_parse(message: impl Into<String>) -> EngineError {
    EngineError::new(9, "FailedToParse", message)
}

fn unknown_field(name: &str) -> EngineError {
    EngineError::location(40415, format!("BSON field '{name}' is an unknown field."))
}

fn missing_field(name: &str) -> EngineError {
    EngineError::location(40414, format!("BSON field '{name}' is missing but a required field"))
}

fn wrong_type(name: &str, v: &Bson, expected: &str) -> EngineError {
    EngineError::type_mismatch(format!(
        "BSON field '{name}' is the wrong type '{}', expected type '{expected}'",
        crate::types::type_name(v)
    ))
}

fn field_path(name: &str, v: &Bson) -> Result<Vec<String>> {
    let Bson::String(s) = v else { return Err(wrong_type(name, v, "string")) };
    if s.is_empty() || s.starts_with('$') {
        return Err(EngineError::location(16410, format!("FieldPath field names may not start with '$' or be empty. Given: {s}")));
    }
    Ok(path::split(s))
}

fn parse(spec: &Bson) -> Result<Spec> {
    let Bson::Document(d) = spec else {
        return Err(failed_to_parse(format!(
            "The $densify stage specification must be an object, found {}",
            crate::types::type_name(spec)
        )));
    };
    let (mut field, mut partition_fields, mut range) = (None, Vec::new(), None);
    for (k, v) in d {
        match k.as_str() {
            "field" => field = Some(field_path("$densify.field", v)?),
            "partitionByFields" => {
                let Bson::Array(items) = v else { return Err(wrong_type("$densify.partitionByFields", v, "array")) };
                partition_fields = items.iter().map(|i| field_path("$densify.partitionByFields", i)).collect::<Result<_>>()?;
            }
            "range" => match v {
                Bson::Document(r) => range = Some(r),
                other => return Err(wrong_type("$densify.range", other, "object")),
            },
            other => return Err(unknown_field(&format!("$densify.{other}"))),
        }
    }
    let field = field.ok_or_else(|| missing_field("$densify.field"))?;
    let range = range.ok_or_else(|| missing_field("$densify.range"))?;
    let (mut step, mut unit, mut bounds) = (None, None, None);
    for (k, v) in range {
        match k.as_str() {
            "step" => step = Some(v),
            "unit" => match v {
                Bson::String(u) => unit = Some(u.clone()),
                other => return Err(wrong_type("$densify.range.unit", other, "string")),
            },
            "bounds" => bounds = Some(v),
            other => return Err(unknown_field(&format!("$densify.range.{other}"))),
        }
    }
    let step_bson = step.ok_or_else(|| missing_field("$densify.range.step"))?;
    let bounds = bounds.ok_or_else(|| missing_field("$densify.range.bounds"))?;
    let step = match Num::from_bson(step_bson) {
        Some(n) if num::cmp_num(n, Num::Int(0)) == Ordering::Greater => n,
        _ => {
            return Err(EngineError::location(
                5733401,
                "The step parameter in a range statement must be a strictly positive numeric value",
            ))
        }
    };
    if let Some(u) = &unit {
        if step.to_i64_exact().is_none() {
            return Err(EngineError::location(
                6586400,
                "The step parameter in a range statement must be a whole number when densifying a date range",
            ));
        }
        if !TIME_UNITS.contains(&u.as_str()) {
            return Err(failed_to_parse(format!("unknown time unit value: {u}")));
        }
    }
    let bounds = match bounds {
        Bson::Array(pair) => {
            if pair.len() != 2 {
                return Err(EngineError::location(5733403, "A bounding array in a range statement must have exactly two elements"));
            }
            let (lo, hi) = (&pair[0], &pair[1]);
            if cmp_bson(lo, hi) == Ordering::Greater {
                return Err(EngineError::location(
                    5733402,
                    "A bounding array must be an ascending array of either two dates or two numbers",
                ));
            }
            match (lo, hi) {
                (Bson::DateTime(l), h) => {
                    let Bson::DateTime(h) = h else {
                        return Err(EngineError::location(5733405, "A bounding array must contain either both dates or both numeric types"));
                    };
                    if unit.is_none() {
                        return Err(EngineError::location(5733410, "A bounding array of dates must specify a unit"));
                    }
                    Bounds::Explicit(Point::Date(l.timestamp_millis()), Point::Date(h.timestamp_millis()))
                }
                (l, h) if Num::from_bson(l).is_some() => {
                    if unit.is_some() {
                        return Err(EngineError::location(5733409, "Numeric bounds may not have unit parameter"));
                    }
                    let (Some(l), Some(h)) = (Num::from_bson(l), Num::from_bson(h)) else {
                        return Err(EngineError::location(5733406, "A bounding array must contain either both dates or both numeric types"));
                    };
                    let same = |a: &Bson, b: &Bson| std::mem::discriminant(a) == std::mem::discriminant(b);
                    if !same(&pair[0], &pair[1]) || !same(&pair[0], step_bson) {
                        return Err(EngineError::location(5876900, "Upper bound, lower bound, and step must all have the same type"));
                    }
                    Bounds::Explicit(Point::Number(l), Point::Number(h))
                }
                _ => return Err(EngineError::location(5946800, "Explicit bounds must be numeric or dates")),
            }
        }
        Bson::String(s) if s == "full" => Bounds::Full,
        Bson::String(s) if s == "partition" => Bounds::Partition,
        Bson::String(_) => return Err(EngineError::location(5946802, "Bounds string must either be 'full' or 'partition'")),
        _ => {
            return Err(EngineError::location(
                5733404,
                "The bounds in a range statement must be the string 'full', 'partition', or an ascending array of two numbers or two dates",
            ))
        }
    };
    if matches!(bounds, Bounds::Partition) && partition_fields.is_empty() {
        return Err(EngineError::location(
            5733408,
            "One cannot specify the bounds as 'partition' without specifying a non-empty array of partitionByFields. You may have meant to specify 'full' bounds.",
        ));
    }
    Ok(Spec { field, partition_fields, step, unit, bounds })
}

/// The running state of the stage over its sorted input.
struct Densifier<'a> {
    spec: &'a Spec,
    out: Vec<Document>,
    generated: usize,
}

impl Densifier<'_> {
    /// `p` moved by one step.
    fn next(&self, p: Point) -> Result<Point> {
        self.shift(p, 1)
    }

    fn previous(&self, p: Point) -> Result<Point> {
        self.shift(p, -1)
    }

    fn shift(&self, p: Point, direction: i64) -> Result<Point> {
        match p {
            Point::Number(n) => Ok(Point::Number(if direction > 0 { num::add(n, self.spec.step) } else { num::sub(n, self.spec.step) })),
            Point::Date(ms) => {
                let amount = self.spec.step.to_i64_exact().unwrap_or(1).saturating_mul(direction);
                let unit = self.spec.unit.as_deref().unwrap_or("millisecond");
                Ok(Point::Date(date_add(ms, unit, amount)?))
            }
        }
    }

    /// The value of the densified field, checked against the unit.
    fn value_of(&self, doc: &Document) -> Result<Option<Point>> {
        let v = path::get(doc, &self.spec.field);
        match (v, &self.spec.unit) {
            (None | Some(Bson::Null) | Some(Bson::Undefined), _) => Ok(None),
            (Some(Bson::DateTime(d)), Some(_)) => Ok(Some(Point::Date(d.timestamp_millis()))),
            (Some(b), None) if Num::from_bson(b).is_some() => Ok(Num::from_bson(b).map(Point::Number)),
            (Some(Bson::DateTime(_)), None) => Err(EngineError::location(
                6053600,
                "Encountered date densify value in collection when step does not have a date unit.",
            )),
            (Some(b), Some(_)) if Num::from_bson(b).is_some() => Err(EngineError::location(
                6053600,
                "Encountered numeric densify value in collection when step has a date unit.",
            )),
            (Some(_), _) => Err(EngineError::location(5733201, "Densify field type must be numeric or a date")),
        }
    }

    /// Emits a generated document for every grid value from `from` (on the
    /// grid) below `until`; returns the last one emitted.
    fn fill(&mut self, from: Point, until: Point, partition: &Document) -> Result<Option<Point>> {
        let mut last = None;
        let mut at = from;
        while at.lt(until) {
            self.generated += 1;
            if self.generated > MAX_GENERATED {
                return Err(EngineError::location(
                    5897900,
                    format!("Generated {} documents in $densify, which is over the limit of {MAX_GENERATED}.", self.generated),
                ));
            }
            let mut doc = partition.clone();
            let parts: Vec<&str> = self.spec.field.iter().map(String::as_str).collect();
            path::assign(&mut doc, &parts, Some(at.to_bson()));
            self.out.push(doc);
            last = Some(at);
            at = self.next(at)?;
        }
        Ok(last)
    }

    /// The common step: `current` is the partition's last grid value. A
    /// document one step on is the next grid value; one before that passes
    /// (it is off the grid); one further on first gets the grid values
    /// below it (below `limit` as well, when given). Returns the new
    /// `current`.
    fn advance(&mut self, current: Point, val: Point, doc: Document, partition: &Document, limit: Option<Point>) -> Result<Point> {
        let next = self.next(current)?;
        let mut current = current;
        match val.cmp(next) {
            Ordering::Equal => current = val,
            Ordering::Less => {}
            Ordering::Greater => {
                let until = match limit {
                    Some(hi) if hi.lt(val) => hi,
                    _ => val,
                };
                if let Some(last) = self.fill(next, until, partition)? {
                    current = last;
                }
                if val.cmp(self.next(current)?) == Ordering::Equal {
                    current = val;
                }
            }
        }
        self.out.push(doc);
        Ok(current)
    }
}

pub(super) fn densify(spec: &Bson, docs: Vec<Document>) -> Result<Vec<Document>> {
    let spec = parse(spec)?;
    // Sort as MongoDB's desugared $sort does: partitions first, except for
    // "full" bounds, which sort by the field alone.
    let mut sort_doc = Document::new();
    if !matches!(spec.bounds, Bounds::Full) {
        for p in &spec.partition_fields {
            sort_doc.insert(p.join("."), 1);
        }
    }
    sort_doc.insert(spec.field.join("."), 1);
    let mut docs = docs;
    SortSpec::parse(&sort_doc)?.sort(&mut docs);

    let mut d = Densifier { spec: &spec, out: Vec::with_capacity(docs.len()), generated: 0 };
    // Per partition (canonical key): its key document and last grid value.
    let mut partitions: HashMap<String, (Document, Option<Point>)> = HashMap::new();
    let mut seen_order: Vec<String> = Vec::new();
    let mut global: Option<(Point, Point)> = None;
    for doc in docs {
        let Some(val) = d.value_of(&doc)? else {
            d.out.push(doc);
            continue;
        };
        let key_doc = partition_key(&doc, &spec.partition_fields);
        let key = canonical_key(&Bson::Document(key_doc.clone()));
        let known = partitions.get(&key).map(|(_, c)| *c);
        if known.is_none() {
            seen_order.push(key.clone());
        }
        let current = match &spec.bounds {
            Bounds::Full => {
                let (min, _) = *global.get_or_insert((val, val));
                global = Some((min, val));
                match known {
                    Some(Some(c)) => Some(d.advance(c, val, doc, &key_doc, None)?),
                    // A partition's first document: the grid starts at the
                    // overall smallest value.
                    _ if spec.partition_fields.is_empty() && known.is_none() => {
                        d.out.push(doc);
                        Some(val)
                    }
                    _ => {
                        let before_min = d.previous(min)?;
                        Some(d.advance(before_min, val, doc, &key_doc, None)?)
                    }
                }
            }
            Bounds::Partition => match known {
                Some(Some(c)) => Some(d.advance(c, val, doc, &key_doc, None)?),
                _ => {
                    d.out.push(doc);
                    Some(val)
                }
            },
            Bounds::Explicit(lo, hi) => {
                let (lo, hi) = (*lo, *hi);
                let current = match known {
                    Some(Some(c)) => c,
                    _ => d.previous(lo)?,
                };
                if val.lt(lo) {
                    d.out.push(doc);
                    Some(current)
                } else if val.cmp(lo) == Ordering::Equal {
                    d.out.push(doc);
                    Some(val)
                } else if !val.lt(hi) && !d.next(current)?.lt(hi) {
                    // Above the range with nothing left to fill.
                    d.out.push(doc);
                    Some(current)
                } else {
                    Some(d.advance(current, val, doc, &key_doc, Some(hi))?)
                }
            }
        };
        partitions.insert(key, (key_doc, current));
    }
    // After the last document: explicit bounds fill every partition (or the
    // whole range when nothing was seen) up to `hi`; "full" with partitions
    // fills each up to the overall largest value.
    match &spec.bounds {
        Bounds::Explicit(lo, hi) => {
            if partitions.is_empty() && spec.partition_fields.is_empty() {
                d.fill(*lo, *hi, &Document::new())?;
            }
            for key in &seen_order {
                if let Some((key_doc, Some(current))) = partitions.get(key) {
                    let start = d.next(*current)?;
                    d.fill(start, *hi, key_doc)?;
                }
            }
        }
        Bounds::Full if !spec.partition_fields.is_empty() => {
            if let Some((min, max)) = global {
                let until = if on_grid(&d, min, max)? { d.next(max)? } else { max };
                for key in &seen_order {
                    if let Some((key_doc, Some(current))) = partitions.get(key) {
                        let start = d.next(*current)?;
                        d.fill(start, until, key_doc)?;
                    }
                }
            }
        }
        _ => {}
    }
    Ok(d.out)
}

/// Whether `value` is a whole number of steps from `base`.
fn on_grid(d: &Densifier<'_>, base: Point, value: Point) -> Result<bool> {
    match (base, value) {
        (Point::Number(b), Point::Number(v)) => {
            Ok(num::rem(num::sub(v, b), d.spec.step).is_some_and(|r| r.to_f64() == 0.0))
        }
        _ => {
            // Calendar units have no fixed length: step through them, as
            // MongoDB does, but never more often than the stage may generate.
            let mut at = base;
            let mut steps = 0;
            while at.lt(value) && steps <= MAX_GENERATED {
                at = d.next(at)?;
                steps += 1;
            }
            Ok(at.cmp(value) == Ordering::Equal)
        }
    }
}

/// The partition fields of `doc`, as the document generated ones start from.
fn partition_key(doc: &Document, fields: &[Vec<String>]) -> Document {
    let mut key = Document::new();
    for f in fields {
        if let Some(v) = path::get(doc, f) {
            let parts: Vec<&str> = f.iter().map(String::as_str).collect();
            path::assign(&mut key, &parts, Some(v.clone()));
        }
    }
    key
}

/// `millis` plus `amount` calendar units, as `$dateAdd` counts them (UTC).
fn date_add(millis: i64, unit: &str, amount: i64) -> Result<i64> {
    let start = Bson::DateTime(bson::DateTime::from_millis(millis));
    let e = bson::doc! {"$dateAdd": {"startDate": {"$literal": start}, "unit": unit, "amount": amount}};
    match expr::eval(&Bson::Document(e), &Document::new(), &Vars::new())? {
        Bson::DateTime(d) => Ok(d.timestamp_millis()),
        other => Err(EngineError::location(5166402, format!("$densify could not add {amount} {unit} to a date: {other}"))),
    }
}

#[cfg(test)]
#[path = "densify_tests.rs"]
mod tests;
