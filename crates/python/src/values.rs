//! Python values ⇄ BSON, as the backend stores and reads them.
//!
//! `to_bson` is `djongo.binding.to_bson` followed by pymongo's encoder: an
//! aware datetime is stored in UTC, a date as midnight, a time as ISO text, a
//! duration as microseconds, a `Decimal` as Decimal128 (34 digits), a UUID as
//! hex text; ints take 32 bits when they fit, as pymongo writes them.
//! `to_python` is pymongo's decoder with the backend's codec options
//! (naive UTC datetimes, `bytes` for generic binary) where the rows Django
//! reads take Decimal128 as `Decimal`.
//!
//! The common types are converted here; anything rarer (a regex, a
//! timestamp, a DBRef, an `ObjectId` subclass...) goes through the `bson`
//! package itself, so what is stored and read is exactly what pymongo would
//! store and read, errors included.
use bson::raw::{RawArray, RawBsonRef, RawDocument};
use bson::spec::BinarySubtype;
use bson::{Binary, Bson, Document};
use pyo3::exceptions::{PyOverflowError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyFrozenSet, PyInt, PyList, PyMemoryView, PySet, PyString, PyTuple, PyType};
use pyo3::{intern, IntoPyObjectExt};

/// MongoDB stores documents nested at most 100 levels deep.
pub const MAX_NESTING: usize = 100;

/// How Decimal128 values come back: as `decimal.Decimal` (rows for Django)
/// or as `bson.Decimal128` (values to be stored again through pymongo).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decimals {
    Decimal,
    Decimal128,
}

macro_rules! cached_type {
    ($name:ident, $module:literal, $attr:literal) => {
        fn $name(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
            static CELL: PyOnceLock<Py<PyType>> = PyOnceLock::new();
            CELL.import(py, $module, $attr)
        }
    };
}

macro_rules! cached_object {
    ($name:ident, $module:literal, $attr:literal) => {
        fn $name(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
            static CELL: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
            CELL.get_or_try_init(py, || Ok::<_, PyErr>(py.import($module)?.getattr($attr)?.unbind())).map(|o| o.bind(py))
        }
    };
}

cached_type!(datetime_type, "datetime", "datetime");
cached_type!(date_type, "datetime", "date");
cached_type!(time_type, "datetime", "time");
cached_type!(timedelta_type, "datetime", "timedelta");
cached_type!(decimal_type, "decimal", "Decimal");
cached_type!(uuid_type, "uuid", "UUID");
cached_type!(decimal128_type, "bson.decimal128", "Decimal128");
cached_type!(object_id_type, "bson.objectid", "ObjectId");
cached_type!(binary_type, "bson.binary", "Binary");
cached_type!(int64_type, "bson.int64", "Int64");
cached_type!(json_value_type, "djongo.json_values", "JSONValue");
cached_object!(bson_encode, "bson", "encode");
cached_object!(bson_decode, "bson", "decode");
cached_object!(invalid_document, "bson.errors", "InvalidDocument");
cached_object!(decimal128_bid, "djongo.binding", "decimal128_bid");
cached_object!(django_data_error, "django.db.utils", "DataError");

// ---- Python → BSON ------------------------------------------------------------------------

/// The BSON form of a Python value (see the module's documentation).
pub fn to_bson(value: &Bound<'_, PyAny>) -> PyResult<Bson> {
    to_bson_at(value, 0)
}

/// A Python mapping as a BSON document.
pub fn to_document(value: &Bound<'_, PyAny>) -> PyResult<Document> {
    match to_bson_at(value, 0)? {
        Bson::Document(d) => Ok(d),
        _ => Err(PyValueError::new_err("expected a dict")),
    }
}

