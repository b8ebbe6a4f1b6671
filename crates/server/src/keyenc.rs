//! Canonical binary encoding of BSON values, used for `_id` keys and index
//! entries.
//!
//! Two values that MongoDB considers equal for indexing (e.g. `1`, `1.0` and
//! `NumberLong(1)`) must encode to the same bytes, so a unique index is a plain
//! key lookup. Every encoding is self-delimiting, so compound keys are simple
//! concatenations and an `_id` key can be appended to a non-unique entry.
//! Type classes follow MongoDB's cross-type ordering, which keeps scans in a
//! sensible order even though no query relies on it yet.
use bson::{Bson, Document};
use djongo_engine::num::{decimal_key, DecimalKey};

const MIN_KEY: u8 = 0x01;
const NULL: u8 = 0x05;
const NUMBER: u8 = 0x0A;
const STRING: u8 = 0x0F;
const OBJECT: u8 = 0x14;
const ARRAY: u8 = 0x19;
const BINARY: u8 = 0x1E;
const OBJECT_ID: u8 = 0x23;
const BOOL: u8 = 0x28;
const DATE: u8 = 0x2D;
const TIMESTAMP: u8 = 0x32;
const REGEX: u8 = 0x37;
const OTHER: u8 = 0x40;
const MAX_KEY: u8 = 0xF0;

/// Ends a document, array or string; lower than any type class so shorter
/// containers sort first.
const END: u8 = 0x00;
const ELEMENT: u8 = 0x01;

const NUM_INTEGRAL: u8 = 0x01;
const NUM_FRACTIONAL: u8 = 0x02;
const NUM_DECIMAL: u8 = 0x03;
const NUM_DECIMAL_RAW: u8 = 0x04;
const NUM_NAN: u8 = 0x00;

/// Encodes one value.
pub fn encode(value: &Bson, out: &mut Vec<u8>) {
    match value {
        Bson::MinKey => out.push(MIN_KEY),
        Bson::Null | Bson::Undefined => out.push(NULL),
        Bson::Int32(i) => encode_integral(i64::from(*i), out),
        Bson::Int64(i) => encode_integral(*i, out),
        Bson::Double(f) => encode_double(*f, out),
        // By value, so NumberDecimal("1.0"), 1 and 1.0 are one key, as MongoDB
        // compares them; see KEY_FORMAT in storage for stores written before.
        Bson::Decimal128(d) => match decimal_key(d) {
            DecimalKey::Integral(i) => encode_integral(i, out),
            DecimalKey::Double(f) => encode_double(f, out),
            DecimalKey::Decimal(bytes) => {
                out.push(NUMBER);
                out.push(NUM_DECIMAL);
                out.extend_from_slice(&bytes);
            }
            DecimalKey::Raw(bytes) => {
                out.push(NUMBER);
                out.push(NUM_DECIMAL_RAW);
                out.extend_from_slice(&bytes);
            }
        },
        Bson::String(s) | Bson::Symbol(s) => {
            out.push(STRING);
            encode_str(s, out);
        }
        Bson::Document(d) => encode_document(d, out),
        Bson::Array(items) => {
            out.push(ARRAY);
            for item in items {
                out.push(ELEMENT);
                encode(item, out);
            }
            out.push(END);
        }
        Bson::Binary(b) => {
            out.push(BINARY);
            out.extend_from_slice(&(b.bytes.len() as u32).to_be_bytes());
            out.push(u8::from(b.subtype));
            out.extend_from_slice(&b.bytes);
        }
        Bson::ObjectId(oid) => {
            out.push(OBJECT_ID);
            out.extend_from_slice(&oid.bytes());
        }
        Bson::Boolean(b) => {
            out.push(BOOL);
            out.push(u8::from(*b));
        }
        Bson::DateTime(dt) => {
            out.push(DATE);
            out.extend_from_slice(&flip_i64(dt.timestamp_millis()));
        }
        Bson::Timestamp(ts) => {
            out.push(TIMESTAMP);
            out.extend_from_slice(&ts.time.to_be_bytes());
            out.extend_from_slice(&ts.increment.to_be_bytes());
        }
        Bson::RegularExpression(re) => {
            out.push(REGEX);
            encode_str(re.pattern.as_str(), out);
            encode_str(re.options.as_str(), out);
        }
        Bson::MaxKey => out.push(MAX_KEY),
        other => {
            // JavaScript code and DBPointer: rare in keys; encode their BSON
            // serialisation so equality still works.
            out.push(OTHER);
            let mut wrapper = Document::new();
            wrapper.insert("v", other.clone());
            let bytes = wrapper.to_vec().unwrap_or_default();
            out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
            out.extend_from_slice(&bytes);
        }
    }
}

/// Encodes a compound key (one value per indexed field).
pub fn encode_key(values: &[Bson]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 * values.len());
    for v in values {
        encode(v, &mut out);
    }
    out
}

/// Encodes a single value into a fresh buffer.
pub fn encode_one(value: &Bson) -> Vec<u8> {
    let mut out = Vec::with_capacity(16);
    encode(value, &mut out);
    out
}

fn encode_document(d: &Document, out: &mut Vec<u8>) {
    out.push(OBJECT);
    for (k, v) in d {
        out.push(ELEMENT);
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

fn encode_integral(i: i64, out: &mut Vec<u8>) {
    out.push(NUMBER);
    out.push(NUM_INTEGRAL);
    out.extend_from_slice(&flip_i64(i));
}

fn encode_double(f: f64, out: &mut Vec<u8>) {
    // 2^63 as f64; integral doubles inside the i64 range share the integer
    // encoding so that 1.0 == 1 == NumberLong(1).
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    if f.is_nan() {
        out.push(NUMBER);
        out.push(NUM_NAN);
    } else if f.fract() == 0.0 && (-LIMIT..LIMIT).contains(&f) {
        encode_integral(f as i64, out);
    } else {
        out.push(NUMBER);
        out.push(NUM_FRACTIONAL);
        let bits = f.to_bits();
        // Standard order-preserving transform of IEEE-754 bits.
        let ordered = if bits >> 63 == 1 { !bits } else { bits | (1u64 << 63) };
        out.extend_from_slice(&ordered.to_be_bytes());
    }
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
