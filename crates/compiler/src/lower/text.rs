//! String functions MongoDB has no operator for (LEFT, RIGHT, REVERSE,
//! REPEAT, LPAD, RPAD), built from `$substrCP`, `$range` and `$reduce`, and
//! the bit shifts. Each operand is bound once with `$let`; a NULL operand
//! gives NULL, as in SQL (MongoDB's string operators would read it as "").
use bson::{doc, Bson, Document};

use super::expr::{is_null, lit, op1, opn};

fn var(name: &str) -> Bson {
    Bson::String(format!("$${name}"))
}

/// `{$let: {vars, in: NULL if any var is NULL else body}}`.
fn null_safe_let(vars: Vec<(&str, Bson)>, body: Bson) -> Bson {
    let mut v = Document::new();
    let mut nulls = Vec::new();
    for (name, value) in vars {
        nulls.push(is_null(var(name)));
        v.insert(name, value);
    }
    let test = if nulls.len() == 1 { nulls.pop().unwrap_or(Bson::Boolean(false)) } else { opn("$or", nulls) };
    Bson::Document(doc! { "$let": { "vars": v, "in": { "$cond": [test, Bson::Null, body] } } })
}

fn len(s: Bson) -> Bson {
    op1("$strLenCP", s)
}

fn substr(s: Bson, start: Bson, count: Bson) -> Bson {
    opn("$substrCP", vec![s, start, count])
}

fn max0(x: Bson) -> Bson {
    opn("$max", vec![x, Bson::Int32(0)])
}

/// `s` repeated `n` times (none when `n <= 0`).
fn repeated(s: Bson, n: Bson) -> Bson {
    Bson::Document(doc! { "$reduce": {
        "input": opn("$range", vec![Bson::Int32(0), max0(n)]),
        "initialValue": lit(""),
        "in": opn("$concat", vec![var("value"), s]),
    } })
}

/// `LEFT(s, n)`: the first `n` characters; a negative `n` drops the last `-n`.
pub(crate) fn left(s: Bson, n: Bson) -> Bson {
    let count = opn(
        "$cond",
        vec![
            opn("$lt", vec![var("n"), Bson::Int32(0)]),
            max0(opn("$add", vec![len(var("s")), var("n")])),
            var("n"),
        ],
    );
    null_safe_let(vec![("s", s), ("n", n)], substr(var("s"), Bson::Int32(0), count))
}

/// `RIGHT(s, n)`: the last `n` characters; a negative `n` drops the first `-n`.
pub(crate) fn right(s: Bson, n: Bson) -> Bson {
    let start = opn(
        "$cond",
        vec![
            opn("$lt", vec![var("n"), Bson::Int32(0)]),
            opn("$min", vec![opn("$subtract", vec![Bson::Int32(0), var("n")]), len(var("s"))]),
            max0(opn("$subtract", vec![len(var("s")), var("n")])),
        ],
    );
    null_safe_let(vec![("s", s), ("n", n)], substr(var("s"), start, len(var("s"))))
}

pub(crate) fn reverse(s: Bson) -> Bson {
    let body = Bson::Document(doc! { "$reduce": {
        "input": opn("$range", vec![Bson::Int32(0), len(var("s"))]),
        "initialValue": lit(""),
        "in": opn("$concat", vec![substr(var("s"), var("this"), Bson::Int32(1)), var("value")]),
    } });
    null_safe_let(vec![("s", s)], body)
}

pub(crate) fn repeat(s: Bson, n: Bson) -> Bson {
    null_safe_let(vec![("s", s), ("n", n)], repeated(var("s"), var("n")))
}

/// `LPAD`/`RPAD(s, n, fill)`: `s` cut or padded with `fill` to `n` characters.
pub(crate) fn pad(s: Bson, n: Bson, fill: Bson, on_left: bool) -> Bson {
    let missing = max0(opn("$subtract", vec![var("n"), len(var("s"))]));
    let padding = substr(repeated(var("f"), var("n")), Bson::Int32(0), missing);
    let padded = if on_left { vec![padding, var("s")] } else { vec![var("s"), padding] };
    let body = opn(
        "$cond",
        vec![
            opn("$gte", vec![len(var("s")), var("n")]),
            substr(var("s"), Bson::Int32(0), max0(var("n"))),
            opn("$concat", padded),
        ],
    );
    null_safe_let(vec![("s", s), ("n", n), ("f", fill)], body)
}

/// `x << n` and `x >> n` on integers: multiplication by, and floor division
/// by, a power of two (MongoDB has no shift operator).
pub(crate) fn shift(x: Bson, n: Bson, left: bool) -> Bson {
    let scale = opn("$pow", vec![Bson::Int64(2), var("n")]);
    let body = if left {
        op1("$toLong", opn("$multiply", vec![var("x"), scale]))
    } else {
        op1("$toLong", op1("$floor", opn("$divide", vec![var("x"), scale])))
    };
    null_safe_let(vec![("x", x), ("n", n)], body)
}
