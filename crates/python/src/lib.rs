//! `djongo._core`: the Python face of the Rust core.
//!
//! What crosses this boundary: compiled plans (SQL text in, a plan `dict`
//! out, cached by SQL text: `plans`), a statement's values bound into its
//! plan (`binder`), the embedded store's own client, which runs plans and
//! returns rows (`store`), and the embedded engine's lifecycle (`engine`).
//! Every Rust error becomes a Python exception; nothing here may panic into
//! Python.

mod binder;
mod convert;
mod engine;
mod in_process;
mod insert_rows;
mod plans;
mod store;
mod values;

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;

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

/// Compiles one SQL statement into a plan (see docs/plan-format.md).
///
/// The returned dict is shared between callers with the same SQL text and
/// must be treated as immutable.
#[pyfunction]
fn compile(py: Python<'_>, sql: &str) -> PyResult<Py<PyAny>> {
    plans::compile(py, sql)
}

/// Compiles without the cache: for benchmarks and tests of the compiler itself.
#[pyfunction]
fn compile_uncached(py: Python<'_>, sql: &str) -> PyResult<Py<PyAny>> {
    let plan = py.detach(|| djongo_sql::compile(sql)).map_err(compile_error_to_py)?;
    convert::document_to_py(py, &plan)
}

#[pyfunction]
fn plan_cache_size() -> usize {
    plans::size()
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
    m.add_function(wrap_pyfunction!(in_process::serve_in_process, m)?)?;
    m.add_function(wrap_pyfunction!(in_process::stop_in_process, m)?)?;
    m.add_function(wrap_pyfunction!(in_process::after_fork_in_child, m)?)?;
    m.add_class::<binder::Binder>()?;
    m.add_class::<store::StoreClient>()?;
    m.add_class::<insert_rows::InsertRows>()?;
    m.add("ENGINE_VERSION", djongo_server::VERSION)?;
    m.add("CompileError", py.get_type::<CompileError>())?;
    m.add("ParseError", py.get_type::<ParseError>())?;
    m.add("UnsupportedError", py.get_type::<UnsupportedError>())?;
    m.add("InvalidError", py.get_type::<InvalidError>())?;
    m.add("InvalidValueError", py.get_type::<InvalidValueError>())?;
    m.add("EngineError", py.get_type::<EngineError>())?;
    m.add("StoreError", py.get_type::<store::StoreError>())?;
    m.add("StoreConnectionError", py.get_type::<store::StoreConnectionError>())?;
    m.add("StoreCommandError", py.get_type::<store::StoreCommandError>())?;
    m.add("StoreTooLargeError", py.get_type::<store::StoreTooLargeError>())?;
    Ok(())
}
