//! `errInfo.details` for query operators, as mongod's
//! `doc_validation_error.cpp` writes them.
//!
//! The validator is read again as a tree of clauses the way mongod's parser
//! builds it: the top-level document is an implicit `$and` of its clauses
//! (a field's operators each count as one: `{a: {$gt: 0, $lt: 9}}` is two),
//! collapsed when there is only one; `$and`/`$or`/`$nor` entries are
//! subtrees; `$not` wraps the operators under it. Each clause can be matched
//! on its own (it is a query document again), which decides which children
//! of a logical operator explain the failure.
//!
//! "Inverted" is mongod's `InvertError::kInverted`: below a `$not` or a
//! `$nor`, a clause is reported because it *matched*, with the opposite
//! reason ("comparison succeeded").
use super::{schema, MAX_CONSIDERED_VALUES};
use crate::expr::{self, Vars};
use crate::path;
use crate::query::json_schema::JsonSchema;
use crate::query::Filter;
use crate::types;
use bson::{doc, Bson, Document};

/// The `details` of a document failing the validator `spec`.
pub(super) fn details(spec: &Document, doc: &Document) -> Bson {
    Bson::Document(node(spec).explain(doc, false))
}

enum Clause<'a> {
    And(Vec<Clause<'a>>),
    Or(Vec<Clause<'a>>),
    Nor(Vec<Clause<'a>>),
    Not(Box<Clause<'a>>, Document),
    Leaf(Leaf<'a>),
    Expr(&'a Bson),
    Schema(&'a Bson),
    Always(&'a str, &'a Bson),
}

/// One operator on one path.
struct Leaf<'a> {
    path: &'a str,
    op: String,
    operand: &'a Bson,
    /// `{path: {op: operand}}` (or `{path: value}` for an implicit `$eq`):
    /// mongod's `specifiedAs`, and a query that tests this leaf alone.
    spec: Document,
}

/// The clauses of a query document, as a tree.
fn node(spec: &Document) -> Clause<'_> {
    let mut parts = clauses(spec);
    if parts.len() == 1 {
        parts.pop().unwrap_or(Clause::And(Vec::new()))
    } else {
        Clause::And(parts)
    }
}

fn clauses(spec: &Document) -> Vec<Clause<'_>> {
    let mut out = Vec::new();
    for (k, v) in spec {
        match k.as_str() {
            "$and" | "$or" | "$nor" => {
                let children: Vec<Clause> = match v {
                    Bson::Array(items) => items.iter().filter_map(|i| i.as_document()).map(node).collect(),
                    _ => Vec::new(),
                };
                out.push(match k.as_str() {
                    "$and" => Clause::And(children),
                    "$or" => Clause::Or(children),
                    _ => Clause::Nor(children),
                });
            }
            "$expr" => out.push(Clause::Expr(v)),
            "$jsonSchema" => out.push(Clause::Schema(v)),
            "$alwaysTrue" | "$alwaysFalse" => out.push(Clause::Always(k, v)),
            "$comment" => {}
            _ => field_clauses(k, v, &mut out),
        }
    }
    out
}

fn field_clauses<'a>(path: &'a str, v: &'a Bson, out: &mut Vec<Clause<'a>>) {
    match v {
        Bson::Document(ops) if crate::query::is_operator_doc(ops) => {
            for (op, operand) in ops {
                match op.as_str() {
                    "$options" | "$comment" => {}
                    "$not" => {
                        let mut inner = Vec::new();
                        field_clauses(path, operand, &mut inner);
                        let inner = if inner.len() == 1 { inner.pop().unwrap_or(Clause::And(Vec::new())) } else { Clause::And(inner) };
                        out.push(Clause::Not(Box::new(inner), doc! {path: {"$not": operand.clone()}}));
                    }
                    "$regex" => {
                        let mut spec = doc! {"$regex": operand.clone()};
                        if let Some(options) = ops.get("$options") {
                            spec.insert("$options", options.clone());
                        }
                        out.push(Clause::Leaf(Leaf { path, op: op.clone(), operand, spec: doc! {path: spec} }));
                    }
                    _ => out.push(Clause::Leaf(Leaf { path, op: op.clone(), operand, spec: doc! {path: {op.as_str(): operand.clone()}} })),
                }
            }
        }
        Bson::RegularExpression(_) => out.push(Clause::Leaf(Leaf { path, op: "$regex".into(), operand: v, spec: doc! {path: v.clone()} })),
        _ => out.push(Clause::Leaf(Leaf { path, op: "$eq".into(), operand: v, spec: doc! {path: v.clone()} })),
    }
}

impl Clause<'_> {
    /// Whether the clause alone matches `doc` (an error when it cannot be
    /// evaluated, as an `$expr` that divides by zero).
    fn matches(&self, doc: &Document) -> crate::Result<bool> {
        let query = |q: &Document| Filter::parse(q)?.matches(doc);
        match self {
            Clause::And(children) => {
                for c in children {
                    if !c.matches(doc)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            Clause::Or(children) => {
                for c in children {
                    if c.matches(doc)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            Clause::Nor(children) => {
                for c in children {
                    if c.matches(doc)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            Clause::Not(_, spec) => query(spec),
            Clause::Leaf(leaf) => query(&leaf.spec),
            Clause::Expr(e) => query(&doc! {"$expr": (*e).clone()}),
            Clause::Schema(s) => Ok(JsonSchema::parse(s)?.matches(doc)),
            Clause::Always(op, _) => Ok(*op == "$alwaysTrue"),
        }
    }

    /// Why the clause failed (or, `inverted`, why it matched).
    fn explain(&self, doc: &Document, inverted: bool) -> Document {
        match self {
            Clause::And(children) => {
                let key = if inverted { "clausesSatisfied" } else { "clausesNotSatisfied" };
                list("$and", key, children, doc, inverted)
            }
            Clause::Or(children) => {
                let key = if inverted { "clausesSatisfied" } else { "clausesNotSatisfied" };
                list("$or", key, children, doc, inverted)
            }
            Clause::Nor(children) => {
                let key = if inverted { "clausesNotSatisfied" } else { "clausesSatisfied" };
                list("$nor", key, children, doc, !inverted)
            }
            Clause::Not(inner, _) => doc! {"operatorName": "$not", "details": inner.explain(doc, !inverted)},
            Clause::Leaf(leaf) => leaf.explain(doc, inverted),
            Clause::Expr(e) => explain_expr(e, doc, inverted),
            Clause::Schema(s) => match JsonSchema::parse(s) {
                Ok(schema) => schema::explain(&schema, s, doc, inverted),
                Err(e) => doc! {"operatorName": "$jsonSchema", "reason": format!("invalid schema: {}", e.message)},
            },
            Clause::Always(op, operand) => doc! {
                "operatorName": *op,
                "specifiedAs": {*op: (*operand).clone()},
                "reason": if *op == "$alwaysTrue" { "expression always evaluates to true" } else { "expression always evaluates to false" },
            },
        }
    }
}

/// A logical operator: the children that explain its outcome, each with
/// its index. A child is reported when it matched exactly when it should
/// not have (or could not be evaluated).
fn list(op: &str, key: &str, children: &[Clause], doc: &Document, child_inverted: bool) -> Document {
    let mut reported = Vec::new();
    for (i, child) in children.iter().enumerate() {
        let report = match child.matches(doc) {
            Ok(m) => m == child_inverted,
            Err(_) => true,
        };
        if report {
            reported.push(Bson::Document(doc! {"index": i as i32, "details": child.explain(doc, child_inverted)}));
        }
    }
    doc! {"operatorName": op, key: reported}
}

fn explain_expr(e: &Bson, doc: &Document, inverted: bool) -> Document {
    let mut out = doc! {"operatorName": "$expr", "specifiedAs": {"$expr": e.clone()}};
    match expr::eval_value(e, doc, &Vars::new()) {
        Ok(value) => {
            out.insert("reason", if inverted { "expression did match" } else { "expression did not match" });
            if let Some(v) = value {
                out.insert("expressionResult", v);
            }
        }
        Err(err) => {
            out.insert("reason", "failed to evaluate aggregation expression");
            out.insert("details", doc! {"code": err.code, "codeName": err.code_name, "errmsg": err.message});
        }
    }
    out
}

/// How a leaf reads the values at its path.
#[derive(Clone, Copy, PartialEq)]
pub(super) enum Traversal {
    /// An array at the end of the path stands for its elements.
    Elements,
    /// An array at the end of the path is one value.
    Whole,
}

const NUMBER_TYPES: &[&str] = &["decimal", "double", "int", "long"];

/// The values a path reaches (`None` when it reaches nothing).
pub(super) fn considered(doc: &Document, path_str: &str, traversal: Traversal) -> Option<Vec<Bson>> {
    let parts = path::split(path_str);
    let reached = path::query_values(doc, &parts);
    if reached.iter().all(Option::is_none) {
        return None;
    }
    let mut out = Vec::new();
    for v in reached.into_iter().flatten() {
        match v {
            Bson::Array(items) if traversal == Traversal::Elements => out.extend(items.iter().cloned()),
            other => out.push(other.clone()),
        }
    }
    Some(out)
}

/// `consideredValue` for one value, else `consideredValues` (at most
/// [`MAX_CONSIDERED_VALUES`], with `consideredValuesTruncated`).
pub(super) fn append_considered(out: &mut Document, values: &[Bson]) {
    if let [one] = values {
        out.insert("consideredValue", one.clone());
        return;
    }
    out.insert("consideredValues", values.iter().take(MAX_CONSIDERED_VALUES).cloned().collect::<Vec<_>>());
    if values.len() > MAX_CONSIDERED_VALUES {
        out.insert("consideredValuesTruncated", true);
    }
}

/// `consideredType` or `consideredTypes` (the distinct type names, sorted).
pub(super) fn append_types(out: &mut Document, values: &[Bson]) {
    let mut names: Vec<&str> = values.iter().map(types::type_name).collect();
    names.sort_unstable();
    names.dedup();
    match names.as_slice() {
        [] => {}
        [one] => {
            out.insert("consideredType", *one);
        }
        many => {
            out.insert("consideredTypes", many.to_vec());
        }
    }
}

impl Leaf<'_> {
    fn explain(&self, doc: &Document, inverted: bool) -> Document {
        let mut out = doc! {"operatorName": self.op.as_str(), "specifiedAs": self.spec.clone()};
        // (reasons when failing, when matching; whether the operator is a
        // negation, whose failure is its child matching).
        let (reasons, negated): ((&str, &str), bool) = match self.op.as_str() {
            "$eq" | "$gt" | "$gte" | "$lt" | "$lte" => (("comparison failed", "comparison succeeded"), false),
            "$ne" => (("comparison failed", "comparison succeeded"), true),
            "$in" => (("no matching value found in array", "matching value found in array"), false),
            "$nin" => (("no matching value found in array", "matching value found in array"), true),
            "$exists" => {
                let negated = !expr::truthy(self.operand);
                out.insert("reason", pick(("path does not exist", "path does exist"), inverted != negated));
                return out;
            }
            "$type" => return self.explain_type(doc, inverted, out),
            "$regex" => return self.path_error(doc, inverted, out, ("regular expression did not match", "regular expression did match"), Some(&["regex", "string", "symbol"]), Traversal::Elements),
            "$mod" => return self.path_error(doc, inverted, out, ("$mod did not evaluate to expected remainder", "$mod did evaluate to expected remainder"), Some(NUMBER_TYPES), Traversal::Elements),
            "$bitsAllSet" | "$bitsAllClear" | "$bitsAnySet" | "$bitsAnyClear" => {
                return self.path_error(doc, inverted, out, ("bitwise operator failed to match", "bitwise operator matched successfully"), Some(&["binData", "decimal", "double", "int", "long"]), Traversal::Elements)
            }
            "$size" => return self.path_error(doc, inverted, out, ("array length was not equal to given size", "array length was equal to given size"), Some(&["array"]), Traversal::Whole),
            "$elemMatch" => return self.path_error(doc, inverted, out, ("array did not satisfy the child predicate", "array did satisfy the child predicate"), Some(&["array"]), Traversal::Whole),
            "$all" => {
                if matches!(self.operand, Bson::Array(items) if items.is_empty()) {
                    out.insert("reason", "expression always evaluates to false");
                    return out;
                }
                let values = considered(doc, self.path, Traversal::Whole);
                match &values {
                    None => {
                        out.insert("reason", "field was missing");
                    }
                    Some(values) => {
                        out.insert("reason", pick(("array did not contain all specified values", "array did contain all specified values"), inverted));
                        append_considered(&mut out, values);
                    }
                }
                return out;
            }
            _ => (("expression did not match", "expression did match"), false),
        };
        self.path_error(doc, inverted != negated, out, reasons, None, Traversal::Elements)
    }

    /// mongod's `generatePathError`: missing field, type mismatch, or the
    /// operator's reason, with the values considered.
    fn path_error(&self, doc: &Document, inverted: bool, mut out: Document, reasons: (&str, &str), expected: Option<&[&str]>, traversal: Traversal) -> Document {
        let Some(values) = considered(doc, self.path, traversal) else {
            out.insert("reason", "field was missing");
            return out;
        };
        if let Some(expected) = expected {
            if !values.iter().any(|v| expected.contains(&types::type_name(v))) {
                out.insert("reason", "type did not match");
                append_types(&mut out, &values);
                match expected {
                    [one] => out.insert("expectedType", *one),
                    many => out.insert("expectedTypes", many.to_vec()),
                };
                append_considered(&mut out, &values);
                return out;
            }
        }
        out.insert("reason", pick(reasons, inverted));
        append_considered(&mut out, &values);
        out
    }

    fn explain_type(&self, doc: &Document, inverted: bool, mut out: Document) -> Document {
        let Some(values) = considered(doc, self.path, Traversal::Elements) else {
            out.insert("reason", "field was missing");
            return out;
        };
        out.insert("reason", pick(("type did not match", "type did match"), inverted));
        append_considered(&mut out, &values);
        append_types(&mut out, &values);
        out
    }
}

fn pick<'a>((normal, inverted_reason): (&'a str, &'a str), inverted: bool) -> &'a str {
    if inverted {
        inverted_reason
    } else {
        normal
    }
}
