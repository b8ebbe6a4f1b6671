//! The languages of text indexes (`textIndexVersion` 3): MongoDB's names and
//! ISO codes, each with its Snowball stemmer (`rust-stemmers`), its stop
//! words (the `stop-words` crate's NLTK lists, which come from Snowball's
//! stop lists as MongoDB's do; docs/engine.md lists where they differ) and
//! its delimiter set.
use crate::error::{CmdResult, CommandError};
use rust_stemmers::{Algorithm, Stemmer};
use std::collections::HashSet;
use std::sync::OnceLock;

/// A text-search language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Language {
    None,
    Danish,
    Dutch,
    English,
    Finnish,
    French,
    German,
    Hungarian,
    Italian,
    Norwegian,
    Portuguese,
    Romanian,
    Russian,
    Spanish,
    Swedish,
    Turkish,
}

const NAMES: &[(&str, &str, Language)] = &[
    ("none", "none", Language::None),
    ("danish", "da", Language::Danish),
    ("dutch", "nl", Language::Dutch),
    ("english", "en", Language::English),
    ("finnish", "fi", Language::Finnish),
    ("french", "fr", Language::French),
    ("german", "de", Language::German),
    ("hungarian", "hu", Language::Hungarian),
    ("italian", "it", Language::Italian),
    ("norwegian", "nb", Language::Norwegian),
    ("portuguese", "pt", Language::Portuguese),
    ("romanian", "ro", Language::Romanian),
    ("russian", "ru", Language::Russian),
    ("spanish", "es", Language::Spanish),
    ("swedish", "sv", Language::Swedish),
    ("turkish", "tr", Language::Turkish),
];

impl Language {
    /// The language a name or ISO code designates, case-insensitively, or
    /// MongoDB's BadValue for one it does not support.
    pub fn parse(name: &str) -> CmdResult<Language> {
        let lower = name.to_lowercase();
        NAMES
            .iter()
            .find(|(long, code, _)| *long == lower || *code == lower)
            .map(|(_, _, lang)| *lang)
            .ok_or_else(|| CommandError::bad_value(format!("unsupported language: \"{name}\" for text index version 3")))
    }

