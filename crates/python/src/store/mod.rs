//! `djongo._core.StoreClient`: the embedded store's own client.
//!
//! Every process reaches the embedded store through its server's owner-only
//! Unix socket (docs/multiprocess.md). pymongo can talk to it, but costs
//! more than the store itself on a point read: a statement's BSON is built
//! from Python dicts, sessions and monitoring run in Python, and the reply is
//! decoded into dicts that the executor then reshapes into rows. This client
//! takes a compiled plan and its `Binder`, binds the plan in Rust, sends one
//! command (the GIL released while it waits), and builds the rows (tuples in
//! SELECT order) straight from the reply's BSON.
//!
//! It speaks to djongo-rs's server only: writes outside a transaction carry
//! a session and txnNumber, which that server records for every write
//! (multi-document updates and deletes included), so any write whose reply
//! is lost to a dying server is sent once more, to the next server, and
//! answered from the record. Reads are retried once too. Statements inside a
//! transaction are not: the transaction died with the server.
mod pool;
mod rows;
mod wire;

use crate::binder::Binder;
use crate::insert_rows::InsertRows;
use crate::plans;
use crate::values::{self, Decimals};
use bson::spec::BinarySubtype;
use bson::{doc, Binary, Bson, Document, RawDocument, RawDocumentBuf};
use djongo_server::in_process::InProcessServer;
use pool::Pool;
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple};
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

create_exception!(_core, StoreError, PyException, "The embedded store's client failed.");
create_exception!(_core, StoreConnectionError, StoreError, "The store's server could not be reached, or its connection broke.");
create_exception!(_core, StoreCommandError, StoreError, "The store's server answered with an error; args[0] is its reply.");
create_exception!(_core, StoreTooLargeError, StoreError, "A command is larger than a message may be.");

