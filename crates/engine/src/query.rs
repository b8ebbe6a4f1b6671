//! The query (filter) language: `{field: {$op: value}}`, `$and`/`$or`/`$nor`, `$expr`.
//!
//! A filter is parsed once into a tree and then tested against documents.
//! Field predicates see every value a dotted path reaches (arrays fan out),
//! and "missing" is kept apart from null so `{f: null}` can match both while
//! `$type: "null"` matches only a stored null.
use crate::compare::{bson_eq, cmp_bson, type_rank};
use crate::expr::{self, Vars};
use crate::num::Num;
use crate::types;
use crate::{path, regex_util, EngineError, Result};
use bson::{Bson, Document};
use crate::regex_util::Regex;
use std::cmp::Ordering;

mod bits;
pub mod json_schema;
mod match_position;

/// A parsed filter, ready to test documents against.
#[derive(Debug, Clone)]
pub struct Filter {
    root: Node,
}

#[derive(Debug, Clone)]
enum Node {
    True,
    False,
    And(Vec<Node>),
    Or(Vec<Node>),
    Nor(Vec<Node>),
    Field { path: Vec<String>, pred: Pred },
    Expr(Bson),
    Schema(Box<json_schema::JsonSchema>),
}

#[derive(Debug, Clone, Copy)]
enum CmpOp {
    Gt,
    Gte,
    Lt,
    Lte,
}

#[derive(Debug, Clone)]
enum InItem {
    Value(Bson),
    Regex(Regex),
}

#[derive(Debug, Clone)]
enum Pred {
    Both(Vec<Pred>),
    Not(Box<Pred>),
    Eq(Bson),
    Cmp(CmpOp, Bson),
    In(Vec<InItem>),
    Exists(bool),
    Type(Vec<Option<i32>>),
    Regex(Regex),
    All(Vec<Pred>),
    ElemMatchDoc(Box<Node>),
    ElemMatchValue(Box<Pred>),
    Size(i64),
    Mod(i64, i64),
    Bits(bits::BitTest),
    Geo(Box<crate::geo::GeoQuery>),
}

impl Filter {
    pub fn parse(spec: &Document) -> Result<Filter> {
        Ok(Filter { root: parse_node(spec)? })
    }

    pub fn matches(&self, doc: &Document) -> Result<bool> {
        self.matches_with_vars(doc, &Vars::new())
    }

    /// Matches with variables in scope for `$expr` (a `$lookup` pipeline's `let`).
    pub fn matches_with_vars(&self, doc: &Document, vars: &Vars) -> Result<bool> {
        eval_node(&self.root, doc, vars)
    }
}

/// Tests one value against a query operator document or value, as `$pull`
/// conditions and `$elemMatch` on scalars do.
pub fn value_matches(condition: &Bson, value: &Bson) -> Result<bool> {
    let pred = parse_field_value(condition)?;
    Ok(field_matches(&pred, &[Some(value)], &Vars::new()).unwrap_or(false))
}

/// Whether `spec` uses operators (`{$gt: 1}`) rather than being a literal document.
pub fn is_operator_doc(spec: &Document) -> bool {
    spec.keys().next().is_some_and(|k| k.starts_with('$'))
}

fn parse_node(spec: &Document) -> Result<Node> {
    let mut parts = Vec::new();
    for (k, v) in spec {
        match k.as_str() {
            "$and" | "$or" | "$nor" => {
                let Bson::Array(items) = v else {
                    return Err(EngineError::bad_value(format!("{k} must be an array")));
                };
                if items.is_empty() {
                    return Err(EngineError::bad_value(format!("{k} must be a nonempty array")));
                }
                let mut subs = Vec::with_capacity(items.len());
                for item in items {
                    let Bson::Document(d) = item else {
                        return Err(EngineError::bad_value("$or/$and/$nor entries need to be full objects"));
                    };
                    subs.push(parse_node(d)?);
                }
                parts.push(match k.as_str() {
                    "$and" => Node::And(subs),
                    "$or" => Node::Or(subs),
                    _ => Node::Nor(subs),
                });
            }
            "$expr" => parts.push(Node::Expr(v.clone())),
            "$comment" => {}
            "$alwaysTrue" => parts.push(Node::True),
            "$alwaysFalse" => parts.push(Node::False),
            "$jsonSchema" => parts.push(Node::Schema(Box::new(json_schema::JsonSchema::parse(v)?))),
            "$where" | "$text" => {
                return Err(EngineError::unsupported(format!("query operator {k}")))
            }
            _ if k.starts_with('$') => {
                return Err(EngineError::bad_value(format!("unknown top level operator: {k}")));
            }
            _ => parts.push(Node::Field { path: path::split(k), pred: parse_field_value(v)? }),
        }
    }
    Ok(match parts.len() {
        0 => Node::True,
        1 => parts.pop().unwrap_or(Node::True),
        _ => Node::And(parts),
    })
}

