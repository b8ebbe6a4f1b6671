//! JSON values inside documents (Django's JSONField) as aggregation
//! expressions.
//!
//! A JSONField stores native BSON documents and arrays. SQL NULL is BSON
//! null (or a missing field), as in every column, so a JSON `null` needs a
//! value of its own where it stands for a whole column value: MinKey, which
//! no JSON value maps to. Inside a document a JSON null is BSON null; a path
//! that reaches one yields MinKey, so that `data->'k'` tells "k is null"
//! (MinKey) from "there is no k" (SQL NULL), as SQL databases do.
//!
//! Paths are read one literal key at a time with `$getField` (never as a
//! dotted path, which would split a key at `.` and traverse arrays) and one
//! array element at a time with `$arrayElemAt`; a step that meets anything
//! else yields nothing.
use bson::{doc, Bson};

use super::expr::{lit, op1, opn};
use crate::plan::{JsonMode, JsonStep};

/// A JSON null where it is a whole value: see the module documentation.
pub(crate) fn json_null() -> Bson {
    lit(Bson::MinKey)
}

fn type_of(x: Bson) -> Bson {
    op1("$type", x)
}

/// `x` read by one step; missing when `x` is not an object (a key) or an
/// array (an index), or has no such key or element.
fn step(x: Bson, s: &JsonStep) -> Bson {
    match s {
        JsonStep::Key(k) => opn(
            "$cond",
            vec![
                opn("$eq", vec![type_of(x.clone()), Bson::String("object".into())]),
                op1("$getField", Bson::Document(doc! { "field": lit(k.as_str()), "input": x })),
                Bson::String("$$REMOVE".into()),
            ],
        ),
        JsonStep::Index(i) => match i32::try_from(*i) {
            Ok(i) => opn("$cond", vec![op1("$isArray", x.clone()), opn("$arrayElemAt", vec![x, Bson::Int32(i)]), Bson::String("$$REMOVE".into())]),
            // No array holds that many elements.
            Err(_) => Bson::String("$$REMOVE".into()),
        },
    }
}

/// The value of `input` at `path`, as `mode` asks.
pub(crate) fn extract(input: Bson, path: &[JsonStep], mode: JsonMode) -> Bson {
    let Some((last, init)) = path.split_last() else {
        return finish(input, mode, false);
    };
    // Each step reads the previous one's value through a variable, so the
    // expression grows with the path, not exponentially.
    let mut value = input;
    for s in init {
        value = in_let(value, |d| step(d, s));
    }
    in_let(value, |d| finish(step(d, last), mode, true))
}

/// TRUE when `input` has a value at `path` (JSON null included), or when it
/// has none (`present == false`): `JSON_TYPE(x, path) IS [NOT] NULL`,
/// without naming the type.
pub(crate) fn presence(input: Bson, path: &[JsonStep], present: bool) -> Bson {
    let value = match path.split_last() {
        None => input,
        Some((last, init)) => {
            let mut value = input;
            for s in init {
                value = in_let(value, |d| step(d, s));
            }
            in_let(value, |d| step(d, last))
        }
    };
    let t = type_of(value);
    // A stored SQL NULL is BSON null at the top; inside a document null is
    // JSON null, which is a value.
    if !path.is_empty() {
        return opn(if present { "$ne" } else { "$eq" }, vec![t, Bson::String("missing".into())]);
    }
    let absent = opn("$in", vec![t, Bson::Array(vec![Bson::String("missing".into()), Bson::String("null".into())])]);
    if present {
        op1("$not", Bson::Array(vec![absent]))
    } else {
        absent
    }
}

fn in_let(value: Bson, body: impl FnOnce(Bson) -> Bson) -> Bson {
    Bson::Document(doc! { "$let": { "vars": { "d": value }, "in": body(Bson::String("$$d".into())) } })
}

/// The value `v` reached (`nested`: from inside a document, where a JSON
/// null is BSON null), as `mode` asks.
fn finish(v: Bson, mode: JsonMode, nested: bool) -> Bson {
    let is = |name: &str| opn("$eq", vec![type_of(v.clone()), Bson::String(name.into())]);
    match mode {
        JsonMode::Value if nested => opn("$cond", vec![is("null"), json_null(), v.clone()]),
        JsonMode::Value => v,
        JsonMode::Text => opn("$cond", vec![is("minKey"), Bson::Null, v.clone()]),
        JsonMode::Type => type_name(v, nested),
    }
}

/// SQLite's JSON_TYPE names; NULL for no value.
fn type_name(v: Bson, nested: bool) -> Bson {
    let t = Bson::String("$$t".into());
    let case = |names: &[&str], then: Bson| {
        let names: Vec<Bson> = names.iter().map(|n| Bson::String((*n).into())).collect();
        Bson::Document(doc! { "case": { "$in": [t.clone(), names] }, "then": then })
    };
    let null_types: &[&str] = if nested { &["null"] } else { &["minKey"] };
    let branches = vec![
        case(&["missing"], Bson::Null),
        case(null_types, lit("null")),
        case(&["bool"], opn("$cond", vec![v.clone(), lit("true"), lit("false")])),
        case(&["int", "long"], lit("integer")),
        case(&["double", "decimal"], lit("real")),
        case(&["string"], lit("text")),
    ];
    Bson::Document(doc! { "$let": {
        "vars": { "t": type_of(v) },
        "in": { "$switch": { "branches": branches, "default": "$$t" } },
    } })
}

/// A value put inside a JSON document or array: a JSON null there is BSON
/// null, and SQL NULL becomes JSON null as in SQL's JSON functions.
pub(crate) fn nested(v: Bson) -> Bson {
    Bson::Document(doc! { "$let": {
        "vars": { "n": v },
        "in": { "$cond": [ { "$eq": [ { "$type": "$$n" }, "minKey" ] }, Bson::Null, "$$n" ] },
    } })
}

/// `JSON_OBJECT(k1, v1, ...)`.
pub(crate) fn object(pairs: Vec<(Bson, Bson)>) -> Bson {
    let pairs: Vec<Bson> = pairs.into_iter().map(|(k, v)| Bson::Array(vec![k, nested(v)])).collect();
    op1("$arrayToObject", Bson::Array(vec![Bson::Array(pairs)]))
}

/// `JSON_ARRAY(v1, ...)`.
pub(crate) fn array(values: Vec<Bson>) -> Bson {
    Bson::Array(values.into_iter().map(nested).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_one_literal_field_name() {
        let e = extract(Bson::String("$value".into()), &[JsonStep::Key("a.b".into())], JsonMode::Text);
        let text = e.to_string();
        assert!(text.contains(r#"{ "$literal": "a.b" }"#), "{text}");
        assert!(!text.contains("$value.a"), "{text}");
    }

    #[test]
    fn a_huge_index_reads_nothing() {
        assert_eq!(step(Bson::String("$$d".into()), &JsonStep::Index(1 << 40)), Bson::String("$$REMOVE".into()));
    }
}
