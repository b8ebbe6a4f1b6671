//! Command-level `let` (find, aggregate, update, delete, findAndModify):
//! named constants the command's expressions read as `$$name`.
//!
//! Pipelines (aggregate, pipeline-style updates) get the variables bound
//! directly. Query filters reach them only in `$expr`, which is rewritten
//! here as `{$expr: {$let: {vars, in: <expr>}}}`: the same binding, without
//! every filter reader having to carry variables.
use crate::error::{CmdResult, CommandError};
use bson::{doc, Bson, Document};
use djongo_engine::expr::{eval, Vars};
use djongo_engine::EngineError;

/// mongod's rule for a user variable name (`Variables::validateNameForUserWrite`).
fn check_name(name: &str) -> CmdResult<()> {
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return Err(EngineError::location(16869, "empty variable names are not allowed").into());
    };
    if first.is_ascii() && !first.is_ascii_lowercase() {
        return Err(EngineError::location(16870, format!("'{name}' starts with an invalid character for a user variable name")).into());
    }
    if chars.any(|c| !(c.is_ascii_alphanumeric() || c == '_' || !c.is_ascii())) {
        return Err(EngineError::location(16871, format!("'{name}' contains an invalid character for a variable name")).into());
    }
    Ok(())
}

/// The command's `let`, evaluated (each value is an expression over no
/// document: constants, `$$NOW`, operators over them).
pub fn parse(body: &Document) -> CmdResult<Option<Vars>> {
    let spec = match body.get("let") {
        None | Some(Bson::Null) => return Ok(None),
        Some(Bson::Document(d)) => d,
        Some(other) => {
            return Err(CommandError::type_mismatch(format!(
                "BSON field 'let' is the wrong type '{}', expected type 'object'",
                djongo_engine::types::type_name(other)
            )))
        }
    };
    let empty = Document::new();
    let mut vars = Vars::new();
    for (name, expr) in spec {
        check_name(name)?;
        let value = eval(expr, &empty, &vars)?;
        vars.insert(name.clone(), value);
    }
    Ok(Some(vars))
}

/// `filter` with `vars` bound in each of its `$expr` (at the top level and
/// inside `$and`/`$or`/`$nor`, the only places `$expr` may appear).
pub fn bind_filter(filter: Document, vars: Option<&Vars>) -> Document {
    let Some(vars) = vars.filter(|v| !v.is_empty()) else { return filter };
    let bindings: Document = vars.iter().map(|(k, v)| (k.clone(), Bson::Document(doc! {"$literal": v.clone()}))).collect();
    bind(filter, &bindings)
}

fn bind(filter: Document, bindings: &Document) -> Document {
    filter
        .into_iter()
        .map(|(key, value)| {
            let value = match (key.as_str(), value) {
                ("$expr", expr) => Bson::Document(doc! {"$let": {"vars": bindings.clone(), "in": expr}}),
                ("$and" | "$or" | "$nor", Bson::Array(branches)) => Bson::Array(
                    branches
                        .into_iter()
                        .map(|b| match b {
                            Bson::Document(d) => Bson::Document(bind(d, bindings)),
                            other => other,
                        })
                        .collect(),
                ),
                (_, other) => other,
            };
            (key, value)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use djongo_engine::Filter;

    #[test]
    fn let_reaches_expr_in_filters() {
        let vars = parse(&doc! {"find": "c", "let": {"id": 1, "two": {"$add": [1, 1]}}}).unwrap();
        let filter = bind_filter(doc! {"$or": [{"$expr": {"$eq": ["$_id", "$$id"]}}, {"x": "$$two"}]}, vars.as_ref());
        let f = Filter::parse(&filter).unwrap();
        assert!(f.matches(&doc! {"_id": 1}).unwrap());
        assert!(!f.matches(&doc! {"_id": 2}).unwrap());
        // Outside $expr a "$$name" string is a plain value, as in MongoDB.
        assert!(f.matches(&doc! {"_id": 3, "x": "$$two"}).unwrap());
    }

    #[test]
    fn names_and_types_are_checked() {
        assert_eq!(parse(&doc! {"let": 1}).unwrap_err().code, 14);
        assert_eq!(parse(&doc! {"let": {"Upper": 1}}).unwrap_err().code, 16870);
        assert_eq!(parse(&doc! {"let": {"a-b": 1}}).unwrap_err().code, 16871);
        assert!(parse(&doc! {"find": "c"}).unwrap().is_none());
    }
}
