//! A find's renaming projection (`{_id: 0, c0: "$id", c1: "$name"}`, the
//! shape of every SQL read's projection) applied to a document's stored
//! bytes: each reply document is built by copying the renamed fields'
//! values out of the stored bytes, without decoding the document first.
//!
//! The result is the document `FindProjection::apply_owned` gives for the
//! decoded document, byte for byte: the new names in the projection's
//! order, a name whose field the document lacks left out, and the last
//! value of a field the stored document holds twice (as decoding keeps it).
use crate::error::{CmdResult, CommandError};
use bson::raw::CString;
use bson::{RawArray, RawBsonRef, RawDocument, RawDocumentBuf};

/// A renaming projection, ready for stored bytes.
pub struct StoredRenames {
    /// The new name of each output field and the stored field it copies.
    names: Vec<(CString, String)>,
}

fn corrupt(e: bson::error::Error) -> CommandError {
    CommandError::internal(format!("corrupt stored document: {e}"))
}

impl StoredRenames {
    /// `None` when a new name cannot be a BSON key (a NUL in it): such a
    /// projection keeps the decoding path, which refuses it there.
    pub fn new(renames: &[(String, String)]) -> Option<StoredRenames> {
        let names = renames.iter().map(|(new, old)| Some((CString::try_from(new.as_str()).ok()?, old.clone()))).collect::<Option<Vec<_>>>()?;
        Some(StoredRenames { names })
    }

    /// The reply document for the stored document `stored`: the values'
    /// bytes are copied as they lie. bson's element iterator and `append`
    /// (a value parsed, then written again) cost about 6.7 K instructions
    /// a row of Django's entries; stepping over the bytes costs a third.
    pub fn project(&self, stored: &RawDocument) -> CmdResult<RawDocumentBuf> {
        let bytes = stored.as_bytes();
        let mut found: Vec<Option<Value>> = vec![None; self.names.len()];
        // `RawDocument` checked the length and the terminating zero.
        let end = bytes.len().saturating_sub(1);
        let mut at = 4;
        while at < end {
            let kind = bytes[at];
            let key_at = at + 1;
            let key_len = bytes[key_at..end].iter().position(|b| *b == 0).ok_or_else(|| damaged("a key runs past the document's end"))?;
            let key = &bytes[key_at..key_at + key_len];
            let value_at = key_at + key_len + 1;
            let len = djongo_engine::expr::stored_value_len(kind, bytes, value_at).ok_or_else(|| damaged("an element of unknown type or length"))?;
            let value_end = value_at.checked_add(len).filter(|e| *e <= end).ok_or_else(|| damaged("a value runs past the document's end"))?;
            for (slot, (_, old)) in found.iter_mut().zip(&self.names) {
                // The last of equal names wins, as decoding keeps it.
                if old.as_bytes() == key {
                    *slot = Some(Value { kind, at: value_at, end: value_end });
                }
            }
            at = value_end;
        }
        let mut out = Vec::with_capacity(bytes.len());
        out.extend_from_slice(&[0; 4]);
        let mut nested = false;
        for ((new, _), value) in self.names.iter().zip(found) {
            let Some(value) = value else { continue };
            let value_bytes = &bytes[value.at..value.end];
            nested |= !check_scalar(value.kind, value_bytes)?;
            out.push(value.kind);
            out.extend_from_slice(new.as_str().as_bytes());
            out.push(0);
            out.extend_from_slice(value_bytes);
        }
        out.push(0);
        let len = i32::try_from(out.len()).map_err(|_| damaged("a document past BSON's size"))?;
        out[..4].copy_from_slice(&len.to_le_bytes());
        let out = RawDocumentBuf::from_bytes(out).map_err(corrupt)?;
        if nested {
            // Documents, arrays and the rarer types: read by bson, every
            // value nested in them included.
            for element in out.iter_elements() {
                check_nested(element.and_then(|e| e.value()).map_err(corrupt)?)?;
            }
        }
        Ok(out)
    }
}

