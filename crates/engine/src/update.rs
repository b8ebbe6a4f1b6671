//! Update documents (`$set`, `$inc`, ...), pipeline-style updates and replacements.
use crate::compare::{bson_eq, cmp_bson};
use crate::num::{self, Num};
use crate::pipeline::{run_with_vars, NoCollections};
use crate::query::{is_operator_doc, value_matches, Filter};
use crate::sort::SortSpec;
use crate::{path, EngineError, Result};
use bson::{Bson, DateTime, Document, Timestamp};
use std::cmp::Ordering;

mod positional;
pub use positional::{uses_match_position, ArrayFilters, Positions};

const OPERATORS: &[&str] = &[
    "$set", "$unset", "$inc", "$mul", "$min", "$max", "$rename", "$setOnInsert", "$currentDate", "$push",
    "$addToSet", "$pull", "$pullAll", "$pop", "$bit",
];

/// Applies `update` (an operator document, a replacement document, or an
/// array of pipeline stages) to `doc`. `is_insert` is true when the document is
/// being created by an upsert (so `$setOnInsert` applies).
pub fn apply_update(doc: &mut Document, update: &Bson, is_insert: bool) -> Result<()> {
    apply_update_at(doc, update, is_insert, &Positions::default())
}

/// [`apply_update`] for updates whose paths name array positions: the
/// positional `$` takes `positions.matched`, `$[<id>]` the array filters.
pub fn apply_update_at(doc: &mut Document, update: &Bson, is_insert: bool, positions: &Positions<'_>) -> Result<()> {
    let original_id = doc.get("_id").cloned();
    match update {
        Bson::Array(stages) => pipeline_update(doc, stages, positions.vars)?,
        Bson::Document(d) if is_operator_doc(d) => operator_update(doc, d, is_insert, positions)?,
        Bson::Document(d) => replace(doc, d)?,
        _ => return Err(EngineError::new(9, "FailedToParse", "Update argument must be either an object or an array")),
    }
    check_id(doc, original_id, is_insert)
}

/// The assignments of a pipeline that is one `$set`/`$addFields` of
/// `{$literal: value}` to top-level fields (an SQL `UPDATE ... SET a = %s`):
/// applied as plain assignments, with the same result as running the stage
/// (each field replaced in place or appended), without building a pipeline
/// for every document.
fn literal_assignments(stages: &[Bson]) -> Option<Vec<(&str, &Bson)>> {
    let [Bson::Document(stage)] = stages else { return None };
    let (name, Bson::Document(spec)) = stage.iter().next()? else { return None };
    if stage.len() != 1 || !matches!(name.as_str(), "$set" | "$addFields") || spec.is_empty() {
        return None;
    }
    spec.iter()
        .map(|(field, value)| {
            let plain = !field.is_empty() && !field.starts_with('$') && !field.contains('.');
            match value {
                Bson::Document(literal) if plain && literal.len() == 1 => literal.get("$literal").map(|v| (field.as_str(), v)),
                _ => None,
            }
        })
        .collect()
}

/// Whether `update` is a replacement document rather than operators or a pipeline.
pub fn is_replacement(update: &Bson) -> bool {
    matches!(update, Bson::Document(d) if !is_operator_doc(d))
}

fn check_id(doc: &mut Document, original: Option<Bson>, is_insert: bool) -> Result<()> {
    let Some(orig) = original else { return Ok(()) };
    match doc.get("_id") {
        None => {
            // _id can never be removed; put it back first, where it was.
            let mut with_id = Document::new();
            with_id.insert("_id", orig);
            for (k, v) in std::mem::take(doc) {
                with_id.insert(k, v);
            }
            *doc = with_id;
            Ok(())
        }
        Some(now) if !is_insert && !same_id(now, &orig) => {
            Err(EngineError::new(
                66,
                "ImmutableField",
                format!("Performing an update on the path '_id' would modify the immutable field '_id' (from {orig} to {now})"),
            ))
        }
        _ => Ok(()),
    }
}

/// `_id` must stay identical, type included (1 and 1.0 are different ids on disk).
fn same_id(a: &Bson, b: &Bson) -> bool {
    bson_eq(a, b) && crate::types::type_code(a) == crate::types::type_code(b)
}

/// Decides whether an array element is removed by `$pull`/`$pullAll`.
type ElementMatcher = Box<dyn Fn(&Bson) -> Result<bool>>;

