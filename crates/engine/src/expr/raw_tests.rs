use super::{RawExpr, RawFields};
use crate::expr::{eval_value, Vars};
use bson::{bson, doc, Bson, Document, RawDocumentBuf};
use proptest::prelude::*;

/// What the general evaluator answers for `expr` over `{j: joined}`, and
/// what the compiled expression answers on `joined`'s bytes.
fn both(expr: &Bson, joined: &Document) -> (Option<Bson>, Option<Bson>) {
    let mut wrapped = Document::new();
    wrapped.insert("j", joined.clone());
    let general = eval_value(expr, &wrapped, &Vars::new()).expect("the general evaluator");
    let mut fields = RawFields::default();
    let compiled = RawExpr::compile(expr, "j", &mut fields).expect("compiles");
    let raw = RawDocumentBuf::try_from(joined).expect("encodes");
    let values = fields.read(&raw).expect("reads");
    (general, compiled.eval(&values).expect("the compiled evaluator"))
}

#[test]
fn djangos_count_and_avg_arguments() {
    let count = bson!({"$cond": [{"$ne": [{"$ifNull": ["$j.id", null]}, null]}, 1, 0]});
    let avg = bson!("$j.n");
    for joined in [doc! {"id": 3, "n": 2.5}, doc! {"id": null}, doc! {}, doc! {"n": "x"}] {
        let (general, compiled) = both(&count, &joined);
        assert_eq!(general, compiled, "count over {joined}");
        let (general, compiled) = both(&avg, &joined);
        assert_eq!(general, compiled, "avg over {joined}");
    }
    assert_eq!(both(&count, &doc! {"id": 7}).1, Some(Bson::Int32(1)));
    assert_eq!(both(&count, &doc! {}).1, Some(Bson::Int32(0)));
    assert_eq!(both(&avg, &doc! {}).1, None, "a missing field stays missing, not null");
}

#[test]
fn nested_paths_and_arrays() {
    let joined = doc! {"a": {"b": {"c": 1}}, "arr": [{"x": 1}, {"y": 2}, 3, {"x": [4]}]};
    for path in ["$j.a.b.c", "$j.a.b", "$j.a.zz", "$j.arr.x", "$j.arr", "$j.a.b.c.d"] {
        let (general, compiled) = both(&Bson::String(path.into()), &joined);
        assert_eq!(general, compiled, "{path}");
    }
}

#[test]
fn what_it_leaves_to_the_general_evaluator() {
    for expr in [
        bson!("$$ROOT"),
        bson!("$j"),
        bson!("$other.n"),
        bson!("$j..n"),
        bson!({"$add": ["$j.n", 1]}),
        bson!({"$ifNull": ["$j.n"]}),
        bson!({"$cond": [true, 1]}),
        bson!({"$cond": {"if": true, "then": 1}}),
        bson!({"$eq": ["$j.n"]}),
        bson!({"$eq": ["$j.n", "$other"]}),
        bson!([1, "$j.n"]),
        bson!({"x": "$j.n"}),
        bson!({"$literal": 1, "$eq": [1, 1]}),
    ] {
        assert!(RawExpr::compile(&expr, "j", &mut RawFields::default()).is_none(), "{expr}");
    }
    assert!(RawExpr::compile(&bson!("$j0.n"), "j", &mut RawFields::default()).is_none(), "another field sharing the prefix");
}

fn value() -> impl Strategy<Value = Bson> {
    let leaf = prop_oneof![
        Just(Bson::Null),
        Just(Bson::Undefined),
        any::<i32>().prop_map(Bson::Int32),
        (-3i64..3).prop_map(Bson::Int64),
        prop_oneof![Just(0.0), Just(-1.5), Just(2.0), Just(f64::INFINITY)].prop_map(Bson::Double),
        any::<bool>().prop_map(Bson::Boolean),
        "[ab]{0,2}".prop_map(Bson::String),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Bson::Array),
            prop::collection::vec((prop_oneof![Just("n"), Just("m")], inner), 0..3)
                .prop_map(|fields| Bson::Document(fields.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
        ]
    })
}