/// The documents an insert sends: the executor's bound rows, or dicts.
enum Rows<'py> {
    Bound(PyRefMut<'py, InsertRows>),
    Dicts(Vec<Bound<'py, PyAny>>),
}

/// Most documents in one insert command, as MongoDB's `maxWriteBatchSize`.
const MAX_WRITE_BATCH: usize = 100_000;
/// Room left in a message for the insert command around its documents.
const MESSAGE_HEADROOM: usize = 16 * 1024;

/// The statement's transaction: its session id, txnNumber, and whether this
/// statement starts it.
pub struct Txn {
    lsid: Vec<u8>,
    number: i64,
    starting: bool,
}

impl<'py> FromPyObject<'py> for Txn {
    fn extract_bound(ob: &Bound<'py, PyAny>) -> PyResult<Self> {
        let (lsid, number, starting): (Bound<'py, PyBytes>, i64, bool) = ob.extract()?;
        Ok(Txn { lsid: lsid.as_bytes().to_vec(), number, starting })
    }
}

/// Whether a statement may be sent again after its connection failed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A read: sending it again changes nothing.
    Read,
    /// A write outside a transaction: numbered in a session, so the server
    /// answers a second sending from its record.
    Write,
    /// Inside a transaction, or a getMore: not sent again.
    Once,
}

/// Where a statement runs: in the statement's transaction, or on its own
/// (then `Kind` says whether it may be sent again).
#[derive(Clone, Copy)]
enum Scope<'a> {
    Transaction(&'a Txn),
    Alone(Kind),
}

impl<'a> Scope<'a> {
    fn of(txn: Option<&'a Txn>, kind: Kind) -> Self {
        txn.map_or(Scope::Alone(kind), Scope::Transaction)
    }
}

enum Failure {
    Connection(io::Error),
    TooLarge(String),
}

fn uuid(bytes: &[u8]) -> Bson {
    Bson::Binary(Binary { subtype: BinarySubtype::Uuid, bytes: bytes.to_vec() })
}

#[pyclass(frozen, module = "djongo._core")]
pub struct StoreClient {
    /// The store's server when this process runs it (`STORE_SERVER:
    /// "in-process"`): commands go to it in the calling thread, not through
    /// the socket, for as long as it serves here.
    local: Option<Arc<InProcessServer>>,
    pool: Pool,
    /// How long a statement waits for a server to accept its connection
    /// (one starting, or replacing one that died).
    wait: Duration,
}

impl StoreClient {
    /// Sends one command and returns its reply, raising the reply of a
    /// failed command as `StoreCommandError`.
    ///
    /// `concerns` (`readConcern`, `writeConcern`, `$readPreference`, from
    /// djongo.concerns) go into a command that runs on its own; inside a
    /// transaction the transaction's own apply, as drivers do, so they are
    /// left out.
    #[allow(clippy::too_many_arguments)]
    fn run(&self, py: Python<'_>, db: &str, mut body: Document, documents: Option<&[Vec<u8>]>, scope: Scope<'_>, log: Option<&Bound<'_, PyAny>>, concerns: Option<&Document>) -> PyResult<RawDocumentBuf> {
        if let (Some(concerns), Scope::Alone(_)) = (concerns, scope) {
            body.extend(concerns.clone());
        }
        if let Some(log) = log {
            log_command(py, log, db, &body, documents)?;
        }
        body.insert("$db", db);
        let kind = match scope {
            Scope::Transaction(txn) => {
                body.insert("lsid", doc! {"id": uuid(&txn.lsid)});
                body.insert("txnNumber", txn.number);
                if txn.starting {
                    body.insert("startTransaction", true);
                }
                body.insert("autocommit", false);
                Kind::Once
            }
            Scope::Alone(kind) => kind,
        };
        let reply = py.detach(|| self.exchange(body, documents, kind)).map_err(|failure| match failure {
            Failure::Connection(e) => StoreConnectionError::new_err(format!("{}: {e}", self.pool.path().display())),
            Failure::TooLarge(message) => StoreTooLargeError::new_err(message),
        })?;
        if !rows::is_ok(&reply) {
            return Err(StoreCommandError::new_err(reply_to_python(py, &reply)?.unbind()));
        }
        Ok(reply)
    }

    fn exchange(&self, mut body: Document, documents: Option<&[Vec<u8>]>, kind: Kind) -> Result<RawDocumentBuf, Failure> {
        // (A forked child of the serving process goes through the socket:
        // the server says so, see `InProcessServer::run`.)
        if let Some(local) = self.local.as_ref() {
            // No connection can be lost on the way, so a write needs no
            // session to be sent again with.
            match run_here(local, body, documents) {
                Ok(reply) => return reply,
                Err(given_back) => body = given_back,
            }
        }
        let mut connection = self.pool.checkout();
        if kind == Kind::Write {
            body.insert("lsid", doc! {"id": uuid(&connection.lsid)});
            body.insert("txnNumber", connection.next_txn_number());
        }
        let request = match wire::request(&body, documents.map(|d| ("documents", d))) {
            Ok(request) => request,
            Err(e) => {
                self.pool.checkin(connection);
                return Err(Failure::TooLarge(e.to_string()));
            }
        };
        let mut attempts = if kind == Kind::Once { 1 } else { 2 };
        // A request no server read (written to a pooled connection whose
        // server died) goes to the next server once more, whatever its kind:
        // the first statement of a transaction starts it there.
        let mut unsent_resent = false;
        // After a failure, a statement is sent again only to a server that
        // answered a ping first, as a driver retries only on a server its
        // monitor found: a server being killed may still accept connections
        // (its listener lives until its process is gone) that it will never
        // serve, and those must not use up the statement's one retry. The
        // same holds for the next command after a failed one (a commit sent
        // again by `shared_transaction`, the next statement): it waits for a
        // server that answers.
        let mut probe_until: Option<Instant> = self.pool.server_unknown().then(|| Instant::now() + self.wait);
        loop {
            let deadline = Instant::now() + self.wait;
            if let Some(until) = probe_until {
                let answered = connection
                    .stream(self.pool.path(), deadline)
                    .map_err(wire::TripError::Failed)
                    .and_then(|stream| ping().map_err(wire::TripError::Failed).and_then(|ping| wire::round_trip(stream, &ping)));
                if let Err(failure) = answered {
                    connection.disconnect();
                    if Instant::now() >= until {
                        self.pool.checkin(connection);
                        return Err(Failure::Connection(failure.into_io()));
                    }
                    std::thread::sleep(PROBE_RETRY);
                    continue;
                }
                self.pool.server_found();
                probe_until = None;
            }
            let result = connection
                .stream(self.pool.path(), deadline)
                .map_err(wire::TripError::Failed)
                .and_then(|stream| wire::round_trip(stream, &request));
            match result {
                Ok(reply) => {
                    self.pool.checkin(connection);
                    return Ok(reply);
                }
                Err(failure) => {
                    connection.disconnect();
                    self.pool.disconnect_all();
                    if matches!(failure, wire::TripError::Unsent(_)) && !unsent_resent {
                        unsent_resent = true;
                        continue;
                    }
                    let e = failure.into_io();
                    attempts -= 1;
                    if attempts == 0 || e.kind() == io::ErrorKind::InvalidData {
                        self.pool.checkin(connection);
                        return Err(Failure::Connection(e));
                    }
                    probe_until = Some(Instant::now() + self.wait);
                }
            }
        }
    }

    /// Reads the rest of a cursor (inside the statement's transaction).
    fn drain(&self, py: Python<'_>, db: &str, first: &rows::Batch<'_>, width: usize, txn: Option<&Txn>) -> PyResult<()> {
        let (ns, mut cursor_id, rows) = (first.ns.as_str(), first.cursor_id, &first.rows);
        let collection = ns.split_once('.').map_or(ns, |(_, c)| c).to_owned();
        let txn = txn.map(|t| Txn { lsid: t.lsid.clone(), number: t.number, starting: false });
        while cursor_id != 0 {
            let reply = self.run(py, db, doc! {"getMore": cursor_id, "collection": collection.as_str()}, None, Scope::of(txn.as_ref(), Kind::Once), None, None)?;
            let batch = rows::batch(py, &reply, "nextBatch", width)?;
            for row in batch.rows.iter() {
                rows.append(row)?;
            }
            cursor_id = batch.cursor_id;
        }
        Ok(())
    }
}

/// Runs a command on this process's own server, in the calling thread, with
/// the checks the server's framing applies to a message (its size, each
/// document's). `Err(body)`: the server does not serve here any more
/// (stopped at exit, or this is a forked child); the command is given back
/// to go through the socket.
fn run_here(local: &InProcessServer, mut body: Document, documents: Option<&[Vec<u8>]>) -> Result<Result<RawDocumentBuf, Failure>, Document> {
    use djongo_server::wire::{MAX_BSON_OBJECT_SIZE, MAX_MESSAGE_SIZE};
    let encoded = match body.to_vec() {
        Ok(bytes) => bytes,
        Err(e) => return Ok(Err(Failure::TooLarge(format!("cannot encode the command: {e}")))),
    };
    let body_len = encoded.len();
    // The engine recurses per level of a command's nesting; the server's
    // threads have the stack for the deepest a message may be, a caller's
    // thread (a Python thread, whatever its stack size) may not.
    let too_deep = |bytes: &[u8], levels: usize| djongo_server::wire::exceeds_depth(bytes, levels).unwrap_or(true);
    if nests_deeper(&body, HERE_MAX_DEPTH) || documents.unwrap_or_default().iter().any(|d| too_deep(d, HERE_MAX_DEPTH - 2)) {
        return Err(body);
    }
    let sequence_len = documents.map_or(0, |d| SEQUENCE_OVERHEAD + d.iter().map(Vec::len).sum::<usize>());
    let message_len = MESSAGE_OVERHEAD + body_len + sequence_len;
    if message_len > MAX_MESSAGE_SIZE {
        return Ok(Err(Failure::TooLarge(format!("the command is {message_len} bytes, more than the {MAX_MESSAGE_SIZE} a message may hold"))));
    }
    let sizes = std::iter::once(body_len).chain(documents.unwrap_or_default().iter().map(Vec::len));
    if let Some(len) = sizes.into_iter().find(|&len| len > MAX_BSON_OBJECT_SIZE) {
        let reply = doc! {"ok": 0.0, "errmsg": format!("BSONObj size: {len} is invalid. Size must be between 0 and {MAX_BSON_OBJECT_SIZE}"), "code": 10334, "codeName": "BSONObjectTooLarge"};
        return Ok(raw_reply(&reply));
    }
    if let Some(documents) = documents {
        let decoded: Result<Vec<Bson>, _> = documents.iter().map(|d| Document::from_reader(d.as_slice()).map(Bson::Document)).collect();
        match decoded {
            Ok(decoded) => body.insert("documents", decoded),
            Err(e) => return Ok(Err(Failure::TooLarge(format!("a document cannot be read back: {e}")))),
        };
    }
    match local.run(body) {
        // The reply comes encoded, a find's documents as the store built
        // them from its stored bytes.
        Ok(reply) => Ok(reply.map_err(|e| reply_not_encoded(&e))),
        Err(mut body) => {
            body.remove("documents");
            Err(body)
        }
    }
}

/// The values of one level of a document being walked.
enum Level<'a> {
    Fields(bson::document::Values<'a>),
    Items(std::slice::Iter<'a, Bson>),
}

impl<'a> Iterator for Level<'a> {
    type Item = &'a Bson;

    fn next(&mut self) -> Option<&'a Bson> {
        match self {
            Level::Fields(values) => values.next(),
            Level::Items(items) => items.next(),
        }
    }
}

/// Whether `document` nests deeper than `limit` levels, counted as
/// `wire::exceeds_depth` counts them in a document's bytes (a document, an
/// array or a code scope that holds something is a level), but on the
/// command as it is: its bytes are not walked a second time. An explicit
/// stack, no recursion.
fn nests_deeper(document: &Document, limit: usize) -> bool {
    let mut stack = vec![Level::Fields(document.values())];
    while let Some(level) = stack.last_mut() {
        let Some(value) = level.next() else {
            stack.pop();
            continue;
        };
        let nested = match value {
            Bson::Document(d) if !d.is_empty() => Level::Fields(d.values()),
            Bson::Array(items) if !items.is_empty() => Level::Items(items.iter()),
            Bson::JavaScriptCodeWithScope(code) if !code.scope.is_empty() => Level::Fields(code.scope.values()),
            _ => continue,
        };
        if stack.len() >= limit {
            return true;
        }
        stack.push(nested);
    }
    false
}

/// How long a retry waits after a server that did not answer its ping.
const PROBE_RETRY: Duration = Duration::from_millis(10);

/// A `ping`, which a retry sends first to see that a server serves.
fn ping() -> io::Result<wire::Request> {
    wire::request(&doc! {"ping": 1, "$db": "admin"}, None)
}

/// The deepest command run in the calling thread: deeper ones (rare: a
/// filter or value nested this far) go through the socket.
const HERE_MAX_DEPTH: usize = 32;

/// An OP_MSG's header, flags and body section kind.
const MESSAGE_OVERHEAD: usize = 16 + 4 + 1;
/// A `documents` sequence section's kind, size and name.
const SEQUENCE_OVERHEAD: usize = 1 + 4 + "documents".len() + 1;

fn raw_reply(reply: &Document) -> Result<RawDocumentBuf, Failure> {
    RawDocumentBuf::try_from(reply).map_err(|e| reply_not_encoded(&e))
}

fn reply_not_encoded(e: &bson::error::Error) -> Failure {
    Failure::Connection(io::Error::new(io::ErrorKind::InvalidData, format!("the store's reply cannot be encoded: {e}")))
}

/// Hands the command, as sent (without its session fields), to `log`.
fn log_command(py: Python<'_>, log: &Bound<'_, PyAny>, db: &str, body: &Document, documents: Option<&[Vec<u8>]>) -> PyResult<()> {
    let mut shown = body.clone();
    if let Some(documents) = documents {
        let decoded: Vec<Bson> = documents.iter().filter_map(|d| Document::from_reader(d.as_slice()).ok()).map(Bson::Document).collect();
        shown.insert("documents", decoded);
    }
    let bytes = shown.to_vec().map_err(|e| StoreTooLargeError::new_err(e.to_string()))?;
    log.call1((db, PyBytes::new(py, &bytes)))?;
    Ok(())
}

fn reply_to_python<'py>(py: Python<'py>, reply: &RawDocument) -> PyResult<Bound<'py, PyDict>> {
    values::document_to_python(py, reply, Decimals::Decimal128)
}