fn to_bson_at(value: &Bound<'_, PyAny>, depth: usize) -> PyResult<Bson> {
    let py = value.py();
    if value.is_none() {
        return Ok(Bson::Null);
    }
    // The exact built-in types first: they are nearly every value.
    if let Ok(s) = value.cast_exact::<PyString>() {
        return Ok(Bson::String(s.to_str()?.to_owned()));
    }
    if let Ok(b) = value.cast_exact::<PyBool>() {
        return Ok(Bson::Boolean(b.is_true()));
    }
    if value.is_exact_instance_of::<PyInt>() {
        return int_to_bson(value);
    }
    if let Ok(f) = value.cast_exact::<PyFloat>() {
        return Ok(Bson::Double(f.value()));
    }
    if let Ok(d) = value.cast_exact::<PyDict>() {
        return dict_to_bson(d, depth);
    }
    if value.is_exact_instance_of::<PyList>() || value.is_exact_instance_of::<PyTuple>() {
        return sequence_to_bson(value, depth);
    }
    let datetime = datetime_type(py)?;
    if value.is_instance(datetime)? {
        return Ok(Bson::DateTime(bson::DateTime::from_millis(datetime_millis(value)?)));
    }
    if value.is_instance(date_type(py)?)? {
        let (y, m, d) = (attr_i64(value, intern!(py, "year"))?, attr_i64(value, intern!(py, "month"))?, attr_i64(value, intern!(py, "day"))?);
        return Ok(Bson::DateTime(bson::DateTime::from_millis(days_from_civil(y, m, d) * 86_400_000)));
    }
    if value.is_instance(decimal_type(py)?)? {
        return decimal_to_bson(value);
    }
    if value.is_instance(decimal128_type(py)?)? {
        let bid = value.getattr(intern!(py, "bid"))?;
        return Ok(Bson::Decimal128(bson::Decimal128::from_bytes(fixed(bid.cast::<PyBytes>()?.as_bytes())?)));
    }
    if value.is_exact_instance(object_id_type(py)?) {
        let raw = value.getattr(intern!(py, "binary"))?;
        return Ok(Bson::ObjectId(bson::oid::ObjectId::from_bytes(fixed(raw.cast::<PyBytes>()?.as_bytes())?)));
    }
    if value.is_exact_instance(binary_type(py)?) {
        let subtype: u8 = value.getattr(intern!(py, "subtype"))?.extract()?;
        let bytes = value.cast::<PyBytes>()?.as_bytes().to_vec();
        return Ok(Bson::Binary(Binary { subtype: BinarySubtype::from(subtype), bytes }));
    }
    if let Ok(b) = value.cast_exact::<PyBytes>() {
        return Ok(generic_binary(b.as_bytes().to_vec()));
    }
    if value.is_instance_of::<PyByteArray>() || value.is_instance_of::<PyMemoryView>() {
        let bytes = py.get_type::<PyBytes>().call1((value,))?;
        return Ok(generic_binary(bytes.cast::<PyBytes>()?.as_bytes().to_vec()));
    }
    if value.is_instance(time_type(py)?)? {
        return Ok(Bson::String(value.call_method0(intern!(py, "isoformat"))?.extract()?));
    }
    if value.is_instance(timedelta_type(py)?)? {
        let days = attr_i64(value, intern!(py, "days"))?;
        let seconds = attr_i64(value, intern!(py, "seconds"))?;
        let micros = attr_i64(value, intern!(py, "microseconds"))?;
        return Ok(int64_bson((days * 86_400 + seconds) * 1_000_000 + micros));
    }
    if value.is_instance(uuid_type(py)?)? {
        return Ok(Bson::String(value.getattr(intern!(py, "hex"))?.extract()?));
    }
    if value.is_instance_of::<PyDict>() {
        return dict_to_bson(value.cast::<PyDict>()?, depth);
    }
    if value.is_instance_of::<PyList>() || value.is_instance_of::<PyTuple>() || value.is_instance_of::<PySet>() || value.is_instance_of::<PyFrozenSet>() {
        return sequence_to_bson(value, depth);
    }
    // Subclasses as pymongo encodes them (a str subclass such as Django's
    // SafeString is text, an IntegerChoices member an int), except bson's
    // own Int64, which pymongo always writes as 64 bits.
    if value.is_instance_of::<PyInt>() {
        if value.is_instance(int64_type(py)?)? {
            return Ok(Bson::Int64(value.extract()?));
        }
        return int_to_bson(value);
    }
    if value.is_instance_of::<PyString>() {
        return Ok(Bson::String(value.cast::<PyString>()?.to_str()?.to_owned()));
    }
    if value.is_instance_of::<PyFloat>() {
        return Ok(Bson::Double(value.extract()?));
    }
    if is_json_value(value)? {
        // A JSONField's value (djongo.json_values): JSON null is MinKey, not
        // SQL NULL; inside a document it is BSON null.
        let inner = value.getattr(intern!(py, "value"))?;
        if inner.is_none() {
            return Ok(Bson::MinKey);
        }
        return to_bson_at(&inner, depth);
    }
    through_bson_package(value)
}

