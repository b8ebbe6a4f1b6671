//! Binding a statement's values into a plan's slots (docs/plan-format.md).
//!
//! The other half of the compiler's contract: `compile` leaves `{"$param": i}`
//! and `{"$subquery": k}` slots in a plan, and this fills them with one
//! statement's values. A value replaces its slot as it is and is never walked
//! again, so a string such as `{"$gt": ""}` from a web form stays a string:
//! values are data, never operators or field paths.
//!
//! Pure, like the compiler: both transports of the Python backend use it
//! (the embedded store's client sends the bound BSON as it is; the pymongo
//! path turns it back into Python objects).
mod functions;
mod json;

pub use json::MAX_CONTAINS_DEPTH;

use crate::lower::like_to_regex;
use bson::{doc, Bson, Document};
use thiserror::Error;

/// Why a statement's values do not fit its plan. `Programming` is a mistake in
/// the statement or its values (PostgreSQL's syntax or usage errors), `Data` a
/// value out of its range.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BindError {
    #[error("{0}")]
    Programming(String),
    #[error("{0}")]
    Data(String),
    /// A statement the backend cannot run (Django's `NotSupportedError`).
    #[error("{0}")]
    NotSupported(String),
}

/// The values a plan's slots are bound to.
pub trait Values {
    /// Parameter `index`, if the statement has it.
    fn param(&self, index: usize) -> Option<&Bson>;
    /// How many parameters were given (for the error naming a missing one).
    fn param_count(&self) -> usize;
    /// The rows of sub-plan `index` (`None`: it has not run, a compiler bug).
    fn subquery(&self, index: usize) -> Option<&[Vec<Bson>]>;
    /// Parameter `index` as the text a LIKE pattern is made of, when it is not
    /// a string already (Python's `str(value)`).
    fn text(&self, index: usize) -> String;
    /// Parameter `index` as its caller wrote it, for error messages.
    fn shown(&self, index: usize) -> String;
    /// Whether parameter `index` is text where a JSON value is expected
    /// (then it is JSON text): a string not adapted as a JSON value.
    fn is_json_text(&self, index: usize) -> bool;
}

/// Values kept in plain vectors, with BSON's own notation in messages.
#[derive(Debug, Clone, Default)]
pub struct PlainValues {
    pub params: Vec<Bson>,
    pub subqueries: Vec<Vec<Vec<Bson>>>,
}

