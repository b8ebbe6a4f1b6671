//! A text index's definition (`{title: "text", body: "text"}` with
//! `weights`, `default_language`, `language_override`) normalized as
//! MongoDB stores it (`{_fts: "text", _ftsx: 1}`), and what one document
//! contributes to it: its terms and their scores.
use super::language::Language;
use super::tokenizer::{tokens, TokenOptions};
use crate::error::{CmdResult, CommandError};
use bson::{doc, Bson, Document};
use std::collections::BTreeMap;

pub const TEXT_INDEX_VERSION: i32 = 3;
/// A field name standing for every string in the document.
pub const WILDCARD: &str = "$**";
const MAX_WORD_WEIGHT: f64 = 100_000.0;
/// Nesting a text index walks into (documents and arrays) before it stops.
const MAX_DEPTH: usize = 100;

/// A parsed text index.
#[derive(Debug, Clone, PartialEq)]
pub struct TextSpec {
    /// Weighted fields, by dotted path.
    pub weights: BTreeMap<String, f64>,
    /// `$**`: every string field is indexed (weight 1 unless listed).
    pub wildcard: bool,
    pub default_language: Language,
    pub language_override: String,
    /// Ordered fields before the text fields of a compound text index.
    pub prefix: Vec<String>,
}

/// Whether a key pattern makes a text index.
pub fn is_text_key(key: &Document) -> bool {
    key.iter().any(|(k, v)| (k == "_fts" && v.as_str() == Some("text")) || v.as_str() == Some("text"))
}

/// Every refusal of a text index spec: 67 CannotCreateIndex with
/// fts/fts_spec.cpp's `fixSpec` messages.
fn cannot_create(message: impl Into<String>) -> CommandError {
    CommandError::new(67, "CannotCreateIndex", message)
}

