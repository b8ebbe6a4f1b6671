//! Replies as rows: every read plan's documents carry the SELECT's columns
//! as fields `c0`, `c1`, ... (docs/plan-format.md); a row is the tuple of
//! those fields in order, a missing one read as None.
use crate::values::{self, Decimals};
use bson::oid::ObjectId;
use bson::raw::{RawBinaryRef, RawBsonRef, RawDocument};
use bson::spec::BinarySubtype;
use bson::{Bson, Decimal128};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};

pub struct Batch<'py> {
    pub rows: Bound<'py, PyList>,
    pub cursor_id: i64,
    pub ns: String,
}

fn malformed(what: &str) -> PyErr {
    PyValueError::new_err(format!("the store's reply has no {what}"))
}

/// The rows of a cursor reply's `firstBatch` or `nextBatch`.
pub fn batch<'py>(py: Python<'py>, reply: &RawDocument, key: &str, width: usize) -> PyResult<Batch<'py>> {
    let cursor = reply.get_document("cursor").map_err(|_| malformed("cursor"))?;
    let documents = cursor.get_array(key).map_err(|_| malformed(key))?;
    let cursor_id = match cursor.get("id").map_err(values::bson_error)? {
        Some(RawBsonRef::Int64(id)) => id,
        Some(RawBsonRef::Int32(id)) => i64::from(id),
        _ => 0,
    };
    let ns = cursor.get_str("ns").unwrap_or_default().to_owned();
    let rows = PyList::empty(py);
    let mut cells = Vec::with_capacity(width);
    for document in documents {
        match document.map_err(values::bson_error)? {
            RawBsonRef::Document(document) => rows.append(row(py, document, width, &mut cells)?)?,
            _ => return Err(malformed("documents in its batch")),
        }
    }
    Ok(Batch { rows, cursor_id, ns })
}

