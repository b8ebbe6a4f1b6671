//! Collations: MongoDB's collation document, compared with ICU4X.
//!
//! MongoDB attaches a collation to an operation (a `find`, an `aggregate`,
//! an update or delete statement...). Under it, every comparison of two
//! strings the operation makes — query operators, `$expr` comparisons,
//! sorts, `$group` and `distinct` keys — follows the collation instead of
//! comparing UTF-8 bytes; `$regex` and field names are not affected.
//!
//! The operation's collation is in force for the thread that runs it:
//! [`scoped`] sets it around the work and [`crate::compare::cmp_bson`] and
//! [`crate::compare::canonical_key`] read it, so every stage and operator
//! that compares values follows it without each carrying it along (mongod
//! passes it in its ExpressionContext for the same reason). The comparison
//! itself is ICU4X's `icu_collator`, the Unicode Collation Algorithm with
//! CLDR's tailorings, as mongod's is ICU4C's.
use crate::error::{EngineError, Result};
use bson::{Bson, Document};
use icu_collator::options::{AlternateHandling, CaseLevel, CollatorOptions, MaxVariable, Strength};
use icu_collator::preferences::{CollationCaseFirst, CollationNumericOrdering};
use icu_collator::{CollatorBorrowed, CollatorPreferences};
use std::cell::RefCell;
use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A parsed, non-simple collation and its ICU collator.
pub struct Collation {
    /// The document as the client gave it (fields in MongoDB's order).
    spec: Document,
    collator: CollatorBorrowed<'static>,
}

impl std::fmt::Debug for Collation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Collation({})", self.spec)
    }
}

impl PartialEq for Collation {
    fn eq(&self, other: &Self) -> bool {
        self.spec == other.spec
    }
}

impl Collation {
    /// The collation document, as given.
    pub fn spec(&self) -> &Document {
        &self.spec
    }

    pub fn compare(&self, a: &str, b: &str) -> Ordering {
        self.collator.compare(a, b)
    }

    /// Bytes that compare (bytewise) as the strings compare under the
    /// collation: equal exactly for strings the collation calls equal.
    pub fn sort_key(&self, s: &str) -> Vec<u8> {
        let mut key = Vec::new();
        let Ok(()) = self.collator.write_sort_key_to(s, &mut key);
        key
    }
}

fn invalid(message: impl Into<String>) -> EngineError {
    EngineError::new(9, "FailedToParse", message)
}

/// Parses a `collation` option: `None` for the simple (binary) collation,
/// the one every operation without a collation uses.
pub fn parse(value: &Bson) -> Result<Option<Arc<Collation>>> {
    let Bson::Document(spec) = value else {
        return Err(EngineError::type_mismatch(format!("collation must be an object, not {value}")));
    };
    let locale = match spec.get("locale") {
        Some(Bson::String(l)) => l.as_str(),
        Some(other) => return Err(EngineError::type_mismatch(format!("Field 'locale' must be of type string, not {other}"))),
        None => return Err(invalid("Missing required field 'locale'")),
    };
    if locale == "simple" {
        if spec.len() > 1 {
            return Err(EngineError::bad_value(format!("If 'locale' is \"simple\", no other fields may be set: {spec}")));
        }
        return Ok(None);
    }
    let key = spec.to_string();
    if let Some(found) = cache().lock().ok().and_then(|c| c.get(&key).cloned()) {
        return Ok(Some(found));
    }
    let collation = Arc::new(build(spec, locale)?);
    if let Ok(mut c) = cache().lock() {
        if c.len() >= 256 {
            c.clear();
        }
        c.insert(key, collation.clone());
    }
    Ok(Some(collation))
}

fn cache() -> &'static Mutex<HashMap<String, Arc<Collation>>> {
    static CACHE: std::sync::OnceLock<Mutex<HashMap<String, Arc<Collation>>>> = std::sync::OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

fn flag(spec: &Document, name: &str) -> Result<Option<bool>> {
    match spec.get(name) {
        None => Ok(None),
        Some(Bson::Boolean(b)) => Ok(Some(*b)),
        Some(other) => Err(EngineError::type_mismatch(format!("Field '{name}' must be of type bool, not {other}"))),
    }
}

