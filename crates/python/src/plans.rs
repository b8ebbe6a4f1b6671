//! Compiled plans, cached by SQL text.
//!
//! A plan has two faces: the `dict` the Python executor reads (`op`,
//! `collection`, `columns`...) and the BSON document the embedded store's
//! client binds and sends without going through Python. Both are made once
//! per SQL text. The client finds the document of a plan `dict` by the
//! dict's identity: the cache holds every plan dict it hands out (and so its
//! sub-plans), so an identity found in the cache is that very dict. A dict
//! the cache does not hold (an uncached compile, a plan built by hand) is
//! converted to BSON on the spot.
//!
//! An INSERT's `rows` (a slot per value: 6,000 of them for Django's
//! `bulk_create()` of 1,000 objects of 6 fields) are read by the binder from
//! the document only, so its `dict` leaves them out: as Python objects they
//! cost more to make than the compile itself, and, kept by the cache, every
//! full collection of Python's garbage collector walked them again. Such a
//! `dict` is only ever bound through the cache, which therefore keeps the
//! entry of a `dict` still held elsewhere when it is cleared.
use crate::convert;
use crate::values;
use bson::{Bson, Document};
use parking_lot::Mutex;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

/// Bounds the cache: Django emits a bounded set of statement shapes, but raw
/// SQL with inlined literals is unbounded, so the cache is cleared when full
/// rather than growing without limit.
const PLAN_CACHE_CAPACITY: usize = 4096;

#[derive(Default)]
struct Cache {
    by_sql: HashMap<String, Py<PyAny>>,
    /// Plan dicts (and their sub-plans) by address, with their documents.
    /// Each entry keeps its dict alive, so an address found here is that dict.
    by_object: HashMap<usize, (Py<PyAny>, Arc<Document>)>,
}

fn cache() -> &'static Mutex<Cache> {
    static CACHE: OnceLock<Mutex<Cache>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(Cache::default()))
}

/// The cached plan of `sql`, compiling it on a miss.
pub fn compile(py: Python<'_>, sql: &str) -> PyResult<Py<PyAny>> {
    if let Some(plan) = cache().lock().by_sql.get(sql) {
        return Ok(plan.clone_ref(py));
    }
    let plan = py.detach(|| djongo_sql::compile(sql)).map_err(crate::compile_error_to_py)?;
    let object = if plan.get_str("op").is_ok_and(|op| op == "insert") && plan.contains_key("rows") {
        let mut face = plan.clone();
        face.remove("rows");
        convert::document_to_py(py, &face)?
    } else {
        convert::document_to_py(py, &plan)?
    };
    let mut entries = vec![(object.clone_ref(py), Arc::new(plan.clone()))];
    if let (Some(Bson::Array(subplans)), Ok(listed)) = (plan.get("subqueries"), object.bind(py).cast::<PyDict>()?.as_any().get_item("subqueries")) {
        let listed = listed.cast_into::<PyList>()?;
        for (subplan, sub_object) in subplans.iter().zip(listed.iter()) {
            if let Bson::Document(subplan) = subplan {
                entries.push((sub_object.unbind(), Arc::new(subplan.clone())));
            }
        }
    }
    let mut cache = cache().lock();
    if cache.by_sql.len() >= PLAN_CACHE_CAPACITY {
        cache.by_sql.clear();
        // A plan dict a caller still holds may be about to be bound (an
        // INSERT's has no rows of its own): its entry stays until the next
        // clearing that finds it held by the cache alone.
        cache.by_object.retain(|_, (dict, _)| dict.get_refcnt(py) > 1);
    }
    cache.by_sql.insert(sql.to_owned(), object.clone_ref(py));
    for (dict, document) in entries {
        cache.by_object.insert(dict.as_ptr() as usize, (dict, document));
    }
    Ok(object)
}

/// The BSON document of a plan dict (see the module's documentation).
pub fn document_of(plan: &Bound<'_, PyAny>) -> PyResult<Arc<Document>> {
    if let Some((_, document)) = cache().lock().by_object.get(&(plan.as_ptr() as usize)) {
        return Ok(Arc::clone(document));
    }
    Ok(Arc::new(values::to_document(plan)?))
}

pub fn size() -> usize {
    cache().lock().by_sql.len()
}