/// Where a field's value lies in the stored bytes, and its type.
#[derive(Clone, Copy)]
struct Value {
    kind: u8,
    at: usize,
    end: usize,
}

fn damaged(what: &str) -> CommandError {
    CommandError::internal(format!("corrupt stored document: {what}"))
}

/// Checks a value of a type Django's columns hold as decoding would check
/// it; `false` for the other types, which the caller has bson read.
fn check_scalar(kind: u8, value: &[u8]) -> CmdResult<bool> {
    match kind {
        // double, ObjectId, datetime, int32, timestamp, int64, decimal128;
        // undefined, null, min and max key: any bytes of their length read.
        0x01 | 0x07 | 0x09 | 0x10 | 0x11 | 0x12 | 0x13 | 0x06 | 0x0A | 0x7F | 0xFF => Ok(true),
        0x08 => match value {
            [0 | 1] => Ok(true),
            _ => Err(damaged("a boolean that is neither 0 nor 1")),
        },
        0x02 => {
            let text = value.get(4..).and_then(|t| t.split_last()).filter(|(zero, text)| **zero == 0 && value.len() == text.len() + 5);
            match text {
                Some((_, text)) if std::str::from_utf8(text).is_ok() => Ok(true),
                _ => Err(damaged("a string that is not UTF-8 or not terminated")),
            }
        }
        _ => Ok(false),
    }
}

/// Reads every value nested in `value` (an embedded document or array), so
/// that corrupt stored bytes fail the read as decoding them would, instead
/// of reaching the client. An explicit work list: no recursion on input.
fn check_nested(value: RawBsonRef<'_>) -> CmdResult<()> {
    let mut pending: Vec<&RawDocument> = match value {
        RawBsonRef::Document(d) => vec![d],
        RawBsonRef::Array(a) => vec![array_elements(a)?],
        RawBsonRef::JavaScriptCodeWithScope(c) => vec![c.scope],
        _ => return Ok(()),
    };
    while let Some(doc) = pending.pop() {
        for element in doc.iter_elements() {
            match element.and_then(|e| e.value()).map_err(corrupt)? {
                RawBsonRef::Document(d) => pending.push(d),
                RawBsonRef::Array(a) => pending.push(array_elements(a)?),
                RawBsonRef::JavaScriptCodeWithScope(c) => pending.push(c.scope),
                _ => {}
            }
        }
    }
    Ok(())
}