fn text<'a>(spec: &'a Document, name: &str) -> Result<Option<&'a str>> {
    match spec.get(name) {
        None => Ok(None),
        Some(Bson::String(s)) => Ok(Some(s.as_str())),
        Some(other) => Err(EngineError::type_mismatch(format!("Field '{name}' must be of type string, not {other}"))),
    }
}

/// An ICU locale id as MongoDB takes it (`en_US`, `de@collation=phonebook`)
/// as a BCP 47 tag (`en-US`, `de-u-co-phonebk`).
fn bcp47(locale: &str) -> Result<icu_locale_core::Locale> {
    let bad = || EngineError::bad_value(format!("Field 'locale' is invalid in: {{ locale: \"{locale}\" }}"));
    let (base, keywords) = match locale.split_once('@') {
        Some((base, keywords)) => (base, Some(keywords)),
        None => (locale, None),
    };
    let mut tag = base.replace('_', "-");
    if let Some(keywords) = keywords {
        let Some(kind) = keywords.strip_prefix("collation=") else {
            return Err(bad());
        };
        // CLDR's collation type keys are at most 8 letters in BCP 47.
        let kind = match kind {
            "phonebook" => "phonebk",
            "traditional" => "trad",
            "dictionary" => "dict",
            "gb2312han" => "gb2312",
            other => other,
        };
        tag.push_str("-u-co-");
        tag.push_str(kind);
    }
    let parsed = icu_locale_core::Locale::try_from_str(&tag).map_err(|_| bad())?;
    // A language is required ("root", the root collation, arrives as "und").
    if parsed.id.language.is_unknown() && base != "und" {
        return Err(bad());
    }
    Ok(parsed)
}

fn build(spec: &Document, locale: &str) -> Result<Collation> {
    const FIELDS: [&str; 9] =
        ["locale", "strength", "caseLevel", "caseFirst", "numericOrdering", "alternate", "maxVariable", "backwards", "normalization"];
    if let Some(unknown) = spec.keys().find(|k| !FIELDS.contains(&k.as_str()) && k.as_str() != "version") {
        return Err(invalid(format!("unknown collation field '{unknown}'")));
    }
    let root = if locale == "root" { "und" } else { locale };
    let tag = bcp47(root)?;
    let mut prefs = CollatorPreferences::from(&tag);
    let mut options = CollatorOptions::default();
    match spec.get("strength") {
        None => {}
        Some(v) => {
            let level = crate::num::Num::from_bson(v)
                .and_then(|n| n.to_i64_exact())
                .ok_or_else(|| EngineError::type_mismatch(format!("Field 'strength' must be an integer, not {v}")))?;
            options.strength = Some(match level {
                1 => Strength::Primary,
                2 => Strength::Secondary,
                3 => Strength::Tertiary,
                4 => Strength::Quaternary,
                5 => Strength::Identical,
                _ => return Err(EngineError::bad_value(format!("Field 'strength' must be an integer 1 through 5. Got: {level}"))),
            });
        }
    }
    if let Some(on) = flag(spec, "caseLevel")? {
        options.case_level = Some(if on { CaseLevel::On } else { CaseLevel::Off });
    }
    if let Some(first) = text(spec, "caseFirst")? {
        prefs.case_first = Some(match first {
            "upper" => CollationCaseFirst::Upper,
            "lower" => CollationCaseFirst::Lower,
            "off" => CollationCaseFirst::False,
            other => return Err(EngineError::bad_value(format!("Field 'caseFirst' must be \"upper\", \"lower\", or \"off\". Got: {other}"))),
        });
    }
    if let Some(on) = flag(spec, "numericOrdering")? {
        prefs.numeric_ordering = Some(if on { CollationNumericOrdering::True } else { CollationNumericOrdering::False });
    }
    if let Some(alternate) = text(spec, "alternate")? {
        options.alternate_handling = Some(match alternate {
            "non-ignorable" => AlternateHandling::NonIgnorable,
            "shifted" => AlternateHandling::Shifted,
            other => return Err(EngineError::bad_value(format!("Field 'alternate' must be \"non-ignorable\" or \"shifted\". Got: {other}"))),
        });
    }
    if let Some(max) = text(spec, "maxVariable")? {
        options.max_variable = Some(match max {
            "punct" => MaxVariable::Punctuation,
            "space" => MaxVariable::Space,
            other => return Err(EngineError::bad_value(format!("Field 'maxVariable' must be \"punct\" or \"space\". Got: {other}"))),
        });
    }
    // ICU4X takes backward secondary weights from the locale's tailoring
    // (fr_CA) and offers no switch: a different setting is refused, not
    // silently replaced.
    if let Some(backwards) = flag(spec, "backwards")? {
        let locale_default = tag.id.language.as_str() == "fr" && tag.id.region.is_some_and(|r| r.as_str() == "CA");
        if backwards != locale_default {
            return Err(EngineError::unsupported(format!("collation option backwards: {backwards} for locale \"{locale}\"")));
        }
    }
    // ICU4X always brings the strings to canonical order first (mongod's
    // `normalization: true`); with `false` mongod skips that step, which
    // changes nothing for text already in FCD form (almost all text).
    flag(spec, "normalization")?;
    let collator = CollatorBorrowed::try_new(prefs, options)
        .map_err(|e| EngineError::bad_value(format!("Field 'locale' is invalid in: {{ locale: \"{locale}\" }} ({e})")))?;
    Ok(Collation { spec: spec.clone(), collator })
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<Collation>>> = const { RefCell::new(None) };
}

