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

use bson::{doc, Bson};

use super::expr::{lit, op1, opn};
use crate::plan::{Expr, Func, Literal};

/// Where a computed LIKE pattern puts its `%` wildcards around an escaped
/// value (Django's `pattern_ops` for lookups against an expression).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Affix {
    Contains,
    StartsWith,
    EndsWith,
}

/// `x` with LIKE's special characters escaped, as Django writes it:
/// `REPLACE(REPLACE(REPLACE(x, '\', '\\'), '%', '\%'), '_', '\_')`.
fn escaped_value(e: &Expr) -> Option<&Expr> {
    let mut cur = e;
    for (find, repl) in [("_", "\\_"), ("%", "\\%"), ("\\", "\\\\")] {
        match cur {
            Expr::Function { func: Func::Replace, args } if args.len() == 3 => {
                let is = |x: &Expr, s: &str| matches!(x, Expr::Literal(Literal::Str(v)) if v == s);
                if !is(&args[1], find) || !is(&args[2], repl) {
                    return None;
                }
                cur = &args[0];
            }
            _ => return None,
        }
    }
    Some(cur)
}

/// Recognises `'%' || esc(x) || '%'`, `esc(x) || '%'` and `'%' || esc(x)`.
pub(crate) fn affix_shape(pattern: &Expr) -> Option<(Affix, &Expr)> {
    let Expr::Concat(parts) = pattern else { return None };
    let pct = |x: &Expr| matches!(x, Expr::Literal(Literal::Str(v)) if v == "%");
    match parts.as_slice() {
        [a, x, b] if pct(a) && pct(b) => escaped_value(x).map(|v| (Affix::Contains, v)),
        [x, b] if pct(b) => escaped_value(x).map(|v| (Affix::StartsWith, v)),
        [a, x] if pct(a) => escaped_value(x).map(|v| (Affix::EndsWith, v)),
        _ => None,
    }
}

/// A substring test for an affix pattern (`v` and `x` are known non-NULL
/// by the caller's checks; the test itself is false on NULL).
pub(crate) fn affix_match(affix: Affix, v: Bson, x: Bson, case_insensitive: bool) -> Bson {
    let (v, x) = if case_insensitive { (op1("$toLower", v), op1("$toLower", x)) } else { (v, x) };
    let (vv, xv) = (Bson::String("$$v".into()), Bson::String("$$x".into()));
    let len = |s: &Bson| op1("$strLenCP", s.clone());
    let body = match affix {
        Affix::Contains => opn("$gte", vec![opn("$indexOfCP", vec![vv, xv]), Bson::Int32(0)]),
        Affix::StartsWith => opn("$eq", vec![opn("$substrCP", vec![vv, Bson::Int32(0), len(&xv)]), xv]),
        Affix::EndsWith => opn(
            "$and",
            vec![
                opn("$gte", vec![len(&vv), len(&xv)]),
                opn(
                    "$eq",
                    vec![opn("$substrCP", vec![vv.clone(), opn("$subtract", vec![len(&vv), len(&xv)]), len(&xv)]), xv],
                ),
            ],
        ),
    };
    let test = opn("$and", vec![is_string("$$v"), is_string("$$x"), body]);
    Bson::Document(doc! { "$let": { "vars": { "v": v, "x": x }, "in": test } })
}

fn is_string(var: &str) -> Bson {
    opn("$eq", vec![op1("$type", Bson::String(var.into())), lit("string")])
}

/// Characters that must be escaped to stand for themselves in a regex.
const REGEX_META: &str = "\\^$.|?*+()[]{}";

/// An aggregation expression converting the LIKE pattern `p` (escape `\`)
/// into an anchored regex at run time, with the rules of [`like_to_regex`]:
/// a `$reduce` over the pattern's characters carrying "after an escape".
pub(crate) fn runtime_like_regex(p: Bson) -> Bson {
    let c = || Bson::String("$$c".into());
    let out = || Bson::String("$$value.out".into());
    let escape_c = opn(
        "$cond",
        vec![
            opn("$gte", vec![opn("$indexOfCP", vec![lit(REGEX_META), c()]), Bson::Int32(0)]),
            opn("$concat", vec![lit("\\"), c()]),
            c(),
        ],
    );
    let step = |piece: Bson, esc: bool| Bson::Document(doc! { "out": opn("$concat", vec![out(), piece]), "esc": esc });
    let branches = vec![
        Bson::Document(doc! { "case": "$$value.esc", "then": step(escape_c.clone(), false) }),
        Bson::Document(doc! { "case": opn("$eq", vec![c(), lit("\\")]), "then": { "out": out(), "esc": true } }),
        Bson::Document(doc! { "case": opn("$eq", vec![c(), lit("%")]), "then": step(lit(".*"), false) }),
        Bson::Document(doc! { "case": opn("$eq", vec![c(), lit("_")]), "then": step(lit("."), false) }),
    ];
    let each = doc! { "$let": {
        "vars": { "c": opn("$substrCP", vec![Bson::String("$$p".into()), Bson::String("$$this".into()), Bson::Int32(1)]) },
        "in": { "$switch": { "branches": branches, "default": step(escape_c, false) } },
    } };
    let reduced = doc! { "$reduce": {
        "input": opn("$range", vec![Bson::Int32(0), op1("$strLenCP", Bson::String("$$p".into()))]),
        "initialValue": { "out": lit(""), "esc": false },
        "in": each,
    } };
    // A trailing escape character matches itself.
    let body = doc! { "$let": { "vars": { "r": reduced }, "in": opn("$concat", vec![
        lit("^"),
        Bson::String("$$r.out".into()),
        opn("$cond", vec![Bson::String("$$r.esc".into()), lit("\\\\"), lit("")]),
        lit("$"),
    ]) } };
    Bson::Document(doc! { "$let": { "vars": { "p": p }, "in": body } })
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