fn replace(doc: &mut Document, replacement: &Document) -> Result<()> {
    for k in replacement.keys() {
        if k.starts_with('$') {
            return Err(EngineError::new(52, "DollarPrefixedFieldName", format!("The dollar ($) prefixed field '{k}' is not valid for storage.")));
        }
    }
    let mut out = Document::new();
    match (doc.get("_id"), replacement.get("_id")) {
        (_, Some(id)) | (Some(id), None) => {
            out.insert("_id", id.clone());
        }
        (None, None) => {}
    }
    for (k, v) in replacement {
        if k != "_id" {
            out.insert(k.clone(), v.clone());
        }
    }
    *doc = out;
    Ok(())
}

fn pipeline_update(doc: &mut Document, stages: &[Bson], vars: Option<&crate::expr::Vars>) -> Result<()> {
    if let Some(assignments) = literal_assignments(stages) {
        for (field, value) in assignments {
            doc.insert(field, value.clone());
        }
        return Ok(());
    }
    let mut parsed = Vec::with_capacity(stages.len());
    for s in stages {
        let Bson::Document(stage) = s else {
            return Err(EngineError::new(14, "TypeMismatch", "each element of an update pipeline must be an object"));
        };
        let name = stage.keys().next().map(String::as_str).unwrap_or("");
        if !matches!(name, "$addFields" | "$set" | "$project" | "$unset" | "$replaceRoot" | "$replaceWith") {
            return Err(EngineError::new(72, "InvalidOptions", format!("{name} is not allowed to be used within an update")));
        }
        parsed.push(stage.clone());
    }
    let no_vars = crate::expr::Vars::new();
    let mut out = run_with_vars(&parsed, vec![doc.clone()], &NoCollections, vars.unwrap_or(&no_vars))?;
    match out.pop() {
        Some(d) if out.is_empty() => {
            *doc = d;
            Ok(())
        }
        _ => Err(EngineError::bad_value("an update pipeline must produce exactly one document")),
    }
}

/// One field modification, with its operator and argument.
struct Change<'a> {
    op: &'a str,
    path: Vec<String>,
    arg: &'a Bson,
}

fn conflict(a: &[String], b: &[String]) -> bool {
    let n = a.len().min(b.len());
    a[..n] == b[..n]
}

fn operator_update(doc: &mut Document, update: &Document, is_insert: bool, positions: &Positions<'_>) -> Result<()> {
    let mut changes: Vec<Change> = Vec::new();
    for (op, fields) in update {
        if !OPERATORS.contains(&op.as_str()) {
            return Err(EngineError::new(9, "FailedToParse", format!("Unknown modifier: {op}. Expected a valid update modifier or pipeline-style update specified as an array")));
        }
        let Bson::Document(fields) = fields else {
            return Err(EngineError::new(
                9,
                "FailedToParse",
                format!("Modifiers operate on fields but we found type {} instead. For example: {{$mod: {{<field>: ...}}}} not {{{op}: {fields}}}", crate::types::type_name(fields)),
            ));
        };
        if op == "$setOnInsert" && !is_insert {
            continue;
        }
        for (field, arg) in fields {
            if field.is_empty() || field.split('.').any(str::is_empty) {
                return Err(EngineError::new(56, "EmptyFieldName", format!("An empty update path is not valid: '{field}'")));
            }
            if op == "$rename" {
                let target = arg.as_str().unwrap_or_default();
                for (which, p) in [("source", field.as_str()), ("destination", target)] {
                    if p.split('.').any(|part| part.starts_with('$')) {
                        return Err(EngineError::bad_value(format!("The {which} field for $rename may not be dynamic: {p}")));
                    }
                }
            }
            // Array positions resolve against this document before anything
            // changes, so `a.$[]` and `a.$[x]` name the elements they started at.
            for concrete in positional::expand(doc, &path::split(field), positions)? {
                changes.push(Change { op, path: concrete, arg });
            }
        }
    }
    check_conflicts(&changes)?;
    // MongoDB applies field updates in path order, which decides where new fields land.
    changes.sort_by(|a, b| a.path.cmp(&b.path));
    for c in &changes {
        apply_one(doc, c.op, &c.path, c.arg)?;
    }
    Ok(())
}

