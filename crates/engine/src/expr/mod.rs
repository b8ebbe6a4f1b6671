//! Aggregation expressions (`$add`, `$cond`, `$concat`, field paths, `$$vars`).
use crate::Result;
use bson::{Bson, Document};
use std::collections::HashMap;

/// Variables visible to an expression (`$$ROOT`, `let` variables of `$lookup`).
pub type Vars = HashMap<String, Bson>;

pub fn eval(expr: &Bson, doc: &Document, vars: &Vars) -> Result<Bson> {
    let _ = (expr, doc, vars);
    Err(crate::EngineError::unsupported("expressions"))
}
