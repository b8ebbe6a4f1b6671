//! MongoDB regular expressions (PCRE syntax, options `imsx`) mapped onto the
//! `regex` crate. Constructs it lacks (look-around, back-references) are
//! reported as invalid patterns rather than silently mis-matched.
use crate::{EngineError, Result};
use regex::{Regex, RegexBuilder};

pub fn compile(pattern: &str, options: &str) -> Result<Regex> {
    let mut b = RegexBuilder::new(pattern);
    for c in options.chars() {
        match c {
            'i' => {
                b.case_insensitive(true);
            }
            'm' => {
                b.multi_line(true);
            }
            's' => {
                b.dot_matches_new_line(true);
            }
            'x' => {
                b.ignore_whitespace(true);
            }
            // 'u' (unicode) is always on in MongoDB and here.
            'u' => {}
            other => {
                return Err(EngineError::location(51108, format!("invalid flag in regex options: {other}")));
            }
        }
    }
    b.size_limit(1 << 22);
    b.build()
        .map_err(|e| EngineError::new(51091, "Location51091", format!("Regular expression is invalid: {e}")))
}
