//! What a collection validator may not use, with mongod's errors
//! (matcher/expression_parser.cpp): `$where` and `$text` are BadValue (2)
//! "... is not allowed in this context", the geo-proximity operators 5626500,
//! and an `$expr` naming a variable nothing defines is refused when
//! the validator is set (17276), not on the first write.
use crate::{EngineError, Result};
use bson::{Bson, Document};

fn not_allowed(what: &str) -> EngineError {
    EngineError::bad_value(format!("{what} is not allowed in this context"))
}

/// Checks a validator (a query document) for what validators may not use.
pub(super) fn check(spec: &Document) -> Result<()> {
    for (k, v) in spec {
        match k.as_str() {
            "$where" | "$text" => return Err(not_allowed(k)),
            "$near" | "$nearSphere" | "$geoNear" => return Err(crate::geo::near_not_allowed()),
            "$and" | "$or" | "$nor" => {
                if let Bson::Array(items) = v {
                    for item in items {
                        if let Bson::Document(d) = item {
                            check(d)?;
                        }
                    }
                }
            }
            "$expr" => check_variables(v, &mut Vec::new())?,
            _ if !k.starts_with('$') => check_field(v)?,
            _ => {}
        }
    }
    Ok(())
}

/// The operators of one field's predicate.
fn check_field(v: &Bson) -> Result<()> {
    let Bson::Document(ops) = v else { return Ok(()) };
    for (op, arg) in ops {
        match op.as_str() {
            "$near" | "$nearSphere" | "$geoNear" => return Err(crate::geo::near_not_allowed()),
            "$not" => check_field(arg)?,
            "$elemMatch" => {
                // Either a query (`{b: 1}`) or operators (`{$gt: 1}`).
                if let Bson::Document(inner) = arg {
                    check(inner)?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Variables every expression may read.
const BUILTIN_VARIABLES: &[&str] = &["ROOT", "CURRENT", "REMOVE", "NOW", "CLUSTER_TIME", "USER_ROLES"];

/// Checks that each `$$name` an aggregation expression reads is defined:
/// built in, or bound by an enclosing `$let`, `$map`, `$filter` or
/// `$reduce`.
pub(super) fn check_variables(e: &Bson, scope: &mut Vec<String>) -> Result<()> {
    match e {
        Bson::String(s) => {
            if let Some(var) = s.strip_prefix("$$") {
                let name = var.split('.').next().unwrap_or_default();
                if !BUILTIN_VARIABLES.contains(&name) && !scope.iter().any(|b| b == name) {
                    return Err(EngineError::location(17276, format!("Use of undefined variable: {name}")));
                }
            }
            Ok(())
        }
        Bson::Array(items) => items.iter().try_for_each(|i| check_variables(i, scope)),
        Bson::Document(d) => {
            let mut entries = d.iter();
            match (entries.next(), entries.next()) {
                (Some((op, arg)), None) if op.starts_with('$') => check_operator(op, arg, scope),
                _ => d.values().try_for_each(|v| check_variables(v, scope)),
            }
        }
        _ => Ok(()),
    }
}

/// Runs `body` with `names` bound.
fn bound<T>(scope: &mut Vec<String>, names: Vec<String>, body: impl FnOnce(&mut Vec<String>) -> T) -> T {
    let n = names.len();
    scope.extend(names);
    let r = body(scope);
    scope.truncate(scope.len() - n);
    r
}

fn check_operator(op: &str, arg: &Bson, scope: &mut Vec<String>) -> Result<()> {
    let spec = match arg {
        Bson::Document(d) => Some(d),
        _ => None,
    };
    let field = |name: &str| spec.and_then(|d| d.get(name));
    let check = |v: Option<&Bson>, scope: &mut Vec<String>| v.map_or(Ok(()), |v| check_variables(v, scope));
    match op {
        "$literal" => Ok(()),
        "$let" => {
            let mut names = Vec::new();
            if let Some(Bson::Document(vars)) = field("vars") {
                for (name, value) in vars {
                    check_variables(value, scope)?;
                    names.push(name.clone());
                }
            }
            bound(scope, names, |scope| check(field("in"), scope))
        }
        "$map" | "$filter" => {
            check(field("input"), scope)?;
            check(field("limit"), scope)?;
            let name = match field("as") {
                Some(Bson::String(s)) => s.clone(),
                _ => "this".to_string(),
            };
            bound(scope, vec![name], |scope| {
                check(field("in"), scope)?;
                check(field("cond"), scope)
            })
        }
        "$reduce" => {
            check(field("input"), scope)?;
            check(field("initialValue"), scope)?;
            bound(scope, vec!["value".to_string(), "this".to_string()], |scope| check(field("in"), scope))
        }
        _ => check_variables(arg, scope),
    }
}
