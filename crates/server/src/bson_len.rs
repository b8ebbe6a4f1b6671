//! The size a document takes once encoded as BSON, computed without encoding
//! it: a cursor's batch is cut by bytes, and encoding every document of a
//! reply once more just to learn its length cost as much as the rows'
//! projection.

use bson::spec::BinarySubtype;
use bson::{doc, Bson, Document};

/// A document or an array whose elements are still to be counted.
enum Nested<'a> {
    Document(&'a Document),
    Array(&'a [Bson]),
}

/// The length of `doc` encoded as BSON (what `doc.to_vec()` would give).
pub fn encoded_len(doc: &Document) -> usize {
    // A work list rather than recursion: nesting depth is the data's.
    let mut total = 0;
    let mut pending = vec![Nested::Document(doc)];
    while let Some(nested) = pending.pop() {
        // Its own length (4 bytes) and terminating 0.
        total += 5;
        match nested {
            Nested::Document(d) => {
                for (key, value) in d {
                    total += element_len(key.len(), value, &mut pending);
                }
            }
            Nested::Array(items) => {
                for (i, value) in items.iter().enumerate() {
                    total += element_len(decimal_digits(i), value, &mut pending);
                }
            }
        }
    }
    total
}

/// An element's type byte, its key as a C string and its value; a nested
/// document or array is left in `pending` for its own elements.
fn element_len<'a>(key_len: usize, value: &'a Bson, pending: &mut Vec<Nested<'a>>) -> usize {
    1 + key_len + 1 + value_len(value, pending)
}

fn value_len<'a>(value: &'a Bson, pending: &mut Vec<Nested<'a>>) -> usize {
    let string = |s: &str| 4 + s.len() + 1;
    match value {
        Bson::Null | Bson::Undefined | Bson::MinKey | Bson::MaxKey => 0,
        Bson::Boolean(_) => 1,
        Bson::Int32(_) => 4,
        Bson::Int64(_) | Bson::Double(_) | Bson::DateTime(_) | Bson::Timestamp(_) => 8,
        Bson::ObjectId(_) => 12,
        Bson::Decimal128(_) => 16,
        Bson::String(s) | Bson::JavaScriptCode(s) | Bson::Symbol(s) => string(s),
        Bson::RegularExpression(re) => re.pattern.as_str().len() + 1 + re.options.as_str().len() + 1,
        // The old binary subtype repeats the length inside the bytes.
        Bson::Binary(b) => 4 + 1 + b.bytes.len() + if b.subtype == BinarySubtype::BinaryOld { 4 } else { 0 },
        Bson::Document(d) => {
            pending.push(Nested::Document(d));
            0
        }
        Bson::Array(items) => {
            pending.push(Nested::Array(items));
            0
        }
        Bson::JavaScriptCodeWithScope(code) => {
            pending.push(Nested::Document(&code.scope));
            4 + string(&code.code)
        }
        // Its namespace is private to the bson crate: encode it to measure
        // (`{"": value}` is the value and 7 bytes).
        Bson::DbPointer(_) => doc! {"": value.clone()}.to_vec().map_or(0, |v| v.len().saturating_sub(7)),
    }
}

/// How many digits `n` has in decimal (an array element's key).
fn decimal_digits(n: usize) -> usize {
    n.checked_ilog10().map_or(1, |d| d as usize + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::oid::ObjectId;
    use bson::{Binary, DateTime, Decimal128, JavaScriptCodeWithScope, Regex, Timestamp};

    fn check(doc: &Document) {
        let encoded = doc.to_vec().expect("encodable");
        assert_eq!(encoded_len(doc), encoded.len(), "{doc:?}");
    }

    #[test]
    fn every_type_measures_as_encoded() {
        check(&Document::new());
        check(&doc! {
            "double": 1.5, "string": "héllo", "empty": "", "document": {"a": {"b": [1, {"c": null}]}},
            "array": (0..123).map(Bson::Int32).collect::<Vec<_>>(), "bool": true, "null": null,
            "regex": Regex { pattern: "^a.*".try_into().expect("no nul"), options: "i".try_into().expect("no nul") },
            "code": Bson::JavaScriptCode("f()".into()),
            "scoped": JavaScriptCodeWithScope { code: "x + 1".into(), scope: doc! {"x": 1} },
            "int32": 7, "int64": 7_i64, "timestamp": Timestamp { time: 1, increment: 2 },
            "binary": Binary { subtype: BinarySubtype::Generic, bytes: vec![1, 2, 3] },
            "old binary": Binary { subtype: BinarySubtype::BinaryOld, bytes: vec![1, 2, 3] },
            "uuid": Binary { subtype: BinarySubtype::Uuid, bytes: vec![0; 16] },
            "oid": ObjectId::new(), "date": DateTime::from_millis(1_700_000_000_000),
            "symbol": Bson::Symbol("s".into()), "decimal": Decimal128::from_bytes([0; 16]),
            "undefined": Bson::Undefined, "max": Bson::MaxKey, "min": Bson::MinKey,
        });
    }

    #[test]
    fn array_keys_grow_with_their_index() {
        for n in [0, 1, 9, 10, 11, 99, 100, 101, 1000, 10_001] {
            check(&doc! {"a": (0..n).map(|i| Bson::Int64(i as i64)).collect::<Vec<_>>()});
        }
    }

    #[test]
    fn nested_documents_and_arrays() {
        let mut doc = doc! {"leaf": 1};
        for _ in 0..150 {
            doc = doc! {"d": doc, "a": [1, [2, {"x": "y"}]]};
        }
        check(&doc);
    }
}