impl Values for PlainValues {
    fn param(&self, index: usize) -> Option<&Bson> {
        self.params.get(index)
    }
    fn param_count(&self) -> usize {
        self.params.len()
    }
    fn subquery(&self, index: usize) -> Option<&[Vec<Bson>]> {
        self.subqueries.get(index).map(Vec::as_slice)
    }
    fn text(&self, index: usize) -> String {
        match self.params.get(index) {
            Some(Bson::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => String::new(),
        }
    }
    fn shown(&self, index: usize) -> String {
        self.params.get(index).map(ToString::to_string).unwrap_or_default()
    }
    fn is_json_text(&self, index: usize) -> bool {
        matches!(self.params.get(index), Some(Bson::String(_)))
    }
}

/// The filter that matches no document (what the compiler writes for FALSE).
pub fn never() -> Document {
    doc! {"$expr": false}
}

/// Why binding a node failed: a real error, or a comparison with NULL that
/// is UNKNOWN in SQL (caught where the query language can drop the condition:
/// an `$or` branch, an `$in` item, or a whole filter, which then selects
/// nothing).
enum Failure {
    Error(BindError),
    Unknown,
}

impl From<BindError> for Failure {
    fn from(e: BindError) -> Failure {
        Failure::Error(e)
    }
}

type Bound<T> = Result<T, Failure>;

/// `node` with its slots replaced by `values`. A NULL that makes a condition
/// UNKNOWN outside of any filter is an error (the compiler only marks slots
/// inside filters).
pub fn bind(node: &Bson, values: &dyn Values) -> Result<Bson, BindError> {
    match bind_node(node, values) {
        Ok(bound) => Ok(bound),
        Err(Failure::Error(e)) => Err(e),
        Err(Failure::Unknown) => Err(BindError::Programming("a NULL made a condition UNKNOWN outside of a filter".into())),
    }
}

/// A query-language filter: one made UNKNOWN by a NULL selects nothing.
pub fn bind_filter(node: &Bson, values: &dyn Values) -> Result<Bson, BindError> {
    match bind_node(node, values) {
        Ok(bound) => Ok(bound),
        Err(Failure::Error(e)) => Err(e),
        Err(Failure::Unknown) => Ok(Bson::Document(never())),
    }
}

/// A document-valued node (a filter, a projection, a pipeline stage).
pub fn bind_document(node: &Document, values: &dyn Values) -> Result<Document, BindError> {
    match bind(&Bson::Document(node.clone()), values)? {
        Bson::Document(d) => Ok(d),
        other => Err(BindError::Programming(format!("a plan document was bound to {other}"))),
    }
}

fn bind_node(node: &Bson, values: &dyn Values) -> Bound<Bson> {
    match node {
        Bson::Document(d) => bind_doc(d, values),
        Bson::Array(items) => items.iter().map(|item| bind_node(item, values)).collect::<Bound<Vec<_>>>().map(Bson::Array),
        other => Ok(other.clone()),
    }
}

fn bind_doc(node: &Document, values: &dyn Values) -> Bound<Bson> {
    if node.contains_key("$param") {
        return param(node, values);
    }
    if node.contains_key("$subquery") {
        return subquery(node, values);
    }
    if let Some(spec) = node.get("$jsonContains") {
        return json_contains(spec, values);
    }
    if let Some(name) = node.get("$apply") {
        return apply(node, name, values);
    }
    let mut out = Document::new();
    for (key, value) in node {
        let bound = match (key.as_str(), value) {
            ("$match", _) => match bind_node(value, values) {
                Err(Failure::Unknown) => Bson::Document(never()),
                other => other?,
            },
            ("$or", Bson::Array(branches)) => Bson::Array(bind_or(branches, values)?),
            ("$in", Bson::Array(items)) => Bson::Array(bind_in(items, values)?),
            _ => bind_node(value, values)?,
        };
        out.insert(key.clone(), bound);
    }
    if out.len() == 1 && out.get("$limit").is_some_and(is_zero) {
        // MongoDB refuses `$limit: 0`; SQL's LIMIT 0 selects nothing.
        return Ok(Bson::Document(doc! {"$match": never()}));
    }
    Ok(Bson::Document(out))
}

/// Python's `value == 0`, which the executor used: true for 0, 0.0 and False.
fn is_zero(value: &Bson) -> bool {
    match value {
        Bson::Int32(0) | Bson::Int64(0) | Bson::Boolean(false) => true,
        Bson::Double(f) => *f == 0.0,
        _ => false,
    }
}

fn bind_or(branches: &[Bson], values: &dyn Values) -> Bound<Vec<Bson>> {
    let mut kept = Vec::with_capacity(branches.len());
    for branch in branches {
        match bind_node(branch, values) {
            Ok(bound) => kept.push(bound),
            Err(Failure::Unknown) => {}
            Err(e) => return Err(e),
        }
    }
    if kept.is_empty() {
        return Err(Failure::Unknown);
    }
    Ok(kept)
}

fn bind_in(items: &[Bson], values: &dyn Values) -> Bound<Vec<Bson>> {
    // `x IN (1, NULL)` is TRUE exactly when `x IN (1)` is.
    let mut kept = Vec::with_capacity(items.len());
    for item in items {
        match bind_node(item, values) {
            Ok(bound) => kept.push(bound),
            Err(Failure::Unknown) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(kept)
}

fn flag(slot: &Document, key: &str) -> bool {
    matches!(slot.get(key), Some(Bson::Boolean(true)))
}

fn index_of(slot: &Document, key: &str) -> Bound<usize> {
    let index = match slot.get(key) {
        Some(Bson::Int32(i)) => i64::from(*i),
        Some(Bson::Int64(i)) => *i,
        _ => -1,
    };
    usize::try_from(index).map_err(|_| Failure::Error(BindError::Programming(format!("malformed slot in the plan: {slot}"))))
}

fn param(slot: &Document, values: &dyn Values) -> Bound<Bson> {
    let index = index_of(slot, "$param")?;
    let Some(value) = values.param(index) else {
        return Err(BindError::Programming(format!(
            "the statement uses parameter {} but {} were given",
            index + 1,
            values.param_count()
        ))
        .into());
    };
    if matches!(value, Bson::Null) {
        if flag(slot, "null_unknown") {
            return Err(Failure::Unknown);
        }
        return Ok(Bson::Null);
    }
    if let Some(Bson::String(clause)) = slot.get("count") {
        // LIMIT / OFFSET: PostgreSQL's rules.
        return match value {
            Bson::Int32(n) if *n < 0 => Err(BindError::Data(format!("{clause} must not be negative")).into()),
            Bson::Int64(n) if *n < 0 => Err(BindError::Data(format!("{clause} must not be negative")).into()),
            Bson::Int32(_) | Bson::Int64(_) => Ok(value.clone()),
            _ => Err(BindError::Programming(format!("{clause} must be an integer, not {}", values.shown(index))).into()),
        };
    }
    if flag(slot, "like") {
        let pattern = match value {
            Bson::String(s) => like_to_regex(s),
            _ => like_to_regex(&values.text(index)),
        };
        return Ok(Bson::String(pattern));
    }
    if flag(slot, "json") && values.is_json_text(index) {
        if let Bson::String(text) = value {
            return Ok(json::parse_text(text)?);
        }
    }
    if flag(slot, "negate") {
        // LAG(x, %s): MongoDB's $shift takes the offset as a constant.
        let negated = match value {
            Bson::Int32(n) => n.checked_neg().map(Bson::Int32),
            Bson::Int64(n) => n.checked_neg().map(Bson::Int64),
            _ => return Err(BindError::Programming(format!("LAG/LEAD offset must be an integer, not {}", values.shown(index))).into()),
        };
        return negated.ok_or_else(|| BindError::Data(format!("a value is out of range: {}", values.shown(index))).into());
    }
    Ok(value.clone())
}

/// `{"$apply": name, "arg": constant}`: a function of a constant, computed
/// now (bind/functions.rs).
fn apply(node: &Document, name: &Bson, values: &dyn Values) -> Bound<Bson> {
    let (Bson::String(name), Some(arg)) = (name, node.get("arg")) else {
        return Err(BindError::Programming(format!("malformed $apply in the plan: {node}")).into());
    };
    let text = match arg {
        Bson::Document(slot) if slot.contains_key("$param") => Some(values.text(index_of(slot, "$param")?)),
        _ => None,
    };
    let value = bind_node(arg, values)?;
    Ok(functions::apply(name, &value, text)?)
}

/// `{"$jsonContains": {"value", "expr", "value_is"}}`: JSON containment
/// expanded over the known value (bind/json.rs). A `$literal` value is the
/// statement's own constant, taken as it is.
fn json_contains(spec: &Bson, values: &dyn Values) -> Bound<Bson> {
    let malformed = || Failure::Error(BindError::Programming(format!("malformed $jsonContains in the plan: {spec}")));
    let Bson::Document(spec) = spec else { return Err(malformed()) };
    let (Some(value), Some(expr), Some(Bson::String(value_is))) = (spec.get("value"), spec.get("expr"), spec.get("value_is")) else {
        return Err(malformed());
    };
    let value = match value {
        Bson::Document(d) if d.len() == 1 && d.contains_key("$literal") => d.get("$literal").cloned().unwrap_or(Bson::Null),
        other => bind_node(other, values)?,
    };
    let expr = bind_node(expr, values)?;
    Ok(json::contains(expr, &value, value_is)?)
}

fn subquery(slot: &Document, values: &dyn Values) -> Bound<Bson> {
    let index = index_of(slot, "$subquery")?;
    let Some(rows) = values.subquery(index) else {
        return Err(BindError::Programming(format!("sub-plan {index} has not run")).into());
    };
    if flag(slot, "exists") {
        return Ok(Bson::Boolean(!rows.is_empty()));
    }
    if flag(slot, "scalar") {
        if rows.len() > 1 {
            return Err(BindError::Programming("a scalar subquery returned more than one row".into()).into());
        }
        let column = match slot.get("column") {
            None => 0,
            Some(_) => index_of(slot, "column")?,
        };
        let value = match rows.first() {
            None => Bson::Null,
            Some(row) => row.get(column).cloned().ok_or_else(|| BindError::Programming(format!("a scalar subquery has no column {column}")))?,
        };
        if matches!(value, Bson::Null) && flag(slot, "null_unknown") {
            return Err(Failure::Unknown);
        }
        return Ok(value);
    }
    let first = |row: &Vec<Bson>| row.first().cloned().unwrap_or(Bson::Null);
    let values: Vec<Bson> = rows.iter().map(first).collect();
    match slot.get("nulls") {
        Some(Bson::String(s)) if s == "skip" => Ok(Bson::Array(values.into_iter().filter(|v| !matches!(v, Bson::Null)).collect())),
        Some(Bson::String(s)) if s == "unknown" && values.iter().any(|v| matches!(v, Bson::Null)) => Err(Failure::Unknown),
        _ => Ok(Bson::Array(values)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(params: Vec<Bson>) -> PlainValues {
        PlainValues { params, subqueries: Vec::new() }
    }

    fn bound(node: Bson, v: &PlainValues) -> Bson {
        bind(&node, v).unwrap()
    }

    #[test]
    fn a_value_replaces_its_slot_and_is_never_read_as_an_operator() {
        let v = values(vec![Bson::Document(doc! {"$gt": ""}), Bson::String("$where".into())]);
        let filter = Bson::Document(doc! {"a": {"$eq": {"$param": 0}}, "b": {"$param": 1}});
        assert_eq!(bound(filter, &v), Bson::Document(doc! {"a": {"$eq": {"$gt": ""}}, "b": "$where"}));
    }

    #[test]
    fn a_bound_document_holding_slot_keys_stays_data() {
        let v = values(vec![Bson::Document(doc! {"$param": 1}), Bson::String("secret".into())]);
        assert_eq!(bound(Bson::Document(doc! {"a": {"$param": 0}}), &v), Bson::Document(doc! {"a": {"$param": 1}}));
    }

    #[test]
    fn null_unknown_drops_an_or_branch_an_in_item_or_the_whole_filter() {
        let v = values(vec![Bson::Null, Bson::Int32(3)]);
        let slot = |i: i32| Bson::Document(doc! {"$param": i, "null_unknown": true});
        let or = Bson::Document(doc! {"$or": [{"a": {"$eq": slot(0)}}, {"b": {"$eq": slot(1)}}]});
        assert_eq!(bind_filter(&or, &v).unwrap(), Bson::Document(doc! {"$or": [{"b": {"$eq": 3}}]}));
        let inn = Bson::Document(doc! {"a": {"$in": [slot(0), slot(1)]}});
        assert_eq!(bind_filter(&inn, &v).unwrap(), Bson::Document(doc! {"a": {"$in": [3]}}));
        let all = Bson::Document(doc! {"a": {"$eq": slot(0)}});
        assert_eq!(bind_filter(&all, &v).unwrap(), Bson::Document(never()));
        let only_null = Bson::Document(doc! {"$or": [{"a": {"$eq": slot(0)}}]});
        assert_eq!(bind_filter(&only_null, &v).unwrap(), Bson::Document(never()));
        let stage = Bson::Array(vec![Bson::Document(doc! {"$match": {"a": {"$eq": slot(0)}}})]);
        assert_eq!(bound(stage, &v), Bson::Array(vec![Bson::Document(doc! {"$match": never()})]));
        // Without the mark, NULL is a value.
        assert_eq!(bound(Bson::Document(doc! {"$param": 0}), &v), Bson::Null);
    }

    #[test]
    fn limits_are_non_negative_integers_and_limit_zero_selects_nothing() {
        let slot = Bson::Document(doc! {"$param": 0, "count": "LIMIT"});
        assert_eq!(bind(&slot, &values(vec![Bson::Int32(5)])).unwrap(), Bson::Int32(5));
        assert_eq!(bind(&slot, &values(vec![Bson::Int32(-1)])), Err(BindError::Data("LIMIT must not be negative".into())));
        assert!(matches!(bind(&slot, &values(vec![Bson::Double(1.0)])), Err(BindError::Programming(_))));
        assert!(matches!(bind(&slot, &values(vec![Bson::Boolean(true)])), Err(BindError::Programming(_))));
        let stage = Bson::Document(doc! {"$limit": {"$param": 0, "count": "LIMIT"}});
        assert_eq!(bound(stage, &values(vec![Bson::Int32(0)])), Bson::Document(doc! {"$match": never()}));
    }

    #[test]
    fn like_and_negate_slots() {
        let v = values(vec![Bson::String("a%b_c.".into()), Bson::Int32(2), Bson::Int32(7)]);
        assert_eq!(bound(Bson::Document(doc! {"$param": 0, "like": true}), &v), Bson::String("^a.*b.c\\.$".into()));
        assert_eq!(bound(Bson::Document(doc! {"$param": 1, "negate": true}), &v), Bson::Int32(-2));
        assert_eq!(bound(Bson::Document(doc! {"$param": 2, "like": true}), &v), Bson::String("^7$".into()));
    }

    #[test]
    fn a_missing_parameter_is_named() {
        let err = bind(&Bson::Document(doc! {"$param": 2}), &values(vec![Bson::Null])).unwrap_err();
        assert_eq!(err, BindError::Programming("the statement uses parameter 3 but 1 were given".into()));
    }

    #[test]
    fn subquery_slots() {
        let rows = vec![vec![Bson::Int32(1), Bson::String("x".into())], vec![Bson::Null, Bson::Null]];
        let v = PlainValues { params: vec![], subqueries: vec![rows, vec![vec![Bson::Int32(9), Bson::Int32(8)]], vec![]] };
        assert_eq!(bound(Bson::Document(doc! {"$subquery": 0}), &v), Bson::Array(vec![Bson::Int32(1), Bson::Null]));
        assert_eq!(bound(Bson::Document(doc! {"$subquery": 0, "nulls": "skip"}), &v), Bson::Array(vec![Bson::Int32(1)]));
        let unknown = Bson::Document(doc! {"a": {"$in": {"$subquery": 0, "nulls": "unknown"}}});
        assert_eq!(bind_filter(&unknown, &v).unwrap(), Bson::Document(never()));
        assert_eq!(bound(Bson::Document(doc! {"$subquery": 1, "scalar": true, "column": 1}), &v), Bson::Int32(8));
        assert_eq!(bound(Bson::Document(doc! {"$subquery": 2, "scalar": true}), &v), Bson::Null);
        assert_eq!(bound(Bson::Document(doc! {"$subquery": 2, "exists": true}), &v), Bson::Boolean(false));
        assert!(bind(&Bson::Document(doc! {"$subquery": 0, "scalar": true}), &v).is_err());
        assert!(bind(&Bson::Document(doc! {"$subquery": 5}), &v).is_err());
    }

    #[test]
    fn apply_json_and_json_contains_slots() {
        let v = values(vec![Bson::String("abc".into()), Bson::String(r#"{"a": null}"#.into()), Bson::Null, Bson::String("{".into())]);
        let apply = Bson::Document(doc! {"$literal": {"$apply": "md5", "arg": {"$param": 0}}});
        assert_eq!(bound(apply, &v), Bson::Document(doc! {"$literal": "900150983cd24fb0d6963f7d28e17f72"}));
        let null = Bson::Document(doc! {"$apply": "sha1", "arg": {"$param": 2}});
        assert_eq!(bound(null, &v), Bson::Null);
        assert_eq!(bound(Bson::Document(doc! {"$param": 1, "json": true}), &v), Bson::Document(doc! {"a": Bson::Null}));
        assert_eq!(bound(Bson::Document(doc! {"$param": 1}), &v), Bson::String(r#"{"a": null}"#.into()));
        assert!(matches!(bind(&Bson::Document(doc! {"$param": 3, "json": true}), &v), Err(BindError::Data(_))));
        let contains = |value: Bson| Bson::Document(doc! {"$jsonContains": {"value": value, "expr": "$data", "value_is": "contained"}});
        let from_param = bound(contains(Bson::Document(doc! {"$param": 1, "json": true})), &v);
        let from_literal = bound(contains(Bson::Document(doc! {"$literal": {"a": Bson::Null}})), &v);
        assert_eq!(from_param, from_literal);
        assert!(from_param.to_string().contains("\"$$jc1\""));
        assert_eq!(bound(contains(Bson::Document(doc! {"$param": 2, "json": true})), &v), Bson::Null);
        assert!(bind(&Bson::Document(doc! {"$jsonContains": 1}), &v).is_err());
    }
}