/// An array's elements, read as the document of index keys it is stored as.
fn array_elements(array: &RawArray) -> CmdResult<&RawDocument> {
    RawDocument::from_bytes(array.as_bytes()).map_err(corrupt)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::decode_fields;
    use bson::oid::ObjectId;
    use bson::raw::CStr;
    use bson::spec::BinarySubtype;
    use bson::{doc, Binary, Bson, DateTime, Decimal128, Document, JavaScriptCodeWithScope, RawBson, Regex, Timestamp};
    use djongo_engine::projection::FindProjection;
    use proptest::prelude::*;
    use std::collections::HashSet;

    const NAMES: [&str; 5] = ["_id", "a", "b", "id", "x"];

    /// One value of every BSON type, a few nested.
    fn leaf() -> impl Strategy<Value = Bson> {
        prop_oneof![
            Just(Bson::Null),
            Just(Bson::Undefined),
            Just(Bson::MinKey),
            Just(Bson::MaxKey),
            any::<i32>().prop_map(Bson::Int32),
            any::<i64>().prop_map(Bson::Int64),
            any::<f64>().prop_map(Bson::Double),
            Just(Bson::Double(f64::NAN)),
            any::<[u8; 16]>().prop_map(|b| Bson::Decimal128(Decimal128::from_bytes(b))),
            "\\PC{0,6}".prop_map(Bson::String),
            "[a-z]{0,3}".prop_map(Bson::Symbol),
            "[a-z()]{0,5}".prop_map(Bson::JavaScriptCode),
            ("[a-z]{0,4}", any::<i32>()).prop_map(|(code, x)| Bson::JavaScriptCodeWithScope(JavaScriptCodeWithScope { code, scope: doc! {"x": x} })),
            any::<bool>().prop_map(Bson::Boolean),
            any::<i64>().prop_map(|m| Bson::DateTime(DateTime::from_millis(m))),
            (any::<u32>(), any::<u32>()).prop_map(|(time, increment)| Bson::Timestamp(Timestamp { time, increment })),
            any::<[u8; 12]>().prop_map(|b| Bson::ObjectId(ObjectId::from_bytes(b))),
            (prop::collection::vec(any::<u8>(), 0..8), prop_oneof![Just(BinarySubtype::Generic), Just(BinarySubtype::UserDefined(0x80))])
                .prop_map(|(bytes, subtype)| Bson::Binary(Binary { subtype, bytes })),
            Just(Bson::Binary(Binary { subtype: BinarySubtype::Uuid, bytes: vec![7; 16] })),
            // Options in order, as the engine stores them (decoding sorts them).
            ("[a-z.*]{0,4}", "i?m?s?x?").prop_map(|(p, o)| Bson::RegularExpression(Regex { pattern: p.try_into().expect("no nul"), options: o.try_into().expect("no nul") })),
        ]
    }

    fn value() -> impl Strategy<Value = Bson> {
        leaf().prop_recursive(3, 12, 3, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(Bson::Array),
                prop::collection::vec(("[a-c]", inner), 0..3).prop_map(|kv| Bson::Document(kv.into_iter().collect())),
            ]
        })
    }

    /// Stored bytes, duplicate names included (decoding keeps a name once).
    fn stored() -> impl Strategy<Value = RawDocumentBuf> {
        prop::collection::vec((prop::sample::select(NAMES.to_vec()), value()), 0..7).prop_map(|fields| {
            let mut raw = RawDocumentBuf::new();
            for (name, value) in fields {
                let key = <&CStr>::try_from(name).expect("no nul");
                raw.append(key, RawBson::try_from(value).expect("encodable"));
            }
            raw
        })
    }

    /// `{_id: 0, c0: "$...", ...}` reading names that may be missing, or read twice.
    fn renaming() -> impl Strategy<Value = Document> {
        prop::collection::vec(prop::sample::select([&NAMES[..], &["missing"]].concat()), 1..5).prop_map(|sources| {
            let mut spec = doc! {"_id": 0};
            for (i, source) in sources.iter().enumerate() {
                spec.insert(format!("c{i}"), format!("${source}"));
            }
            spec
        })
    }

    /// What a find answered before: the needed fields decoded, then projected.
    fn decoded_path(stored: &RawDocument, spec: &Document) -> CmdResult<Vec<u8>> {
        let projection = FindProjection::parse(spec, &Document::new())?;
        let fields: HashSet<String> = spec.values().filter_map(|v| v.as_str()).map(|s| s.trim_start_matches('$').to_string()).collect();
        let doc = decode_fields(stored.as_bytes(), Some(&fields))?;
        Ok(projection.apply_owned(doc)?.to_vec().expect("encodable"))
    }

    fn stored_path(stored: &RawDocument, spec: &Document) -> CmdResult<Vec<u8>> {
        let projection = FindProjection::parse(spec, &Document::new())?;
        let renames = StoredRenames::new(projection.renames().expect("a renaming projection")).expect("keys without NUL");
        Ok(renames.project(stored)?.into_bytes())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Byte for byte what the decoding path answers (NaN included: bytes,
        /// not values, are compared).
        #[test]
        fn stored_bytes_project_as_decoded_documents(stored in stored(), spec in renaming()) {
            let expected = decoded_path(&stored, &spec).expect("valid stored bytes");
            prop_assert_eq!(stored_path(&stored, &spec).expect("valid stored bytes"), expected);
        }

        /// Damaged stored bytes give an error or a document, never a panic;
        /// a document only when the decoding path reads them too.
        #[test]
        fn damaged_stored_bytes_never_panic(stored in stored(), spec in renaming(), at in any::<prop::sample::Index>(), byte in any::<u8>()) {
            let mut bytes = stored.into_bytes();
            let i = at.index(bytes.len());
            bytes[i] = byte;
            let Ok(raw) = RawDocument::from_bytes(&bytes) else { return Ok(()) };
            if let Ok(projected) = stored_path(raw, &spec) {
                // What it copied is readable BSON.
                prop_assert!(Document::try_from(RawDocument::from_bytes(&projected).expect("well formed")).is_ok());
            }
        }
    }

    /// A DBPointer (its fields are private to the bson crate): read from bytes.
    fn db_pointer() -> Bson {
        let mut element = vec![0x0c, b'p', 0, 2, 0, 0, 0, b'c', 0];
        element.extend(1..=12u8);
        let mut bytes = ((element.len() + 5) as i32).to_le_bytes().to_vec();
        bytes.extend(element);
        bytes.push(0);
        let doc = Document::try_from(RawDocumentBuf::from_bytes(bytes).expect("well formed")).expect("decodable");
        doc.get("p").cloned().expect("the pointer")
    }

    #[test]
    fn every_type_is_copied_as_decoding_gives_it() {
        let mut stored = doc! {
            "_id": 1, "double": f64::NAN, "string": "héllo", "document": {"a": {"b": [1, {"c": null}]}},
            "array": (0..12).map(Bson::Int32).collect::<Vec<_>>(), "bool": true, "null": null,
            "regex": Regex { pattern: "^a.*".try_into().expect("no nul"), options: "i".try_into().expect("no nul") },
            "code": Bson::JavaScriptCode("f()".into()),
            "scoped": JavaScriptCodeWithScope { code: "x + 1".into(), scope: doc! {"x": 1} },
            "int32": 7, "int64": 7_i64, "timestamp": Timestamp { time: 1, increment: 2 },
            "binary": Binary { subtype: BinarySubtype::Generic, bytes: vec![1, 2, 3] },
            "old binary": Binary { subtype: BinarySubtype::BinaryOld, bytes: vec![1, 2, 3] },
            "oid": ObjectId::new(), "date": DateTime::from_millis(1_700_000_000_000),
            "symbol": Bson::Symbol("s".into()), "decimal": Decimal128::from_bytes([3; 16]),
            "undefined": Bson::Undefined, "max": Bson::MaxKey, "min": Bson::MinKey,
        };
        stored.insert("dbpointer", db_pointer());
        let stored = RawDocumentBuf::try_from(&stored).expect("encodable");
        let mut spec = doc! {"_id": 0};
        let names: Vec<String> = Document::try_from(stored.clone()).expect("decodable").keys().cloned().collect();
        for (i, name) in names.iter().enumerate().rev() {
            spec.insert(format!("out{i}"), format!("${name}"));
        }
        assert_eq!(stored_path(&stored, &spec).unwrap(), decoded_path(&stored, &spec).unwrap());
    }

    #[test]
    fn corrupt_projected_values_are_errors() {
        let good = RawDocumentBuf::try_from(&doc! {"a": "text", "b": {"n": "inner"}, "c": 1}).unwrap().into_bytes();
        let spec = doc! {"_id": 0, "x": "$a", "y": "$b"};
        // Invalid UTF-8 in a projected string, and in a string inside a projected document.
        for word in ["text", "inner"] {
            let mut bytes = good.clone();
            let at = bytes.windows(word.len()).position(|w| w == word.as_bytes()).unwrap();
            bytes[at] = 0xff;
            let raw = RawDocument::from_bytes(&bytes).unwrap();
            let err = stored_path(raw, &spec).unwrap_err();
            assert!(err.message.contains("corrupt stored document"), "{}", err.message);
            assert!(decoded_path(raw, &spec).is_err());
        }
        // A length running past the document's end.
        let mut bytes = good.clone();
        let at = bytes.windows(4).position(|w| w == b"text").unwrap() - 4;
        bytes[at] = 0x7f;
        let raw = RawDocument::from_bytes(&bytes).unwrap();
        assert!(stored_path(raw, &spec).is_err());
    }
}