fn joined_document() -> impl Strategy<Value = Document> {
    prop::collection::vec((prop_oneof![Just("id"), Just("n"), Just("m")], value()), 0..4)
        .prop_map(|fields| fields.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

fn expression() -> impl Strategy<Value = Bson> {
    let leaf = prop_oneof![
        prop_oneof![Just("$j.id"), Just("$j.n"), Just("$j.n.m"), Just("$j.m.n.m"), Just("$j.none")].prop_map(|p| Bson::String(p.into())),
        value().prop_filter("a literal, not an array or an object", |v| !matches!(v, Bson::Array(_) | Bson::Document(_))),
        value().prop_map(|v| bson!({"$literal": v})),
    ];
    leaf.prop_recursive(3, 16, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 2..4).prop_map(|args| bson!({"$ifNull": args})),
            (inner.clone(), inner.clone(), inner.clone()).prop_map(|(i, t, e)| bson!({"$cond": [i, t, e]})),
            (inner.clone(), inner.clone(), inner.clone()).prop_map(|(i, t, e)| bson!({"$cond": {"if": i, "then": t, "else": e}})),
            (prop_oneof![Just("$eq"), Just("$ne"), Just("$gt"), Just("$gte"), Just("$lt"), Just("$lte"), Just("$cmp")], inner.clone(), inner)
                .prop_map(|(op, a, b)| Bson::Document(doc! {op: [a, b]})),
        ]
    })
}

proptest! {
    /// The compiled expression answers what the general evaluator answers
    /// over the decoded document, missing and null kept apart.
    #[test]
    fn compiled_matches_general(expr in expression(), joined in joined_document()) {
        let (general, compiled) = both(&expr, &joined);
        prop_assert_eq!(general, compiled);
    }
}

fn null_check() -> impl Strategy<Value = Bson> {
    (prop_oneof![Just("$eq"), Just("$ne")], expression(), any::<bool>()).prop_map(|(op, x, swapped)| {
        let checked = bson!({"$ifNull": [x, null]});
        let sides = if swapped { bson!([null, checked]) } else { bson!([checked, null]) };
        Bson::Document(doc! {op: sides})
    })
}

proptest! {
    /// `{$eq|$ne: [{$ifNull: [x, null]}, null]}` (Django's `COUNT(column)`),
    /// which compiles to a test of `x`'s type, answers what the general
    /// evaluator answers.
    #[test]
    fn null_checks_match_general(expr in null_check(), joined in joined_document()) {
        let (general, compiled) = both(&expr, &joined);
        prop_assert_eq!(general, compiled);
    }
}

/// A document with one field of every BSON type, then `last`.
fn every_type() -> Document {
    use bson::spec::BinarySubtype;
    use bson::{Binary, DateTime, JavaScriptCodeWithScope, Timestamp};
    doc! {
        "double": 1.5,
        "string": "héllo",
        "document": {"a": 1, "b": [1, 2]},
        "array": [1, "two", {"three": 3}],
        "binary": Binary { subtype: BinarySubtype::Generic, bytes: vec![1, 2, 3] },
        "undefined": Bson::Undefined,
        "objectid": bson::oid::ObjectId::from_bytes([7; 12]),
        "true": true,
        "false": false,
        "datetime": DateTime::from_millis(1_704_067_200_000),
        "null": Bson::Null,
        "regex": crate::test_regex("^a.*", "i"),
        "code": Bson::JavaScriptCode("f()".into()),
        "symbol": Bson::Symbol("s".into()),
        "codewithscope": JavaScriptCodeWithScope { code: "g()".into(), scope: doc! {"x": 1} },
        "int32": 3,
        "timestamp": Timestamp { time: 5, increment: 6 },
        "int64": 4i64,
        "decimal": bson::Decimal128::from_bytes([1; 16]),
        "minkey": Bson::MinKey,
        "maxkey": Bson::MaxKey,
        "a_rather_long_field_name": "long",
        "": "an empty name",
        "sevench": 7,
        "eightchr": 8,
        "ninechars": 9,
        "last": 9,
    }
}

