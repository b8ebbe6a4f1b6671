//! A `$text` query: its arguments, the terms and phrases of its `$search`
//! string (MongoDB's query parser: `"phrases"`, `-negation`), and the test a
//! candidate document must pass.
use super::language::Language;
use super::spec::TextSpec;
use super::tokenizer::{normalize_for_phrase, tokens, TokenOptions};
use crate::error::{CmdResult, CommandError};
use bson::{Bson, Document};
use std::collections::BTreeSet;

/// A parsed `$text` query.
#[derive(Debug, Clone)]
pub struct TextQuery {
    pub search: String,
    pub language: Option<Language>,
    pub case_sensitive: bool,
    pub diacritic_sensitive: bool,
}

/// The terms and phrases of a search string, for one language.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParsedSearch {
    /// Index terms (folded, stemmed) a document must have one of.
    pub terms_for_bounds: BTreeSet<String>,
    /// Matcher terms (case/diacritic-sensitive when asked).
    pub positive_terms: BTreeSet<String>,
    pub negated_terms: BTreeSet<String>,
    pub positive_phrases: Vec<String>,
    pub negated_phrases: Vec<String>,
}

impl TextQuery {
    /// Reads the argument of `$text`.
    pub fn parse(arg: &Bson) -> CmdResult<TextQuery> {
        let Bson::Document(d) = arg else {
            return Err(CommandError::bad_value("$text expects an object"));
        };
        let mut query = TextQuery { search: String::new(), language: None, case_sensitive: false, diacritic_sensitive: false };
        let mut has_search = false;
        for (k, v) in d {
            match (k.as_str(), v) {
                ("$search", Bson::String(s)) => {
                    query.search = s.clone();
                    has_search = true;
                }
                ("$search", _) => return Err(CommandError::type_mismatch("$search requires a string value")),
                ("$language", Bson::String(s)) => query.language = Some(Language::parse(s)?),
                ("$language", _) => return Err(CommandError::type_mismatch("$language requires a string value")),
                ("$caseSensitive", Bson::Boolean(b)) => query.case_sensitive = *b,
                ("$caseSensitive", _) => return Err(CommandError::type_mismatch("$caseSensitive requires a boolean value")),
                ("$diacriticSensitive", Bson::Boolean(b)) => query.diacritic_sensitive = *b,
                ("$diacriticSensitive", _) => return Err(CommandError::type_mismatch("$diacriticSensitive requires a boolean value")),
                (other, _) => return Err(CommandError::failed_to_parse(format!("Unexpected field in $text: {other}"))),
            }
        }
        if !has_search {
            return Err(CommandError::failed_to_parse("$text requires a $search field"));
        }
        Ok(query)
    }

    /// Splits the search string into terms and phrases in `language`
    /// (MongoDB's `FTSQueryImpl::parse`).
    pub fn parse_search(&self, language: Language) -> ParsedSearch {
        let mut positive_sentence = String::new();
        let mut negative_sentence = String::new();
        let mut out = ParsedSearch::default();
        let mut in_negation = false;
        let mut in_phrase = false;
        let mut phrase_start = 0;
        for token in query_tokens(&self.search) {
            match token.kind {
                QueryTokenKind::Text => {
                    if in_phrase && in_negation {
                        continue;
                    }
                    // A negation lasts until the next whitespace.
                    if in_negation && token.after_whitespace {
                        in_negation = false;
                    }
                    let sentence = if in_negation { &mut negative_sentence } else { &mut positive_sentence };
                    sentence.push_str(token.text);
                    sentence.push(' ');
                }
                QueryTokenKind::Minus => {
                    if !in_phrase && token.after_whitespace {
                        in_negation = true;
                    }
                }
                QueryTokenKind::Quote => {
                    if in_phrase {
                        let phrase = self.search[phrase_start..token.offset].to_string();
                        if in_negation {
                            out.negated_phrases.push(phrase);
                        } else {
                            out.positive_phrases.push(phrase);
                        }
                        in_phrase = false;
                    } else {
                        in_phrase = true;
                        if in_negation && token.after_whitespace {
                            in_negation = false;
                        }
                        phrase_start = token.offset + 1;
                    }
                }
            }
        }
        let matcher = TokenOptions { filter_stop_words: true, case_sensitive: self.case_sensitive, diacritic_sensitive: self.diacritic_sensitive };
        out.terms_for_bounds = tokens(language, &positive_sentence, TokenOptions::INDEX).into_iter().collect();
        out.positive_terms = tokens(language, &positive_sentence, matcher).into_iter().collect();
        out.negated_terms = tokens(language, &negative_sentence, matcher).into_iter().collect();
        out
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum QueryTokenKind {
    Text,
    Minus,
    Quote,
}

struct QueryToken<'s> {
    kind: QueryTokenKind,
    text: &'s str,
    offset: usize,
    after_whitespace: bool,
}

fn is_query_whitespace(c: char) -> bool {
    matches!(c, '\n' | '\u{b}' | '\u{c}' | '\r' | ' ')
}

/// MongoDB's `FTSQueryParser`: runs of text, and `-` and `"` one by one;
/// each knows whether whitespace came before it.
fn query_tokens(search: &str) -> Vec<QueryToken<'_>> {
    let mut out = Vec::new();
    let mut after_whitespace = true;
    let mut chars = search.char_indices().peekable();
    while let Some(&(start, c)) = chars.peek() {
        if is_query_whitespace(c) {
            after_whitespace = true;
            chars.next();
            continue;
        }
        let kind = match c {
            '-' => QueryTokenKind::Minus,
            '"' => QueryTokenKind::Quote,
            _ => QueryTokenKind::Text,
        };
        chars.next();
        let mut end = start + c.len_utf8();
        if kind == QueryTokenKind::Text {
            while let Some(&(i, c)) = chars.peek() {
                if is_query_whitespace(c) || c == '-' || c == '"' {
                    break;
                }
                end = i + c.len_utf8();
                chars.next();
            }
        }
        out.push(QueryToken { kind, text: &search[start..end], offset: start, after_whitespace });
        after_whitespace = false;
    }
    out
}

