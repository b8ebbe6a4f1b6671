//! JSON paths (`$."key"[0]`) and JSON text written in the SQL.
//!
//! Django's JSONField lookups write each key as a JSON string inside the
//! path (`json.dumps(key)`), so any key, whatever it holds (`.`, `$`, quotes,
//! `'`, NUL), is read back as exactly that one key: a key is never split,
//! never an operator and never SQL.
use bson::{Bson, Document};

use crate::error::{CompileError, Result};
use crate::plan::JsonStep;

/// Deepest JSON path accepted: MongoDB documents nest at most 100 levels.
pub const MAX_JSON_PATH: usize = 100;

/// Parses a JSON path: `$`, then steps `."key"` (a JSON string), `.key` (an
/// unquoted name of letters, digits and `_`) or `[n]` (an array index,
/// negative from the end).
pub fn parse_path(text: &str) -> Result<Vec<JsonStep>> {
    let bad = |why: &str| CompileError::Invalid { message: format!("invalid JSON path {text:?}: {why}") };
    let rest = text.strip_prefix('$').ok_or_else(|| bad("it must start with '$'"))?;
    let mut steps = Vec::new();
    let mut rest = rest;
    while !rest.is_empty() {
        if steps.len() >= MAX_JSON_PATH {
            return Err(CompileError::unsupported(format!("a JSON path of more than {MAX_JSON_PATH} steps"), text));
        }
        if let Some(after) = rest.strip_prefix('.') {
            if after.starts_with('"') {
                let end = string_end(after).ok_or_else(|| bad("unterminated key"))?;
                let key: String = serde_json::from_str(&after[..end]).map_err(|e| bad(&format!("bad key: {e}")))?;
                steps.push(JsonStep::Key(key));
                rest = &after[end..];
            } else {
                let end = after.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(after.len());
                if end == 0 {
                    return Err(bad("a '.' must be followed by a key"));
                }
                steps.push(JsonStep::Key(after[..end].to_string()));
                rest = &after[end..];
            }
        } else if let Some(after) = rest.strip_prefix('[') {
            let end = after.find(']').ok_or_else(|| bad("unterminated index"))?;
            let index = after[..end].trim().parse::<i64>().map_err(|_| bad("an index must be an integer"))?;
            steps.push(JsonStep::Index(index));
            rest = &after[end + 1..];
        } else {
            return Err(bad("expected '.' or '['"));
        }
    }
    Ok(steps)
}

/// The length of the JSON string at the start of `s` (opening quote
/// included), or `None` if it does not end.
fn string_end(s: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in s.char_indices().skip(1) {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => return Some(i + 1),
            _ => {}
        }
    }
    None
}

/// JSON text written as a SQL literal, as a BSON value. Object keys stay
/// data: `{"$gt": 1}` is a document with the key `$gt`, never an operator
/// (unlike MongoDB's Extended JSON, which would read `{"$oid": ...}`).
pub fn parse_text(text: &str) -> Result<Bson> {
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| CompileError::InvalidValue { message: format!("invalid JSON text {text:?}: {e}") })?;
    to_bson(value, 0)
}

fn to_bson(value: serde_json::Value, depth: usize) -> Result<Bson> {
    use serde_json::Value as J;
    if depth > MAX_JSON_PATH {
        return Err(CompileError::InvalidValue { message: format!("JSON text nested more than {MAX_JSON_PATH} levels deep") });
    }
    Ok(match value {
        J::Null => Bson::Null,
        J::Bool(b) => Bson::Boolean(b),
        J::Number(n) => match n.as_i64() {
            Some(i) => Bson::Int64(i),
            None => Bson::Double(n.as_f64().unwrap_or(f64::NAN)),
        },
        J::String(s) => Bson::String(s),
        J::Array(items) => Bson::Array(items.into_iter().map(|v| to_bson(v, depth + 1)).collect::<Result<_>>()?),
        J::Object(map) => {
            let mut doc = Document::new();
            for (k, v) in map {
                doc.insert(k, to_bson(v, depth + 1)?);
            }
            Bson::Document(doc)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_json_strings_and_never_split() {
        assert_eq!(
            parse_path(r#"$."a.b"[0]."$gt"."\"q\"".x_1[-1]"#).unwrap(),
            vec![
                JsonStep::Key("a.b".into()),
                JsonStep::Index(0),
                JsonStep::Key("$gt".into()),
                JsonStep::Key("\"q\"".into()),
                JsonStep::Key("x_1".into()),
                JsonStep::Index(-1),
            ]
        );
        assert_eq!(parse_path("$").unwrap(), vec![]);
        assert_eq!(parse_path(r#"$."emo\ud83e\udd21'ji""#).unwrap(), vec![JsonStep::Key("emo🤡'ji".into())]);
        assert_eq!(parse_path(r#"$."""#).unwrap(), vec![JsonStep::Key(String::new())]);
    }

    #[test]
    fn bad_paths_are_refused() {
        for p in ["", "a", "$.", "$[x]", "$[1", r#"$."a"#, "$x", r#"$."\ud800""#] {
            assert!(parse_path(p).is_err(), "{p}");
        }
    }

    #[test]
    fn json_text_keys_are_data() {
        assert_eq!(parse_text(r#"{"$oid": "x", "n": [1, 2.5, null]}"#).unwrap(), Bson::Document(bson::doc! { "$oid": "x", "n": [1_i64, 2.5, Bson::Null] }));
        assert!(parse_text("{").is_err());
    }
}