/// Every touched path (both ends of a `$rename`) must be independent of the
/// others; checked on concrete paths, so `a.$[]` conflicts with `a.0`.
fn check_conflicts(changes: &[Change]) -> Result<()> {
    let rename_targets: Vec<Vec<String>> = changes
        .iter()
        .filter(|c| c.op == "$rename")
        .filter_map(|c| c.arg.as_str().map(path::split))
        .collect();
    let touched: Vec<&[String]> = changes.iter().map(|c| c.path.as_slice()).chain(rename_targets.iter().map(Vec::as_slice)).collect();
    for (i, a) in touched.iter().enumerate() {
        for b in touched.iter().skip(i + 1) {
            if conflict(a, b) {
                return Err(EngineError::new(
                    40,
                    "ConflictingUpdateOperators",
                    format!("Updating the path '{}' would create a conflict at '{}'", b.join("."), a[..a.len().min(b.len())].join(".")),
                ));
            }
        }
    }
    Ok(())
}

fn id_of(doc: &Document) -> String {
    doc.get("_id").map(|v| format!("{{_id: {v}}}")).unwrap_or_else(|| "{}".into())
}

fn number_arg(op: &str, field: &[String], arg: &Bson) -> Result<Num> {
    Num::from_bson(arg).ok_or_else(|| {
        let verb = if op == "$inc" { "increment" } else { "multiply" };
        EngineError::type_mismatch(format!("Cannot {verb} with non-numeric argument: {{{}: {arg}}}", field.join(".")))
    })
}

fn array_target<'a>(doc: &'a mut Document, p: &[String], op: &str) -> Result<Option<&'a mut Vec<Bson>>> {
    let id = id_of(doc);
    match path::get_mut(doc, p) {
        None => Ok(None),
        Some(Bson::Array(a)) => Ok(Some(a)),
        Some(other) => Err(EngineError::bad_value(format!(
            "{op}: the field '{}' must be an array but is of type {} in document {id}",
            p.join("."),
            crate::types::type_name(other)
        ))),
    }
}

