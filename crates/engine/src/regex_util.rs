//! MongoDB regular expressions (PCRE syntax, options `imsx`).
//!
//! Patterns run on the `regex` crate (linear time) when it can express
//! them; those that need back-references (`(a)\1`) or look-around
//! (`(?=...)`, `(?<!...)`), which it leaves out, run on `fancy-regex`, a
//! backtracking engine like PCRE. A backtracking match that exceeds its step
//! limit is an error, as PCRE's match limit is in mongod, never a silent
//! non-match.
use crate::{EngineError, Result};
use std::ops::Range;

/// Steps a backtracking match may take (PCRE2's default match limit).
const BACKTRACK_LIMIT: usize = 10_000_000;

#[derive(Debug, Clone)]
pub enum Regex {
    Linear(regex::Regex),
    /// With the pattern as written (the engine's own carries the options).
    Backtracking(fancy_regex::Regex, String),
}

/// One match: the byte ranges of the whole match (group 0) and of each
/// capture group (`None` for a group that did not take part).
#[derive(Debug, Clone)]
pub struct Captures {
    pub groups: Vec<Option<Range<usize>>>,
}

impl Captures {
    pub fn whole(&self) -> Range<usize> {
        self.groups.first().cloned().flatten().unwrap_or(0..0)
    }
}

fn match_error(e: fancy_regex::Error) -> EngineError {
    EngineError::new(51091, "Location51091", format!("Regular expression failed to match: {e}"))
}

impl Regex {
    pub fn as_str(&self) -> &str {
        match self {
            Regex::Linear(r) => r.as_str(),
            Regex::Backtracking(_, pattern) => pattern,
        }
    }

    pub fn is_match(&self, text: &str) -> Result<bool> {
        match self {
            Regex::Linear(r) => Ok(r.is_match(text)),
            Regex::Backtracking(r, _) => r.is_match(text).map_err(match_error),
        }
    }

    /// The first match, if any.
    pub fn captures(&self, text: &str) -> Result<Option<Captures>> {
        Ok(self.captures_all(text, true)?.into_iter().next())
    }

    /// Every non-overlapping match, left to right (only the first if `first`).
    pub fn captures_all(&self, text: &str, first: bool) -> Result<Vec<Captures>> {
        let mut out = Vec::new();
        match self {
            Regex::Linear(r) => {
                for caps in r.captures_iter(text) {
                    out.push(Captures { groups: caps.iter().map(|g| g.map(|m| m.range())).collect() });
                    if first {
                        break;
                    }
                }
            }
            Regex::Backtracking(r, _) => {
                for caps in r.captures_iter(text) {
                    let caps = caps.map_err(match_error)?;
                    out.push(Captures { groups: caps.iter().map(|g| g.map(|m| m.range())).collect() });
                    if first {
                        break;
                    }
                }
            }
        }
        Ok(out)
    }
}

struct Flags {
    case_insensitive: bool,
    multi_line: bool,
    dot_all: bool,
    extended: bool,
}

fn flags(options: &str) -> Result<Flags> {
    let mut f = Flags { case_insensitive: false, multi_line: false, dot_all: false, extended: false };
    for c in options.chars() {
        match c {
            'i' => f.case_insensitive = true,
            'm' => f.multi_line = true,
            's' => f.dot_all = true,
            'x' => f.extended = true,
            // 'u' (unicode) is always on in MongoDB and here.
            'u' => {}
            other => {
                return Err(EngineError::location(51108, format!("invalid flag in regex options: {other}")));
            }
        }
    }
    Ok(f)
}

pub fn compile(pattern: &str, options: &str) -> Result<Regex> {
    let f = flags(options)?;
    let linear = regex::RegexBuilder::new(pattern)
        .case_insensitive(f.case_insensitive)
        .multi_line(f.multi_line)
        .dot_matches_new_line(f.dot_all)
        .ignore_whitespace(f.extended)
        .size_limit(1 << 22)
        .build();
    let linear_error = match linear {
        Ok(r) => return Ok(Regex::Linear(r)),
        Err(e) => e,
    };
    // fancy-regex takes the options as inline flags.
    let inline: String = [(f.case_insensitive, 'i'), (f.multi_line, 'm'), (f.dot_all, 's'), (f.extended, 'x')]
        .iter()
        .filter_map(|(on, c)| on.then_some(*c))
        .collect();
    let flagged = if inline.is_empty() { pattern.to_string() } else { format!("(?{inline}){pattern}") };
    let backtracking = fancy_regex::RegexBuilder::new(&flagged)
        .backtrack_limit(BACKTRACK_LIMIT)
        .delegate_size_limit(1 << 22)
        .build();
    match backtracking {
        Ok(r) => Ok(Regex::Backtracking(r, pattern.to_string())),
        // The linear engine's message is the more precise one for a
        // pattern neither accepts.
        Err(_) => Err(EngineError::new(51091, "Location51091", format!("Regular expression is invalid: {linear_error}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_references_and_look_around_work() {
        let r = compile(r"^(\w)\w*\1$", "").unwrap();
        assert!(matches!(r, Regex::Backtracking(..)));
        assert_eq!(r.as_str(), r"^(\w)\w*\1$");
        assert!(r.is_match("abca").unwrap());
        assert!(!r.is_match("abcd").unwrap());
        let r = compile(r"foo(?!bar)", "i").unwrap();
        assert_eq!(r.as_str(), "foo(?!bar)");
        assert!(r.is_match("FOObaz").unwrap());
        assert!(!r.is_match("FOOBAR").unwrap());
        let caps = compile(r"(a)(x)?\1", "").unwrap().captures("zaa").unwrap().unwrap();
        assert_eq!(caps.groups, vec![Some(1..3), Some(1..2), None]);
    }

    #[test]
    fn plain_patterns_stay_linear_and_bad_ones_are_refused() {
        assert!(matches!(compile("^a.c$", "s").unwrap(), Regex::Linear(_)));
        assert_eq!(compile("(", "").unwrap_err().code, 51091);
        assert_eq!(compile("a", "q").unwrap_err().code, 51108);
    }

    #[test]
    fn runaway_backtracking_is_an_error_not_a_non_match() {
        let r = compile(r"^(a+)+\1$", "").unwrap();
        let text = format!("{}b", "a".repeat(40));
        assert_eq!(r.is_match(&text).unwrap_err().code, 51091);
    }
}
