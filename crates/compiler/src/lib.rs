//! SQL (as Django and people write it) → MongoDB command plans.
//!
//! The data flow, one module per step:
//! `placeholders` (`%s` → `$N`) → `parse` (sqlparser AST) → `plan::build`
//! (typed relational plan, names resolved) → `lower` (MongoDB commands with
//! parameter slots, as described in docs/plan-format.md).
//!
//! `compile` is pure and deterministic; caching belongs to the caller.
#![deny(unsafe_code)]

mod error;
mod json;
mod lower;
mod parse;
pub mod placeholders;
pub mod plan;

pub use error::CompileError;
pub use json::to_canonical_json;
pub use lower::{like_to_regex, RESERVED_PREFIX};

/// Compiles one SQL statement into a plan document.
pub fn compile(sql: &str) -> Result<bson::Document, CompileError> {
    let rewritten = placeholders::rewrite(sql);
    let ast = parse::parse(sql, &rewritten)?;
    let plan = plan::build::build(&ast)?;
    lower::lower(plan, rewritten.params)
}