/// One document's `c0 .. c<width-1>` as a tuple. `cells` is scratch
/// space, reused from row to row.
fn row<'py, 'a>(py: Python<'py>, document: &'a RawDocument, width: usize, cells: &mut Vec<Option<RawBsonRef<'a>>>) -> PyResult<Bound<'py, PyTuple>> {
    cells.clear();
    cells.resize(width, None);
    if step(document, cells).is_none() {
        cells.fill(None);
        walk(document, cells).map_err(values::bson_error)?;
    }
    let values = cells.iter().map(|cell| match cell {
        Some(value) => values::to_python(py, *value, Decimals::Decimal),
        None => Ok(py.None().into_bound(py)),
    });
    PyTuple::new(py, values.collect::<PyResult<Vec<_>>>()?)
}

/// The columns' values of `document`, read by stepping over its bytes: a
/// key is compared as the bytes it is, and the types a column holds are read
/// where they lie. bson's iterator checks each key's UTF-8, makes it a C
/// string and builds an element, about 240 instructions per field, more than
/// the rest of a row's cell. `None`: a type this step does not read (a
/// document, an array, a regex...) or bytes it does not expect; then `walk`
/// reads the row, or says what is wrong with it.
fn step<'a>(document: &'a RawDocument, cells: &mut [Option<RawBsonRef<'a>>]) -> Option<()> {
    let bytes = document.as_bytes();
    // Where the terminating zero is (`RawDocument` checked that it is there).
    let end = bytes.len().checked_sub(1)?;
    let mut at = 4;
    while at < end {
        let kind = bytes[at];
        let key_at = at + 1;
        let key_len = bytes.get(key_at..end)?.iter().position(|b| *b == 0)?;
        let key = &bytes[key_at..key_at + key_len];
        let value_at = key_at + key_len + 1;
        let (value, len) = scalar(kind, bytes.get(value_at..end)?)?;
        if let Some(cell) = column_of(key).and_then(|i| cells.get_mut(i)) {
            *cell = Some(value);
        }
        at = value_at + len;
    }
    (at == end).then_some(())
}

/// The value of BSON type `kind` at the start of `bytes`, and its length in
/// bytes, for the scalar types Django's columns hold (`None`: another type,
/// or bytes that do not read as one).
fn scalar(kind: u8, bytes: &[u8]) -> Option<(RawBsonRef<'_>, usize)> {
    fn fixed<const N: usize>(bytes: &[u8]) -> Option<[u8; N]> {
        bytes.get(..N)?.try_into().ok()
    }
    let length = |bytes: &[u8]| usize::try_from(i32::from_le_bytes(fixed(bytes)?)).ok();
    Some(match kind {
        0x01 => (RawBsonRef::Double(f64::from_le_bytes(fixed(bytes)?)), 8),
        0x02 => {
            // A length that counts the text's terminating zero, the text, the zero.
            let with_zero = length(bytes)?;
            let (zero, text) = bytes.get(4..4usize.checked_add(with_zero)?)?.split_last()?;
            if *zero != 0 {
                return None;
            }
            (RawBsonRef::String(std::str::from_utf8(text).ok()?), 4 + with_zero)
        }
        0x05 if bytes.get(4) == Some(&0) => {
            // Generic binary only (the old subtype 2 holds a length of its own).
            let len = length(bytes)?;
            let data = bytes.get(5..5usize.checked_add(len)?)?;
            (RawBsonRef::Binary(RawBinaryRef { subtype: BinarySubtype::Generic, bytes: data }), 5 + len)
        }
        0x07 => (RawBsonRef::ObjectId(ObjectId::from_bytes(fixed(bytes)?)), 12),
        0x08 => match bytes.first()? {
            0 => (RawBsonRef::Boolean(false), 1),
            1 => (RawBsonRef::Boolean(true), 1),
            _ => return None,
        },
        0x09 => (RawBsonRef::DateTime(bson::DateTime::from_millis(i64::from_le_bytes(fixed(bytes)?))), 8),
        0x0A => (RawBsonRef::Null, 0),
        0x10 => (RawBsonRef::Int32(i32::from_le_bytes(fixed(bytes)?)), 4),
        0x12 => (RawBsonRef::Int64(i64::from_le_bytes(fixed(bytes)?)), 8),
        0x13 => (RawBsonRef::Decimal128(Decimal128::from_bytes(fixed(bytes)?)), 16),
        _ => return None,
    })
}

/// The columns' values of `document` through bson's own iterator.
fn walk<'a>(document: &'a RawDocument, cells: &mut [Option<RawBsonRef<'a>>]) -> bson::error::Result<()> {
    for element in document {
        let (key, value) = element?;
        if let Some(cell) = column_of(key.as_str().as_bytes()).and_then(|i| cells.get_mut(i)) {
            *cell = Some(value);
        }
    }
    Ok(())
}

/// The column a field holds: `c` and a number, written without leading zeros.
fn column_of(key: &[u8]) -> Option<usize> {
    let digits = key.strip_prefix(b"c")?;
    if digits.is_empty() || (digits.len() > 1 && digits[0] == b'0') {
        return None;
    }
    digits.iter().try_fold(0usize, |n, &b| if b.is_ascii_digit() { n.checked_mul(10)?.checked_add(usize::from(b - b'0')) } else { None })
}

/// Whether a reply says `ok: 1`.
pub fn is_ok(reply: &RawDocument) -> bool {
    match reply.get("ok") {
        Ok(Some(RawBsonRef::Double(f))) => f == 1.0,
        Ok(Some(RawBsonRef::Int32(i))) => i == 1,
        Ok(Some(RawBsonRef::Int64(i))) => i == 1,
        Ok(Some(RawBsonRef::Boolean(b))) => b,
        _ => false,
    }
}

/// A count in a write's reply (`n`).
pub fn count(reply: &RawDocument, key: &str) -> i64 {
    match reply.get(key) {
        Ok(Some(RawBsonRef::Int32(n))) => i64::from(n),
        Ok(Some(RawBsonRef::Int64(n))) => n,
        Ok(Some(RawBsonRef::Double(n))) => n as i64,
        _ => 0,
    }
}

/// The first number an insert's `djongoCounter` handed out, if any.
pub fn counter_first(reply: &RawDocument) -> Option<i64> {
    let Ok(Some(RawBsonRef::Document(counter))) = reply.get("djongoCounter") else { return None };
    match counter.get("first") {
        Ok(Some(RawBsonRef::Int64(n))) => Some(n),
        Ok(Some(RawBsonRef::Int32(n))) => Some(i64::from(n)),
        _ => None,
    }
}

/// The counter document's digest an insert's `djongoCounter` replied, if any.
pub fn counter_digest(reply: &RawDocument) -> Option<&[u8]> {
    let Ok(Some(RawBsonRef::Document(counter))) = reply.get("djongoCounter") else { return None };
    match counter.get("digest") {
        Ok(Some(RawBsonRef::Binary(binary))) => Some(binary.bytes),
        _ => None,
    }
}

/// A write reply's `writeErrors`, their `index` moved by `offset` (the
/// position of the command's first document in the whole insert).
pub fn write_errors(reply: &RawDocument, offset: usize) -> Vec<Bson> {
    let Ok(Some(RawBsonRef::Array(errors))) = reply.get("writeErrors") else { return Vec::new() };
    let mut out = Vec::new();
    for error in errors.into_iter().flatten() {
        let RawBsonRef::Document(error) = error else { continue };
        let Ok(mut error) = bson::Document::try_from(error) else { continue };
        if let Some(index) = error.get("index").and_then(|i| match i {
            Bson::Int32(i) => Some(i64::from(*i)),
            Bson::Int64(i) => Some(*i),
            _ => None,
        }) {
            error.insert("index", index + offset as i64);
        }
        out.push(Bson::Document(error));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    #[test]
    fn columns_are_c_and_a_number() {
        assert_eq!(column_of(b"c0"), Some(0));
        assert_eq!(column_of(b"c12"), Some(12));
        for other in ["c", "c01", "_id", "cx", "c-1", "d0", "c1x", "c99999999999999999999999"] {
            assert_eq!(column_of(other.as_bytes()), None, "{other}");
        }
    }

    fn walked(document: &RawDocument, width: usize) -> Vec<Option<RawBsonRef<'_>>> {
        let mut cells = vec![None; width];
        walk(document, &mut cells).unwrap();
        cells
    }

    #[test]
    fn stepping_reads_what_bsons_iterator_reads() {
        let when = bson::DateTime::from_millis(-62_135_596_800_000);
        let documents = [
            doc! {"c0": 1, "c1": 2i64, "c2": 2.5, "c3": "été ☃", "c4": true, "c5": false, "c6": bson::Bson::Null},
            doc! {"c2": when, "c0": ObjectId::new(), "c1": Decimal128::from_bytes([7; 16]), "_id": "skipped", "x": 3},
            doc! {"c0": bson::Binary { subtype: BinarySubtype::Generic, bytes: vec![0, 1, 2] }, "c1": "", "c9": 1},
            doc! {"c0": 1, "c1": {"a": 1}},
            doc! {},
        ];
        let mut repeated = bson::RawDocumentBuf::new();
        repeated.append(bson::raw::cstr!("c0"), 1);
        repeated.append(bson::raw::cstr!("c0"), "second");
        for (i, document) in documents.iter().enumerate() {
            let raw = bson::RawDocumentBuf::try_from(document).unwrap();
            let mut cells = vec![None; 7];
            let stepped = step(&raw, &mut cells);
            if i == 3 {
                assert_eq!(stepped, None, "a sub-document is left to bson's iterator");
            } else {
                assert_eq!(stepped, Some(()), "{document}");
                assert_eq!(cells, walked(&raw, 7), "{document}");
            }
        }
        // A repeated column: the last value, as bson's iterator gives it.
        let mut cells = vec![None; 1];
        assert_eq!(step(&repeated, &mut cells), Some(()));
        assert_eq!(cells, vec![Some(RawBsonRef::String("second"))]);
        assert_eq!(cells, walked(&repeated, 1));
    }

    #[test]
    fn stepping_refuses_bytes_it_does_not_expect() {
        let raw = bson::RawDocumentBuf::try_from(&doc! {"c0": "text", "c1": true, "c2": 1.5}).unwrap();
        let good = raw.as_bytes().to_vec();
        // The string's length one too long, one too short, negative; the
        // boolean neither 0 nor 1; a text that is not UTF-8; a subtype 2 binary.
        let string_len_at = 4 + 1 + 3;
        let bool_at = good.len() - 1 - (1 + 3 + 8) - 1;
        let mut cases = Vec::new();
        for len in [6i32, 4, -1] {
            let mut bytes = good.clone();
            bytes[string_len_at..string_len_at + 4].copy_from_slice(&len.to_le_bytes());
            cases.push(bytes);
        }
        let mut bytes = good.clone();
        bytes[bool_at] = 2;
        cases.push(bytes);
        let mut bytes = good.clone();
        bytes[string_len_at + 4] = 0xFF;
        cases.push(bytes);
        let old_binary = bson::RawDocumentBuf::try_from(&doc! {"c0": bson::Binary { subtype: BinarySubtype::BinaryOld, bytes: vec![1, 2] }}).unwrap();
        cases.push(old_binary.as_bytes().to_vec());
        for bytes in cases {
            let document = RawDocument::from_bytes(&bytes).unwrap();
            let mut cells = vec![None; 3];
            assert_eq!(step(document, &mut cells), None, "{bytes:?}");
        }
        let mut cells = vec![None; 3];
        assert_eq!(step(RawDocument::from_bytes(&good).unwrap(), &mut cells), Some(()));
    }

    #[test]
    fn ok_and_counts() {
        let reply = bson::RawDocumentBuf::try_from(&doc! {"ok": 1.0, "n": 3}).unwrap();
        assert!(is_ok(&reply));
        assert_eq!(count(&reply, "n"), 3);
        let failed = bson::RawDocumentBuf::try_from(&doc! {"ok": 0.0}).unwrap();
        assert!(!is_ok(&failed));
    }
}