/// Whether `value` is a `djongo.json_values.JSONValue`.
pub fn is_json_value(value: &Bound<'_, PyAny>) -> PyResult<bool> {
    value.is_instance(json_value_type(value.py())?)
}

fn int_to_bson(value: &Bound<'_, PyAny>) -> PyResult<Bson> {
    match value.extract::<i64>() {
        Ok(n) => Ok(int64_bson(n)),
        Err(_) => Err(PyOverflowError::new_err("MongoDB can only handle up to 8-byte ints")),
    }
}

/// An integer as pymongo writes it: 32 bits when it fits.
fn int64_bson(n: i64) -> Bson {
    match i32::try_from(n) {
        Ok(small) => Bson::Int32(small),
        Err(_) => Bson::Int64(n),
    }
}

fn generic_binary(bytes: Vec<u8>) -> Bson {
    Bson::Binary(Binary { subtype: BinarySubtype::Generic, bytes })
}

fn fixed<const N: usize>(bytes: &[u8]) -> PyResult<[u8; N]> {
    bytes.try_into().map_err(|_| PyValueError::new_err(format!("expected {N} bytes, got {}", bytes.len())))
}

fn attr_i64(value: &Bound<'_, PyAny>, name: &Bound<'_, PyString>) -> PyResult<i64> {
    value.getattr(name)?.extract()
}

fn nesting_error(py: Python<'_>) -> PyErr {
    match django_data_error(py) {
        Ok(cls) => PyErr::from_value(match cls.call1((format!("a value nested more than {MAX_NESTING} levels deep (MongoDB's limit)"),)) {
            Ok(e) => e,
            Err(e) => return e,
        }),
        Err(e) => e,
    }
}

fn dict_to_bson(dict: &Bound<'_, PyDict>, depth: usize) -> PyResult<Bson> {
    if depth >= MAX_NESTING {
        return Err(nesting_error(dict.py()));
    }
    let mut out = Document::new();
    for (key, item) in dict.iter() {
        let key = match key.cast_exact::<PyString>() {
            Ok(s) => s.to_str()?.to_owned(),
            Err(_) => key.str()?.to_str()?.to_owned(),
        };
        check_key(dict.py(), &key)?;
        out.insert(key, to_bson_at(&item, depth + 1)?);
    }
    Ok(Bson::Document(out))
}

/// BSON keys are C strings: a NUL inside one cannot be stored (pymongo's
/// `InvalidDocument`, a `DataError` for Django).
fn check_key(py: Python<'_>, key: &str) -> PyResult<()> {
    if key.contains('\0') {
        let message = format!("Key names must not contain the NULL byte: {key:?}");
        return Err(PyErr::from_value(invalid_document(py)?.call1((message,))?));
    }
    Ok(())
}

fn sequence_to_bson(value: &Bound<'_, PyAny>, depth: usize) -> PyResult<Bson> {
    if depth >= MAX_NESTING {
        return Err(nesting_error(value.py()));
    }
    let mut out = Vec::new();
    for item in value.try_iter()? {
        out.push(to_bson_at(&item?, depth + 1)?);
    }
    Ok(Bson::Array(out))
}

