//! BSON comparison and sort order (MongoDB's documented type ordering).
use crate::num::{cmp_num, Num};
use bson::{Bson, Document};
use std::cmp::Ordering;

/// The position of a value's type in MongoDB's cross-type order. Types that
/// compare as one bracket (all numbers; null and undefined; string and symbol)
/// share a rank.
pub fn type_rank(v: &Bson) -> u8 {
    match v {
        Bson::MinKey => 1,
        Bson::Null | Bson::Undefined => 2,
        Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) | Bson::Decimal128(_) => 3,
        Bson::String(_) | Bson::Symbol(_) => 4,
        Bson::Document(_) => 5,
        Bson::Array(_) => 6,
        Bson::Binary(_) => 7,
        Bson::ObjectId(_) => 8,
        Bson::Boolean(_) => 9,
        Bson::DateTime(_) => 10,
        Bson::Timestamp(_) => 11,
        Bson::RegularExpression(_) => 12,
        Bson::DbPointer(_) => 13,
        Bson::JavaScriptCode(_) => 14,
        Bson::JavaScriptCodeWithScope(_) => 15,
        Bson::MaxKey => 16,
    }
}

fn as_str(v: &Bson) -> &str {
    match v {
        Bson::String(s) | Bson::Symbol(s) => s,
        _ => "",
    }
}

/// Total order over BSON values as MongoDB sorts them.
pub fn cmp_bson(a: &Bson, b: &Bson) -> Ordering {
    let (ra, rb) = (type_rank(a), type_rank(b));
    if ra != rb {
        return ra.cmp(&rb);
    }
    match (a, b) {
        (Bson::Document(x), Bson::Document(y)) => cmp_documents(x, y),
        (Bson::Array(x), Bson::Array(y)) => cmp_arrays(x, y),
        (Bson::Binary(x), Bson::Binary(y)) => x
            .bytes
            .len()
            .cmp(&y.bytes.len())
            .then_with(|| u8::from(x.subtype).cmp(&u8::from(y.subtype)))
            .then_with(|| x.bytes.cmp(&y.bytes)),
        (Bson::ObjectId(x), Bson::ObjectId(y)) => x.bytes().cmp(&y.bytes()),
        (Bson::Boolean(x), Bson::Boolean(y)) => x.cmp(y),
        (Bson::DateTime(x), Bson::DateTime(y)) => x.timestamp_millis().cmp(&y.timestamp_millis()),
        (Bson::Timestamp(x), Bson::Timestamp(y)) => (x.time, x.increment).cmp(&(y.time, y.increment)),
        (Bson::RegularExpression(x), Bson::RegularExpression(y)) => {
            x.pattern.cmp(&y.pattern).then_with(|| x.options.cmp(&y.options))
        }
        (Bson::JavaScriptCode(x), Bson::JavaScriptCode(y)) => x.cmp(y),
        (Bson::JavaScriptCodeWithScope(x), Bson::JavaScriptCodeWithScope(y)) => {
            x.code.cmp(&y.code).then_with(|| cmp_documents(&x.scope, &y.scope))
        }
        (Bson::DbPointer(x), Bson::DbPointer(y)) => format!("{x:?}").cmp(&format!("{y:?}")),
        _ => match ra {
            3 => match (Num::from_bson(a), Num::from_bson(b)) {
                (Some(x), Some(y)) => cmp_num(x, y),
                _ => Ordering::Equal,
            },
            // Strings follow the operation's collation (binary by default).
            4 => crate::collation::compare_strings(as_str(a), as_str(b)),
            _ => Ordering::Equal,
        },
    }
}

/// Documents compare pair by pair: the value's type, then the field name,
/// then the value; a document that runs out of fields first is smaller.
pub fn cmp_documents(a: &Document, b: &Document) -> Ordering {
    let mut ia = a.iter();
    let mut ib = b.iter();
    loop {
        match (ia.next(), ib.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some((ka, va)), Some((kb, vb))) => {
                let o = type_rank(va)
                    .cmp(&type_rank(vb))
                    .then_with(|| ka.cmp(kb))
                    .then_with(|| cmp_bson(va, vb));
                if o != Ordering::Equal {
                    return o;
                }
            }
        }
    }
}