fn apply_one(doc: &mut Document, op: &str, p: &[String], arg: &Bson) -> Result<()> {
    match op {
        "$set" | "$setOnInsert" => path::set(doc, p, arg.clone()),
        "$unset" => {
            path::unset(doc, p);
            Ok(())
        }
        "$inc" | "$mul" => {
            let n = number_arg(op, p, arg)?;
            let id = id_of(doc);
            let new = match path::get(doc, p) {
                None => {
                    if op == "$inc" {
                        n
                    } else {
                        num::mul(n, Num::Int(0))
                    }
                }
                Some(cur) => match Num::from_bson(cur) {
                    Some(c) => {
                        if op == "$inc" {
                            num::add(c, n)
                        } else {
                            num::mul(c, n)
                        }
                    }
                    None => {
                        return Err(EngineError::type_mismatch(format!(
                            "Cannot apply {op} to a value of non-numeric type. {id} has the field '{}' of non-numeric type {}",
                            p.join("."),
                            crate::types::type_name(cur)
                        )));
                    }
                },
            };
            path::set(doc, p, new.to_bson())
        }
        "$min" | "$max" => {
            let replace = match path::get(doc, p) {
                None => true,
                Some(cur) => {
                    let o = cmp_bson(arg, cur);
                    if op == "$min" { o == Ordering::Less } else { o == Ordering::Greater }
                }
            };
            if replace {
                path::set(doc, p, arg.clone())?;
            }
            Ok(())
        }
        "$rename" => {
            let Bson::String(to) = arg else {
                return Err(EngineError::bad_value(format!("The 'to' field for $rename must be a string: {}: {arg}", p.join("."))));
            };
            let to = path::split(to);
            if to.as_slice() == p {
                return Err(EngineError::bad_value(format!("The source and target field for $rename must differ: {}", p.join("."))));
            }
            rename_source_viable(doc, p)?;
            if let Some(v) = path::get(doc, p).cloned() {
                path::unset(doc, p);
                path::set(doc, &to, v)?;
            }
            Ok(())
        }
        "$currentDate" => {
            let as_timestamp = match arg {
                Bson::Boolean(_) => false,
                Bson::Document(d) => match d.get_str("$type") {
                    Ok("date") => false,
                    Ok("timestamp") => true,
                    _ => return Err(EngineError::bad_value("The '$type' string field is required to be 'date' or 'timestamp'")),
                },
                _ => return Err(EngineError::bad_value(format!("{} is not valid type for $currentDate. Please use a boolean ('true') or a $type expression ({{$type: 'timestamp/date'}}).", crate::types::type_name(arg)))),
            };
            let now = DateTime::now();
            let value = if as_timestamp {
                let secs = u32::try_from(now.timestamp_millis() / 1000).unwrap_or(0);
                Bson::Timestamp(Timestamp { time: secs, increment: 1 })
            } else {
                Bson::DateTime(now)
            };
            path::set(doc, p, value)
        }
        "$push" => push(doc, p, arg),
        "$addToSet" => {
            let items: Vec<Bson> = match arg {
                Bson::Document(d) if d.contains_key("$each") => match d.get("$each") {
                    Some(Bson::Array(a)) => a.clone(),
                    _ => return Err(EngineError::bad_value("The argument to $each in $addToSet must be an array")),
                },
                other => vec![other.clone()],
            };
            match array_target(doc, p, op)? {
                Some(arr) => {
                    for item in items {
                        if !arr.iter().any(|e| bson_eq(e, &item)) {
                            arr.push(item);
                        }
                    }
                    Ok(())
                }
                None => {
                    let mut fresh: Vec<Bson> = Vec::new();
                    for item in items {
                        if !fresh.iter().any(|e| bson_eq(e, &item)) {
                            fresh.push(item);
                        }
                    }
                    path::set(doc, p, Bson::Array(fresh))
                }
            }
        }
        "$pull" | "$pullAll" => {
            let matcher: ElementMatcher = if op == "$pullAll" {
                let Bson::Array(values) = arg else {
                    return Err(EngineError::bad_value(format!("$pullAll requires an array argument but was given a {}", crate::types::type_name(arg))));
                };
                let values = values.clone();
                Box::new(move |e: &Bson| Ok(values.iter().any(|v| bson_eq(v, e))))
            } else {
                match arg {
                    Bson::Document(d) if is_operator_doc(d) => {
                        let cond = arg.clone();
                        Box::new(move |e: &Bson| value_matches(&cond, e))
                    }
                    Bson::Document(d) => {
                        let filter = Filter::parse(d)?;
                        Box::new(move |e: &Bson| match e {
                            Bson::Document(ed) => filter.matches(ed),
                            _ => Ok(false),
                        })
                    }
                    Bson::RegularExpression(_) => {
                        let cond = arg.clone();
                        Box::new(move |e: &Bson| value_matches(&cond, e))
                    }
                    other => {
                        let v = other.clone();
                        Box::new(move |e: &Bson| Ok(bson_eq(&v, e)))
                    }
                }
            };
            if let Some(arr) = array_target(doc, p, op)? {
                let mut kept = Vec::with_capacity(arr.len());
                for e in arr.drain(..) {
                    if !matcher(&e)? {
                        kept.push(e);
                    }
                }
                *arr = kept;
            }
            Ok(())
        }
        "$pop" => {
            let first = match Num::from_bson(arg).and_then(|n| n.to_i64_exact()) {
                Some(1) => false,
                Some(-1) => true,
                _ => return Err(EngineError::bad_value(format!("$pop expects 1 or -1, found: {arg}"))),
            };
            if let Some(arr) = array_target(doc, p, op)? {
                if first {
                    if !arr.is_empty() {
                        arr.remove(0);
                    }
                } else {
                    arr.pop();
                }
            }
            Ok(())
        }
        "$bit" => {
            let Bson::Document(spec) = arg else {
                return Err(EngineError::bad_value("$bit requires an object argument"));
            };
            let mut cur = match path::get(doc, p) {
                None => Bson::Int32(0),
                Some(v @ (Bson::Int32(_) | Bson::Int64(_))) => v.clone(),
                Some(_) => return Err(EngineError::bad_value("Cannot apply $bit to a value of non-integral type")),
            };
            for (bop, operand) in spec {
                cur = match (cur, operand) {
                    (Bson::Int32(a), Bson::Int32(b)) => Bson::Int32(bit(bop, i64::from(a), i64::from(*b))? as i32),
                    (a, b) => {
                        let x = a.as_i64().or_else(|| a.as_i32().map(i64::from)).unwrap_or(0);
                        let y = b.as_i64().or_else(|| b.as_i32().map(i64::from)).ok_or_else(|| EngineError::bad_value("$bit operands must be integers"))?;
                        Bson::Int64(bit(bop, x, y)?)
                    }
                };
            }
            path::set(doc, p, cur)
        }
        _ => Err(EngineError::bad_value(format!("Unknown modifier: {op}"))),
    }
}