fn parse_field_value(v: &Bson) -> Result<Pred> {
    match v {
        Bson::Document(d) if is_operator_doc(d) => parse_ops(d),
        Bson::RegularExpression(r) => Ok(Pred::Regex(regex_util::compile(r.pattern.as_str(), r.options.as_str())?)),
        other => Ok(Pred::Eq(other.clone())),
    }
}

fn parse_ops(d: &Document) -> Result<Pred> {
    let mut preds = Vec::new();
    for (k, v) in d {
        let p = match k.as_str() {
            "$eq" => Pred::Eq(v.clone()),
            "$ne" => Pred::Not(Box::new(Pred::Eq(v.clone()))),
            "$gt" => Pred::Cmp(CmpOp::Gt, v.clone()),
            "$gte" => Pred::Cmp(CmpOp::Gte, v.clone()),
            "$lt" => Pred::Cmp(CmpOp::Lt, v.clone()),
            "$lte" => Pred::Cmp(CmpOp::Lte, v.clone()),
            "$in" => Pred::In(parse_in(k, v)?),
            "$nin" => Pred::Not(Box::new(Pred::In(parse_in(k, v)?))),
            "$exists" => Pred::Exists(expr::truthy(v)),
            "$type" => Pred::Type(parse_type(v)?),
            "$regex" => {
                let options = match d.get("$options") {
                    Some(Bson::String(s)) => s.as_str(),
                    Some(_) => return Err(EngineError::bad_value("$options has to be a string")),
                    None => "",
                };
                match v {
                    Bson::String(s) => Pred::Regex(regex_util::compile(s, options)?),
                    Bson::RegularExpression(r) => {
                        let opts = if options.is_empty() { r.options.as_str() } else { options };
                        Pred::Regex(regex_util::compile(r.pattern.as_str(), opts)?)
                    }
                    _ => return Err(EngineError::bad_value("$regex has to be a string")),
                }
            }
            "$options" => {
                if !d.contains_key("$regex") {
                    return Err(EngineError::bad_value("$options needs a $regex"));
                }
                continue;
            }
            "$not" => match v {
                Bson::Document(inner) if is_operator_doc(inner) => Pred::Not(Box::new(parse_ops(inner)?)),
                Bson::RegularExpression(r) => {
                    Pred::Not(Box::new(Pred::Regex(regex_util::compile(r.pattern.as_str(), r.options.as_str())?)))
                }
                _ => return Err(EngineError::bad_value("$not needs a regex or a document")),
            },
            "$all" => {
                let Bson::Array(items) = v else {
                    return Err(EngineError::bad_value("$all needs an array"));
                };
                let mut all = Vec::with_capacity(items.len());
                for item in items {
                    all.push(match item {
                        Bson::Document(e) if e.keys().next().map(String::as_str) == Some("$elemMatch") => parse_ops(e)?,
                        Bson::Document(e) if is_operator_doc(e) => {
                            return Err(EngineError::bad_value("no $ expressions in $all"));
                        }
                        Bson::RegularExpression(r) => Pred::Regex(regex_util::compile(r.pattern.as_str(), r.options.as_str())?),
                        other => Pred::Eq(other.clone()),
                    });
                }
                Pred::All(all)
            }
            "$elemMatch" => {
                let Bson::Document(inner) = v else {
                    return Err(EngineError::bad_value("$elemMatch needs an Object"));
                };
                let is_value_form = inner.keys().next().is_some_and(|k| {
                    k.starts_with('$') && !matches!(k.as_str(), "$and" | "$or" | "$nor" | "$expr" | "$where")
                });
                if is_value_form {
                    Pred::ElemMatchValue(Box::new(parse_ops(inner)?))
                } else {
                    Pred::ElemMatchDoc(Box::new(parse_node(inner)?))
                }
            }
            "$size" => {
                let n = Num::from_bson(v).ok_or_else(|| EngineError::bad_value("$size needs a number"))?;
                match n.to_i64_exact() {
                    Some(i) if i >= 0 => Pred::Size(i),
                    Some(_) => return Err(EngineError::bad_value("$size may not be negative")),
                    None => return Err(EngineError::bad_value("$size must be a whole number")),
                }
            }
            "$mod" => {
                let Bson::Array(args) = v else {
                    return Err(EngineError::bad_value("malformed mod, needs to be an array"));
                };
                if args.len() != 2 {
                    return Err(EngineError::bad_value(if args.len() < 2 {
                        "malformed mod, not enough elements"
                    } else {
                        "malformed mod, too many elements"
                    }));
                }
                let trunc = |b: &Bson| -> Result<i64> {
                    let n = Num::from_bson(b)
                        .ok_or_else(|| EngineError::bad_value("malformed mod, divisor and remainder must be numbers"))?;
                    Ok(n.to_f64().trunc() as i64)
                };
                let (div, rem) = (trunc(&args[0])?, trunc(&args[1])?);
                if div == 0 {
                    return Err(EngineError::bad_value("divisor cannot be 0"));
                }
                Pred::Mod(div, rem)
            }
            "$bitsAllSet" | "$bitsAllClear" | "$bitsAnySet" | "$bitsAnyClear" => Pred::Bits(bits::BitTest::parse(k, v)?),
            op if crate::geo::is_geo_operator(op) => Pred::Geo(Box::new(crate::geo::GeoQuery::parse(op, v, d)?)),
            // Legacy `$near: [x, y], $maxDistance: r` keeps its band beside the operator.
            "$maxDistance" | "$minDistance" if d.contains_key("$near") || d.contains_key("$nearSphere") => continue,
            "$comment" => continue,
            _ => return Err(EngineError::bad_value(format!("unknown operator: {k}"))),
        };
        preds.push(p);
    }
    Ok(if preds.len() == 1 { preds.pop().unwrap_or(Pred::Both(vec![])) } else { Pred::Both(preds) })
}