fn decimal_to_bson(value: &Bound<'_, PyAny>) -> PyResult<Bson> {
    let bid = decimal128_bid(value.py())?.call1((value,))?;
    Ok(Bson::Decimal128(bson::Decimal128::from_bytes(fixed(bid.cast::<PyBytes>()?.as_bytes())?)))
}

/// What pymongo stores for `value`, through the `bson` package: the rare
/// types, and the exact error for what cannot be stored.
fn through_bson_package(value: &Bound<'_, PyAny>) -> PyResult<Bson> {
    let py = value.py();
    let wrapper = PyDict::new(py);
    wrapper.set_item("v", value)?;
    let encoded = bson_encode(py)?.call1((wrapper,))?;
    let doc = Document::from_reader(encoded.cast::<PyBytes>()?.as_bytes()).map_err(|e| PyValueError::new_err(format!("bson.encode produced invalid BSON: {e}")))?;
    Ok(doc.get("v").cloned().unwrap_or(Bson::Null))
}

/// Milliseconds since the epoch of a `datetime` (an aware one in UTC, a
/// naive one as UTC), rounded down as pymongo does.
fn datetime_millis(value: &Bound<'_, PyAny>) -> PyResult<i64> {
    let py = value.py();
    let field = |name: &Bound<'_, PyString>| attr_i64(value, name);
    let days = days_from_civil(field(intern!(py, "year"))?, field(intern!(py, "month"))?, field(intern!(py, "day"))?);
    let seconds = field(intern!(py, "hour"))? * 3600 + field(intern!(py, "minute"))? * 60 + field(intern!(py, "second"))?;
    let mut micros = (days * 86_400 + seconds) * 1_000_000 + field(intern!(py, "microsecond"))?;
    if !value.getattr(intern!(py, "tzinfo"))?.is_none() {
        let offset = value.call_method0(intern!(py, "utcoffset"))?;
        if !offset.is_none() {
            let d = attr_i64(&offset, intern!(py, "days"))?;
            let s = attr_i64(&offset, intern!(py, "seconds"))?;
            let us = attr_i64(&offset, intern!(py, "microseconds"))?;
            micros -= (d * 86_400 + s) * 1_000_000 + us;
        }
    }
    Ok(micros.div_euclid(1000))
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day counted from 1970-01-01 (the inverse of `days_from_civil`).
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

// ---- BSON → Python ------------------------------------------------------------------------

/// A value as pymongo decodes it (see `Decimals`).
pub fn to_python<'py>(py: Python<'py>, value: RawBsonRef<'_>, decimals: Decimals) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        RawBsonRef::Null | RawBsonRef::Undefined => py.None().into_bound(py),
        RawBsonRef::String(s) => PyString::new(py, s).into_any(),
        RawBsonRef::Int32(i) => i.into_bound_py_any(py)?,
        RawBsonRef::Int64(i) => i.into_bound_py_any(py)?,
        RawBsonRef::Double(f) => f.into_bound_py_any(py)?,
        RawBsonRef::Boolean(b) => b.into_bound_py_any(py)?,
        RawBsonRef::DateTime(dt) => datetime_to_python(py, dt.timestamp_millis()).or_else(|_| through_bson_decode(py, value, decimals))?,
        RawBsonRef::Decimal128(d) => match decimals {
            Decimals::Decimal => decimal_to_python(py, d.bytes())?,
            Decimals::Decimal128 => decimal128_type(py)?.call_method1(intern!(py, "from_bid"), (PyBytes::new(py, &d.bytes()),))?,
        },
        RawBsonRef::Document(doc) => {
            if doc.get("$ref").ok().flatten().is_some() {
                // A DBRef, as pymongo reads it.
                return through_bson_decode(py, value, decimals);
            }
            document_to_python(py, doc, decimals)?.into_any()
        }
        RawBsonRef::Array(items) => array_to_python(py, items, decimals)?.into_any(),
        RawBsonRef::Binary(b) if b.subtype == BinarySubtype::Generic => PyBytes::new(py, b.bytes).into_any(),
        RawBsonRef::ObjectId(oid) => object_id_type(py)?.call1((PyBytes::new(py, &oid.bytes()),))?,
        _ => through_bson_decode(py, value, decimals)?,
    })
}

