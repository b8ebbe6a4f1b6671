//! Generators shared by the server's property tests.
use bson::{oid::ObjectId, Bson, DateTime, Decimal128, Document};
use proptest::prelude::*;

/// Numbers of every representation, with values that collide across them
/// (1, 1.0, NumberLong(1), NumberDecimal("1.0")), sit just beside a double
/// (2^53 + 1, 0.1 as a decimal) or are special (NaN, -0.0, infinities).
pub fn arb_number() -> impl Strategy<Value = Bson> {
    prop_oneof![
        (-4i32..5).prop_map(Bson::Int32),
        (-4i64..5).prop_map(Bson::Int64),
        prop_oneof![Just((1i64 << 53) + 1), Just(i64::MAX), Just(i64::MIN)].prop_map(Bson::Int64),
        (-8i32..9).prop_map(|i| Bson::Double(f64::from(i) / 2.0)),
        prop_oneof![Just(f64::NAN), Just(-0.0), Just(f64::INFINITY), Just(f64::NEG_INFINITY), Just(0.1), Just(9.99)]
            .prop_map(Bson::Double),
        prop_oneof![Just("1.0"), Just("0.1"), Just("-2.50"), Just("9.99"), Just("1E+3"), Just("NaN"), Just("-Infinity")]
            .prop_map(|s| Bson::Decimal128(decimal(s))),
        (-40i64..40, 0u32..3).prop_map(|(m, s)| Bson::Decimal128(decimal(&format!("{m}E-{s}")))),
    ]
}

fn decimal(s: &str) -> Decimal128 {
    s.parse::<Decimal128>().unwrap_or_else(|_| panic!("bad decimal {s}"))
}

/// Scalars of most BSON types.
pub fn arb_scalar() -> impl Strategy<Value = Bson> {
    prop_oneof![
        4 => arb_number(),
        2 => "[ab\\x00]{0,3}".prop_map(Bson::String),
        1 => Just(Bson::Null),
        1 => Just(Bson::Undefined),
        1 => any::<bool>().prop_map(Bson::Boolean),
        1 => (-3i64..3).prop_map(|m| Bson::DateTime(DateTime::from_millis(m))),
        1 => prop_oneof![Just(Bson::MinKey), Just(Bson::MaxKey)],
        1 => (0u8..3).prop_map(|b| Bson::ObjectId(ObjectId::from_bytes([b; 12]))),
        1 => (0u32..2, 0u32..2).prop_map(|(time, increment)| Bson::Timestamp(bson::Timestamp { time, increment })),
        1 => prop::collection::vec(0u8..2, 0..2)
            .prop_map(|bytes| Bson::Binary(bson::Binary { subtype: bson::spec::BinarySubtype::Generic, bytes })),
        1 => "[ab]{0,2}".prop_map(Bson::Symbol),
    ]
}

/// Any value, nested documents and arrays included.
pub fn arb_value() -> impl Strategy<Value = Bson> {
    arb_scalar().prop_recursive(2, 12, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Bson::Array),
            prop::collection::vec(("[ab]", inner), 0..3).prop_map(|kv| {
                let mut d = Document::new();
                for (k, v) in kv {
                    d.insert(k, v);
                }
                Bson::Document(d)
            }),
        ]
    })
}
