//! Collection validators: the `validator` option of `create` and `collMod`.
//!
//! A validator is a query filter ([`Filter`]) with the restrictions mongod
//! puts on one (no `$where`, `$text`, geo-proximity operators, nor
//! undefined `$$variables` in `$expr`), and a document that fails it gets
//! mongod 5's `errInfo`: `{failingDocumentId, details}`, where `details`
//! explains the failure operator by operator (`operatorName`,
//! `specifiedAs`, `reason`, `consideredValue`, `clausesNotSatisfied`,
//! `schemaRulesNotSatisfied`...). The shapes follow mongod's
//! `doc_validation_error.cpp`: [`explain`] for query operators, [`schema`]
//! for `$jsonSchema`.
//!
//! The server decides when validators run (`validationLevel`,
//! `validationAction`, `bypassDocumentValidation`); this module only knows
//! what a validator means for one document.
use crate::query::Filter;
use crate::{EngineError, Result};
use bson::{doc, Bson, Document};

mod explain;
mod features;
mod schema;

#[cfg(test)]
mod tests;

/// At most this many values are listed as `consideredValues` (mongod's
/// `internalQueryMaxDocValidationErrorConsideredValues`).
pub const MAX_CONSIDERED_VALUES: usize = 10;

/// The largest `errInfo` reported in full (mongod's default
/// `maxDocValidationErrorSize`, 12 MiB); a larger one becomes a note.
pub const MAX_ERROR_INFO_SIZE: usize = 12 * 1024 * 1024;

/// The deepest `errInfo` reported in full (the depth of a stored document).
pub const MAX_ERROR_INFO_DEPTH: usize = 100;

/// A parsed collection validator.
#[derive(Debug, Clone)]
pub struct Validator {
    filter: Filter,
    spec: Document,
}

impl Validator {
    /// Parses a `validator` option. Errors carry mongod's codes, with its
    /// "Parsing of collection validator failed" context for a bad filter.
    pub fn parse(spec: &Document) -> Result<Validator> {
        features::check(spec)?;
        let filter = Filter::parse(spec).map_err(|e| {
            EngineError::new(e.code, e.code_name, format!("Parsing of collection validator failed :: caused by :: {}", e.message))
        })?;
        Ok(Validator { filter, spec: spec.clone() })
    }

    /// The validator as given.
    pub fn spec(&self) -> &Document {
        &self.spec
    }

    /// Whether `doc` passes. An `$expr` that cannot be evaluated on it is
    /// an error (mongod fails the write in `error` mode and lets it through
    /// in `warn` mode).
    pub fn matches(&self, doc: &Document) -> Result<bool> {
        self.filter.matches(doc)
    }

    /// The `errInfo` of a document that failed the validator.
    pub fn error_info(&self, doc: &Document) -> Document {
        let id = doc.get("_id").cloned().unwrap_or(Bson::Null);
        let info = doc! {"failingDocumentId": id.clone(), "details": explain::details(&self.spec, doc)};
        if depth(&Bson::Document(info.clone())) > MAX_ERROR_INFO_DEPTH {
            return doc! {"reason": "generated error was too deeply nested", "truncated": true};
        }
        if info.to_vec().map_or(true, |bytes| bytes.len() > MAX_ERROR_INFO_SIZE) {
            return doc! {"failingDocumentId": id, "note": "detailed error was too large"};
        }
        info
    }
}

/// Nesting depth of a value, with an explicit stack.
fn depth(v: &Bson) -> usize {
    let mut deepest = 0;
    let mut stack: Vec<(&Bson, usize)> = vec![(v, 0)];
    while let Some((v, d)) = stack.pop() {
        deepest = deepest.max(d);
        match v {
            Bson::Document(doc) => stack.extend(doc.values().map(|c| (c, d + 1))),
            Bson::Array(items) => stack.extend(items.iter().map(|c| (c, d + 1))),
            _ => {}
        }
    }
    deepest
}