/// `doc`'s bytes with a DBPointer field (which bson builds no value of)
/// inserted after its first field.
fn with_dbpointer(doc: &Document) -> RawDocumentBuf {
    let bytes = RawDocumentBuf::try_from(doc).expect("encodes").into_bytes();
    let mut pointer = vec![0x0C];
    pointer.extend(b"dbpointer\0");
    pointer.extend(2i32.to_le_bytes());
    pointer.extend(b"c\0");
    pointer.extend([9u8; 12]);
    let first_end = 4 + RawDocumentBuf::try_from(doc).expect("encodes").iter_elements().next().expect("a field").expect("reads").size()
        + 1
        + doc.keys().next().expect("a field").len()
        + 1;
    let mut out = Vec::with_capacity(bytes.len() + pointer.len());
    out.extend(&bytes[..first_end]);
    out.extend(&pointer);
    out.extend(&bytes[first_end..]);
    let length = i32::try_from(out.len()).expect("small");
    out[..4].copy_from_slice(&length.to_le_bytes());
    RawDocumentBuf::from_bytes(out).expect("a document")
}

#[test]
fn fields_read_past_and_of_every_type() {
    let joined = every_type();
    let raw = with_dbpointer(&joined);
    assert!(raw.get("dbpointer").expect("bson reads it").is_some());
    let mut fields = RawFields::default();
    let names: Vec<&str> = raw.iter_elements().map(|e| e.expect("reads").key().as_str()).collect();
    let slots: Vec<usize> = names.iter().map(|n| fields.slot(n)).collect();
    let values = fields.read(&raw).expect("reads");
    for (name, slot) in names.iter().zip(slots) {
        assert_eq!(values[slot], raw.get(name).expect("bson reads it"), "{name}");
    }
    // One field at a time: every other type is stepped over.
    for name in names {
        let mut one = RawFields::default();
        let slot = one.slot(name);
        let missing = one.slot("missing");
        let values = one.read(&raw).expect("reads");
        assert_eq!(values[slot], raw.get(name).expect("bson reads it"), "{name}");
        assert_eq!(values[missing], None);
    }
}

#[test]
fn fields_near_the_end_of_small_documents() {
    for joined in [doc! {"n": Bson::Null}, doc! {"": 1}, doc! {"a": 1, "n": true}, doc! {"abcdefg": 1}, doc! {"abcdefgh": 1}] {
        let raw = RawDocumentBuf::try_from(&joined).expect("encodes");
        for name in joined.keys().map(String::as_str).chain(["missing", "n"]) {
            let mut fields = RawFields::default();
            let slot = fields.slot(name);
            assert_eq!(fields.read(&raw).expect("reads")[slot], raw.get(name).expect("bson reads it"), "{name} of {joined}");
        }
    }
}

#[test]
fn corrupt_bytes_are_reported_not_read() {
    let raw = RawDocumentBuf::try_from(&doc! {"s": "abc", "n": 1}).expect("encodes");
    let mut bytes = raw.as_bytes().to_vec();
    // The string's length (after the type byte, "s" and its zero) claims
    // more bytes than the document has.
    bytes[4 + 3] = 200;
    let corrupt = bson::RawDocument::from_bytes(&bytes).expect("the outer length still holds");
    let mut fields = RawFields::default();
    fields.slot("n");
    assert!(fields.read(corrupt).is_err());
    let mut fields = RawFields::default();
    fields.slot("s");
    assert!(fields.read(corrupt).is_err());
}
