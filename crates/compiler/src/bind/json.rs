//! JSON values where a JSON function expects one, and JSON containment
//! expanded over a value known when the statement is bound.
//!
//! A JSONField stores native BSON (docs/json.md): SQL NULL is BSON null, a
//! JSON `null` standing for a whole value is MinKey. A parameter Django
//! adapted (`DatabaseOperations.adapt_json_value`) arrives converted already;
//! a plain string where a JSON value is expected is JSON text, as SQL's JSON
//! functions read it (`RawSQL('%s', ['{"x": 1}'])`).
//!
//! JSON_CONTAINS(container, candidate), MySQL's rules (as Django documents
//! `contains`): a candidate object is contained in a container object when
//! each of its keys is there with a value containing the candidate's; a
//! candidate array when each element is contained in some element of the
//! container array; any other candidate in an array when it is contained in
//! some element; scalars when they are equal. The expression is expanded over
//! the known value's structure, so it runs in the server however deep the
//! stored value is; on the computed side an array met where the value is not
//! one is searched one level deep.
use super::BindError;
use bson::{doc, Bson, Document};
use serde_json::Value;

/// Deepest contains / contained_by value: each level nests the expression
/// about 10 levels, and MongoDB accepts commands nested at most 200 deep.
pub const MAX_CONTAINS_DEPTH: usize = 16;

/// Deepest JSON text a parameter may hold (MongoDB's document nesting limit).
const MAX_TEXT_DEPTH: usize = 100;

/// JSON text as the value a JSONField stores.
pub(super) fn parse_text(text: &str) -> Result<Bson, BindError> {
    let value: Value = serde_json::from_str(text).map_err(|e| BindError::Data(format!("not valid JSON text: {e}")))?;
    if value.is_null() {
        return Ok(Bson::MinKey);
    }
    from_json(&value, 0)
}

fn from_json(value: &Value, depth: usize) -> Result<Bson, BindError> {
    if depth > MAX_TEXT_DEPTH {
        return Err(BindError::Data(format!("JSON text nested more than {MAX_TEXT_DEPTH} levels deep (MongoDB's limit)")));
    }
    Ok(match value {
        Value::Null => Bson::Null,
        Value::Bool(b) => Bson::Boolean(*b),
        // As the Python client stores ints: 32 bits when they fit.
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i32::try_from(i).map_or(Bson::Int64(i), Bson::Int32),
            (None, Some(f)) if n.is_u64() => return Err(BindError::Data(format!("a JSON integer out of range: {f}"))),
            (None, Some(f)) => Bson::Double(f),
            (None, None) => return Err(BindError::Data(format!("a JSON number out of range: {n}"))),
        },
        Value::String(s) => Bson::String(s.clone()),
        Value::Array(items) => Bson::Array(items.iter().map(|i| from_json(i, depth + 1)).collect::<Result<_, _>>()?),
        Value::Object(map) => {
            let mut out = Document::new();
            for (k, v) in map {
                out.insert(k.clone(), from_json(v, depth + 1)?);
            }
            Bson::Document(out)
        }
    })
}

/// An aggregation expression: whether the computed JSON value `expr`
/// contains the known `value` (`value_is == "contained"`) or is contained in
/// it (`"container"`). NULL on either side gives NULL.
pub(super) fn contains(expr: Bson, value: &Bson, value_is: &str) -> Result<Bson, BindError> {
    if matches!(value, Bson::Null) {
        return Ok(Bson::Null);
    }
    if deeper_than(value, MAX_CONTAINS_DEPTH) {
        return Err(BindError::NotSupported(format!(
            "contains / contained_by with a value nested more than {MAX_CONTAINS_DEPTH} levels deep (its expression would nest deeper than MongoDB accepts)"
        )));
    }
    let mut names = Names(0);
    let var = names.next();
    let x = format!("$${var}");
    let body = match value_is {
        "contained" => contains_value(&x, value, &mut names),
        "container" => contained_in_value(&x, value, &mut names),
        other => return Err(BindError::Programming(format!("malformed $jsonContains in the plan: value_is {other:?}"))),
    };
    Ok(Bson::Document(doc! {"$let": {"vars": {var: expr}, "in": {"$cond": [
        {"$eq": [{"$ifNull": [x, Bson::Null]}, Bson::Null]}, Bson::Null, body]}}}))
}