pub fn cmp_arrays(a: &[Bson], b: &[Bson]) -> Ordering {
    for (x, y) in a.iter().zip(b.iter()) {
        let o = cmp_bson(x, y);
        if o != Ordering::Equal {
            return o;
        }
    }
    a.len().cmp(&b.len())
}

/// Equality as `$eq`, `$in` and grouping see it: numbers are equal across
/// types (1 == 1.0 == NumberLong(1)), recursively inside documents and arrays.
pub fn bson_eq(a: &Bson, b: &Bson) -> bool {
    cmp_bson(a, b) == Ordering::Equal
}

/// A key that is equal for exactly the values `bson_eq` calls equal, so
/// values can be grouped or de-duplicated with a hash map.
pub fn canonical_key(v: &Bson) -> String {
    let mut out = String::new();
    write_key(v, &mut out);
    out
}

fn write_key(v: &Bson, out: &mut String) {
    use std::fmt::Write;
    match v {
        Bson::Null | Bson::Undefined => out.push('n'),
        Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) | Bson::Decimal128(_) => {
            let n = Num::from_bson(v);
            match n {
                Some(n) if n.is_nan() => out.push_str("N;"),
                Some(n) => match n.to_i64_exact() {
                    Some(i) => {
                        let _ = write!(out, "i{i};");
                    }
                    None => match n {
                        Num::Dec(d) => {
                            // A decimal equal to a double must key like that double.
                            let f = crate::num_order::nearest_f64(d);
                            if crate::num_order::cmp_dec_f64(d, f) == std::cmp::Ordering::Equal {
                                let _ = write!(out, "f{};", f.to_bits());
                            } else {
                                let _ = write!(out, "m{};", d.normalize());
                            }
                        }
                        _ => {
                            let _ = write!(out, "f{};", n.to_f64().to_bits());
                        }
                    },
                },
                None => out.push_str("?;"),
            }
        }
        Bson::String(s) | Bson::Symbol(s) => match crate::collation::current_sort_key(s) {
            // Under a collation, strings it calls equal share a key.
            Some(key) => {
                let _ = write!(out, "c{}:", key.len());
                for byte in key {
                    let _ = write!(out, "{byte:02x}");
                }
            }
            None => {
                let _ = write!(out, "s{}:{}", s.len(), s);
            }
        },
        Bson::Document(d) => {
            out.push('{');
            for (k, v) in d {
                let _ = write!(out, "{}:{}=", k.len(), k);
                write_key(v, out);
            }
            out.push('}');
        }
        Bson::Array(a) => {
            out.push('[');
            for v in a {
                write_key(v, out);
                out.push(',');
            }
            out.push(']');
        }
        other => {
            let _ = write!(out, "t{}:{:?};", type_rank(other), other);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use bson::{doc, oid::ObjectId, Bson, DateTime};
    use proptest::prelude::*;

    #[test]
    fn type_order() {
        let ordered = vec![
            Bson::MinKey,
            Bson::Null,
            Bson::Int32(1),
            Bson::String("a".into()),
            Bson::Document(doc! {}),
            Bson::Array(vec![]),
            Bson::Binary(bson::Binary { subtype: bson::spec::BinarySubtype::Generic, bytes: vec![] }),
            Bson::ObjectId(ObjectId::new()),
            Bson::Boolean(false),
            Bson::DateTime(DateTime::from_millis(0)),
            Bson::Timestamp(bson::Timestamp { time: 0, increment: 0 }),
            Bson::RegularExpression(crate::test_regex("a", "")),
            Bson::MaxKey,
        ];
        for w in ordered.windows(2) {
            assert_eq!(cmp_bson(&w[0], &w[1]), Ordering::Less, "{:?} < {:?}", w[0], w[1]);
        }
    }

    #[test]
    fn numbers_compare_across_types() {
        assert!(bson_eq(&Bson::Int32(1), &Bson::Double(1.0)));
        assert!(bson_eq(&Bson::Int64(1), &Bson::Int32(1)));
        assert!(bson_eq(&Bson::Decimal128("1.00".parse().unwrap()), &Bson::Int32(1)));
        assert_eq!(cmp_bson(&Bson::Double(2.5), &Bson::Int64(3)), Ordering::Less);
        assert_eq!(canonical_key(&Bson::Int32(1)), canonical_key(&Bson::Double(1.0)));
        assert_eq!(
            canonical_key(&Bson::Document(doc! {"a": 1_i64})),
            canonical_key(&Bson::Document(doc! {"a": 1.0}))
        );
    }

    #[test]
    fn documents_and_arrays() {
        assert_eq!(cmp_bson(&Bson::Document(doc! {"a": 1}), &Bson::Document(doc! {"a": 1, "b": 1})), Ordering::Less);
        assert_eq!(cmp_bson(&Bson::Document(doc! {"a": 1}), &Bson::Document(doc! {"b": 0})), Ordering::Less);
        // The value's type is compared before the field name.
        assert_eq!(cmp_bson(&Bson::Document(doc! {"b": 1}), &Bson::Document(doc! {"a": "x"})), Ordering::Less);
        assert_eq!(cmp_bson(&Bson::Array(vec![1.into()]), &Bson::Array(vec![1.into(), 0.into()])), Ordering::Less);
        assert_eq!(cmp_bson(&Bson::Array(vec![2.into()]), &Bson::Array(vec![1.into(), 5.into()])), Ordering::Greater);
    }

    pub(crate) fn arb_bson() -> impl Strategy<Value = Bson> {
        let leaf = prop_oneof![
            Just(Bson::Null),
            Just(Bson::MinKey),
            Just(Bson::MaxKey),
            any::<i32>().prop_map(Bson::Int32),
            any::<i64>().prop_map(Bson::Int64),
            (-1e6f64..1e6).prop_map(Bson::Double),
            prop_oneof![Just(f64::NAN), Just(0.5), Just(1.0), Just(-0.0)].prop_map(Bson::Double),
            (-1000i64..1000, 0u32..4).prop_map(|(m, s)| {
                let d = rust_decimal::Decimal::new(m, s);
                crate::num::decimal_to_bson(d)
            }),
            "[a-c]{0,3}".prop_map(Bson::String),
            any::<bool>().prop_map(Bson::Boolean),
            (-1000i64..1000).prop_map(|m| Bson::DateTime(DateTime::from_millis(m))),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Bson::Array),
                prop::collection::vec(("[a-c]", inner), 0..3).prop_map(|kv| {
                    let mut d = Document::new();
                    for (k, v) in kv {
                        d.insert(k, v);
                    }
                    Bson::Document(d)
                }),
            ]
        })
    }

    proptest! {
        #[test]
        fn antisymmetric(a in arb_bson(), b in arb_bson()) {
            prop_assert_eq!(cmp_bson(&a, &b), cmp_bson(&b, &a).reverse());
        }

        #[test]
        fn transitive(a in arb_bson(), b in arb_bson(), c in arb_bson()) {
            let mut v = [a, b, c];
            v.sort_by(cmp_bson);
            prop_assert_ne!(cmp_bson(&v[0], &v[1]), Ordering::Greater);
            prop_assert_ne!(cmp_bson(&v[1], &v[2]), Ordering::Greater);
            prop_assert_ne!(cmp_bson(&v[0], &v[2]), Ordering::Greater);
        }

        #[test]
        fn reflexive_and_key_consistent(a in arb_bson(), b in arb_bson()) {
            prop_assert!(bson_eq(&a, &a));
            prop_assert_eq!(bson_eq(&a, &b), canonical_key(&a) == canonical_key(&b));
        }
    }
}