fn bit(op: &str, a: i64, b: i64) -> Result<i64> {
    match op {
        "and" => Ok(a & b),
        "or" => Ok(a | b),
        "xor" => Ok(a ^ b),
        _ => Err(EngineError::bad_value(format!("The $bit modifier only supports 'and', 'or', and 'xor', not '{op}'"))),
    }
}

fn push(doc: &mut Document, p: &[String], arg: &Bson) -> Result<()> {
    let (items, position, slice, sort) = match arg {
        Bson::Document(d) if d.contains_key("$each") => {
            let Some(Bson::Array(each)) = d.get("$each") else {
                return Err(EngineError::bad_value("The argument to $each in $push must be an array"));
            };
            for k in d.keys() {
                if !matches!(k.as_str(), "$each" | "$position" | "$slice" | "$sort") {
                    return Err(EngineError::bad_value(format!("Unrecognized clause in $push: {k}")));
                }
            }
            let int = |k: &str| -> Result<Option<i64>> {
                match d.get(k) {
                    None => Ok(None),
                    Some(v) => Num::from_bson(v)
                        .and_then(|n| n.to_i64_exact())
                        .map(Some)
                        .ok_or_else(|| EngineError::bad_value(format!("The value for {k} must be an integer value"))),
                }
            };
            (each.clone(), int("$position")?, int("$slice")?, d.get("$sort").cloned())
        }
        other => (vec![other.clone()], None, None, None),
    };
    let arr = match array_target(doc, p, "$push")? {
        Some(a) => a,
        None => {
            path::set(doc, p, Bson::Array(Vec::new()))?;
            match array_target(doc, p, "$push")? {
                Some(a) => a,
                None => return Err(EngineError::bad_value("could not create the array for $push")),
            }
        }
    };
    let len = arr.len() as i64;
    let at = match position {
        None => arr.len(),
        Some(i) if i < 0 => (len + i).max(0) as usize,
        Some(i) => i.min(len) as usize,
    };
    for (offset, item) in items.into_iter().enumerate() {
        arr.insert(at + offset, item);
    }
    if let Some(spec) = sort {
        match &spec {
            Bson::Document(d) => {
                let mut docs: Vec<Document> = Vec::with_capacity(arr.len());
                let mut others = Vec::new();
                for e in arr.drain(..) {
                    match e {
                        Bson::Document(ed) => docs.push(ed),
                        o => others.push(o),
                    }
                }
                SortSpec::parse(d)?.sort(&mut docs);
                arr.extend(others);
                arr.extend(docs.into_iter().map(Bson::Document));
            }
            other => {
                let desc = match Num::from_bson(other).and_then(|n| n.to_i64_exact()) {
                    Some(1) => false,
                    Some(-1) => true,
                    _ => return Err(EngineError::bad_value("The $sort element value must be either 1 or -1")),
                };
                arr.sort_by(|a, b| if desc { cmp_bson(b, a) } else { cmp_bson(a, b) });
            }
        }
    }
    if let Some(n) = slice {
        let len = arr.len() as i64;
        if n >= 0 {
            arr.truncate(n as usize);
        } else if n.saturating_neg() < len {
            arr.drain(..(len + n) as usize);
        }
    }
    Ok(())
}

