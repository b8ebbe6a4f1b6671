//! `djongo._core.Binder`: one statement's values, bound into its plan's slots.
//!
//! The values are converted to BSON once (`values::to_bson`); binding itself
//! is `djongo_sql::bind`, the same for both ways the backend reaches a
//! server: the embedded store's client sends the bound BSON as it is
//! (`store`), the pymongo path takes it back as Python objects (`bind`).
use crate::insert_rows::InsertRows;
use crate::plans;
use crate::values::{self, Decimals};
use bson::{Bson, Document};
use djongo_sql::bind::{self, BindError, Values};
use parking_lot::Mutex;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyList, PyTuple};

#[pyclass(frozen, module = "djongo._core")]
pub struct Binder {
    params: Vec<Bson>,
    /// The parameters as given, for LIKE patterns made of non-text values
    /// and for error messages.
    originals: Py<PyTuple>,
    /// The executor's list of sub-plan results (rows of Python values),
    /// which grows as sub-plans run; `converted` holds its BSON form.
    results: Option<Py<PyList>>,
    converted: Mutex<Vec<Vec<Vec<Bson>>>>,
}

struct StatementValues<'a> {
    params: &'a [Bson],
    originals: &'a Bound<'a, PyTuple>,
    subqueries: &'a [Vec<Vec<Bson>>],
}

impl Values for StatementValues<'_> {
    fn param(&self, index: usize) -> Option<&Bson> {
        self.params.get(index)
    }
    fn param_count(&self) -> usize {
        self.params.len()
    }
    fn subquery(&self, index: usize) -> Option<&[Vec<Bson>]> {
        self.subqueries.get(index).map(Vec::as_slice)
    }
    fn text(&self, index: usize) -> String {
        self.originals.get_item(index).and_then(|v| v.str().map(|s| s.to_string())).unwrap_or_default()
    }
    fn shown(&self, index: usize) -> String {
        self.originals.get_item(index).and_then(|v| v.repr().map(|s| s.to_string())).unwrap_or_default()
    }
    fn is_json_text(&self, index: usize) -> bool {
        // A JSONValue (an adapted JSONField value) is converted already.
        matches!(self.params.get(index), Some(Bson::String(_)))
            && self.originals.get_item(index).is_ok_and(|v| !values::is_json_value(&v).unwrap_or(false))
    }
}

/// A binding error as the DB-API exception Django maps (`djongo.database`).
pub fn bind_error(py: Python<'_>, error: BindError) -> PyErr {
    static DATABASE: PyOnceLock<Py<PyModule>> = PyOnceLock::new();
    let (class, message) = match error {
        BindError::Programming(m) => ("ProgrammingError", m),
        BindError::Data(m) => ("DataError", m),
        BindError::NotSupported(m) => ("NotSupportedError", m),
    };
    let raised = DATABASE
        .get_or_try_init(py, || Ok::<_, PyErr>(py.import("djongo.database")?.unbind()))
        .and_then(|module| module.bind(py).getattr(class))
        .and_then(|cls| cls.call1((message,)));
    match raised {
        Ok(exception) => PyErr::from_value(exception),
        Err(e) => e,
    }
}

impl Binder {
    /// Runs `f` with this statement's values, the sub-plan results that
    /// arrived since the last call converted first.
    pub fn with_values<R>(&self, py: Python<'_>, f: impl FnOnce(&dyn Values) -> R) -> PyResult<R> {
        let mut converted = self.converted.lock();
        if let Some(results) = &self.results {
            let results = results.bind(py);
            for result in results.iter().skip(converted.len()) {
                let mut rows = Vec::new();
                for row in result.try_iter()? {
                    let row = row?;
                    let mut cells = Vec::new();
                    for cell in row.try_iter()? {
                        cells.push(values::to_bson(&cell?)?);
                    }
                    rows.push(cells);
                }
                converted.push(rows);
            }
        }
        let originals = self.originals.bind(py);
        let values = StatementValues { params: &self.params, originals, subqueries: &converted };
        Ok(f(&values))
    }

    /// `node` of a plan, bound (`filter`: a NULL that makes it UNKNOWN
    /// selects nothing).
    pub fn bind_bson(&self, py: Python<'_>, node: &Bson, filter: bool) -> PyResult<Bson> {
        self.with_values(py, |values| if filter { bind::bind_filter(node, values) } else { bind::bind(node, values) })?
            .map_err(|e| bind_error(py, e))
    }

    pub fn param_count(&self) -> usize {
        self.params.len()
    }

    /// The parameter of a slot `{$param: i}` without flags (what an
    /// INSERT's cell nearly always is), which binds to the value as it is.
    fn bare_param(&self, value: &Bson) -> Option<&Bson> {
        let Bson::Document(d) = value else { return None };
        if d.len() != 1 {
            return None;
        }
        let index = match d.get("$param")? {
            Bson::Int32(i) => usize::try_from(*i).ok()?,
            Bson::Int64(i) => usize::try_from(*i).ok()?,
            _ => return None,
        };
        self.params.get(index)
    }

