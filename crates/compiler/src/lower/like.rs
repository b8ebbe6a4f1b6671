//! SQL LIKE patterns → anchored regular expressions, done at compile time
//! for literal patterns (parameter patterns are converted by the executor
//! with the same rules; see the `like` slot in docs/plan-format.md).

/// Converts a LIKE pattern with `\` as the escape character: `%` → `.*`,
/// `_` → `.`, `\x` → literal `x`, every other character escaped; the same
/// rules the executor applies to a `like` parameter slot.
pub fn like_to_regex(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 8);
    out.push('^');
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '%' => out.push_str(".*"),
            '_' => out.push('.'),
            '\\' => match chars.next() {
                Some(n) => push_literal(&mut out, n),
                // A trailing escape character matches itself (Postgres errors).
                None => push_literal(&mut out, '\\'),
            },
            other => push_literal(&mut out, other),
        }
    }
    out.push('$');
    out
}

fn push_literal(out: &mut String, c: char) {
    if c.is_ascii_punctuation() && !matches!(c, '_' | '%' | '\'' | '"' | '`' | ',' | ';' | ':' | '<' | '>' | '=' | '@' | '!' | '~' | '&' | '/') {
        out.push('\\');
    }
    out.push(c);
}

#[cfg(test)]
mod tests {
    use super::like_to_regex;

    #[test]
    fn wildcards() {
        assert_eq!(like_to_regex("%abc%"), "^.*abc.*$");
        assert_eq!(like_to_regex("a_c"), "^a.c$");
    }

    #[test]
    fn escapes() {
        assert_eq!(like_to_regex(r"100\%"), r"^100%$");
        assert_eq!(like_to_regex(r"a\_b"), r"^a_b$");
        assert_eq!(like_to_regex(r"a\\b"), r"^a\\b$");
        assert_eq!(like_to_regex("x\\"), r"^x\\$");
    }

    #[test]
    fn regex_metacharacters_are_literal() {
        assert_eq!(like_to_regex("a.b*c(d)[e]{f}|g+h?^$"), r"^a\.b\*c\(d\)\[e\]\{f\}\|g\+h\?\^\$$");
        assert_eq!(like_to_regex("héllo wörld"), "^héllo wörld$");
    }
}
