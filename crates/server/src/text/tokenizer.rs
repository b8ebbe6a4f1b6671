//! MongoDB's text tokenizer (version 3, "unicode"): words are the runs of
//! code points between delimiters; each is case-folded, checked against the
//! stop words, stemmed, then stripped of its diacritics.
use super::language::Language;
use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

/// How a tokenizer treats words.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokenOptions {
    pub filter_stop_words: bool,
    /// Keep the word's case (`$caseSensitive`).
    pub case_sensitive: bool,
    /// Keep the word's diacritics (`$diacriticSensitive`).
    pub diacritic_sensitive: bool,
}

impl TokenOptions {
    /// What an index stores and a case/diacritic-insensitive query uses.
    pub const INDEX: TokenOptions = TokenOptions { filter_stop_words: true, case_sensitive: false, diacritic_sensitive: false };
}

/// The raw words of `text` (split at the language's delimiters).
pub fn words(language: Language, text: &str) -> impl Iterator<Item = &str> {
    text.split(move |c| language.is_delimiter(c)).filter(|w| !w.is_empty())
}

/// The terms of `text`, in order, with repeats.
pub fn tokens(language: Language, text: &str, options: TokenOptions) -> Vec<String> {
    words(language, text).filter_map(|word| term(language, word, options)).collect()
}

/// One word's term, or `None` for a stop word being filtered.
pub fn term(language: Language, word: &str, options: TokenOptions) -> Option<String> {
    // Stop words are matched lower-cased, diacritics kept.
    let lower = fold_case(language, word);
    if options.filter_stop_words && language.is_stop_word(&lower) {
        return None;
    }
    let cased = if options.case_sensitive { word.to_string() } else { lower };
    // The stemmers expect diacritics: stem first, strip after.
    let stemmed = language.stem(&cased);
    Some(if options.diacritic_sensitive { stemmed } else { strip_diacritics(&stemmed) })
}

/// Lower-cases `word` (Turkish folds I to dotless ı).
pub fn fold_case(language: Language, word: &str) -> String {
    if language == Language::Turkish {
        word.chars()
            .flat_map(|c| match c {
                'I' => vec!['ı'],
                'İ' => vec!['i'],
                other => other.to_lowercase().collect(),
            })
            .collect()
    } else {
        word.to_lowercase()
    }
}

/// `text` without its combining marks: "café" → "cafe", "Ångström" → "Angstrom".
pub fn strip_diacritics(text: &str) -> String {
    if text.is_ascii() {
        return text.to_string();
    }
    text.nfd().filter(|c| !is_combining_mark(*c)).nfc().collect()
}

/// `text` as a phrase search compares it: case-folded unless
/// `case_sensitive`, diacritics stripped unless `diacritic_sensitive`.
pub fn normalize_for_phrase(language: Language, text: &str, case_sensitive: bool, diacritic_sensitive: bool) -> String {
    let cased = if case_sensitive { text.to_string() } else { fold_case(language, text) };
    if diacritic_sensitive {
        cased
    } else {
        strip_diacritics(&cased)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_terms_are_folded_filtered_and_stemmed() {
        let t = tokens(Language::English, "The Coffee-shop's coffees, and CAFÉ!", TokenOptions::INDEX);
        assert_eq!(t, vec!["coffe", "shop", "coffe", "cafe"]);
    }

    #[test]
    fn sensitive_options_keep_case_and_marks() {
        let opts = TokenOptions { filter_stop_words: true, case_sensitive: true, diacritic_sensitive: true };
        assert_eq!(tokens(Language::English, "Café Coffee", opts), vec!["Café", "Coffe"]);
        assert_eq!(tokens(Language::None, "the THE", TokenOptions::INDEX), vec!["the", "the"]);
    }

    #[test]
    fn diacritics() {
        assert_eq!(strip_diacritics("Ångström naïve café"), "Angstrom naive cafe");
        assert_eq!(fold_case(Language::Turkish, "IİI"), "ıiı");
    }
}
