//! `{$meta: "textScore"}`: the score of a `$text` match, read by a find's
//! projection and sort and by a pipeline's expressions and `$sort`.
//!
//! The score travels with its document as a reserved top-level field,
//! `SCORE_FIELD`, from the text search to the stages that read it: a
//! `{$meta: "textScore"}` becomes a path to that field, and the field is
//! removed from every result.
use crate::error::{CmdResult, CommandError};
use bson::{Bson, Document};

/// The reserved field carrying the score (a name no Django model or
/// MongoDB tool writes).
pub const SCORE_FIELD: &str = "__djongo_text_score__";
const MAX_DEPTH: usize = 200;

fn is_text_score(v: &Bson) -> CmdResult<bool> {
    match v {
        Bson::Document(d) if d.len() == 1 && d.contains_key("$meta") => match d.get("$meta") {
            Some(Bson::String(s)) if s == "textScore" => Ok(true),
            Some(Bson::String(s)) => Err(unsupported_meta(s)),
            _ => Err(CommandError::bad_value("$meta expects a string argument")),
        },
        _ => Ok(false),
    }
}

fn unsupported_meta(name: &str) -> CommandError {
    CommandError::with_code(17308, format!("Unsupported argument to $meta: {name}"))
}

/// The error MongoDB gives for a score read where no `$text` matched.
pub fn score_unavailable() -> CommandError {
    CommandError::with_code(40218, "query requires text score metadata, but it is not available")
}

/// A sort with `{f: {$meta: "textScore"}}` keys made to sort by the score,
/// highest first; whether it had one.
pub fn rewrite_sort(sort: &Document) -> CmdResult<(Document, bool)> {
    let mut out = Document::new();
    let mut found = false;
    for (k, v) in sort {
        if is_text_score(v)? {
            found = true;
            out.insert(SCORE_FIELD, -1);
        } else {
            out.insert(k.clone(), v.clone());
        }
    }
    Ok((out, found))
}

/// A find projection without its `{$meta: "textScore"}` fields, and those
/// fields' names.
pub fn split_projection(projection: &Document) -> CmdResult<(Document, Vec<String>)> {
    let mut rest = Document::new();
    let mut fields = Vec::new();
    for (k, v) in projection {
        if is_text_score(v)? {
            fields.push(k.clone());
        } else {
            rest.insert(k.clone(), v.clone());
        }
    }
    Ok((rest, fields))
}

/// Rewrites every `{$meta: "textScore"}` of a pipeline into a read of the
/// score field; whether there was one.
pub fn rewrite_pipeline(pipeline: &mut [Document]) -> CmdResult<bool> {
    let mut found = false;
    for stage in pipeline.iter_mut() {
        let Some((name, _)) = stage.iter().next() else { continue };
        let name = name.clone();
        if name == "$sort" {
            if let Some(Bson::Document(sort)) = stage.get(&name) {
                let (sort, had) = rewrite_sort(sort)?;
                found |= had;
                stage.insert(name, sort);
            }
            continue;
        }
        for (_, v) in stage.iter_mut() {
            found |= rewrite_value(v, 0)?;
        }
    }
    Ok(found)
}

fn rewrite_value(v: &mut Bson, depth: usize) -> CmdResult<bool> {
    if depth > MAX_DEPTH {
        return Ok(false);
    }
    if is_text_score(v)? {
        *v = Bson::String(format!("${SCORE_FIELD}"));
        return Ok(true);
    }
    let mut found = false;
    match v {
        Bson::Document(d) => {
            for (_, item) in d.iter_mut() {
                found |= rewrite_value(item, depth + 1)?;
            }
        }
        Bson::Array(items) => {
            for item in items {
                found |= rewrite_value(item, depth + 1)?;
            }
        }
        _ => {}
    }
    Ok(found)
}

/// Removes the score field from a result.
pub fn strip(doc: &mut Document) {
    doc.remove(SCORE_FIELD);
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    #[test]
    fn sorts_and_pipelines_read_the_score_field() {
        let (sort, found) = rewrite_sort(&doc! {"score": {"$meta": "textScore"}, "a": 1}).unwrap();
        assert!(found);
        assert_eq!(sort, doc! {SCORE_FIELD: -1, "a": 1});
        let mut pipeline = vec![doc! {"$addFields": {"s": {"$meta": "textScore"}}}, doc! {"$sort": {"s": {"$meta": "textScore"}}}];
        assert!(rewrite_pipeline(&mut pipeline).unwrap());
        assert_eq!(pipeline[0], doc! {"$addFields": {"s": format!("${SCORE_FIELD}")}});
        assert_eq!(pipeline[1], doc! {"$sort": {SCORE_FIELD: -1}});
        assert_eq!(rewrite_sort(&doc! {"s": {"$meta": "searchScore"}}).unwrap_err().code, 17308);
    }
}
