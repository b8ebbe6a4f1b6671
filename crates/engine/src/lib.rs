//! MongoDB semantics over BSON documents, with no storage and no I/O.
//!
//! The embedded server (`djongo-server`) owns storage, catalogs and the wire
//! protocol; everything that decides *what a document means to a query* lives
//! here, so it can be tested in isolation and compared against FerretDB.
//!
//! Conventions callers rely on:
//! - "missing" is `None` in [`expr::eval_value`] (and [`expr::Value`]); the
//!   convenience [`expr::eval`] turns it into `Bson::Null`. Stages that write
//!   fields (`$project`, `$addFields`, ...) omit a field whose value is missing.
//! - numbers compare and group across types ([`compare::bson_eq`],
//!   [`compare::canonical_key`]); arithmetic promotes as MongoDB does
//!   ([`num`]); Decimal128 arithmetic goes through `rust_decimal`
//!   (28 significant digits), falling back to `f64` outside its range.
//! - every error is an [`EngineError`] with MongoDB's code; no input panics.
#![deny(unsafe_code)]

pub mod collation;
pub mod compare;
pub mod deps;
pub mod error;
pub mod expr;
pub mod geo;
pub mod num;
pub mod num_order;
pub mod path;
pub mod pipeline;
pub mod projection;
pub mod query;
mod regex_util;
pub mod sort;
pub mod types;
pub mod update;
pub mod validate;

pub use error::{EngineError, Result};
pub use pipeline::{run_pipeline, CollectionSource};
pub use query::Filter;

#[cfg(test)]
mod robustness_tests;

#[cfg(test)]
pub(crate) fn test_regex(pattern: &str, options: &str) -> bson::Regex {
    bson::Regex {
        pattern: pattern.to_string().try_into().unwrap_or_else(|_| panic!("bad test pattern")),
        options: options.to_string().try_into().unwrap_or_else(|_| panic!("bad test options")),
    }
}