/// MongoDB's $rename treats a missing source as a no-op, but a source path that runs
/// through a value it cannot traverse (`n.y` where `n` is 5, null, or an array and `y` is
/// not an index) fails with PathNotViable, as other update operators do.
fn rename_source_viable(doc: &Document, p: &[String]) -> Result<()> {
    let mut cur = doc;
    for (i, part) in p.iter().enumerate().take(p.len().saturating_sub(1)) {
        let next = &p[i + 1];
        match cur.get(part) {
            None => return Ok(()),
            Some(Bson::Document(d)) => cur = d,
            Some(Bson::Array(_)) if !next.is_empty() && next.bytes().all(|b| b.is_ascii_digit()) => return Ok(()),
            Some(other) => {
                return Err(EngineError::new(
                    28,
                    "PathNotViable",
                    format!("cannot use the part ({next} of {}) to traverse the element ({{{part}: {other}}})", p.join(".")),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::{bson, doc};

    fn upd(mut d: Document, u: Bson) -> Result<Document> {
        apply_update(&mut d, &u, false).map(|_| d)
    }

    #[test]
    fn set_unset_and_nested_paths() {
        let d = upd(doc! {"_id": 1, "a": 1}, bson!({"$set": {"b.c": 2, "a": 5}, "$unset": {"zz": ""}})).unwrap();
        assert_eq!(d, doc! {"_id": 1, "a": 5, "b": {"c": 2}});
        let d = upd(d, bson!({"$unset": {"b.c": 1}})).unwrap();
        assert_eq!(d, doc! {"_id": 1, "a": 5, "b": {}});
    }

    #[test]
    fn inc_mul_min_max_rename() {
        let d = upd(doc! {"_id": 1, "n": 1, "x": 2.5}, bson!({"$inc": {"n": 2, "m": 1_i64}, "$mul": {"x": 2, "y": 3}})).unwrap();
        assert_eq!(d, doc! {"_id": 1, "n": 3, "x": 5.0, "m": 1_i64, "y": 0});
        let d = upd(doc! {"_id": 1, "n": 2147483647}, bson!({"$inc": {"n": 1}})).unwrap();
        assert_eq!(d.get("n"), Some(&Bson::Int64(2147483648)));
        let e = upd(doc! {"_id": 1, "s": "x"}, bson!({"$inc": {"s": 1}})).unwrap_err();
        assert_eq!(e.code, 14);
        let d = upd(doc! {"_id": 1, "a": 5}, bson!({"$min": {"a": 3, "b": 1}, "$max": {"c": 1}})).unwrap();
        assert_eq!(d, doc! {"_id": 1, "a": 3, "b": 1, "c": 1});
        let d = upd(doc! {"_id": 1, "a": 5}, bson!({"$rename": {"a": "z.y"}})).unwrap();
        assert_eq!(d, doc! {"_id": 1, "z": {"y": 5}});
    }

    #[test]
    fn rename_through_a_scalar_is_path_not_viable() {
        // A missing source is a no-op, at any depth ...
        let d = upd(doc! {"_id": 1, "n": {"x": 1}}, bson!({"$rename": {"n.y": "n.yy", "m.y": "m.yy"}})).unwrap();
        assert_eq!(d, doc! {"_id": 1, "n": {"x": 1}});
        // ... but a source path through a scalar, null or (by name) an array fails, like MongoDB.
        for n in [bson!(5), Bson::Null, bson!("s"), bson!([1, 2])] {
            let e = upd(doc! {"_id": 1, "n": n.clone()}, bson!({"$rename": {"n.y": "n.yy"}})).unwrap_err();
            assert_eq!(e.code, 28, "n = {n}");
        }
    }

    #[test]
    fn arrays() {
        let d = upd(doc! {"_id": 1, "l": [1]}, bson!({"$push": {"l": 2, "m": {"$each": [3, 1, 2], "$sort": 1, "$slice": 2}}})).unwrap();
        assert_eq!(d, doc! {"_id": 1, "l": [1, 2], "m": [1, 2]});
        let d = upd(d, bson!({"$addToSet": {"l": {"$each": [2.0, 4]}}, "$pull": {"m": {"$gte": 2}}})).unwrap();
        assert_eq!(d, doc! {"_id": 1, "l": [1, 2, 4], "m": [1]});
        let d = upd(d, bson!({"$pop": {"l": -1}, "$pullAll": {"m": [1]}})).unwrap();
        assert_eq!(d, doc! {"_id": 1, "l": [2, 4], "m": []});
        let d = upd(doc! {"_id": 1, "l": [{"a": 1}, {"a": 2}]}, bson!({"$pull": {"l": {"a": 1}}, "$set": {"k": 1}})).unwrap();
        assert_eq!(d, doc! {"_id": 1, "l": [{"a": 2}], "k": 1});
        let d = upd(doc! {"_id": 1, "l": [{"a": 1}, {"a": 2}]}, bson!({"$inc": {"l.$[].a": 10}})).unwrap();
        assert_eq!(d, doc! {"_id": 1, "l": [{"a": 11}, {"a": 12}]});
        assert!(upd(doc! {"_id": 1, "l": 5}, bson!({"$push": {"l": 1}})).is_err());
    }

    #[test]
    fn errors() {
        assert_eq!(upd(doc! {"_id": 1}, bson!({"$set": {"_id": 2}})).unwrap_err().code, 66);
        assert!(upd(doc! {"_id": 1}, bson!({"$set": {"_id": 1}})).is_ok());
        assert_eq!(upd(doc! {"_id": 1}, bson!({"$set": {"a": 1}, "$inc": {"a.b": 1}})).unwrap_err().code, 40);
        assert_eq!(upd(doc! {"_id": 1}, bson!({"$foo": {"a": 1}})).unwrap_err().code, 9);
        assert_eq!(upd(doc! {"_id": 1, "a": 1}, bson!({"$set": {"a.b": 1}})).unwrap_err().code, 28);
    }

    #[test]
    fn replacement_keeps_id_and_set_on_insert() {
        let d = upd(doc! {"_id": 1, "a": 1}, bson!({"b": 2})).unwrap();
        assert_eq!(d, doc! {"_id": 1, "b": 2});
        assert_eq!(upd(doc! {"_id": 1}, bson!({"_id": 2})).unwrap_err().code, 66);
        let mut d = doc! {"_id": 3};
        apply_update(&mut d, &bson!({"$setOnInsert": {"c": 1}, "$set": {"d": 1}}), true).unwrap();
        assert_eq!(d, doc! {"_id": 3, "c": 1, "d": 1});
        let d = upd(doc! {"_id": 3}, bson!({"$setOnInsert": {"c": 1}})).unwrap();
        assert_eq!(d, doc! {"_id": 3});
    }

    #[test]
    fn pipeline_updates_see_the_old_document() {
        let d = upd(
            doc! {"_id": 1, "a": 1, "b": 5},
            bson!([{"$set": {"a": {"$add": ["$a", 1]}, "c": "$a", "s": {"$literal": "$x"}}}, {"$unset": "b"}]),
        )
        .unwrap();
        assert_eq!(d, doc! {"_id": 1, "a": 2, "c": 1, "s": "$x"});
        let d = upd(doc! {"_id": 1, "a": 1}, bson!([{"$project": {"a": 1, "_id": 0}}])).unwrap();
        assert_eq!(d, doc! {"_id": 1, "a": 1});
        let d = upd(doc! {"_id": 1, "a": {"b": 2}}, bson!([{"$replaceWith": {"$mergeObjects": ["$$ROOT", "$a"]}}])).unwrap();
        assert_eq!(d, doc! {"_id": 1, "a": {"b": 2}, "b": 2});
        assert!(upd(doc! {"_id": 1}, bson!([{"$group": {"_id": null}}])).is_err());
        assert_eq!(upd(doc! {"_id": 1}, bson!([{"$set": {"_id": 9}}])).unwrap_err().code, 66);
    }

    #[test]
    fn literal_assignments_give_what_the_pipeline_gives() {
        let before = doc! {"_id": 1, "a": 1, "b": {"c": 2}, "arr": [{"x": 1}, {"x": 2}]};
        let cases = [
            bson!([{"$set": {"a": {"$literal": 5}, "new": {"$literal": {"$gt": ""}}, "b": {"$literal": null}}}]),
            bson!([{"$addFields": {"b": {"$literal": [1, {"$x": 2}]}}}]),
            // Not plain assignments: the pipeline runs (a dotted path sets
            // the field in every element of an array, an expression reads
            // the document).
            bson!([{"$set": {"arr.x": {"$literal": 9}}}]),
            bson!([{"$set": {"a": {"$literal": 5}, "c": "$a"}}]),
        ];
        for update in cases {
            let Bson::Array(stages) = &update else { unreachable!() };
            let mut fast = before.clone();
            apply_update(&mut fast, &update, false).unwrap();
            let parsed: Vec<Document> = stages.iter().map(|s| s.as_document().unwrap().clone()).collect();
            let slow = run_with_vars(&parsed, vec![before.clone()], &NoCollections, &crate::expr::Vars::new()).unwrap().pop().unwrap();
            assert_eq!(fast, slow, "{update}");
        }
        assert_eq!(upd(doc! {"_id": 1}, bson!([{"$set": {"_id": {"$literal": 9}}}])).unwrap_err().code, 66);
    }
}