fn plan_str<'a>(plan: &'a Document, key: &str) -> PyResult<&'a str> {
    plan.get_str(key).map_err(|_| pyo3::exceptions::PyValueError::new_err(format!("the plan has no {key}")))
}

/// The collation the executor chose for the statement's commands
/// (python/djongo/collations.py), if not the simple one.
fn operation_collation(plan: &Document) -> Option<Document> {
    plan.get_document("operation_collation").ok().cloned()
}

fn width(plan: &Document) -> usize {
    plan.get_array("columns").map_or(0, Vec::len)
}

/// A bound value that is a number of documents to skip or return (0: none).
fn count_of(value: Option<&Bson>) -> i64 {
    match value {
        Some(Bson::Int32(n)) => i64::from(*n),
        Some(Bson::Int64(n)) => *n,
        _ => 0,
    }
}

#[pymethods]
impl StoreClient {
    #[new]
    fn new(socket: PathBuf, wait_ms: u64) -> StoreClient {
        let local = crate::in_process::serving_at(&socket);
        StoreClient { local, pool: Pool::new(socket), wait: Duration::from_millis(wait_ms) }
    }

    /// Runs a `find` plan: the first batch of rows, and the cursor id (0
    /// when there are no more).
    #[pyo3(signature = (db, plan, binder, txn = None, log = None, concerns = None))]
    #[allow(clippy::too_many_arguments)]
    fn find<'py>(&self, py: Python<'py>, db: &str, plan: &Bound<'py, PyAny>, binder: &Binder, txn: Option<Txn>, log: Option<Bound<'py, PyAny>>, concerns: Option<Bound<'py, PyAny>>) -> PyResult<(Bound<'py, PyList>, i64)> {
        let plan = plans::document_of(plan)?;
        let concerns = concerns.map(|c| values::to_document(&c)).transpose()?;
        let bind = |key: &str| plan.get(key).map(|node| binder.bind_bson(py, node, false)).transpose();
        let limit = bind("limit")?;
        if limit.as_ref().is_some_and(|l| matches!(l, Bson::Int32(0) | Bson::Int64(0))) {
            return Ok((PyList::empty(py), 0));
        }
        let filter = match plan.get("filter") {
            Some(node) => binder.bind_bson(py, node, true)?,
            None => Bson::Document(Document::new()),
        };
        let mut command = doc! {"find": plan_str(&plan, "collection")?, "filter": filter};
        if let Some(collation) = operation_collation(&plan) {
            command.insert("collation", collation);
        }
        if let Some(projection) = bind("projection")?.filter(|p| !matches!(p, Bson::Null)) {
            command.insert("projection", projection);
        }
        if let Some(sort) = bind("sort")?.filter(|s| matches!(s, Bson::Document(d) if !d.is_empty())) {
            command.insert("sort", sort);
        }
        let skip = count_of(bind("skip")?.as_ref());
        if skip > 0 {
            command.insert("skip", skip);
        }
        let limit = count_of(limit.as_ref());
        if limit > 0 {
            command.insert("limit", limit);
            // The rows asked for in one reply, as far as a reply holds them.
            command.insert("batchSize", limit.min(MAX_WRITE_BATCH as i64));
        }
        let reply = self.run(py, db, command, None, Scope::of(txn.as_ref(), Kind::Read), log.as_ref(), concerns.as_ref())?;
        let batch = rows::batch(py, &reply, "firstBatch", width(&plan))?;
        Ok((batch.rows, batch.cursor_id))
    }

    /// More rows of a `find`'s cursor.
    #[pyo3(signature = (db, collection, cursor_id, width, txn = None))]
    fn get_more<'py>(&self, py: Python<'py>, db: &str, collection: &str, cursor_id: i64, width: usize, txn: Option<Txn>) -> PyResult<(Bound<'py, PyList>, i64)> {
        let reply = self.run(py, db, doc! {"getMore": cursor_id, "collection": collection}, None, Scope::of(txn.as_ref(), Kind::Once), None, None)?;
        let batch = rows::batch(py, &reply, "nextBatch", width)?;
        Ok((batch.rows, batch.cursor_id))
    }

    /// Lets the server drop cursors this process will not read to the end.
    #[pyo3(signature = (db, collection, cursor_ids, txn = None))]
    fn kill_cursors(&self, py: Python<'_>, db: &str, collection: &str, cursor_ids: Vec<i64>, txn: Option<Txn>) -> PyResult<()> {
        self.run(py, db, doc! {"killCursors": collection, "cursors": cursor_ids}, None, Scope::of(txn.as_ref(), Kind::Once), None, None).map(drop)
    }

    /// Runs an `aggregate` plan to its end: every row (or the plan's
    /// `default_row` when the pipeline yields none).
    #[pyo3(signature = (db, plan, binder, txn = None, log = None, concerns = None))]
    #[allow(clippy::too_many_arguments)]
    fn aggregate<'py>(&self, py: Python<'py>, db: &str, plan: &Bound<'py, PyAny>, binder: &Binder, txn: Option<Txn>, log: Option<Bound<'py, PyAny>>, concerns: Option<Bound<'py, PyAny>>) -> PyResult<Bound<'py, PyList>> {
        let plan = plans::document_of(plan)?;
        let concerns = concerns.map(|c| values::to_document(&c)).transpose()?;
        let pipeline = binder.bind_bson(py, plan.get("pipeline").unwrap_or(&Bson::Array(Vec::new())), false)?;
        let target = match plan.get("collection") {
            Some(Bson::String(collection)) => Bson::String(collection.clone()),
            _ => Bson::Int32(1),
        };
        let mut command = doc! {"aggregate": target, "pipeline": pipeline, "cursor": {}};
        if let Some(collation) = operation_collation(&plan) {
            command.insert("collation", collation);
        }
        let reply = self.run(py, db, command, None, Scope::of(txn.as_ref(), Kind::Read), log.as_ref(), concerns.as_ref())?;
        let width = width(&plan);
        let batch = rows::batch(py, &reply, "firstBatch", width)?;
        self.drain(py, db, &batch, width, txn.as_ref())?;
        if batch.rows.is_empty() {
            if let Some(Bson::Array(default_row)) = plan.get("default_row") {
                let cells = default_row.iter().map(|v| values::bson_to_python(py, v, Decimals::Decimal)).collect::<PyResult<Vec<_>>>()?;
                batch.rows.append(PyTuple::new(py, cells)?)?;
            }
        }
        Ok(batch.rows)
    }

    /// Runs an `update` plan; returns the number of documents it matched.
    #[pyo3(signature = (db, plan, binder, txn = None, log = None, concerns = None))]
    #[allow(clippy::too_many_arguments)]
    fn update<'py>(&self, py: Python<'py>, db: &str, plan: &Bound<'py, PyAny>, binder: &Binder, txn: Option<Txn>, log: Option<Bound<'py, PyAny>>, concerns: Option<Bound<'py, PyAny>>) -> PyResult<i64> {
        let plan = plans::document_of(plan)?;
        let concerns = concerns.map(|c| values::to_document(&c)).transpose()?;
        let filter = binder.bind_bson(py, plan.get("filter").unwrap_or(&Bson::Document(Document::new())), true)?;
        let update = binder.bind_bson(py, plan.get("update").unwrap_or(&Bson::Array(Vec::new())), false)?;
        let mut statement = doc! {"q": filter, "u": update, "multi": true};
        if let Some(collation) = operation_collation(&plan) {
            statement.insert("collation", collation);
        }
        let command = doc! {"update": plan_str(&plan, "collection")?, "updates": [statement], "ordered": true};
        let reply = self.run(py, db, command, None, Scope::of(txn.as_ref(), Kind::Write), log.as_ref(), concerns.as_ref())?;
        self.written(py, &reply)
    }

    /// Runs a `delete` plan; returns the number of documents it deleted.
    #[pyo3(signature = (db, plan, binder, txn = None, log = None, concerns = None))]
    #[allow(clippy::too_many_arguments)]
    fn delete<'py>(&self, py: Python<'py>, db: &str, plan: &Bound<'py, PyAny>, binder: &Binder, txn: Option<Txn>, log: Option<Bound<'py, PyAny>>, concerns: Option<Bound<'py, PyAny>>) -> PyResult<i64> {
        let plan = plans::document_of(plan)?;
        let concerns = concerns.map(|c| values::to_document(&c)).transpose()?;
        let filter = binder.bind_bson(py, plan.get("filter").unwrap_or(&Bson::Document(Document::new())), true)?;
        let mut statement = doc! {"q": filter, "limit": 0};
        if let Some(collation) = operation_collation(&plan) {
            statement.insert("collation", collation);
        }
        let command = doc! {"delete": plan_str(&plan, "collection")?, "deletes": [statement], "ordered": true};
        let reply = self.run(py, db, command, None, Scope::of(txn.as_ref(), Kind::Write), log.as_ref(), concerns.as_ref())?;
        self.written(py, &reply)
    }

    /// Inserts `documents` (an `InsertRows`, encoded as it is, or dicts) into
    /// `collection`, in commands as large as a message allows; returns how
    /// many went in. A write error raises the
    /// reply (its `writeErrors` indexes counted from the first document).
    ///
    /// `counter` (outside a transaction only): the server's `djongoCounter`
    /// (`{collection, filter, path, field}`), which numbers the documents
    /// that lack `field` in the insert's own write; the rows get the
    /// numbers too, and the `counter` dict gets the reply's `digest` when
    /// the server gives one.
    #[pyo3(signature = (db, collection, documents, ordered = true, txn = None, log = None, counter = None, concerns = None))]
    #[allow(clippy::too_many_arguments)]
    fn insert<'py>(&self, py: Python<'py>, db: &str, collection: &str, documents: &Bound<'py, PyAny>, ordered: bool, mut txn: Option<Txn>, log: Option<Bound<'py, PyAny>>, counter: Option<Bound<'py, PyAny>>, concerns: Option<Bound<'py, PyAny>>) -> PyResult<i64> {
        let concerns = concerns.map(|c| values::to_document(&c)).transpose()?;
        let counter_dict = counter;
        let counter = counter_dict.as_ref().map(values::to_document).transpose()?;
        let numbered = match &counter {
            Some(counter) => Some(counter.get_str("field").map_err(|_| pyo3::exceptions::PyValueError::new_err("counter.field must be a string"))?.to_owned()),
            None => None,
        };
        let too_large = |e: bson::error::Error| StoreTooLargeError::new_err(format!("a document cannot be encoded: {e}"));
        // Per document: whether the counter numbers it.
        let mut unnumbered = Vec::new();
        let mut encoded = Vec::new();
        let mut rows = match documents.cast::<InsertRows>() {
            // The executor's bound rows: encoded as they are.
            Ok(rows) => Rows::Bound(rows.borrow_mut()),
            Err(_) => Rows::Dicts(Vec::new()),
        };
        match &mut rows {
            Rows::Bound(rows) => {
                for document in rows.documents.iter_mut() {
                    if let Some(field) = &numbered {
                        unnumbered.push(matches!(document.get(field), None | Some(Bson::Null)));
                    }
                    if !document.contains_key("_id") {
                        // First, as a driver puts it; RETURNING reads it from here.
                        let mut with_id = doc! {"_id": bson::oid::ObjectId::new()};
                        with_id.extend(std::mem::take(document));
                        *document = with_id;
                    }
                    encoded.push(document.to_vec().map_err(too_large)?);
                }
            }
            Rows::Dicts(objects) => {
                for object in documents.try_iter()? {
                    let object = object?;
                    let mut document = values::to_document(&object)?;
                    if let Some(field) = &numbered {
                        unnumbered.push(matches!(document.get(field), None | Some(Bson::Null)));
                    }
                    if !document.contains_key("_id") {
                        // As pymongo's insert_many: the new _id goes into the caller's
                        // dict too (an ObjectId primary key is read back from it).
                        let id = bson::oid::ObjectId::new();
                        let mut with_id = doc! {"_id": id};
                        with_id.extend(document);
                        document = with_id;
                        object.set_item("_id", values::bson_to_python(py, &Bson::ObjectId(id), Decimals::Decimal128)?)?;
                    }
                    encoded.push(document.to_vec().map_err(too_large)?);
                    objects.push(object);
                }
            }
        }
        let limit = djongo_server::wire::MAX_MESSAGE_SIZE - MESSAGE_HEADROOM;
        let mut inserted = 0i64;
        let mut start = 0;
        let mut errors: Vec<Bson> = Vec::new();
        while start < encoded.len() {
            let mut end = start;
            let mut bytes = 0;
            while end < encoded.len() && end - start < MAX_WRITE_BATCH && (end == start || bytes + encoded[end].len() <= limit) {
                bytes += encoded[end].len();
                end += 1;
            }
            let mut command = doc! {"insert": collection, "ordered": ordered};
            if let Some(counter) = &counter {
                command.insert("djongoCounter", counter.clone());
            }
            let reply = self.run(py, db, command, Some(&encoded[start..end]), Scope::of(txn.as_ref(), Kind::Write), log.as_ref(), concerns.as_ref())?;
            // The first message started the transaction if this statement
            // starts it; the next ones run in it.
            if let Some(txn) = txn.as_mut() {
                txn.starting = false;
            }
            if let (Some(field), Some(first)) = (&numbered, rows::counter_first(&reply)) {
                let numbered_here = (start..end).filter(|&i| unnumbered[i]);
                match &mut rows {
                    Rows::Bound(rows) => rows.number_unset(field, first, numbered_here),
                    Rows::Dicts(objects) => {
                        for (offset, i) in numbered_here.enumerate() {
                            objects[i].set_item(field, first + offset as i64)?;
                        }
                    }
                }
            }
            if let (Some(dict), Some(digest)) = (&counter_dict, rows::counter_digest(&reply)) {
                dict.set_item("digest", pyo3::types::PyBytes::new(py, digest))?;
            }
            inserted += rows::count(&reply, "n");
            for error in rows::write_errors(&reply, start) {
                errors.push(error);
            }
            if ordered && !errors.is_empty() {
                break;
            }
            start = end;
        }
        if !errors.is_empty() {
            let reply = doc! {"ok": 1.0, "n": inserted, "writeErrors": errors};
            let raw = RawDocumentBuf::try_from(&reply).map_err(|e| StoreTooLargeError::new_err(e.to_string()))?;
            return Err(StoreCommandError::new_err(reply_to_python(py, &raw)?.unbind()));
        }
        Ok(inserted)
    }

    /// Runs `command` (a dict) and returns its reply as a dict (Decimal128
    /// values as `bson.Decimal128`). `write`: a write outside a transaction,
    /// numbered so that it can be sent again.
    #[pyo3(signature = (db, command, txn = None, write = false, log = None))]
    fn command<'py>(&self, py: Python<'py>, db: &str, command: &Bound<'py, PyAny>, txn: Option<Txn>, write: bool, log: Option<Bound<'py, PyAny>>) -> PyResult<Bound<'py, PyDict>> {
        let body = values::to_document(command)?;
        let kind = if write { Kind::Write } else { Kind::Read };
        let reply = self.run(py, db, body, None, Scope::of(txn.as_ref(), kind), log.as_ref(), None)?;
        reply_to_python(py, &reply)
    }

    /// Whether this client's statements run in this process's own server
    /// (in the calling thread) rather than through the socket.
    #[getter]
    fn in_process(&self) -> bool {
        self.local.as_ref().is_some_and(|local| local.is_owner())
    }

    /// Where this client connects.
    #[getter]
    fn socket(&self) -> String {
        self.pool.path().display().to_string()
    }
}

