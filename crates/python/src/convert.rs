//! Plans are BSON documents in Rust and plain dicts in Python.
//!
//! A plan only holds what SQL can spell (numbers, strings, booleans, null,
//! documents and arrays, and dates: a CAST of a date literal, folded by the
//! compiler), plus MinKey, a JSON null where it is a whole value
//! (crates/compiler/src/lower/json.rs); any other BSON type here is a
//! compiler bug, reported as an exception rather than guessed at.
use bson::{Bson, Document};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use pyo3::IntoPyObjectExt;

pub fn document_to_py(py: Python<'_>, doc: &Document) -> PyResult<Py<PyAny>> {
    let dict = PyDict::new(py);
    for (key, value) in doc {
        dict.set_item(key, bson_to_py(py, value)?)?;
    }
    Ok(dict.into_any().unbind())
}

fn bson_to_py(py: Python<'_>, value: &Bson) -> PyResult<Py<PyAny>> {
    Ok(match value {
        Bson::Null => py.None(),
        Bson::Boolean(b) => b.into_py_any(py)?,
        Bson::Int32(i) => i.into_py_any(py)?,
        Bson::Int64(i) => i.into_py_any(py)?,
        Bson::Double(f) => f.into_py_any(py)?,
        Bson::String(s) => s.into_py_any(py)?,
        Bson::Document(doc) => document_to_py(py, doc)?,
        Bson::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(bson_to_py(py, item)?)?;
            }
            list.into_any().unbind()
        }
        Bson::MinKey => py.import("bson.min_key")?.getattr("MinKey")?.call0()?.unbind(),
        Bson::DateTime(_) => crate::values::bson_to_python(py, value, crate::values::Decimals::Decimal)?.unbind(),
        other => {
            return Err(PyValueError::new_err(format!(
                "the compiler produced a {:?} value, which plans never contain",
                other.element_type()
            )))
        }
    })
}
