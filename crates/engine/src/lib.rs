//! MongoDB semantics over BSON documents, with no storage and no I/O.
//!
//! The embedded server (`djongo-server`) owns storage, catalogs and the wire
//! protocol; everything that decides *what a document means to a query* lives
//! here, so it can be tested in isolation and compared against FerretDB.
#![deny(unsafe_code)]

pub mod compare;
pub mod error;
pub mod expr;
pub mod num;
pub mod path;
pub mod pipeline;
pub mod projection;
pub mod query;
mod regex_util;
pub mod sort;
pub mod types;
pub mod update;

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