/// Whether `doc` passes the query's term, negation and phrase tests (the
/// index only found that it has one of the bound terms).
pub fn matches(spec: &TextSpec, query: &TextQuery, parsed: &ParsedSearch, doc: &Document) -> CmdResult<bool> {
    let strings = spec.strings(doc)?;
    let options = TokenOptions { filter_stop_words: false, case_sensitive: query.case_sensitive, diacritic_sensitive: query.diacritic_sensitive };
    let terms_of = |text: &str, language: Language| tokens(language, text, options);
    // With case or diacritic sensitivity, the index's folded term does not
    // prove the exact one is there.
    if query.case_sensitive || query.diacritic_sensitive {
        let found = strings.iter().any(|(text, _, lang)| terms_of(text, *lang).iter().any(|t| parsed.positive_terms.contains(t)));
        if !found && !parsed.positive_terms.is_empty() {
            return Ok(false);
        }
    }
    if !parsed.negated_terms.is_empty() && strings.iter().any(|(text, _, lang)| terms_of(text, *lang).iter().any(|t| parsed.negated_terms.contains(t))) {
        return Ok(false);
    }
    let phrase_in = |phrase: &str| {
        strings.iter().any(|(text, _, lang)| {
            let hay = normalize_for_phrase(*lang, text, query.case_sensitive, query.diacritic_sensitive);
            let needle = normalize_for_phrase(*lang, phrase, query.case_sensitive, query.diacritic_sensitive);
            hay.contains(&needle)
        })
    };
    if !parsed.positive_phrases.iter().all(|p| phrase_in(p)) {
        return Ok(false);
    }
    Ok(!parsed.negated_phrases.iter().any(|p| phrase_in(p)))
}

/// A document's score for the query: the sum of its scores for the
/// query's positive terms.
pub fn score(spec: &TextSpec, parsed: &ParsedSearch, doc: &Document) -> CmdResult<f64> {
    let scores = spec.term_scores(doc)?;
    Ok(parsed.terms_for_bounds.iter().filter_map(|t| scores.get(t)).sum())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    fn parse(search: &str) -> ParsedSearch {
        TextQuery::parse(&Bson::Document(doc! {"$search": search})).unwrap().parse_search(Language::English)
    }

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn terms_phrases_and_negations() {
        let p = parse("coffee -shop \"coffee shop\" -\"iced tea\" the");
        assert_eq!(p.positive_terms, set(&["coffe", "shop"]));
        assert_eq!(p.negated_terms, set(&["shop"]));
        assert_eq!(p.positive_phrases, vec!["coffee shop"]);
        assert_eq!(p.negated_phrases, vec!["iced tea"]);
        // "- foo" does not negate; "-foo-bar" negates both.
        let p = parse("- cake -foo-bar");
        assert_eq!(p.positive_terms, set(&["cake"]));
        assert_eq!(p.negated_terms, set(&["foo", "bar"]));
    }

    #[test]
    fn argument_errors() {
        let err = |d: Document| TextQuery::parse(&Bson::Document(d)).unwrap_err().code;
        assert_eq!(err(doc! {"$search": 1}), 14);
        assert_eq!(err(doc! {"$language": "en"}), 9);
        assert_eq!(err(doc! {"$search": "x", "$foo": 1}), 9);
        assert_eq!(err(doc! {"$search": "x", "$language": "klingon"}), 2);
        assert_eq!(err(doc! {"$search": "x", "$caseSensitive": 1}), 14);
    }
}
