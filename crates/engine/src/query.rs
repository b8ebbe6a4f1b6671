//! The query (filter) language: `{field: {$op: value}}`, `$and`/`$or`/`$nor`, `$expr`.
use crate::Result;
use bson::Document;

/// A parsed filter, ready to test documents against.
#[derive(Debug, Clone)]
pub struct Filter {
    spec: Document,
}

impl Filter {
    pub fn parse(spec: &Document) -> Result<Filter> {
        Ok(Filter { spec: spec.clone() })
    }
    pub fn matches(&self, doc: &Document) -> Result<bool> {
        let _ = doc;
        Ok(self.spec.is_empty())
    }
}
