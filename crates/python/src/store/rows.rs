//! Replies as rows: every read plan's documents carry the SELECT's columns
//! as fields `c0`, `c1`, ... (docs/plan-format.md); a row is the tuple of
//! those fields in order, a missing one read as None.
use crate::values::{self, Decimals};
use bson::raw::{RawBsonRef, RawDocument};
use bson::Bson;
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
    for document in documents {
        match document.map_err(values::bson_error)? {
            RawBsonRef::Document(document) => rows.append(row(py, document, width)?)?,
            _ => return Err(malformed("documents in its batch")),
        }
    }
    Ok(Batch { rows, cursor_id, ns })
}

/// One document's `c0 .. c<width-1>` as a tuple.
fn row<'py>(py: Python<'py>, document: &RawDocument, width: usize) -> PyResult<Bound<'py, PyTuple>> {
    let mut cells: Vec<Option<Bound<'py, PyAny>>> = (0..width).map(|_| None).collect();
    for element in document {
        let (key, value) = element.map_err(values::bson_error)?;
        if let Some(slot) = column_index(key.as_str()).and_then(|i| cells.get_mut(i)) {
            *slot = Some(values::to_python(py, value, Decimals::Decimal)?);
        }
    }
    PyTuple::new(py, cells.into_iter().map(|cell| cell.unwrap_or_else(|| py.None().into_bound(py))))
}

fn column_index(key: &str) -> Option<usize> {
    let digits = key.strip_prefix('c')?;
    if digits.is_empty() || (digits.len() > 1 && digits.starts_with('0')) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
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
        assert_eq!(column_index("c0"), Some(0));
        assert_eq!(column_index("c12"), Some(12));
        for other in ["c", "c01", "_id", "cx", "c-1", "d0"] {
            assert_eq!(column_index(other), None, "{other}");
        }
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