fn parse_in(op: &str, v: &Bson) -> Result<Vec<InItem>> {
    let Bson::Array(items) = v else {
        return Err(EngineError::bad_value(format!("{op} needs an array")));
    };
    items
        .iter()
        .map(|item| match item {
            Bson::RegularExpression(r) => Ok(InItem::Regex(regex_util::compile(r.pattern.as_str(), r.options.as_str())?)),
            Bson::Document(d) if is_operator_doc(d) => {
                Err(EngineError::bad_value(format!("cannot nest $ under {op}")))
            }
            other => Ok(InItem::Value(other.clone())),
        })
        .collect()
}

fn parse_type(v: &Bson) -> Result<Vec<Option<i32>>> {
    let one = |b: &Bson| -> Result<Option<i32>> {
        match b {
            Bson::String(s) => types::code_for_name(s)
                .ok_or_else(|| EngineError::bad_value(format!("Unknown type name alias: {s}"))),
            other => {
                let code = Num::from_bson(other)
                    .and_then(|n| n.to_i64_exact())
                    .ok_or_else(|| EngineError::bad_value("type must be represented as a number or a string"))?;
                match code {
                    -1 | 1..=19 | 127 => Ok(Some(code as i32)),
                    _ => Err(EngineError::bad_value(format!("Invalid numerical type code: {code}"))),
                }
            }
        }
    };
    match v {
        Bson::Array(items) => items.iter().map(one).collect(),
        other => Ok(vec![one(other)?]),
    }
}

fn eval_node(node: &Node, doc: &Document, vars: &Vars) -> Result<bool> {
    Ok(match node {
        Node::True => true,
        Node::False => false,
        Node::And(subs) => {
            for s in subs {
                if !eval_node(s, doc, vars)? {
                    return Ok(false);
                }
            }
            true
        }
        Node::Or(subs) => {
            for s in subs {
                if eval_node(s, doc, vars)? {
                    return Ok(true);
                }
            }
            false
        }
        Node::Nor(subs) => {
            for s in subs {
                if eval_node(s, doc, vars)? {
                    return Ok(false);
                }
            }
            true
        }
        Node::Field { path, pred } => field_matches(pred, &path::query_values(doc, path), vars)?,
        Node::Expr(e) => expr::truthy_value(&expr::eval_value(e, doc, vars)?),
        Node::Schema(s) => s.matches(doc),
    })
}