impl TextSpec {
    /// Normalizes a createIndexes entry for a text index as MongoDB's
    /// `fixSpec` does, returning the spec to store. Accepts a stored spec
    /// (already normalized) unchanged.
    pub fn normalize(spec: &Document) -> CmdResult<Document> {
        let key = spec.get_document("key").map_err(|_| CommandError::failed_to_parse("index key must be a document"))?;
        let mut weights: BTreeMap<String, f64> = BTreeMap::new();
        let mut normalized_key = Document::new();
        let mut seen_text = false;
        let mut after_text = false;
        for (field, value) in key {
            match (field.as_str(), value) {
                ("_fts", v) => {
                    if v.as_str() != Some("text") {
                        return Err(cannot_create("expecting _fts:\"text\""));
                    }
                    seen_text = true;
                    normalized_key.insert("_fts", "text");
                }
                ("_ftsx", v) => {
                    if djongo_engine::num::Num::from_bson(v).and_then(|n| n.to_i64_exact()) != Some(1) {
                        return Err(cannot_create("expecting _ftsx:1"));
                    }
                    normalized_key.insert("_ftsx", 1);
                }
                (f, Bson::String(s)) if s == "text" => {
                    if after_text {
                        return Err(cannot_create("'text' fields in index must all be adjacent"));
                    }
                    if f == "_fts" || f == "_ftsx" {
                        return Err(cannot_create("text index with reserved fields _fts/_ftsx not allowed"));
                    }
                    if !seen_text {
                        normalized_key.insert("_fts", "text");
                        normalized_key.insert("_ftsx", 1);
                        seen_text = true;
                    }
                    weights.insert(f.to_string(), 1.0);
                }
                (f, v) => {
                    if f == "_fts" || f == "_ftsx" {
                        return Err(cannot_create("text index with reserved fields _fts/_ftsx not allowed"));
                    }
                    match djongo_engine::num::Num::from_bson(v).and_then(|n| n.to_i64_exact()) {
                        Some(1) | Some(-1) => {}
                        _ => return Err(cannot_create("expected value 1 or -1 for non-text key in compound index")),
                    }
                    if seen_text {
                        after_text = true;
                    }
                    normalized_key.insert(f, v.clone());
                }
            }
        }
        match spec.get("weights") {
            Some(Bson::Document(w)) => {
                for (field, weight) in w {
                    let Some(n) = djongo_engine::num::Num::from_bson(weight) else {
                        return Err(cannot_create("weight for text index needs numeric type"));
                    };
                    weights.insert(field.clone(), n.to_f64().trunc());
                }
            }
            Some(Bson::String(s)) if s == WILDCARD => {
                weights.insert(WILDCARD.to_string(), 1.0);
            }
            None => {}
            Some(_) => return Err(cannot_create("text index option 'weights' must be an object")),
        }
        if weights.is_empty() {
            return Err(cannot_create("text index option 'weights' must specify fields or the wildcard"));
        }
        let mut weights_doc = Document::new();
        for (field, weight) in &weights {
            if !(*weight > 0.0 && *weight < MAX_WORD_WEIGHT) {
                return Err(cannot_create(format!(
                    "text index weight must be in the exclusive interval (0,{}) but found: {}",
                    MAX_WORD_WEIGHT, *weight as i64
                )));
            }
            weights_doc.insert(field.clone(), *weight as i32);
        }
        let default_language = match spec.get("default_language") {
            None => "english".to_string(),
            Some(Bson::String(s)) => {
                Language::parse(s).map_err(|_| cannot_create("default_language is not valid"))?;
                s.clone()
            }
            Some(_) => return Err(cannot_create("default_language needs a string type")),
        };
        let language_override = match spec.get("language_override") {
            None => "language".to_string(),
            Some(Bson::String(s)) if !s.is_empty() && !s.starts_with('$') && !s.contains('.') => s.clone(),
            Some(Bson::String(_)) => return Err(cannot_create("language_override is not valid")),
            Some(_) => return Err(cannot_create("language_override must be a string")),
        };
        match spec.get("textIndexVersion") {
            None => {}
            Some(v) => match djongo_engine::num::Num::from_bson(v).map(|n| n.to_f64().trunc() as i64) {
                Some(3) => {}
                // mongod still builds version 2 indexes; this engine only 3.
                Some(2) => return Err(cannot_create("textIndexVersion 2 is not supported by the embedded engine; use 3")),
                Some(n) => return Err(cannot_create(format!("bad textIndexVersion: {n}"))),
                None => return Err(cannot_create("text index option 'textIndexVersion' must be a number")),
            },
        }
        let mut out = Document::new();
        for (k, v) in spec {
            match k.as_str() {
                "key" => {
                    out.insert("key", normalized_key.clone());
                }
                "weights" | "default_language" | "language_override" | "textIndexVersion" => {}
                _ => {
                    out.insert(k.clone(), v.clone());
                }
            }
        }
        out.insert("weights", weights_doc);
        out.insert("default_language", default_language);
        out.insert("language_override", language_override);
        out.insert("textIndexVersion", TEXT_INDEX_VERSION);
        Ok(out)
    }

    /// Reads a normalized spec (see `normalize`).
    pub fn from_normalized(spec: &Document) -> CmdResult<TextSpec> {
        let corrupt = || CommandError::internal("invalid text index specification");
        let mut weights = BTreeMap::new();
        let mut wildcard = false;
        for (field, weight) in spec.get_document("weights").map_err(|_| corrupt())? {
            if field == WILDCARD {
                wildcard = true;
            } else {
                weights.insert(field.clone(), djongo_engine::num::Num::from_bson(weight).ok_or_else(corrupt)?.to_f64());
            }
        }
        let mut prefix = Vec::new();
        for (field, _) in spec.get_document("key").map_err(|_| corrupt())? {
            if field == "_fts" {
                break;
            }
            prefix.push(field.clone());
        }
        Ok(TextSpec {
            weights,
            wildcard,
            default_language: Language::parse(spec.get_str("default_language").map_err(|_| corrupt())?)?,
            language_override: spec.get_str("language_override").map_err(|_| corrupt())?.to_string(),
            prefix,
        })
    }

    /// The language of `doc`'s text: its `language_override` field if set.
    pub fn document_language(&self, doc: &Document, inherited: Language) -> CmdResult<Language> {
        match doc.get(&self.language_override) {
            None => Ok(inherited),
            Some(Bson::String(s)) => Language::parse(s).map_err(|_| CommandError::with_code(17262, format!("language override unsupported: {s}"))),
            Some(_) => Err(CommandError::with_code(17261, "found language override field in document with non-string type")),
        }
    }