/// Restores the previous collation when the scope ends, even by unwinding.
struct Restore(Option<Arc<Collation>>);

impl Drop for Restore {
    fn drop(&mut self) {
        let previous = self.0.take();
        CURRENT.with(|c| *c.borrow_mut() = previous);
    }
}

/// Runs `work` with `collation` (`None`: the simple collation) as the
/// collation of every string comparison it makes on this thread.
pub fn scoped<T>(collation: Option<Arc<Collation>>, work: impl FnOnce() -> T) -> T {
    let previous = CURRENT.with(|c| std::mem::replace(&mut *c.borrow_mut(), collation));
    let _restore = Restore(previous);
    work()
}

/// The collation in force on this thread (`None`: simple).
pub fn current() -> Option<Arc<Collation>> {
    CURRENT.with(|c| c.borrow().clone())
}

/// Whether a non-simple collation is in force.
pub fn is_active() -> bool {
    CURRENT.with(|c| c.borrow().is_some())
}

/// Two strings compared under the collation in force.
pub fn compare_strings(a: &str, b: &str) -> Ordering {
    CURRENT.with(|c| match &*c.borrow() {
        Some(collation) => collation.compare(a, b),
        None => a.cmp(b),
    })
}

/// The sort key of `s` under the collation in force, if one is.
pub fn current_sort_key(s: &str) -> Option<Vec<u8>> {
    CURRENT.with(|c| c.borrow().as_ref().map(|collation| collation.sort_key(s)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::{bson_eq, canonical_key, cmp_bson};
    use bson::doc;

    fn under<T>(spec: Document, work: impl FnOnce() -> T) -> T {
        let collation = parse(&Bson::Document(spec)).unwrap_or_else(|e| panic!("{e}"));
        scoped(collation, work)
    }

    fn s(v: &str) -> Bson {
        Bson::String(v.to_string())
    }

    #[test]
    fn simple_is_binary_and_takes_no_options() {
        assert!(parse(&Bson::Document(doc! {"locale": "simple"})).unwrap_or_else(|e| panic!("{e}")).is_none());
        assert_eq!(parse(&Bson::Document(doc! {"locale": "simple", "strength": 2})).map(|_| ()).unwrap_err().code, 2);
        assert_eq!(cmp_bson(&s("B"), &s("a")), Ordering::Less);
    }

    #[test]
    fn strength_two_ignores_case_but_not_accents() {
        under(doc! {"locale": "en", "strength": 2}, || {
            assert!(bson_eq(&s("Andrew"), &s("ANDREW")));
            assert!(!bson_eq(&s("resume"), &s("résumé")));
            assert_eq!(canonical_key(&s("Andrew")), canonical_key(&s("aNDREW")));
        });
    }

    #[test]
    fn strength_one_ignores_case_and_accents() {
        under(doc! {"locale": "fr", "strength": 1}, || {
            assert!(bson_eq(&s("cote"), &s("Côté")));
        });
    }

    #[test]
    fn default_strength_orders_lowercase_first_but_tells_case_apart() {
        under(doc! {"locale": "en"}, || {
            assert_eq!(cmp_bson(&s("a"), &s("A")), Ordering::Less);
            assert_eq!(cmp_bson(&s("A"), &s("b")), Ordering::Less);
            assert!(!bson_eq(&s("a"), &s("A")));
        });
        under(doc! {"locale": "en", "caseFirst": "upper"}, || {
            assert_eq!(cmp_bson(&s("A"), &s("a")), Ordering::Less);
        });
    }

    #[test]
    fn swedish_sorts_o_umlaut_after_z() {
        under(doc! {"locale": "sv"}, || {
            assert_eq!(cmp_bson(&s("Ö"), &s("Z")), Ordering::Greater);
        });
        under(doc! {"locale": "de"}, || {
            assert_eq!(cmp_bson(&s("Ö"), &s("P")), Ordering::Less);
        });
    }

    #[test]
    fn numeric_ordering_compares_digits_as_numbers() {
        under(doc! {"locale": "en", "numericOrdering": true}, || {
            assert_eq!(cmp_bson(&s("10"), &s("9")), Ordering::Greater);
        });
        under(doc! {"locale": "en"}, || {
            assert_eq!(cmp_bson(&s("10"), &s("9")), Ordering::Less);
        });
    }

    #[test]
    fn alternate_shifted_ignores_punctuation_and_spaces() {
        under(doc! {"locale": "en", "strength": 1, "alternate": "shifted"}, || {
            assert!(bson_eq(&s("a b-c"), &s("abc")));
        });
        under(doc! {"locale": "en", "strength": 1}, || {
            assert!(!bson_eq(&s("a b-c"), &s("abc")));
        });
    }

    #[test]
    fn case_level_tells_case_apart_at_strength_one() {
        under(doc! {"locale": "en", "strength": 1, "caseLevel": true}, || {
            assert!(!bson_eq(&s("a"), &s("A")));
            assert!(bson_eq(&s("a"), &s("á")));
        });
    }

    #[test]
    fn collation_reaches_strings_inside_documents_and_arrays_only() {
        under(doc! {"locale": "en", "strength": 2}, || {
            assert!(bson_eq(&Bson::Document(doc! {"k": "X"}), &Bson::Document(doc! {"k": "x"})));
            assert!(bson_eq(&Bson::Array(vec![s("A")]), &Bson::Array(vec![s("a")])));
            // Field names are not collated.
            assert!(!bson_eq(&Bson::Document(doc! {"K": 1}), &Bson::Document(doc! {"k": 1})));
            // Numbers and strings keep their type order.
            assert_eq!(cmp_bson(&Bson::Int32(5), &s("a")), Ordering::Less);
        });
    }

    #[test]
    fn the_scope_ends_with_its_work() {
        under(doc! {"locale": "en", "strength": 2}, || assert!(is_active()));
        assert!(!is_active());
        assert!(!bson_eq(&s("a"), &s("A")));
    }

    #[test]
    fn mongodb_locale_ids_are_read() {
        for locale in ["en_US", "de@collation=phonebook", "zh_Hant", "sr_Latn", "root", "fr_CA"] {
            assert!(parse(&Bson::Document(doc! {"locale": locale})).is_ok(), "{locale}");
        }
        under(doc! {"locale": "de@collation=phonebook"}, || {
            // The phone book puts "Ä" with "AE".
            assert_eq!(cmp_bson(&s("Äb"), &s("Af")), Ordering::Less);
        });
    }

    #[test]
    fn bad_documents_are_refused() {
        let code = |d: Document| parse(&Bson::Document(d)).map(|_| ()).unwrap_err().code;
        assert_eq!(code(doc! {"strength": 2}), 9);
        assert_eq!(code(doc! {"locale": 1}), 14);
        assert_eq!(code(doc! {"locale": "en", "strength": 6}), 2);
        assert_eq!(code(doc! {"locale": "en", "caseFirst": "middle"}), 2);
        assert_eq!(code(doc! {"locale": "en", "bogus": true}), 9);
        assert_eq!(code(doc! {"locale": "en@calendar=x"}), 2);
        assert_eq!(code(doc! {"locale": "!!"}), 2);
        assert_eq!(code(doc! {"locale": "en", "backwards": true}), 115);
        assert_eq!(parse(&s("en")).map(|_| ()).unwrap_err().code, 14);
    }
}
