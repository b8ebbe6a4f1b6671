//! `djongo._core.InsertRows`: an INSERT's rows, bound, kept as BSON.
//!
//! The executor completes an INSERT's rows before they are written: ids
//! from the counter, column DEFAULTs, the NOT NULL check. Those are
//! decisions per column, not per row, so it makes them through this object
//! (one call per column), and the rows stay the documents the binder built
//! from the plan's slots and the parameters: the store's client encodes them
//! as they are, without a Python dict per row on the way (a 1,000-row
//! `bulk_create` made 1,000 dicts from BSON and 1,000 BSON documents from
//! the dicts again). Where a path needs dicts (pymongo, a BulkWrite, ON
//! CONFLICT, generated columns), `dicts()` gives them, as `bind_rows` did.
use crate::values::{self, Decimals};
use bson::{Bson, Document};
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};

#[pyclass(module = "djongo._core")]
pub struct InsertRows {
    pub documents: Vec<Document>,
}

/// Whether a row leaves `field` out or sets it to NULL: the counter numbers
/// such a row (as `doc.get(field) is None` decided on the dicts).
fn unset(document: &Document, field: &str) -> bool {
    matches!(document.get(field), None | Some(Bson::Null))
}

/// An integer as pymongo writes a Python int: 32 bits when it fits.
pub fn integer(n: i64) -> Bson {
    match i32::try_from(n) {
        Ok(small) => Bson::Int32(small),
        Err(_) => Bson::Int64(n),
    }
}

/// A written value as a read returns it (RETURNING): a Decimal128 as
/// `Decimal`; anything inside a document or array as it was stored.
fn as_read<'py>(py: Python<'py>, value: Option<&Bson>) -> PyResult<Bound<'py, PyAny>> {
    match value {
        None => Ok(py.None().into_bound(py)),
        Some(value @ Bson::Decimal128(_)) => values::bson_to_python(py, value, Decimals::Decimal),
        Some(value) => values::bson_to_python(py, value, Decimals::Decimal128),
    }
}

impl InsertRows {
    /// Numbers the rows that leave `field` unset with `first`, `first + 1`, ...
    /// in order, as the server numbered them.
    pub fn number_unset(&mut self, field: &str, first: i64, among: impl Iterator<Item = usize>) {
        for (offset, i) in among.enumerate() {
            if let Some(document) = self.documents.get_mut(i) {
                document.insert(field, integer(first + offset as i64));
            }
        }
    }

    pub fn is_unset(&self, i: usize, field: &str) -> bool {
        self.documents.get(i).is_some_and(|d| unset(d, field))
    }
}

#[pymethods]
impl InsertRows {
    fn __len__(&self) -> usize {
        self.documents.len()
    }

    /// The values rows give `field` that are not NULL, in row order.
    fn explicit<'py>(&self, py: Python<'py>, field: &str) -> PyResult<Bound<'py, PyList>> {
        let out = PyList::empty(py);
        for value in self.documents.iter().filter_map(|d| d.get(field)).filter(|v| !matches!(v, Bson::Null)) {
            out.append(values::bson_to_python(py, value, Decimals::Decimal128)?)?;
        }
        Ok(out)
    }

    /// How many rows leave `field` unset (absent or NULL).
    fn count_unset(&self, field: &str) -> usize {
        self.documents.iter().filter(|d| unset(d, field)).count()
    }

    /// Whether some row leaves the column `field` out.
    fn some_lack(&self, field: &str) -> bool {
        self.documents.iter().any(|d| !d.contains_key(field))
    }

    /// Whether the first row has the column `field` (present, NULL or not).
    fn first_has(&self, field: &str) -> bool {
        self.documents.first().is_some_and(|d| d.contains_key(field))
    }

    /// Whether some row sets `field` to NULL explicitly.
    fn has_null(&self, field: &str) -> bool {
        self.documents.iter().any(|d| matches!(d.get(field), Some(Bson::Null)))
    }

    /// Leaves `field` out of the rows that set it to NULL.
    fn drop_nulls(&mut self, field: &str) {
        for document in self.documents.iter_mut() {
            if matches!(document.get(field), Some(Bson::Null)) {
                document.remove(field);
            }
        }
    }

    /// Numbers the rows that leave `field` unset: `first`, `first + 1`, ...
    fn number(&mut self, field: &str, first: i64) {
        let among: Vec<usize> = (0..self.documents.len()).filter(|&i| self.is_unset(i, field)).collect();
        self.number_unset(field, first, among.into_iter());
    }

    /// Gives `value` to the rows that leave the column `field` out (appended
    /// last, as a dict's new key is).
    fn set_default(&mut self, field: &str, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let value = values::to_bson(value)?;
        for document in self.documents.iter_mut().filter(|d| !d.contains_key(field)) {
            document.insert(field, value.clone());
        }
        Ok(())
    }

    /// An independent copy, for a way that may fail and leave these rows
    /// to another.
    fn copy(&self) -> InsertRows {
        InsertRows { documents: self.documents.clone() }
    }

    /// The rows as dicts (Decimal128 values as `bson.Decimal128`, what
    /// pymongo stores as given), for the paths that take dicts.
    fn dicts<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let out = PyList::empty(py);
        for document in &self.documents {
            out.append(values::document_to_dict(py, document, Decimals::Decimal128)?)?;
        }
        Ok(out)
    }

    /// RETURNING's rows: each row's values of `columns` as a read returns
    /// them (None for a column it left out).
    fn returning<'py>(&self, py: Python<'py>, columns: Vec<String>) -> PyResult<Bound<'py, PyList>> {
        let out = PyList::empty(py);
        for document in &self.documents {
            let cells = columns.iter().map(|c| as_read(py, document.get(c))).collect::<PyResult<Vec<_>>>()?;
            out.append(PyTuple::new(py, cells)?)?;
        }
        Ok(out)
    }

    /// The last row's `field` as written (the cursor's `lastrowid`), None
    /// without rows or without the field.
    fn last<'py>(&self, py: Python<'py>, field: &str) -> PyResult<Bound<'py, PyAny>> {
        match self.documents.last().and_then(|d| d.get(field)) {
            Some(value) => values::bson_to_python(py, value, Decimals::Decimal128),
            None => Ok(py.None().into_bound(py)),
        }
    }
}