    /// Every indexed string of `doc` with its weight and language, in the
    /// order MongoDB's element iterator visits them.
    pub fn strings<'d>(&self, doc: &'d Document) -> CmdResult<Vec<(&'d str, f64, Language)>> {
        let language = self.document_language(doc, self.default_language)?;
        let mut out = Vec::new();
        self.walk(doc, "", language, 0, &mut out)?;
        Ok(out)
    }

    fn weight_of(&self, path: &str) -> Option<f64> {
        self.weights.get(path).copied().or(if self.wildcard { Some(1.0) } else { None })
    }

    /// Whether a weighted path lies under `path` (so its documents are walked).
    fn leads_somewhere(&self, path: &str) -> bool {
        self.wildcard || self.weights.keys().any(|w| w.len() > path.len() && w.starts_with(path) && w.as_bytes()[path.len()] == b'.')
    }

    fn walk<'d>(&self, doc: &'d Document, base: &str, language: Language, depth: usize, out: &mut Vec<(&'d str, f64, Language)>) -> CmdResult<()> {
        if depth > MAX_DEPTH {
            return Ok(());
        }
        for (name, value) in doc {
            let path = if base.is_empty() { name.clone() } else { format!("{base}.{name}") };
            self.visit(value, &path, language, depth, out)?;
        }
        Ok(())
    }

    fn visit<'d>(&self, value: &'d Bson, path: &str, language: Language, depth: usize, out: &mut Vec<(&'d str, f64, Language)>) -> CmdResult<()> {
        match value {
            Bson::String(s) => {
                if let Some(weight) = self.weight_of(path) {
                    out.push((s.as_str(), weight, language));
                }
            }
            Bson::Array(items) => {
                for item in items {
                    self.visit(item, path, language, depth + 1, out)?;
                }
            }
            Bson::Document(sub) if self.leads_somewhere(path) => {
                // A subdocument may name its own language.
                let language = self.document_language(sub, language)?;
                self.walk(sub, path, language, depth + 1, out)?;
            }
            _ => {}
        }
        Ok(())
    }

    /// The terms of `doc` with their scores (MongoDB's formula: per string,
    /// each term weighs `weight × freq × (0.5 × count / tokens + 0.5)`,
    /// where the n-th repeat of a term adds 1/2ⁿ to `freq`, with a 10% boost
    /// when the term is the whole string).
    pub fn term_scores(&self, doc: &Document) -> CmdResult<BTreeMap<String, f64>> {
        let mut scores: BTreeMap<String, f64> = BTreeMap::new();
        for (text, weight, language) in self.strings(doc)? {
            let terms = tokens(language, text, TokenOptions::INDEX);
            if terms.is_empty() {
                continue;
            }
            // term → (count, freq, exp)
            let mut seen: BTreeMap<&str, (f64, f64, f64)> = BTreeMap::new();
            for t in &terms {
                let entry = seen.entry(t.as_str()).or_insert((0.0, 0.0, 0.0));
                entry.2 = if entry.2 == 0.0 { 1.0 } else { entry.2 * 2.0 };
                entry.0 += 1.0;
                entry.1 += 1.0 / entry.2;
            }
            let total = terms.len() as f64;
            for (term, (count, freq, _)) in seen {
                let coeff = 0.5 * count / total + 0.5;
                let adjustment = if text.len() == term.len() && text.eq_ignore_ascii_case(term) { 1.1 } else { 1.0 };
                *scores.entry(term.to_string()).or_insert(0.0) += weight * freq * coeff * adjustment;
            }
        }
        Ok(scores)
    }

    /// The spec as explain shows it.
    pub fn describe(&self) -> Document {
        doc! {"defaultLanguage": self.default_language.name(), "languageOverride": &self.language_override}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(d: Document) -> TextSpec {
        TextSpec::from_normalized(&TextSpec::normalize(&d).unwrap()).unwrap()
    }

    #[test]
    fn normalizes_like_mongodb() {
        let n = TextSpec::normalize(&doc! {"key": {"subject": "text", "comments": "text"}, "name": "t", "weights": {"subject": 10}}).unwrap();
        assert_eq!(n.get_document("key").unwrap(), &doc! {"_fts": "text", "_ftsx": 1});
        assert_eq!(n.get_document("weights").unwrap(), &doc! {"comments": 1, "subject": 10});
        assert_eq!(n.get_str("default_language").unwrap(), "english");
        assert_eq!(n.get_str("language_override").unwrap(), "language");
        assert_eq!(n.get_i32("textIndexVersion").unwrap(), 3);
        assert_eq!(TextSpec::normalize(&n).unwrap(), n, "a stored spec stays as it is");
        let compound = TextSpec::normalize(&doc! {"key": {"dept": 1, "about": "text"}}).unwrap();
        assert_eq!(compound.get_document("key").unwrap(), &doc! {"dept": 1, "_fts": "text", "_ftsx": 1});
    }

    #[test]
    fn bad_specs() {
        let code = |d: Document| TextSpec::normalize(&d).unwrap_err().code;
        assert_eq!(code(doc! {"key": {"a": "text", "b": 1, "c": "text"}}), 67);
        assert_eq!(code(doc! {"key": {"a": "text"}, "weights": {"a": "x"}}), 67);
        assert_eq!(code(doc! {"key": {"a": "text"}, "weights": {"a": 1_000_000}}), 67);
        assert_eq!(code(doc! {"key": {"a": "text"}, "default_language": "klingon"}), 67);
        assert_eq!(code(doc! {"key": {"a": "text"}, "textIndexVersion": 1}), 67);
        // fts_spec.cpp's messages.
        let message = |d: Document| TextSpec::normalize(&d).unwrap_err().message;
        assert_eq!(message(doc! {"key": {"a": "text", "b": 1, "c": "text"}}), "'text' fields in index must all be adjacent");
        assert_eq!(
            message(doc! {"key": {"a": "text"}, "weights": {"a": 1_000_000}}),
            "text index weight must be in the exclusive interval (0,100000) but found: 1000000"
        );
        assert_eq!(message(doc! {"key": {"a": "text"}, "default_language": "klingon"}), "default_language is not valid");
        assert_eq!(message(doc! {"key": {"a": "text"}, "default_language": 1}), "default_language needs a string type");
        assert_eq!(message(doc! {"key": {"a": "text"}, "language_override": 1}), "language_override must be a string");
        assert_eq!(message(doc! {"key": {"a": "text"}, "textIndexVersion": 7}), "bad textIndexVersion: 7");
    }

    #[test]
    fn scores_follow_mongodb_formula() {
        let s = spec(doc! {"key": {"subject": "text"}});
        // One term: 1 × 1 × (0.5 + 0.5); ×1.1 when the term is the whole
        // string ("shop", not "coffee" whose stem is "coffe").
        let scores = s.term_scores(&doc! {"subject": "coffee"}).unwrap();
        assert!((scores["coffe"] - 1.0).abs() < 1e-9);
        let scores = s.term_scores(&doc! {"subject": "Shop"}).unwrap();
        assert!((scores["shop"] - 1.1).abs() < 1e-9);
        let scores = s.term_scores(&doc! {"subject": "Coffee shopping"}).unwrap();
        assert!((scores["coffe"] - 0.75).abs() < 1e-9);
        // Repeats: freq 1 + 1/2, count 2 of 3 tokens.
        let scores = s.term_scores(&doc! {"subject": "coffee and coffee shop"}).unwrap();
        assert!((scores["coffe"] - 1.5 * (0.5 * 2.0 / 3.0 + 0.5)).abs() < 1e-9);
    }

    #[test]
    fn weights_wildcard_and_language_override() {
        let s = spec(doc! {"key": {"a": "text", "b.c": "text"}, "weights": {"a": 2}});
        let d = doc! {"a": ["x", 1, "y"], "b": {"c": "z"}, "d": "no"};
        let strings = s.strings(&d).unwrap();
        assert_eq!(strings.iter().map(|(t, w, _)| (*t, *w)).collect::<Vec<_>>(), vec![("x", 2.0), ("y", 2.0), ("z", 1.0)]);
        let all = spec(doc! {"key": {"$**": "text"}});
        let d = doc! {"a": "x", "n": {"m": "y"}, "language": "spanish"};
        let strings = all.strings(&d).unwrap();
        assert_eq!(strings.len(), 3);
        assert!(strings.iter().all(|(_, _, l)| *l == Language::Spanish));
        assert_eq!(all.strings(&doc! {"language": "klingon"}).unwrap_err().code, 17262);
    }
}
