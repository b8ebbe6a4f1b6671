//! Canonical, order-preserving binary encoding of BSON values, used for `_id`
//! keys and index entries.
//!
//! Two properties, both relied on by the query planner:
//! - equal values encode alike: two values that MongoDB considers equal (e.g.
//!   `1`, `1.0`, `NumberLong(1)` and `NumberDecimal("1.00")`; null and
//!   undefined; a string and a symbol) have the same bytes, so a unique index
//!   is a plain key lookup;
//! - bytes order as values compare: `encode(a) < encode(b)` exactly when
//!   `djongo_engine::compare::cmp_bson(a, b)` is `Less` — types in MongoDB's
//!   cross-type order, numbers by exact value across int32/int64/double/
//!   decimal128 (see `djongo_engine::num_order`), strings by bytes (no
//!   collation), documents field by field (type, name, value) and arrays
//!   element by element, shorter first.
//!
//! Every encoding is self-delimiting and no encoding is a prefix of another,
//! so compound keys are concatenations, an `_id` key can follow a non-unique
//! entry, and complementing every byte of a field reverses its order (the
//! descending fields of an index).
use bson::{Bson, Document};
use djongo_engine::num::Num;
use djongo_engine::num_order::{num_key, ExactValue, NumKey, Offset};

/// Type classes, in MongoDB's cross-type order (`compare::type_rank`).
pub const MIN_KEY: u8 = 0x01;
pub const NULL: u8 = 0x05;
pub const NUMBER: u8 = 0x0A;
pub const STRING: u8 = 0x0F;
pub const OBJECT: u8 = 0x14;
pub const ARRAY: u8 = 0x19;
pub const BINARY: u8 = 0x1E;
pub const OBJECT_ID: u8 = 0x23;
pub const BOOL: u8 = 0x28;
pub const DATE: u8 = 0x2D;
pub const TIMESTAMP: u8 = 0x32;
pub const REGEX: u8 = 0x37;
pub const DB_POINTER: u8 = 0x3C;
pub const CODE: u8 = 0x41;
pub const CODE_WITH_SCOPE: u8 = 0x46;
pub const MAX_KEY: u8 = 0xF0;

/// Ends a document, array or string; lower than any type class so shorter
/// containers sort first.
const END: u8 = 0x00;
const ELEMENT: u8 = 0x01;

/// After NUMBER: NaN (below every number), or an ordered number.
const NUM_NAN: u8 = 0x00;
const NUM_ORDERED: u8 = 0x01;
/// After an ordered number's nearest double: the value lies below it, is it,
/// or lies above it (then its exact value follows).
const NUM_BELOW: u8 = 0x40;
const NUM_EXACT: u8 = 0x80;
const NUM_ABOVE: u8 = 0xC0;

/// The type class a value's encoding starts with.
pub fn type_class(value: &Bson) -> u8 {
    match value {
        Bson::MinKey => MIN_KEY,
        Bson::Null | Bson::Undefined => NULL,
        Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) | Bson::Decimal128(_) => NUMBER,
        Bson::String(_) | Bson::Symbol(_) => STRING,
        Bson::Document(_) => OBJECT,
        Bson::Array(_) => ARRAY,
        Bson::Binary(_) => BINARY,
        Bson::ObjectId(_) => OBJECT_ID,
        Bson::Boolean(_) => BOOL,
        Bson::DateTime(_) => DATE,
        Bson::Timestamp(_) => TIMESTAMP,
        Bson::RegularExpression(_) => REGEX,
        Bson::DbPointer(_) => DB_POINTER,
        Bson::JavaScriptCode(_) => CODE,
        Bson::JavaScriptCodeWithScope(_) => CODE_WITH_SCOPE,
        Bson::MaxKey => MAX_KEY,
    }
}

