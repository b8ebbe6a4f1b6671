//! The bit-test query operators `$bitsAllSet`, `$bitsAllClear`,
//! `$bitsAnySet` and `$bitsAnyClear`.
//!
//! The operand names bit positions: a list of positions, a numeric bitmask,
//! or a BinData bitmask (byte 0 holds bits 0-7). A field matches when it is a
//! number representable as a 64-bit integer (no fraction, in range; other
//! numbers never match), negative numbers being sign-extended so every bit
//! above 63 is set, or a BinData value, zero-extended. Arrays are tested
//! element by element like any leaf predicate.
use crate::num::Num;
use crate::{EngineError, Result};
use bson::Bson;

#[derive(Debug, Clone, Copy)]
enum BitsOp {
    AllSet,
    AllClear,
    AnySet,
    AnyClear,
}

/// A parsed bit test: which positions, and how they must be.
#[derive(Debug, Clone)]
pub(super) struct BitTest {
    op: BitsOp,
    positions: Vec<u64>,
}

/// MongoDB's reading of an integer argument: a number with no fraction that
/// is not negative; its messages, for the caller to prefix.
fn non_negative_integer(v: &Bson) -> std::result::Result<u64, String> {
    let Some(n) = Num::from_bson(v) else {
        return Err(format!("Expected a number in: {v}"));
    };
    let Some(i) = n.to_i64_exact() else {
        return Err(if n.to_f64().fract() != 0.0 {
            format!("Expected an integer: {v}")
        } else {
            format!("Cannot represent as a 64-bit integer: {v}")
        });
    };
    u64::try_from(i).map_err(|_| format!("Expected a non-negative number in: {v}"))
}

fn set_bits_of_bytes(bytes: &[u8]) -> Vec<u64> {
    let mut positions = Vec::new();
    for (byte_index, byte) in bytes.iter().enumerate() {
        for bit in 0..8u64 {
            if byte & (1 << bit) != 0 {
                positions.push(byte_index as u64 * 8 + bit);
            }
        }
    }
    positions
}

impl BitTest {
    pub(super) fn parse(op: &str, operand: &Bson) -> Result<BitTest> {
        let kind = match op {
            "$bitsAllSet" => BitsOp::AllSet,
            "$bitsAllClear" => BitsOp::AllClear,
            "$bitsAnySet" => BitsOp::AnySet,
            "$bitsAnyClear" => BitsOp::AnyClear,
            _ => return Err(EngineError::bad_value(format!("unknown operator: {op}"))),
        };
        let positions = match operand {
            Bson::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    non_negative_integer(item).map_err(|reason| {
                        EngineError::bad_value(format!("Failed to parse bit position. {}", reason.replacen(&item.to_string(), &format!("{i}: {item}"), 1)))
                    })
                })
                .collect::<Result<Vec<u64>>>()?,
            Bson::Binary(b) => set_bits_of_bytes(&b.bytes),
            number if Num::from_bson(number).is_some() => {
                let mask = non_negative_integer(number).map_err(|reason| {
                    EngineError::new(9, "FailedToParse", reason.replacen(&number.to_string(), &format!("{op}: {number}"), 1))
                })?;
                set_bits_of_bytes(&mask.to_le_bytes())
            }
            other => {
                return Err(EngineError::bad_value(format!(
                    "value takes an Array, a number, or a BinData but received: {op}: {other}"
                )))
            }
        };
        Ok(BitTest { op: kind, positions })
    }

    /// Whether one (non-array) value passes the test.
    pub(super) fn matches(&self, value: &Bson) -> bool {
        let Some(subject) = Subject::of(value) else { return false };
        match self.op {
            BitsOp::AllSet => self.positions.iter().all(|&p| subject.bit(p)),
            BitsOp::AllClear => self.positions.iter().all(|&p| !subject.bit(p)),
            BitsOp::AnySet => self.positions.iter().any(|&p| subject.bit(p)),
            BitsOp::AnyClear => self.positions.iter().any(|&p| !subject.bit(p)),
        }
    }
}

/// A field value a bit test can read.
enum Subject<'a> {
    Integer(i64),
    Bytes(&'a [u8]),
}

