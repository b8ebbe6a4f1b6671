//! find and aggregate with `$text`: the text index selects and scores the
//! documents, then the sort, skip and limit (and a pipeline's later stages)
//! apply to them, reading the score where `{$meta: "textScore"}` asks.
use crate::catalog::CollectionMeta;
use crate::error::CmdResult;
use crate::storage::Tables;
use crate::text::meta;
use crate::text::search::{self, TextFilter};
use bson::{Bson, Document};

/// The documents a `$text` find returns, before projection: each carries
/// its score in `SCORE_FIELD`.
pub fn find(tables: &Tables<'_>, meta: &CollectionMeta, filter: &TextFilter, sort: Option<&Document>, skip: usize, limit: Option<usize>) -> CmdResult<Vec<Document>> {
    search::select(tables, meta, filter, sort, skip, limit, true)
}

/// A find projection split into the engine's part and the score fields;
/// refuses a score where the filter has no `$text`.
pub fn split_projection(projection: &Document, has_text: bool) -> CmdResult<(Document, Vec<String>)> {
    let (rest, score_fields) = meta::split_projection(projection)?;
    if !score_fields.is_empty() && !has_text {
        return Err(meta::score_unavailable());
    }
    Ok((rest, score_fields))
}

/// Whether a find's sort reads the score; refused without `$text`.
pub fn check_sort(sort: &Document, has_text: bool) -> CmdResult<bool> {
    let (_, reads_score) = meta::rewrite_sort(sort)?;
    if reads_score && !has_text {
        return Err(meta::score_unavailable());
    }
    Ok(reads_score)
}

/// Puts the score in the projected document under each name asked, and
/// takes the carrier field out.
pub fn finish(doc: &mut Document, score: Option<f64>, score_fields: &[String]) {
    if let Some(score) = score {
        for field in score_fields {
            doc.insert(field.clone(), Bson::Double(score));
        }
    }
    meta::strip(doc);
}