    /// The parameter a plan value binds to as it is: a slot `{$param: i}`
    /// without flags, or one inside `{$literal: ...}` (what `SET col = %s`
    /// compiles to). None for anything else.
    fn plain_param(&self, value: &Bson) -> Option<&Bson> {
        let Bson::Document(d) = value else { return None };
        if d.len() != 1 {
            return None;
        }
        match d.iter().next()? {
            (key, inner) if key == "$literal" => self.plain_param(inner),
            (key, Bson::Int32(i)) if key == "$param" => self.params.get(usize::try_from(*i).ok()?),
            (key, Bson::Int64(i)) if key == "$param" => self.params.get(usize::try_from(*i).ok()?),
            _ => None,
        }
    }
}

#[pymethods]
impl Binder {
    #[new]
    #[pyo3(signature = (params, subquery_results = None))]
    fn new(params: &Bound<'_, PyAny>, subquery_results: Option<Bound<'_, PyList>>) -> PyResult<Binder> {
        let originals = PyTuple::new(params.py(), params.try_iter()?.collect::<PyResult<Vec<_>>>()?)?;
        let params = originals.iter().map(|p| values::to_bson(&p)).collect::<PyResult<Vec<_>>>()?;
        Ok(Binder { params, originals: originals.unbind(), results: subquery_results.map(Bound::unbind), converted: Mutex::new(Vec::new()) })
    }

    /// The statement's parameters as they are bound (BSON values, as
    /// Python objects): what EXPLAIN shows.
    #[getter]
    fn params<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let out = PyList::empty(py);
        for param in &self.params {
            out.append(values::bson_to_python(py, param, Decimals::Decimal128)?)?;
        }
        Ok(out)
    }

    /// A plan fragment with its slots replaced, as Python values that pymongo
    /// stores as the embedded store's client would.
    fn bind<'py>(&self, py: Python<'py>, node: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let bound = self.bind_bson(py, &values::to_bson(node)?, false)?;
        values::bson_to_python(py, &bound, Decimals::Decimal128)
    }

    /// A query-language filter; one made UNKNOWN by a NULL selects nothing.
    fn bind_filter<'py>(&self, py: Python<'py>, node: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let bound = self.bind_bson(py, &values::to_bson(node)?, true)?;
        values::bson_to_python(py, &bound, Decimals::Decimal128)
    }

    /// The fields an `update` plan sets to NULL (for the NOT NULL check).
    /// A field set to a parameter is looked up, not bound: binding the
    /// whole update here would copy every value the statement sets (a
    /// 250-column `save()`) once more before the update itself binds them.
    fn set_to_null(&self, py: Python<'_>, plan: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
        let plan = plans::document_of(plan)?;
        let Some(Bson::Array(stages)) = plan.get("update") else { return Ok(Vec::new()) };
        let mut names = Vec::new();
        for stage in stages {
            let Some(Ok(set)) = stage.as_document().map(|s| s.get_document("$set")) else { continue };
            for (name, value) in set {
                let null = match self.plain_param(value) {
                    Some(param) => matches!(param, Bson::Null),
                    None => match self.bind_bson(py, value, false)? {
                        Bson::Null => true,
                        Bson::Document(d) => d.len() == 1 && matches!(d.get("$literal"), Some(Bson::Null)),
                        _ => false,
                    },
                };
                if null {
                    names.push(name.clone());
                }
            }
        }
        Ok(names)
    }

    /// The rows of an `insert` plan, bound: one document per row, keyed by
    /// its `columns` (`InsertRows`).
    fn insert_rows(&self, py: Python<'_>, plan: &Bound<'_, PyAny>) -> PyResult<InsertRows> {
        let plan = plans::document_of(plan)?;
        Ok(InsertRows { documents: self.insert_documents(py, &plan)? })
    }
}

impl Binder {
    /// The documents of an `insert` plan, bound.
    pub fn insert_documents(&self, py: Python<'_>, plan: &Document) -> PyResult<Vec<Document>> {
        let columns: Vec<&str> = match plan.get("columns") {
            Some(Bson::Array(items)) => items.iter().filter_map(Bson::as_str).collect(),
            _ => Vec::new(),
        };
        // A plan's dict leaves its rows out (`plans`): one that did not come
        // through the cache cannot be bound, which must not insert nothing.
        let Some(Bson::Array(rows)) = plan.get("rows") else {
            return Err(bind_error(py, BindError::Programming("an insert plan without its rows (not one the plan cache handed out)".into())));
        };
        let cells_of = |values: &dyn Values| -> Result<Vec<Document>, BindError> {
            let mut documents = Vec::with_capacity(rows.len());
            for row in rows {
                let Bson::Array(cells) = row else {
                    return Err(BindError::Programming("an insert row is not a list".into()));
                };
                if cells.len() != columns.len() {
                    return Err(BindError::Programming(format!("an insert row has {} values for {} columns", cells.len(), columns.len())));
                }
                let mut document = Document::new();
                for (column, cell) in columns.iter().zip(cells) {
                    // Nearly every cell is a parameter, taken as it is;
                    // anything else (a literal, an expression) is bound.
                    let value = match self.bare_param(cell) {
                        Some(param) => param.clone(),
                        None => bind::bind(cell, values)?,
                    };
                    document.insert(*column, value);
                }
                documents.push(document);
            }
            Ok(documents)
        };
        let documents = self.with_values(py, cells_of)?.map_err(|e| bind_error(py, e))?;
        Ok(documents)
    }
}