/// Encodes one value.
pub fn encode(value: &Bson, out: &mut Vec<u8>) {
    out.push(type_class(value));
    match value {
        Bson::MinKey | Bson::MaxKey | Bson::Null | Bson::Undefined => {}
        Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) | Bson::Decimal128(_) => match Num::from_bson(value) {
            Some(n) => encode_number(num_key(n), out),
            None => out.push(NUM_NAN),
        },
        Bson::String(s) | Bson::Symbol(s) => encode_str(s, out),
        Bson::Document(d) => encode_fields(d, out),
        Bson::Array(items) => {
            for item in items {
                out.push(ELEMENT);
                encode(item, out);
            }
            out.push(END);
        }
        Bson::Binary(b) => {
            out.extend_from_slice(&(b.bytes.len() as u32).to_be_bytes());
            out.push(u8::from(b.subtype));
            out.extend_from_slice(&b.bytes);
        }
        Bson::ObjectId(oid) => out.extend_from_slice(&oid.bytes()),
        Bson::Boolean(b) => out.push(u8::from(*b)),
        Bson::DateTime(dt) => out.extend_from_slice(&flip_i64(dt.timestamp_millis())),
        Bson::Timestamp(ts) => {
            out.extend_from_slice(&ts.time.to_be_bytes());
            out.extend_from_slice(&ts.increment.to_be_bytes());
        }
        Bson::RegularExpression(re) => {
            encode_str(re.pattern.as_str(), out);
            encode_str(re.options.as_str(), out);
        }
        // Compared by their debug text (compare::cmp_bson): rare in keys.
        Bson::DbPointer(p) => encode_str(&format!("{p:?}"), out),
        Bson::JavaScriptCode(code) => encode_str(code, out),
        Bson::JavaScriptCodeWithScope(c) => {
            encode_str(&c.code, out);
            encode_fields(&c.scope, out);
        }
    }
}

/// Encodes a compound key (one value per indexed field), ascending.
pub fn encode_key(values: &[Bson]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 * values.len());
    for v in values {
        encode(v, &mut out);
    }
    out
}

/// Encodes a compound key whose fields may be descending: a descending
/// field's bytes are complemented, which reverses its order.
pub fn encode_directed(values: &[Bson], descending: &[bool]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 * values.len());
    for (i, v) in values.iter().enumerate() {
        let start = out.len();
        encode(v, &mut out);
        if descending.get(i).copied().unwrap_or(false) {
            complement(&mut out[start..]);
        }
    }
    out
}

/// Reverses the order of an encoded field in place.
pub fn complement(bytes: &mut [u8]) {
    for b in bytes {
        *b = !*b;
    }
}

/// Encodes a single value into a fresh buffer.
pub fn encode_one(value: &Bson) -> Vec<u8> {
    let mut out = Vec::with_capacity(16);
    encode(value, &mut out);
    out
}

/// The smallest byte string greater than every string that starts with
/// `prefix`, if there is one (none when `prefix` is all 0xFF).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// A document's fields: each as its value's type class, name and value, so
/// documents order as `compare::cmp_documents` orders them.
fn encode_fields(d: &Document, out: &mut Vec<u8>) {
    for (k, v) in d {
        out.push(ELEMENT);
        out.push(type_class(v));
        encode_str(k, out);
        encode(v, out);
    }
    out.push(END);
}

/// Strings are escaped so that the terminator cannot occur inside them:
/// 0x00 becomes 0x00 0xFF and the string ends with 0x00 0x00.
fn encode_str(s: &str, out: &mut Vec<u8>) {
    for &b in s.as_bytes() {
        out.push(b);
        if b == 0 {
            out.push(0xFF);
        }
    }
    out.push(0);
    out.push(0);
}

fn flip_i64(i: i64) -> [u8; 8] {
    ((i as u64) ^ (1u64 << 63)).to_be_bytes()
}

fn encode_number(key: NumKey, out: &mut Vec<u8>) {
    let NumKey::Ordered { nearest, offset } = key else {
        out.push(NUM_NAN);
        return;
    };
    out.push(NUM_ORDERED);
    // Standard order-preserving transform of IEEE-754 bits (no NaN here, and
    // never -0.0).
    let bits = nearest.to_bits();
    let ordered = if bits >> 63 == 1 { !bits } else { bits | (1u64 << 63) };
    out.extend_from_slice(&ordered.to_be_bytes());
    match offset {
        Offset::Below(v) => encode_exact(NUM_BELOW, v, out),
        Offset::Exact => out.push(NUM_EXACT),
        Offset::Above(v) => encode_exact(NUM_ABOVE, v, out),
    }
}