impl<'a> Subject<'a> {
    fn of(value: &'a Bson) -> Option<Subject<'a>> {
        match value {
            Bson::Binary(b) => Some(Subject::Bytes(&b.bytes)),
            other => Num::from_bson(other).and_then(Num::to_i64_exact).map(Subject::Integer),
        }
    }

    fn bit(&self, position: u64) -> bool {
        match self {
            // Bits from 63 up are the sign bit, extended.
            Subject::Integer(i) => if position >= 63 { *i < 0 } else { (i >> position) & 1 == 1 },
            Subject::Bytes(bytes) => {
                let byte = usize::try_from(position / 8).ok().and_then(|i| bytes.get(i)).copied().unwrap_or(0);
                byte & (1 << (position % 8)) != 0
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::query::Filter;
    use bson::{doc, spec::BinarySubtype, Binary, Bson, Document};

    fn count(filter: Document, docs: &[Document]) -> usize {
        let f = Filter::parse(&filter).unwrap();
        docs.iter().filter(|d| f.matches(d).unwrap()).count()
    }

    fn bin(bytes: &[u8]) -> Bson {
        Bson::Binary(Binary { subtype: BinarySubtype::Generic, bytes: bytes.to_vec() })
    }

    #[test]
    fn numbers_by_mask_and_by_position() {
        let docs: Vec<Document> =
            [Bson::Int32(0), Bson::Int32(1), Bson::Int32(54), Bson::Int64(88), Bson::Double(255.0), Bson::Double(1e18)]
                .into_iter()
                .map(|a| doc! {"a": a})
                .collect();
        assert_eq!(count(doc! {"a": {"$bitsAllSet": 0}}, &docs), 6);
        assert_eq!(count(doc! {"a": {"$bitsAllSet": 54}}, &docs), 2);
        assert_eq!(count(doc! {"a": {"$bitsAllClear": 129}}, &docs), 4);
        assert_eq!(count(doc! {"a": {"$bitsAnySet": 9}}, &docs), 3);
        assert_eq!(count(doc! {"a": {"$bitsAnyClear": 24}}, &docs), 4);
        assert_eq!(count(doc! {"a": {"$bitsAllSet": [1, 2, 4, 5]}}, &docs), 2);
        assert_eq!(count(doc! {"a": {"$bitsAllClear": []}}, &docs), 6);
        assert_eq!(count(doc! {"a": {"$bitsAnySet": []}}, &docs), 0);
        assert_eq!(count(doc! {"a": {"$bitsAllSet": 54, "$bitsAllClear": 201}}, &docs), 1);
    }

    #[test]
    fn negative_numbers_are_sign_extended_and_unrepresentable_ones_never_match() {
        let docs: Vec<Document> = [Bson::Int32(-1), Bson::Int32(-54), Bson::Double(-1e18), Bson::Int32(0)]
            .into_iter()
            .map(|a| doc! {"a": a})
            .collect();
        assert_eq!(count(doc! {"a": {"$bitsAllSet": [1, 7, 6, 3, 100]}}, &docs), 2);
        assert_eq!(count(doc! {"a": {"$bitsAnyClear": [0, 2, 4, 5, 100]}}, &docs), 3);
        let odd: Vec<Document> = [Bson::Double(1.1), Bson::Double(f64::NAN), Bson::Double(f64::INFINITY), Bson::Double(1e19), Bson::String("1".into())]
            .into_iter()
            .map(|a| doc! {"a": a})
            .collect();
        assert_eq!(count(doc! {"a": {"$bitsAllSet": 0}}, &odd), 0);
        assert_eq!(count(doc! {"a": {"$bitsAnyClear": [0]}}, &odd), 0);
        // An array matches when one of its elements does.
        assert_eq!(count(doc! {"a": {"$bitsAllSet": 54}}, &[doc! {"a": [1.1, 54]}]), 1);
    }

    #[test]
    fn bindata_is_a_zero_extended_little_endian_mask() {
        let docs = vec![doc! {"a": bin(&[0, 0])}, doc! {"a": bin(&[0x03, 0x60])}, doc! {"a": bin(&[0xff, 0xff])}];
        assert_eq!(count(doc! {"a": {"$bitsAllSet": bin(&[0x03, 0x60])}}, &docs), 2);
        assert_eq!(count(doc! {"a": {"$bitsAllSet": [0, 1, 13, 14]}}, &docs), 2);
        assert_eq!(count(doc! {"a": {"$bitsAnySet": [200]}}, &docs), 0);
        assert_eq!(count(doc! {"a": {"$bitsAllClear": bin(&[0, 0, 1])}}, &docs), 3);
        // A number against a BinData mask, and the reverse.
        assert_eq!(count(doc! {"a": {"$bitsAllSet": bin(&[3])}}, &[doc! {"a": 7}]), 1);
    }

    #[test]
    fn bad_operands_carry_mongodb_codes() {
        let code = |operand: Bson| Filter::parse(&doc! {"a": {"$bitsAllSet": operand}}).unwrap_err().code;
        assert_eq!(code(Bson::Int32(-1)), 9);
        assert_eq!(code(Bson::Double(1.5)), 9);
        assert_eq!(code(Bson::Array(vec![Bson::Int32(-1)])), 2);
        assert_eq!(code(Bson::Array(vec![Bson::String("x".into())])), 2);
        assert_eq!(code(Bson::String("x".into())), 2);
    }
}