fn field_matches(pred: &Pred, values: &[Option<&Bson>], vars: &Vars) -> Result<bool> {
    Ok(match pred {
        Pred::Both(ps) => {
            for p in ps {
                if !field_matches(p, values, vars)? {
                    return Ok(false);
                }
            }
            true
        }
        Pred::Not(p) => !field_matches(p, values, vars)?,
        Pred::Exists(want) => values.iter().any(Option::is_some) == *want,
        Pred::All(items) => {
            if items.is_empty() {
                return Ok(false);
            }
            for p in items {
                if !field_matches(p, values, vars)? {
                    return Ok(false);
                }
            }
            true
        }
        Pred::Size(n) => values
            .iter()
            .any(|v| matches!(v, Some(Bson::Array(a)) if a.len() as i64 == *n)),
        Pred::ElemMatchDoc(node) => {
            for v in values.iter().flatten() {
                if let Bson::Array(a) = v {
                    for e in a {
                        if let Bson::Document(d) = e {
                            if eval_node(node, d, vars)? {
                                return Ok(true);
                            }
                        }
                    }
                }
            }
            false
        }
        Pred::Geo(q) => q.matches_any(values),
        Pred::ElemMatchValue(p) => {
            for v in values.iter().flatten() {
                if let Bson::Array(a) = v {
                    for e in a {
                        if field_matches(p, &[Some(e)], vars)? {
                            return Ok(true);
                        }
                    }
                }
            }
            false
        }
        _ => {
            for v in values {
                let hit = match v {
                    None => matches_missing(pred),
                    Some(v) => matches_single(pred, v)? || matches_an_element(pred, v)?,
                };
                if hit {
                    return Ok(true);
                }
            }
            false
        }
    })
}