fn encode_exact(side: u8, v: ExactValue, out: &mut Vec<u8>) {
    out.push(side);
    out.extend_from_slice(&((v.floor as u128) ^ (1u128 << 127)).to_be_bytes());
    out.extend_from_slice(&v.frac.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::{doc, oid::ObjectId};

    #[test]
    fn numbers_of_equal_value_share_an_encoding() {
        assert_eq!(encode_one(&Bson::Int32(1)), encode_one(&Bson::Int64(1)));
        assert_eq!(encode_one(&Bson::Int32(1)), encode_one(&Bson::Double(1.0)));
        assert_eq!(encode_one(&Bson::Double(-0.0)), encode_one(&Bson::Int32(0)));
        assert_ne!(encode_one(&Bson::Double(1.5)), encode_one(&Bson::Int32(1)));
        let dec = |s: &str| Bson::Decimal128(s.parse().unwrap());
        assert_eq!(encode_one(&dec("1.00")), encode_one(&Bson::Int32(1)));
        assert_eq!(encode_one(&dec("2.5")), encode_one(&Bson::Double(2.5)));
        assert_eq!(encode_one(&dec("0.10")), encode_one(&dec("0.1")));
        assert_ne!(encode_one(&dec("0.1")), encode_one(&Bson::Double(0.1)));
    }

    #[test]
    fn distinct_values_differ() {
        let values = vec![
            Bson::Null,
            Bson::Int32(0),
            Bson::String(String::new()),
            Bson::String("a\0".into()),
            Bson::String("a".into()),
            Bson::Boolean(false),
            Bson::Document(doc! {"a": 1}),
            Bson::Array(vec![Bson::Int32(1)]),
            Bson::ObjectId(ObjectId::new()),
        ];
        for (i, a) in values.iter().enumerate() {
            for (j, b) in values.iter().enumerate() {
                assert_eq!(i == j, encode_one(a) == encode_one(b), "{a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn compound_keys_are_unambiguous() {
        let a = encode_key(&[Bson::String("ab".into()), Bson::String("c".into())]);
        let b = encode_key(&[Bson::String("a".into()), Bson::String("bc".into())]);
        assert_ne!(a, b);
    }

    #[test]
    fn integers_sort_in_numeric_order() {
        assert!(encode_one(&Bson::Int32(-5)) < encode_one(&Bson::Int32(3)));
        assert!(encode_one(&Bson::Int64(3)) < encode_one(&Bson::Int64(300)));
    }
}

#[cfg(test)]
mod order_tests {
    use super::*;
    use crate::test_support::arb_value;
    use djongo_engine::compare::cmp_bson;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn bytes_order_as_values_compare(a in arb_value(), b in arb_value()) {
            prop_assert_eq!(encode_one(&a).cmp(&encode_one(&b)), cmp_bson(&a, &b), "{:?} vs {:?}", a, b);
        }

        #[test]
        fn compound_and_descending_keys_order_field_by_field(
            a in prop::collection::vec(arb_value(), 2), b in prop::collection::vec(arb_value(), 2), desc in any::<bool>()
        ) {
            let dirs = [false, desc];
            let expected = cmp_bson(&a[0], &b[0]).then_with(|| {
                let o = cmp_bson(&a[1], &b[1]);
                if desc { o.reverse() } else { o }
            });
            prop_assert_eq!(encode_directed(&a, &dirs).cmp(&encode_directed(&b, &dirs)), expected);
        }
    }

    #[test]
    fn no_encoding_is_a_prefix_of_another() {
        let values = [Bson::String("a".into()), Bson::String("a\0".into()), Bson::String("ab".into()), Bson::Int32(1)];
        for a in &values {
            for b in &values {
                let (x, y) = (encode_one(a), encode_one(b));
                assert!(x == y || !y.starts_with(&x), "{a:?} is a prefix of {b:?}");
            }
        }
    }
}
