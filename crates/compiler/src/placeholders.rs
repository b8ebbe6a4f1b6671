//! Parameter markers → numbered placeholders.
//!
//! Django writes `%s` for every parameter and `%%` for a literal `%` (pyformat
//! style); people writing raw SQL use `?` or `$N`. sqlparser understands `$N`,
//! so every marker becomes `$N` (1-based) here, and the plan later refers to
//! parameter `N-1`. Quoted identifiers and string literals are copied through
//! untouched (a `?` or `%s` inside `'...'` is data, not a marker); `%%` is
//! still unescaped inside strings because pyformat does that too.

/// The SQL with numbered placeholders, ready for the parser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewritten {
    pub sql: String,
    /// Number of parameters the statement expects.
    pub params: usize,
    /// For each char of `sql`, the index of the char of the original text it
    /// came from; used to report parse errors at the caller's positions.
    origin: Vec<usize>,
}

pub fn rewrite(input: &str) -> Rewritten {
    let chars: Vec<char> = input.chars().collect();
    let mut out = String::with_capacity(input.len() + 8);
    let mut origin = Vec::with_capacity(chars.len() + 8);
    let mut next = 0usize; // sequential markers seen (`%s`, `?`)
    let mut max_numbered = 0usize; // highest `$N` written by hand
    let mut quote: Option<char> = None;
    let mut i = 0;
    let push = |out: &mut String, origin: &mut Vec<usize>, c: char, from: usize| {
        out.push(c);
        origin.push(from);
    };
    while i < chars.len() {
        let c = chars[i];
        let nxt = chars.get(i + 1).copied();
        if let Some(q) = quote {
            if c == q {
                // A doubled quote is an escaped quote, not the end.
                if nxt == Some(q) {
                    push(&mut out, &mut origin, c, i);
                    push(&mut out, &mut origin, q, i + 1);
                    i += 2;
                    continue;
                }
                quote = None;
            } else if c == '%' && nxt == Some('%') && q == '\'' {
                push(&mut out, &mut origin, '%', i);
                i += 2;
                continue;
            }
            push(&mut out, &mut origin, c, i);
            i += 1;
            continue;
        }
        match c {
            '\'' | '"' | '`' => {
                quote = Some(c);
                push(&mut out, &mut origin, c, i);
                i += 1;
            }
            '%' if nxt == Some('s') => {
                next += 1;
                for d in format!("${next}").chars() {
                    push(&mut out, &mut origin, d, i);
                }
                i += 2;
            }
            '%' if nxt == Some('%') => {
                push(&mut out, &mut origin, '%', i);
                i += 2;
            }
            '?' => {
                next += 1;
                for d in format!("${next}").chars() {
                    push(&mut out, &mut origin, d, i);
                }
                i += 1;
            }
            '$' if nxt.is_some_and(|d| d.is_ascii_digit()) => {
                let start = i;
                push(&mut out, &mut origin, '$', i);
                i += 1;
                let mut n: usize = 0;
                while let Some(d) = chars.get(i).and_then(|d| d.to_digit(10)) {
                    n = n.saturating_mul(10).saturating_add(d as usize);
                    push(&mut out, &mut origin, chars[i], i);
                    i += 1;
                }
                let _ = start;
                max_numbered = max_numbered.max(n);
            }
            _ => {
                push(&mut out, &mut origin, c, i);
                i += 1;
            }
        }
    }
    Rewritten {
        sql: out,
        params: next.max(max_numbered),
        origin,
    }
}

impl Rewritten {
    /// Maps a 1-based (line, column) in the rewritten SQL back to the original.
    pub fn original_position(&self, original: &str, line: u64, column: u64) -> (u64, u64) {
        // Find the char index of (line, column) in the rewritten text.
        let (mut l, mut c) = (1u64, 1u64);
        let mut idx = None;
        for (k, ch) in self.sql.chars().enumerate() {
            if l == line && c == column {
                idx = Some(k);
                break;
            }
            if ch == '\n' {
                l += 1;
                c = 1;
            } else {
                c += 1;
            }
        }
        let Some(k) = idx else {
            return (line, column);
        };
        let Some(&orig) = self.origin.get(k) else {
            return (line, column);
        };
        let (mut l, mut c) = (1u64, 1u64);
        for ch in original.chars().take(orig) {
            if ch == '\n' {
                l += 1;
                c = 1;
            } else {
                c += 1;
            }
        }
        (l, c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pyformat_markers_are_numbered() {
        let r = rewrite(r#"SELECT "a" FROM "t" WHERE "a" = %s AND "b" IN (%s, %s)"#);
        assert_eq!(r.sql, r#"SELECT "a" FROM "t" WHERE "a" = $1 AND "b" IN ($2, $3)"#);
        assert_eq!(r.params, 3);
    }

    #[test]
    fn double_percent_is_a_literal_percent() {
        let r = rewrite(r#"SELECT "a" %% 2, '50%%' FROM "t" WHERE "a" = %s"#);
        assert_eq!(r.sql, r#"SELECT "a" % 2, '50%' FROM "t" WHERE "a" = $1"#);
        assert_eq!(r.params, 1);
    }

    #[test]
    fn quoted_text_is_not_scanned() {
        let r = rewrite(r#"SELECT '%s ?', "we%sird?" FROM "t" WHERE x = 'it''s %s' AND y = ?"#);
        assert_eq!(
            r.sql,
            r#"SELECT '%s ?', "we%sird?" FROM "t" WHERE x = 'it''s %s' AND y = $1"#
        );
        assert_eq!(r.params, 1);
    }

    #[test]
    fn question_marks_and_dollar_numbers() {
        assert_eq!(rewrite("SELECT ? , ?").sql, "SELECT $1 , $2");
        let r = rewrite("SELECT $2, $1");
        assert_eq!(r.sql, "SELECT $2, $1");
        assert_eq!(r.params, 2);
    }

    #[test]
    fn positions_map_back_to_the_original() {
        let src = "SELECT %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s FROM";
        let r = rewrite(src);
        // `FROM` starts after `$10, $11, ` in the rewritten text (2 extra chars).
        let col = r.sql.find("FROM").map(|p| p as u64 + 1).unwrap_or(0);
        let (l, c) = r.original_position(src, 1, col);
        assert_eq!((l, c), (1, src.find("FROM").map(|p| p as u64 + 1).unwrap_or(0)));
    }

    #[test]
    fn unterminated_quote_does_not_panic() {
        let r = rewrite("SELECT 'abc %s");
        assert_eq!(r.params, 0);
    }
}