impl StoreClient {
    /// The `n` of a write's reply, or the reply raised when it holds write errors.
    fn written(&self, py: Python<'_>, reply: &RawDocument) -> PyResult<i64> {
        if reply.get("writeErrors").ok().flatten().is_some() {
            return Err(StoreCommandError::new_err(reply_to_python(py, reply)?.unbind()));
        }
        Ok(rows::count(reply, "n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A document nested `depth` levels, alternating documents and arrays,
    /// with an empty document and array beside each level (not levels).
    fn nested(depth: usize, code_scope_at: Option<usize>) -> Document {
        let mut inner = Bson::Int32(1);
        for level in (0..depth).rev() {
            inner = if Some(level) == code_scope_at {
                Bson::JavaScriptCodeWithScope(bson::JavaScriptCodeWithScope { code: "x".into(), scope: doc! {"v": inner} })
            } else if level % 2 == 0 {
                Bson::Document(doc! {"empty": {}, "none": [], "v": inner})
            } else {
                Bson::Array(vec![Bson::Array(Vec::new()), inner])
            };
        }
        doc! {"find": "t", "filter": inner}
    }

    #[test]
    fn the_commands_depth_is_counted_as_in_its_bytes() {
        for depth in 0..12 {
            for code_scope_at in [None, Some(0), Some(depth / 2)] {
                let document = nested(depth, code_scope_at);
                let bytes = document.to_vec().unwrap();
                for limit in 1..14 {
                    assert_eq!(
                        nests_deeper(&document, limit),
                        djongo_server::wire::exceeds_depth(&bytes, limit).unwrap(),
                        "depth {depth}, scope at {code_scope_at:?}, limit {limit}: {document}"
                    );
                }
            }
        }
    }
}
