//! SQL (as Django and people write it) → MongoDB command plans.
//!
//! The data flow, one module per step:
//! `placeholders` (`%s` → `$N`) → `parse` (sqlparser AST) → `plan::build`
//! (typed relational plan, names resolved) → `lower` (MongoDB commands with
//! parameter slots, as described in docs/plan-format.md); `bind` fills the
//! slots with one statement's values.
//!
//! `compile` is pure and deterministic; caching belongs to the caller.
#![deny(unsafe_code)]

pub mod bind;
mod error;
mod frame_exclusion;
mod json;
pub mod limits;
mod lower;
mod parse;
pub mod placeholders;
pub mod plan;
mod repeated_rows;

pub use error::CompileError;
pub use json::to_canonical_json;
pub use lower::{like_to_regex, RESERVED_PREFIX};

/// Compiles one SQL statement into a plan document.
///
/// Safe on any thread: with less than `limits::STACK_NEEDED` bytes of stack
/// left, it runs on a stack of its own (see `crate::limits`).
pub fn compile(sql: &str) -> Result<bson::Document, CompileError> {
    stacker::maybe_grow(limits::STACK_NEEDED, limits::STACK_ALLOCATED, || compile_here(sql))
}

/// `compile` on the caller's stack, whatever is left of it: for measuring
/// the stack the compiler needs (`limits::STACK_NEEDED`), not for use.
#[doc(hidden)]
pub fn compile_here(sql: &str) -> Result<bson::Document, CompileError> {
    if let Some(plan) = repeated_rows::compile(sql, |first_row| compile_written(first_row).ok()) {
        return Ok(plan);
    }
    compile_written(sql)
}

/// The plan of `sql` as written (no shortening of repeated rows).
fn compile_written(sql: &str) -> Result<bson::Document, CompileError> {
    let rewritten = placeholders::rewrite(sql);
    let ast = parse::parse(sql, &rewritten)?;
    let plan = plan::build::build(&ast)?;
    // The syntax tree is dropped here, within the stack `compile` guarantees.
    drop(ast);
    let plan = lower::lower(plan, rewritten.params)?;
    limits::check_plan_depth(&plan)?;
    Ok(plan)
}