/// Whether an element of array `v` matches `pred` on its own.
fn matches_an_element(pred: &Pred, v: &Bson) -> Result<bool> {
    if let Bson::Array(items) = v {
        for e in items {
            if matches_single(pred, e)? {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// A missing field behaves as null for equality-like operators only.
fn matches_missing(pred: &Pred) -> bool {
    match pred {
        Pred::Eq(q) => matches!(q, Bson::Null),
        Pred::Cmp(CmpOp::Gte | CmpOp::Lte, q) => matches!(q, Bson::Null),
        Pred::In(items) => items.iter().any(|i| matches!(i, InItem::Value(Bson::Null))),
        _ => false,
    }
}

fn matches_single(pred: &Pred, v: &Bson) -> Result<bool> {
    if let Pred::Regex(r) = pred {
        return regex_matches(r, v);
    }
    if let Pred::In(items) = pred {
        for i in items {
            let hit = match i {
                InItem::Value(q) => bson_eq(v, q),
                InItem::Regex(r) => regex_matches(r, v)?,
            };
            if hit {
                return Ok(true);
            }
        }
        return Ok(false);
    }
    Ok(match pred {
        Pred::Eq(q) => bson_eq(v, q),
        Pred::Cmp(op, q) => {
            let bracketed = type_rank(v) == type_rank(q) || matches!(q, Bson::MinKey | Bson::MaxKey);
            if !bracketed {
                return Ok(false);
            }
            let o = cmp_bson(v, q);
            match op {
                CmpOp::Gt => o == Ordering::Greater,
                CmpOp::Gte => o != Ordering::Less,
                CmpOp::Lt => o == Ordering::Less,
                CmpOp::Lte => o != Ordering::Greater,
            }
        }
        Pred::In(_) | Pred::Regex(_) | Pred::Geo(_) => false,
        Pred::Bits(test) => test.matches(v),
        Pred::Type(codes) => codes.iter().any(|c| match c {
            Some(code) => types::type_code(v) == *code,
            None => types::is_number(v),
        }),
        Pred::Mod(div, rem) => match Num::from_bson(v) {
            Some(n) => {
                let x = n.to_f64();
                x.is_finite() && (x.trunc() as i64).checked_rem(*div) == Some(*rem)
            }
            None => false,
        },
        _ => false,
    })
}

fn regex_matches(r: &Regex, v: &Bson) -> Result<bool> {
    match v {
        Bson::String(s) | Bson::Symbol(s) => r.is_match(s),
        Bson::RegularExpression(q) => Ok(q.pattern.as_str() == r.as_str()),
        _ => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::{doc, Bson};
    use proptest::prelude::*;

    fn m(filter: Document, d: Document) -> bool {
        Filter::parse(&filter).unwrap().matches(&d).unwrap()
    }

    #[test]
    fn null_matches_null_and_missing() {
        assert!(m(doc! {"f": null}, doc! {"f": null}));
        assert!(m(doc! {"f": null}, doc! {}));
        assert!(!m(doc! {"f": null}, doc! {"f": 0}));
        assert!(m(doc! {"f": {"$ne": null}}, doc! {"f": 1}));
        assert!(!m(doc! {"f": {"$ne": null}}, doc! {}));
        assert!(!m(doc! {"f": {"$ne": null}}, doc! {"f": null}));
        assert!(m(doc! {"f": {"$type": "null"}}, doc! {"f": null}));
        assert!(!m(doc! {"f": {"$type": "null"}}, doc! {}));
        assert!(m(doc! {"f": {"$in": [null, 3]}}, doc! {}));
    }

    #[test]
    fn arrays_match_any_element() {
        let d = doc! {"tags": ["a", "b"], "items": [{"n": 1, "k": "x"}, {"n": 5, "k": "y"}]};
        assert!(m(doc! {"tags": "a"}, d.clone()));
        assert!(m(doc! {"tags": ["a", "b"]}, d.clone()));
        assert!(!m(doc! {"tags": {"$ne": "a"}}, d.clone()));
        assert!(m(doc! {"items.n": 5}, d.clone()));
        assert!(m(doc! {"items.n": {"$gt": 4}}, d.clone()));
        assert!(m(doc! {"items.1.k": "y"}, d.clone()));
        assert!(m(doc! {"items.n": {"$gt": 1, "$lt": 5}}, d.clone()), "each bound may match a different element");
        assert!(!m(doc! {"items": {"$elemMatch": {"n": {"$gt": 1}, "k": "x"}}}, d.clone()));
        assert!(m(doc! {"items": {"$elemMatch": {"n": {"$gt": 1}, "k": "y"}}}, d.clone()));
        assert!(m(doc! {"tags": {"$all": ["b", "a"]}}, d.clone()));
        assert!(!m(doc! {"tags": {"$all": ["b", "c"]}}, d.clone()));
        assert!(m(doc! {"tags": {"$size": 2}}, d.clone()));
        assert!(m(doc! {"tags": {"$type": "array"}}, d.clone()));
        assert!(m(doc! {"tags": {"$type": "string"}}, d));
    }

    #[test]
    fn comparison_type_bracketing() {
        assert!(!m(doc! {"a": {"$gt": 5}}, doc! {"a": "zzz"}));
        assert!(m(doc! {"a": {"$gt": 5}}, doc! {"a": 5.5}));
        assert!(m(doc! {"a": {"$lte": 5}}, doc! {"a": 5_i64}));
        assert!(m(doc! {"a": 1}, doc! {"a": 1.0}));
        assert!(m(doc! {"a": {"$gte": "b"}}, doc! {"a": "c"}));
        assert!(!m(doc! {"a": {"$lt": "b"}}, doc! {"a": 1}));
    }

    #[test]
    fn logical_and_regex() {
        let d = doc! {"name": "Hello World", "n": 7};
        assert!(m(doc! {"$or": [{"n": 1}, {"name": {"$regex": "^hello", "$options": "i"}}]}, d.clone()));
        assert!(!m(doc! {"$nor": [{"n": 7}]}, d.clone()));
        assert!(m(doc! {"name": {"$not": {"$regex": "^x"}}}, d.clone()));
        assert!(m(doc! {"name": Bson::RegularExpression(crate::test_regex("world$", "i"))}, d.clone()));
        assert!(m(doc! {"name": {"$in": [Bson::RegularExpression(crate::test_regex("^H", ""))]}}, d.clone()));
        assert!(m(doc! {"n": {"$mod": [4, 3]}}, d.clone()));
        assert!(m(doc! {"n": {"$exists": true}, "zz": {"$exists": false}}, d.clone()));
        assert!(m(doc! {"$expr": {"$gt": ["$n", 5]}}, d.clone()));
        assert!(m(doc! {"n": {"$type": "number"}, "$comment": "hi"}, d));
    }

    #[test]
    fn errors_name_the_operator() {
        let e = Filter::parse(&doc! {"a": {"$foo": 1}}).unwrap_err();
        assert!(e.message.contains("$foo"));
        let e = Filter::parse(&doc! {"$bar": 1}).unwrap_err();
        assert!(e.message.contains("$bar"));
        assert!(Filter::parse(&doc! {"a": {"$in": 1}}).unwrap_err().message.contains("$in"));
        assert!(Filter::parse(&doc! {"$and": []}).is_err());
    }

    proptest! {
        #[test]
        fn equality_filter_matches_its_own_value(v in crate::compare::tests::arb_bson()) {
            // An operator-looking document is not a literal; skip those.
            if let Bson::Document(d) = &v { prop_assume!(!is_operator_doc(d)); }
            let d = doc! {"f": v.clone()};
            let f = Filter::parse(&doc! {"f": v}).unwrap();
            prop_assert!(f.matches(&d).unwrap());
        }
    }
}