/// Whether `value` nests containers more than `limit` levels deep (walks at
/// most `limit + 1` levels).
fn deeper_than(value: &Bson, limit: usize) -> bool {
    let children: Box<dyn Iterator<Item = &Bson>> = match value {
        Bson::Document(d) => Box::new(d.values()),
        Bson::Array(a) => Box::new(a.iter()),
        _ => return false,
    };
    let mut children = children.peekable();
    if limit == 0 {
        // An empty container adds no level (as the value's JSON nests).
        return children.peek().is_some();
    }
    children.any(|c| deeper_than(c, limit - 1))
}

struct Names(usize);

impl Names {
    fn next(&mut self) -> String {
        self.0 += 1;
        format!("jc{}", self.0)
    }
}

fn lit(value: &Bson) -> Bson {
    Bson::Document(doc! {"$literal": value.clone()})
}

fn type_is(expr: &str, name: &str) -> Bson {
    Bson::Document(doc! {"$eq": [{"$type": expr}, name]})
}

fn and(parts: Vec<Bson>) -> Bson {
    let mut parts: Vec<Bson> = parts.into_iter().filter(|p| !matches!(p, Bson::Boolean(true))).collect();
    match parts.len() {
        0 => Bson::Boolean(true),
        1 => parts.remove(0),
        _ => Bson::Document(doc! {"$and": parts}),
    }
}

fn or(mut parts: Vec<Bson>) -> Bson {
    match parts.len() {
        0 => Bson::Boolean(false),
        1 => parts.remove(0),
        _ => Bson::Document(doc! {"$or": parts}),
    }
}

fn map_over(input: Bson, name: &str, cond: Bson, combine: &str) -> Bson {
    Bson::Document(doc! {combine: [{"$map": {"input": input, "as": name, "in": cond}}]})
}

fn is_json_null(expr: &str) -> Bson {
    Bson::Document(doc! {"$in": [{"$type": expr}, ["null", "minKey"]]})
}

fn scalar_equal(expr: &str, value: &Bson) -> Bson {
    if matches!(value, Bson::MinKey | Bson::Null) {
        return is_json_null(expr);
    }
    Bson::Document(doc! {"$eq": [expr, lit(value)]})
}

/// `test` over the elements of `expr` if it is an array, else over `expr`
/// alone: one expansion of `test` serves both cases, so the expression grows
/// with the value, never exponentially.
fn each(expr: &str, names: &mut Names, test: impl FnOnce(&str, &mut Names) -> Bson, combine: &str) -> Bson {
    let element = names.next();
    let candidates = Bson::Document(doc! {"$cond": [{"$isArray": expr}, expr, [expr]]});
    let cond = test(&format!("$${element}"), names);
    map_over(candidates, &element, cond, combine)
}

/// `x` (a variable reference) contains the known `value`.
fn contains_value(x: &str, value: &Bson, names: &mut Names) -> Bson {
    if let Bson::Array(items) = value {
        let mut parts = Vec::with_capacity(items.len());
        for item in items {
            let element = names.next();
            let cond = contains_value(&format!("$${element}"), item, names);
            parts.push(map_over(Bson::String(x.to_owned()), &element, cond, "$anyElementTrue"));
        }
        return Bson::Document(doc! {"$cond": [{"$isArray": x}, and(parts), false]});
    }
    // A non-array value is contained in an array when it is in some element.
    each(x, names, |e, names| contains_direct(e, value, names), "$anyElementTrue")
}

