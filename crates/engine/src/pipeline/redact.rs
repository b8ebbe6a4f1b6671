//! `$redact`: decides level by level what of a document to show.
//!
//! The expression is evaluated on the document and then, while it answers
//! `$$DESCEND`, on each embedded document (also inside arrays), with
//! `$$CURRENT` set to that level and `$$ROOT` still the whole document.
//! `$$KEEP` keeps a level as it is, `$$PRUNE` drops it (at the top, the whole
//! document).
use crate::expr::{self, Vars};
use crate::{EngineError, Result};
use bson::{Bson, Document};

/// The values of the `$$DESCEND`, `$$PRUNE` and `$$KEEP` variables, as
/// MongoDB defines them (an expression may also spell them as literals).
const DESCEND: &str = "descend";
const PRUNE: &str = "prune";
const KEEP: &str = "keep";

pub(super) fn redact(spec: &Bson, docs: Vec<Document>, vars: &Vars) -> Result<Vec<Document>> {
    let mut out = Vec::with_capacity(docs.len());
    for doc in docs {
        let mut scope = vars.clone();
        scope.insert("ROOT".to_string(), Bson::Document(doc.clone()));
        scope.insert("DESCEND".to_string(), Bson::String(DESCEND.to_string()));
        scope.insert("PRUNE".to_string(), Bson::String(PRUNE.to_string()));
        scope.insert("KEEP".to_string(), Bson::String(KEEP.to_string()));
        if let Some(kept) = redact_level(spec, doc, &mut scope)? {
            out.push(kept);
        }
    }
    Ok(out)
}

/// What remains of one level (`None`: pruned).
fn redact_level(spec: &Bson, level: Document, scope: &mut Vars) -> Result<Option<Document>> {
    scope.insert("CURRENT".to_string(), Bson::Document(level.clone()));
    let verdict = expr::eval_value(spec, &level, scope)?;
    match &verdict {
        Some(Bson::String(s)) if s == KEEP => Ok(Some(level)),
        Some(Bson::String(s)) if s == PRUNE => Ok(None),
        Some(Bson::String(s)) if s == DESCEND => {
            let mut kept = Document::new();
            for (field, value) in level {
                if let Some(v) = redact_value(spec, value, scope)? {
                    kept.insert(field, v);
                }
            }
            Ok(Some(kept))
        }
        other => Err(EngineError::location(
            17053,
            format!(
                "$redact's expression should not return anything aside from the variables $$KEEP, $$DESCEND, and $$PRUNE, but returned {}",
                other.clone().map_or_else(|| "MISSING".to_string(), |v| v.to_string())
            ),
        )),
    }
}

/// A field's value after redaction: embedded documents are judged on their
/// own, arrays element by element; other values stay.
fn redact_value(spec: &Bson, value: Bson, scope: &mut Vars) -> Result<Option<Bson>> {
    Ok(match value {
        Bson::Document(d) => redact_level(spec, d, scope)?.map(Bson::Document),
        Bson::Array(items) => {
            let mut kept = Vec::with_capacity(items.len());
            for item in items {
                if let Some(v) = redact_value(spec, item, scope)? {
                    kept.push(v);
                }
            }
            Some(Bson::Array(kept))
        }
        other => Some(other),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    /// MongoDB's manual example: show only the levels whose `tags` share a
    /// value with the reader's access list.
    fn by_access() -> Bson {
        Bson::Document(doc! {"$cond": {
            "if": {"$gt": [{"$size": {"$setIntersection": [{"$ifNull": ["$tags", []]}, ["STLW", "G"]]}}, 0]},
            "then": "$$DESCEND",
            "else": "$$PRUNE",
        }})
    }

    #[test]
    fn descends_and_prunes_levels_and_array_elements() {
        let report = doc! {
            "_id": 1, "title": "123 Department Report", "tags": ["G", "STLW"],
            "subsections": [
                {"subtitle": "Section 1", "tags": ["SI", "G"], "content": "one"},
                {"subtitle": "Section 2", "tags": ["SI"], "content": "two"},
                {"subtitle": "Section 3", "tags": ["STLW"], "content": {"text": "three", "tags": ["TK"]}},
            ],
        };
        let out = redact(&by_access(), vec![report], &Vars::new()).unwrap();
        assert_eq!(
            out,
            vec![doc! {
                "_id": 1, "title": "123 Department Report", "tags": ["G", "STLW"],
                "subsections": [
                    {"subtitle": "Section 1", "tags": ["SI", "G"], "content": "one"},
                    {"subtitle": "Section 3", "tags": ["STLW"]},
                ],
            }]
        );
        let hidden = redact(&by_access(), vec![doc! {"tags": ["TK"], "x": 1}], &Vars::new()).unwrap();
        assert!(hidden.is_empty());
    }

    #[test]
    fn keep_stops_descending_and_other_answers_are_errors() {
        let keep_top = Bson::Document(doc! {"$cond": [{"$eq": ["$level", 1]}, "$$KEEP", "$$PRUNE"]});
        let doc = doc! {"level": 1, "inner": {"level": 2}};
        assert_eq!(redact(&keep_top, vec![doc.clone()], &Vars::new()).unwrap(), vec![doc.clone()]);
        let root_stays_root = Bson::Document(doc! {"$cond": [{"$eq": ["$$ROOT.level", 1]}, "$$DESCEND", "$$PRUNE"]});
        assert_eq!(redact(&root_stays_root, vec![doc.clone()], &Vars::new()).unwrap(), vec![doc.clone()]);
        let err = redact(&Bson::String("yes".into()), vec![doc], &Vars::new()).unwrap_err();
        assert_eq!(err.code, 17053);
    }
}
