//! Text search: text indexes and the `$text` query operator, as MongoDB's
//! `textIndexVersion` 3 defines them.
//!
//! A text index holds one entry per distinct term of a document (term →
//! document). `$text` reads the entries of its search terms to find the
//! candidate documents, then checks negations, phrases and the rest of the
//! filter on each, and scores it with MongoDB's formula.
pub mod language;
pub mod meta;
pub mod query;
pub mod search;
pub mod spec;
pub mod tokenizer;

pub use query::TextQuery;
pub use spec::{is_text_key, TextSpec};
