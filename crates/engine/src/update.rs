//! Update documents (`$set`, `$inc`, ...), pipeline-style updates and replacements.
use crate::Result;
use bson::{Bson, Document};

/// Applies `update` (an operator document, a replacement document, or an
/// array of pipeline stages) to `doc`. `is_insert` is true when the document is
/// being created by an upsert (so `$setOnInsert` applies).
pub fn apply_update(doc: &mut Document, update: &Bson, is_insert: bool) -> Result<()> {
    let _ = (doc, update, is_insert);
    Err(crate::EngineError::unsupported("updates"))
}