pub fn document_to_python<'py>(py: Python<'py>, doc: &RawDocument, decimals: Decimals) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    for item in doc {
        let (key, value) = item.map_err(bson_error)?;
        dict.set_item(key.as_str(), to_python(py, value, decimals)?)?;
    }
    Ok(dict)
}

fn array_to_python<'py>(py: Python<'py>, items: &RawArray, decimals: Decimals) -> PyResult<Bound<'py, PyList>> {
    let list = PyList::empty(py);
    for item in items {
        list.append(to_python(py, item.map_err(bson_error)?, decimals)?)?;
    }
    Ok(list)
}

pub fn bson_error(e: bson::error::Error) -> PyErr {
    PyValueError::new_err(format!("the store sent invalid BSON: {e}"))
}

/// A naive UTC datetime, or an error when the year is outside 1..=9999
/// (then pymongo's own decoder says why).
///
/// Built from the datetime's pickled state (ten bytes: year, month, day,
/// hour, minute, second, microsecond, big-endian): `datetime(state)` copies
/// them into the object, where `datetime(year, month, ...)` first parses
/// seven ints through its keyword-argument parser (about four times the
/// instructions). The abi3 build has no datetime C API; this form is one
/// every CPython keeps reading, as old pickles must load. It checks nothing,
/// so every field is made in range here.
fn datetime_to_python(py: Python<'_>, millis: i64) -> PyResult<Bound<'_, PyAny>> {
    let days = millis.div_euclid(86_400_000);
    let rest = millis.rem_euclid(86_400_000);
    let (year, month, day) = civil_from_days(days);
    if !(1..=9999).contains(&year) {
        return Err(PyValueError::new_err("year out of range"));
    }
    let micro = rest % 1000 * 1000;
    let state = [
        (year >> 8) as u8,
        year as u8,
        month as u8,
        day as u8,
        (rest / 3_600_000) as u8,
        (rest / 60_000 % 60) as u8,
        (rest / 1000 % 60) as u8,
        (micro >> 16) as u8,
        (micro >> 8) as u8,
        micro as u8,
    ];
    datetime_type(py)?.call1((PyBytes::new(py, &state),))
}

/// A Decimal128 (its 16 bytes, little-endian BID) as the `decimal.Decimal`
/// that pymongo's `Decimal128.to_decimal` gives: the same sign, coefficient
/// and exponent (a `Decimal` keeps them, so `1.10` stays `1.10`), NaNs and
/// infinities included. Made from text, `Decimal("-1234E-2")`, which the
/// decimal module parses in C without rounding, instead of pymongo's
/// Python-level unpacking.
fn decimal_to_python(py: Python<'_>, bid: [u8; 16]) -> PyResult<Bound<'_, PyAny>> {
    const SIGN: u64 = 0x8000_0000_0000_0000;
    const SNAN: u64 = 0x7E00_0000_0000_0000;
    const NAN: u64 = 0x7C00_0000_0000_0000;
    const INF: u64 = 0x7800_0000_0000_0000;
    // The two top combination bits set: the exponent sits two bits lower
    // and the coefficient would be at least 2^113, more than 34 digits.
    const LARGE_FORM: u64 = 0x6000_0000_0000_0000;
    const EXPONENT_BIAS: i64 = 6176;
    const MAX_COEFFICIENT: u128 = 10u128.pow(34) - 1;
    let bits = u128::from_le_bytes(bid);
    let (high, low) = ((bits >> 64) as u64, bits as u64);
    let sign = if high & SIGN != 0 { "-" } else { "" };
    let text = if high & SNAN == SNAN {
        format!("{sign}sNaN")
    } else if high & NAN == NAN {
        format!("{sign}NaN")
    } else if high & INF == INF {
        format!("{sign}Infinity")
    } else if high & LARGE_FORM == LARGE_FORM {
        let exponent = ((high & 0x1FFF_E000_0000_0000) >> 47) as i64 - EXPONENT_BIAS;
        format!("{sign}0E{exponent}")
    } else {
        let exponent = ((high & 0x7FFF_8000_0000_0000) >> 49) as i64 - EXPONENT_BIAS;
        let coefficient = (u128::from(high & 0x0001_FFFF_FFFF_FFFF) << 64) | u128::from(low);
        // pymongo reads a coefficient of more than 34 digits as zero.
        let coefficient = if coefficient > MAX_COEFFICIENT { 0 } else { coefficient };
        format!("{sign}{coefficient}E{exponent}")
    };
    decimal_type(py)?.call1((text,))
}

/// One value decoded by the `bson` package with the backend's codec options.
fn through_bson_decode<'py>(py: Python<'py>, value: RawBsonRef<'_>, decimals: Decimals) -> PyResult<Bound<'py, PyAny>> {
    let mut wrapper = bson::RawDocumentBuf::new();
    wrapper.append(bson::raw::cstr!("v"), value);
    let bytes = PyBytes::new(py, wrapper.as_bytes());
    let decoded = match decimals {
        Decimals::Decimal128 => bson_decode(py)?.call1((bytes,))?,
        Decimals::Decimal => {
            static OPTIONS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
            let options = OPTIONS.get_or_try_init(py, || Ok::<_, PyErr>(py.import("djongo.connection")?.getattr("SQL_CODEC_OPTIONS")?.unbind()))?;
            bson_decode(py)?.call1((bytes, options.bind(py)))?
        }
    };
    decoded.get_item("v")
}


/// An owned BSON value as pymongo decodes it (see `to_python`).
pub fn bson_to_python<'py>(py: Python<'py>, value: &Bson, decimals: Decimals) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        Bson::Null | Bson::Undefined => py.None().into_bound(py),
        Bson::String(s) => PyString::new(py, s).into_any(),
        Bson::Int32(i) => i.into_bound_py_any(py)?,
        Bson::Int64(i) => i.into_bound_py_any(py)?,
        Bson::Double(f) => f.into_bound_py_any(py)?,
        Bson::Boolean(b) => b.into_bound_py_any(py)?,
        Bson::Document(doc) if !doc.contains_key("$ref") => document_to_dict(py, doc, decimals)?.into_any(),
        Bson::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(bson_to_python(py, item, decimals)?)?;
            }
            list.into_any()
        }
        Bson::Binary(b) if b.subtype == BinarySubtype::Generic => PyBytes::new(py, &b.bytes).into_any(),
        Bson::ObjectId(oid) => object_id_type(py)?.call1((PyBytes::new(py, &oid.bytes()),))?,
        Bson::Decimal128(d) if decimals == Decimals::Decimal => decimal_to_python(py, d.bytes())?,
        Bson::DateTime(dt) => match datetime_to_python(py, dt.timestamp_millis()) {
            Ok(v) => v,
            Err(_) => owned_through_bson_decode(py, value, decimals)?,
        },
        _ => owned_through_bson_decode(py, value, decimals)?,
    })
}

/// A document as a dict, its values as `bson_to_python` makes them.
pub fn document_to_dict<'py>(py: Python<'py>, doc: &Document, decimals: Decimals) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    for (key, item) in doc {
        dict.set_item(key, bson_to_python(py, item, decimals)?)?;
    }
    Ok(dict)
}

fn owned_through_bson_decode<'py>(py: Python<'py>, value: &Bson, decimals: Decimals) -> PyResult<Bound<'py, PyAny>> {
    let wrapper = bson::doc! {"v": value.clone()};
    let raw = bson::RawDocumentBuf::try_from(&wrapper).map_err(|e| PyValueError::new_err(format!("cannot encode a value: {e}")))?;
    match raw.get("v").map_err(bson_error)? {
        Some(v) => through_bson_decode(py, v, decimals),
        None => Ok(py.None().into_bound(py)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_round_trip() {
        for days in [-719_468 - 1, -1, 0, 1, 59, 60, 11_016, 2_932_896, -25_567] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{days} -> {y}-{m}-{d}");
        }
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }
}