fn contains_direct(x: &str, value: &Bson, names: &mut Names) -> Bson {
    if let Bson::Document(fields) = value {
        let mut parts = Vec::with_capacity(fields.len());
        for (key, item) in fields {
            let field = names.next();
            let got = doc! {"$getField": {"field": lit(&Bson::String(key.clone())), "input": x}};
            let inner = contains_value(&format!("$${field}"), item, names);
            parts.push(Bson::Document(doc! {"$let": {"vars": {field: got.clone()}, "in": and(vec![
                Bson::Document(doc! {"$ne": [{"$type": got}, "missing"]}),
                inner,
            ])}}));
        }
        return Bson::Document(doc! {"$cond": [type_is(x, "object"), and(parts), false]});
    }
    scalar_equal(x, value)
}

/// `y` (a variable reference) is contained in the known `value`.
fn contained_in_value(y: &str, value: &Bson, names: &mut Names) -> Bson {
    if let Bson::Array(items) = value {
        // Each element of an array y, or y itself, in some element of value.
        return each(y, names, |e, names| or(items.iter().map(|item| contained_direct(e, item, names)).collect()), "$allElementsTrue");
    }
    contained_direct(y, value, names)
}

fn contained_direct(y: &str, value: &Bson, names: &mut Names) -> Bson {
    match value {
        Bson::Document(fields) => {
            let pair = names.next();
            let mut branches = Vec::with_capacity(fields.len());
            for (key, item) in fields {
                branches.push(Bson::Document(doc! {
                    "case": {"$eq": [format!("$${pair}.k"), lit(&Bson::String(key.clone()))]},
                    "then": contained_in_value(&format!("$${pair}.v"), item, names),
                }));
            }
            let each_key = if branches.is_empty() { Bson::Boolean(false) } else { Bson::Document(doc! {"$switch": {"branches": branches, "default": false}}) };
            Bson::Document(doc! {"$cond": [type_is(y, "object"), map_over(Bson::Document(doc! {"$objectToArray": y}), &pair, each_key, "$allElementsTrue"), false]})
        }
        Bson::Array(_) => contained_in_value(y, value, names),
        _ => scalar_equal(y, value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_text_becomes_the_stored_value() {
        assert_eq!(parse_text("null").unwrap(), Bson::MinKey);
        assert_eq!(parse_text(r#"{"a": [1, null, 2.5, 9999999999]}"#).unwrap(), Bson::Document(doc! {"a": [1, Bson::Null, 2.5, 9_999_999_999_i64]}));
        assert_eq!(parse_text(r#""x""#).unwrap(), Bson::String("x".into()));
        assert!(matches!(parse_text("{"), Err(BindError::Data(m)) if m.starts_with("not valid JSON text")));
        let deep = format!("{}{}", "[".repeat(150), "]".repeat(150));
        assert!(matches!(parse_text(&deep), Err(BindError::Data(_))));
    }

    #[test]
    fn containment_is_expanded_over_the_known_value() {
        let expr = Bson::String("$data".into());
        assert_eq!(contains(expr.clone(), &Bson::Null, "contained").unwrap(), Bson::Null);
        let got = contains(expr.clone(), &Bson::Document(doc! {"a": 1}), "contained").unwrap();
        let text = got.to_string();
        assert!(text.contains("$getField") && text.contains("\"$$jc1\""), "{text}");
        let got = contains(expr.clone(), &Bson::Array(vec![Bson::Int32(1)]), "container").unwrap();
        assert!(got.to_string().contains("$allElementsTrue"));
        // The user's keys are data: a key like "$where" is a $literal.
        let got = contains(expr.clone(), &Bson::Document(doc! {"$where": 1}), "contained").unwrap();
        assert!(got.to_string().contains("\"$literal\": \"$where\""), "{got}");
    }

    #[test]
    fn a_value_too_deep_is_refused_and_a_bad_plan_named() {
        let mut value = Bson::Int32(1);
        for _ in 0..=MAX_CONTAINS_DEPTH {
            value = Bson::Array(vec![value]);
        }
        assert!(matches!(contains(Bson::Null, &value, "contained"), Err(BindError::NotSupported(_))));
        let Bson::Array(mut inner) = value else { unreachable!() };
        assert!(contains(Bson::Null, &inner.remove(0), "contained").is_ok());
        assert!(matches!(contains(Bson::Null, &Bson::Int32(1), "other"), Err(BindError::Programming(_))));
    }
}
