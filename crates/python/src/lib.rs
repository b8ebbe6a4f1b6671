//! `djongo._core`: the Python face of the Rust core.
//!
//! Two things cross this boundary: compiled plans (SQL text in, a plan `dict`
//! out, cached by SQL text) and the embedded engine's lifecycle. Every Rust
//! error becomes a Python exception; nothing here may panic into Python.

mod convert;
mod engine;

use parking_lot::Mutex;
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use std::collections::HashMap;
use std::sync::OnceLock;

// The embedded engine runs in this library, and allocates per document field
// (see the workspace Cargo.toml); Python's own objects keep Python's allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

create_exception!(_core, CompileError, PyException, "The SQL could not be compiled.");
create_exception!(_core, ParseError, CompileError, "The SQL does not parse.");
create_exception!(
    _core,
    UnsupportedError,
    CompileError,
    "The SQL uses a construct the compiler does not implement."
);
create_exception!(
    _core,
    InvalidError,
    CompileError,
    "The SQL refers to something that cannot exist (ORDER BY 5 with two columns)."
);
create_exception!(
    _core,
    InvalidValueError,
    CompileError,
    "A constant in the SQL is out of range (LIMIT -1)."
);
create_exception!(_core, EngineError, PyException, "The embedded engine failed to start or stop.");

/// Bounds the plan cache: Django emits a bounded set of statement shapes, but
/// raw SQL with inlined literals is unbounded, so the cache is cleared when
/// full rather than growing without limit.
const PLAN_CACHE_CAPACITY: usize = 4096;

fn plan_cache() -> &'static Mutex<HashMap<String, Py<PyAny>>> {
    static CACHE: OnceLock<Mutex<HashMap<String, Py<PyAny>>>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Compiles one SQL statement into a plan (see docs/plan-format.md).
///
/// The returned dict is shared between callers with the same SQL text and
/// must be treated as immutable.
#[pyfunction]
fn compile(py: Python<'_>, sql: &str) -> PyResult<Py<PyAny>> {
    if let Some(plan) = plan_cache().lock().get(sql) {
        return Ok(plan.clone_ref(py));
    }
    let plan = py.detach(|| djongo_sql::compile(sql)).map_err(compile_error_to_py)?;
    let object = convert::document_to_py(py, &plan)?;
    let mut cache = plan_cache().lock();
    if cache.len() >= PLAN_CACHE_CAPACITY {
        cache.clear();
    }
    cache.insert(sql.to_owned(), object.clone_ref(py));
    Ok(object)
}

/// Compiles without the cache: for benchmarks and tests of the compiler itself.
#[pyfunction]
fn compile_uncached(py: Python<'_>, sql: &str) -> PyResult<Py<PyAny>> {
    let plan = py.detach(|| djongo_sql::compile(sql)).map_err(compile_error_to_py)?;
    convert::document_to_py(py, &plan)
}

#[pyfunction]
fn plan_cache_size() -> usize {
    plan_cache().lock().len()
}

fn compile_error_to_py(error: djongo_sql::CompileError) -> PyErr {
    match error {
        djongo_sql::CompileError::Parse { .. } => ParseError::new_err(error.to_string()),
        djongo_sql::CompileError::Unsupported { .. } => UnsupportedError::new_err(error.to_string()),
        djongo_sql::CompileError::Invalid { .. } => InvalidError::new_err(error.to_string()),
        djongo_sql::CompileError::InvalidValue { .. } => InvalidValueError::new_err(error.to_string()),
    }
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_function(wrap_pyfunction!(compile, m)?)?;
    m.add_function(wrap_pyfunction!(compile_uncached, m)?)?;
    m.add_function(wrap_pyfunction!(plan_cache_size, m)?)?;
    m.add_function(wrap_pyfunction!(engine::start_engine, m)?)?;
    m.add_function(wrap_pyfunction!(engine::stop_engine, m)?)?;
    m.add_function(wrap_pyfunction!(engine::store_paths, m)?)?;
    m.add_function(wrap_pyfunction!(engine::server_main, m)?)?;
    m.add("ENGINE_VERSION", djongo_server::VERSION)?;
    m.add("CompileError", py.get_type::<CompileError>())?;
    m.add("ParseError", py.get_type::<ParseError>())?;
    m.add("UnsupportedError", py.get_type::<UnsupportedError>())?;
    m.add("InvalidError", py.get_type::<InvalidError>())?;
    m.add("InvalidValueError", py.get_type::<InvalidValueError>())?;
    m.add("EngineError", py.get_type::<EngineError>())?;
    Ok(())
}