    /// The name listIndexes and explain show.
    pub fn name(self) -> &'static str {
        NAMES.iter().find(|(_, _, l)| *l == self).map_or("none", |(n, _, _)| n)
    }

    fn algorithm(self) -> Option<Algorithm> {
        Some(match self {
            Language::None => return None,
            Language::Danish => Algorithm::Danish,
            Language::Dutch => Algorithm::Dutch,
            Language::English => Algorithm::English,
            Language::Finnish => Algorithm::Finnish,
            Language::French => Algorithm::French,
            Language::German => Algorithm::German,
            Language::Hungarian => Algorithm::Hungarian,
            Language::Italian => Algorithm::Italian,
            Language::Norwegian => Algorithm::Norwegian,
            Language::Portuguese => Algorithm::Portuguese,
            Language::Romanian => Algorithm::Romanian,
            Language::Russian => Algorithm::Russian,
            Language::Spanish => Algorithm::Spanish,
            Language::Swedish => Algorithm::Swedish,
            Language::Turkish => Algorithm::Turkish,
        })
    }

    /// The word's Snowball stem (the word itself for "none").
    pub fn stem(self, word: &str) -> String {
        match self.algorithm() {
            Some(algorithm) => Stemmer::create(algorithm).stem(word).into_owned(),
            None => word.to_string(),
        }
    }

    /// Whether `word` (lower-cased, diacritics kept) is one of the
    /// language's stop words.
    pub fn is_stop_word(self, word: &str) -> bool {
        self.stop_words().is_some_and(|set| set.contains(word))
    }

    fn stop_words(self) -> Option<&'static HashSet<&'static str>> {
        // One lazily built set per language, in NAMES order.
        static SETS: [OnceLock<Option<HashSet<&'static str>>>; 16] = [const { OnceLock::new() }; 16];
        let index = NAMES.iter().position(|(_, _, l)| *l == self)?;
        SETS[index]
            .get_or_init(|| {
                // NLTK names Norwegian "no" where MongoDB says "nb".
                let code = match self {
                    Language::None => return None,
                    Language::Norwegian => "no",
                    _ => NAMES[index].1,
                };
                stop_words::lookup(code).map(|words| words.iter().copied().collect())
            })
            .as_ref()
    }

    /// Whether `c` separates words. MongoDB's delimiters are the code
    /// points with the Unicode properties White_Space, Dash, Hyphen,
    /// Quotation_Mark, Terminal_Punctuation, Pattern_Syntax and STerm; in
    /// English the apostrophe is part of a word ("don't" is one stop word).
    pub fn is_delimiter(self, c: char) -> bool {
        if c == '\'' {
            return self != Language::English;
        }
        if c.is_whitespace() {
            return true;
        }
        match c {
            // ASCII Pattern_Syntax (`_` is a connector, not syntax).
            '!'..='/' | ':'..='@' | '['..='^' | '`' | '{'..='~' => true,
            // Latin-1 punctuation and symbols: ¡ through ¿ (but not the
            // letters, digits and marks of that range), × and ÷.
            '\u{a1}'..='\u{a7}' | '\u{a9}' | '\u{ab}' | '\u{ac}' | '\u{ae}' | '\u{b0}' | '\u{b1}' | '\u{b6}' | '\u{bb}' | '\u{bf}' | '\u{d7}' | '\u{f7}' => true,
            // General Punctuation, arrows, mathematical operators, box
            // drawing and the other Pattern_Syntax blocks.
            '\u{2010}'..='\u{2027}' | '\u{2030}'..='\u{205e}' | '\u{2190}'..='\u{245f}' | '\u{2500}'..='\u{2775}' | '\u{2794}'..='\u{2bff}' | '\u{2e00}'..='\u{2e7f}' => true,
            // CJK punctuation, fullwidth forms of ASCII punctuation.
            '\u{3001}'..='\u{3003}' | '\u{3008}'..='\u{3020}' | '\u{3030}' | '\u{fd3e}' | '\u{fd3f}' | '\u{fe45}' | '\u{fe46}' => true,
            '\u{ff01}'..='\u{ff0f}' | '\u{ff1a}'..='\u{ff20}' | '\u{ff3b}'..='\u{ff3d}' | '\u{ff3f}' | '\u{ff5b}'..='\u{ff65}' => true,
            // Arabic, Devanagari, Armenian and other scripts' full stops,
            // commas and question marks (Terminal_Punctuation).
            '\u{37e}' | '\u{387}' | '\u{589}' | '\u{5c3}' | '\u{60c}' | '\u{61b}' | '\u{61f}' | '\u{6d4}' | '\u{964}' | '\u{965}' => true,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_codes() {
        assert_eq!(Language::parse("english").unwrap(), Language::English);
        assert_eq!(Language::parse("ES").unwrap(), Language::Spanish);
        assert_eq!(Language::parse("none").unwrap(), Language::None);
        let err = Language::parse("klingon").unwrap_err();
        assert_eq!((err.code, err.message.as_str()), (2, "unsupported language: \"klingon\" for text index version 3"));
    }

    #[test]
    fn stems_and_stop_words() {
        assert_eq!(Language::English.stem("blueberries"), "blueberri");
        assert_eq!(Language::English.stem("coffee"), "coffe");
        assert_eq!(Language::Spanish.stem("gatos"), "gat");
        assert!(Language::English.is_stop_word("the"));
        assert!(Language::English.is_stop_word("don't"));
        assert!(!Language::English.is_stop_word("coffee"));
        assert!(Language::Spanish.is_stop_word("el"));
        assert!(Language::Italian.is_stop_word("perché") && Language::Portuguese.is_stop_word("você"));
        assert!(!Language::None.is_stop_word("the"));
    }

    /// Every language MongoDB supports has its stop words, from one source.
    #[test]
    fn every_language_has_stop_words() {
        let samples = [
            (Language::Danish, "og"),
            (Language::Dutch, "het"),
            (Language::English, "the"),
            (Language::Finnish, "että"),
            (Language::French, "les"),
            (Language::German, "und"),
            (Language::Hungarian, "hogy"),
            (Language::Italian, "della"),
            (Language::Norwegian, "ikke"),
            (Language::Portuguese, "não"),
            (Language::Romanian, "este"),
            (Language::Russian, "что"),
            (Language::Spanish, "los"),
            (Language::Swedish, "att"),
            (Language::Turkish, "için"),
        ];
        for (language, word) in samples {
            assert!(language.is_stop_word(word), "{language:?}: {word}");
            assert!(!language.is_stop_word("djongo"), "{language:?}");
        }
    }

    #[test]
    fn delimiters() {
        let en = Language::English;
        assert!(en.is_delimiter(' ') && en.is_delimiter('-') && en.is_delimiter('.') && en.is_delimiter('\u{2014}'));
        assert!(!en.is_delimiter('\'') && Language::French.is_delimiter('\''));
        assert!(!en.is_delimiter('_') && !en.is_delimiter('é') && !en.is_delimiter('7'));
    }
}
