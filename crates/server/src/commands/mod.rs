//! Command dispatch: finds the handler for a command body, runs it inside
//! the right storage scope (a fresh snapshot, an autocommit write, or the
//! session's open transaction) and turns failures into `{ok: 0}` replies.
mod aggregate_output;
pub(crate) mod capped;
mod change_stream;
mod collection_options;
mod concerns;
mod counter;
mod db_sources;
mod ddl;
mod explain;
mod plan_cache;
mod find_keys;
mod find_projection;
pub(crate) mod geo;
mod handshake;
mod let_vars;
mod read;
mod reply;
mod sessions;
mod stored_projection;
mod testing;
mod text_search;
pub(crate) mod views;
mod write;

use crate::catalog::truthy;
use crate::error::{CmdResult, CommandError};
use crate::retryable::{self, RetryKey};
use crate::session::TxnState;
use crate::state::{ConnInfo, ServerState};
use crate::changes::PendingChange;
use crate::failpoint;
use crate::storage::{ConflictKey, SnapshotTables, Storage, Tables, Transaction, WriteTxn, WriterId};
use bson::{Bson, Document, RawDocumentBuf};
use redb::ReadTransaction;
use std::sync::Arc;
use std::time::{Duration, Instant};

type Handler = fn(&mut Ctx<'_>, &Document) -> CmdResult<Document>;

/// Everything a command handler can use.
pub struct Ctx<'a> {
    pub state: &'a ServerState,
    pub conn: &'a mut ConnInfo,
    pub db: String,
    pub scope: Scope<'a>,
    /// The session id (`lsid.id` bytes), if the command carried one.
    pub lsid: Option<Vec<u8>>,
    /// Whether this is a retryable write (a session and a `txnNumber`,
    /// outside a transaction), which `onPrimaryTransactionalWrite` watches.
    pub retryable: bool,
    /// The change events of what the command wrote, published when its
    /// write commits (`changes`).
    pub changes: Vec<PendingChange>,
}

/// The `onPrimaryTransactionalWrite` fail point, consulted where a
/// retryable write (`retryable`) is about to commit (each insert command,
/// each update or delete statement that writes): it may close the
/// connection after the commit, or fail the write before it (and the whole
/// command with it, since a command's statements commit together here).
/// Takes the context's fields, not the context, so a handler may call it
/// while it holds the tables.
pub fn transactional_write(state: &ServerState, conn: &mut ConnInfo, retryable: bool) -> CmdResult<()> {
    if !retryable || !state.test_commands {
        return Ok(());
    }
    let Some(fault) = state.fail_points.transactional_write_fault() else { return Ok(()) };
    conn.faulted = true;
    if fault.close_connection {
        conn.close = true;
    }
    match fault.fail_before_commit {
        Some(code) => {
            let mut e = CommandError::with_code(code, "Failing write via 'onPrimaryTransactionalWrite' failpoint");
            e.aborts = true;
            Err(e)
        }
        None => Ok(()),
    }
}

/// Where a command reads and writes. Storage transactions are begun lazily,
/// so commands that never touch storage cost nothing.
pub struct Scope<'a> {
    storage: &'a Storage,
    lock_timeout: Duration,
    in_txn: Option<&'a Transaction>,
    /// The snapshot of a read at a point in time.
    read: Option<Arc<ReadTransaction>>,
    /// Otherwise the latest data's tables, taken at the first read.
    latest: Option<Arc<SnapshotTables>>,
    write: Option<WriteTxn>,
}

impl<'a> Scope<'a> {
    fn autocommit(storage: &'a Storage, lock_timeout: Duration) -> Scope<'a> {
        Scope { storage, lock_timeout, in_txn: None, read: None, latest: None, write: None }
    }

    fn transaction(storage: &'a Storage, txn: &'a Transaction) -> Scope<'a> {
        Scope { storage, lock_timeout: Duration::ZERO, in_txn: Some(txn), read: None, latest: None, write: None }
    }

    /// A read at a point in time (`readConcern: snapshot`): reads see this
    /// snapshot rather than the latest data.
    fn at_snapshot(storage: &'a Storage, snapshot: Arc<ReadTransaction>) -> Scope<'a> {
        Scope { storage, lock_timeout: Duration::ZERO, in_txn: None, read: Some(snapshot), latest: None, write: None }
    }

    pub fn in_transaction(&self) -> bool {
        self.in_txn.is_some()
    }

    /// The open multi-document transaction this command runs in, if any.
    pub fn open_transaction(&self) -> Option<&'a Transaction> {
        self.in_txn
    }

    /// Tables for reading: the transaction's snapshot with its own writes
    /// inside a transaction, otherwise the last committed snapshot.
    pub fn read(&mut self) -> CmdResult<Tables<'_>> {
        if let Some(t) = self.in_txn {
            return Tables::open_transaction(t);
        }
        if let Some(w) = &self.write {
            return Tables::open_write(w);
        }
        if let Some(snapshot) = &self.read {
            return Tables::open_read(snapshot);
        }
        let latest = match &mut self.latest {
            Some(l) => l,
            slot => slot.insert(self.storage.latest_tables()?),
        };
        Ok(Tables::shared(latest))
    }

    /// Tables for writing; outside a transaction this takes the store's
    /// writer lock and the write is committed when the command succeeds.
    pub fn write(&mut self) -> CmdResult<Tables<'_>> {
        if let Some(t) = self.in_txn {
            return Tables::open_transaction(t);
        }
        let write = match &mut self.write {
            Some(w) => w,
            slot => match self.storage.begin_write(self.lock_timeout)? {
                Some(w) => slot.insert(w),
                None => {
                    return Err(CommandError::new(
                        24,
                        "LockTimeout",
                        format!("timed out after {:?} waiting for the store's writer", self.lock_timeout),
                    ))
                }
            },
        };
        Tables::open_write(write)
    }

    /// Runs the foreign key checks the command's writes owe
    /// (`foreign_keys`): an autocommit command's at its end, before it
    /// commits. A transaction's run when it commits.
    fn verify_foreign_keys(&self, bypass: bool) -> CmdResult<()> {
        let Some(w) = &self.write else { return Ok(()) };
        let pending = w.pending_checks();
        if bypass {
            pending.truncate(0);
        }
        if pending.is_empty() {
            return Ok(());
        }
        crate::foreign_keys::verify(&Tables::open_write(w)?, pending)
    }

    /// The transaction an autocommit write ran into: it holds a document the
    /// write needs, so the command must wait for it and run again.
    fn blocked_on(&self) -> Option<(ConflictKey, WriterId)> {
        self.write.as_ref().and_then(WriteTxn::blocked_on)
    }

    /// Commits an autocommit write if the command succeeded, running `then`
    /// with the commit's cluster time in its critical section; otherwise
    /// discards it. Transactions are finished by commit/abortTransaction.
    fn finish(self, success: bool, then: impl FnOnce(bson::Timestamp)) -> CmdResult<()> {
        if let Some(w) = self.write {
            if success {
                w.commit_then(then)?;
            } else {
                w.abort();
            }
        }
        Ok(())
    }
}

/// Commands that may run before authentication.
const PRE_AUTH: &[&str] = &["hello", "isMaster", "ismaster", "ping", "buildInfo", "buildinfo", "saslStart", "saslContinue", "endSessions", "getnonce"];

fn handler(name: &str) -> Option<Handler> {
    Some(match name {
        "hello" | "isMaster" | "ismaster" => handshake::hello,
        "ping" => handshake::ping,
        "buildInfo" | "buildinfo" => handshake::build_info,
        "getParameter" => handshake::get_parameter,
        "hostInfo" => handshake::host_info,
        "serverStatus" => handshake::server_status,
        "connectionStatus" => handshake::connection_status,
        "whatsmyuri" => handshake::whatsmyuri,
        "getCmdLineOpts" => handshake::get_cmd_line_opts,
        "getLog" => handshake::get_log,
        "saslStart" => crate::auth::sasl_start,
        "saslContinue" => crate::auth::sasl_continue,
        "logout" => crate::auth::logout,
        "usersInfo" => crate::auth::users_info,
        "listDatabases" => ddl::list_databases,
        "listCollections" => ddl::list_collections,
        "listIndexes" => ddl::list_indexes,
        "create" => ddl::create,
        "collMod" => collection_options::coll_mod,
        "drop" => ddl::drop,
        "dropDatabase" => ddl::drop_database,
        "renameCollection" => ddl::rename_collection,
        "createIndexes" => ddl::create_indexes,
        "dropIndexes" | "deleteIndexes" => ddl::drop_indexes,
        "dbStats" => ddl::db_stats,
        "collStats" => ddl::coll_stats,
        "find" => read::find,
        "getMore" => read::get_more,
        "killCursors" => read::kill_cursors,
        "aggregate" => read::aggregate,
        "count" => read::count,
        "distinct" => read::distinct,
        "explain" => explain::explain,
        "planCacheClear" => plan_cache::plan_cache_clear,
        "insert" => write::insert,
        "update" => write::update,
        "delete" => write::delete,
        "findAndModify" | "findandmodify" => write::find_and_modify,
        "endSessions" => sessions::end_sessions,
        "killSessions" | "killAllSessions" | "killAllSessionsByPattern" => sessions::kill_sessions,
        "refreshSessions" => sessions::refresh_sessions,
        "startSession" => sessions::start_session,
        "commitTransaction" => sessions::commit_transaction,
        "abortTransaction" => sessions::abort_transaction,
        "savepoint" => sessions::savepoint,
        "checkForeignKeys" => sessions::check_foreign_keys,
        "rollbackToSavepoint" => sessions::rollback_to_savepoint,
        "releaseSavepoint" => sessions::release_savepoint,
        "configureFailPoint" => testing::configure_fail_point,
        "createSearchIndexes" | "dropSearchIndex" | "updateSearchIndex" => ddl::search_indexes,
        _ => return None,
    })
}

use reply::Effects;

/// Runs one command body and returns the reply document (never fails:
/// errors become `{ok: 0, errmsg, code, codeName}`). Every reply carries
/// the labels, write concern error and cluster time a replica set member's
/// would (`reply`).
pub fn run_command(state: &ServerState, conn: &mut ConnInfo, body: &Document) -> Document {
    run_shared_command(state, conn, &Arc::new(body.clone()))
}

/// `run_command` for a command document the caller shares (the wire
/// server's): `$currentOp` shows it while it runs without copying it.
pub fn run_shared_command(state: &ServerState, conn: &mut ConnInfo, shared: &Arc<Document>) -> Document {
    let (mut reply, batch) = run_parts(state, conn, shared);
    if let Some(batch) = batch {
        if let Err(e) = batch.decode_into(&mut reply) {
            return reply::finish(state, conn, shared, Err(CommandError::internal(format!("corrupt reply document: {e}"))), Effects::default());
        }
    }
    reply
}

/// `run_shared_command`'s reply, encoded: what goes to the client. A find's
/// documents built from stored bytes are copied in, never decoded
/// (`stored_batch`). Fails only when the reply cannot be encoded (a key
/// with a NUL, past BSON's limits).
pub fn run_shared_command_encoded(state: &ServerState, conn: &mut ConnInfo, shared: &Arc<Document>) -> bson::error::Result<RawDocumentBuf> {
    match run_parts(state, conn, shared) {
        (reply, Some(batch)) => batch.encode_with(&reply),
        (reply, None) => RawDocumentBuf::try_from(&reply),
    }
}

/// The reply document, and the cursor batch the command left on the
/// connection to go in it as encoded documents.
fn run_parts(state: &ServerState, conn: &mut ConnInfo, shared: &Arc<Document>) -> (Document, Option<crate::stored_batch::StoredBatch>) {
    let body: &Document = shared;
    let mut effects = Effects::default();
    let running = state.ops.begin(conn.id, &conn.peer_address, conn.app_name.as_deref(), shared);
    let result = execute(state, conn, body, &mut effects);
    drop(running);
    // Taken whatever happened: a batch of a command that failed after
    // leaving it must not reach the next command's reply.
    let batch = conn.stored_batch.take().filter(|_| result.is_ok());
    (reply::finish(state, conn, body, result, effects), batch)
}

/// The command as `failCommand` sees it.
pub(super) fn command_site<'a>(conn: &'a ConnInfo, name: &'a str, body: &Document) -> failpoint::CommandSite<'a> {
    let db = body.get_str("$db").unwrap_or("admin");
    let collection = match (name, body.get(name)) {
        ("getMore", _) => body.get_str("collection").ok(),
        (_, Some(Bson::String(c))) => Some(c.as_str()),
        _ => None,
    };
    failpoint::CommandSite {
        name,
        namespace: collection.map_or_else(|| format!("{db}.$cmd"), |c| format!("{db}.{c}")),
        app_name: conn.app_name.as_deref(),
        thread_name: format!("conn{}", conn.id),
    }
}

/// The `failCommand` fail point, consulted before a command runs: it may
/// stall the command, close the connection without a reply, or fail it.
fn fail_command(state: &ServerState, conn: &mut ConnInfo, name: &str, body: &Document, effects: &mut Effects) -> CmdResult<()> {
    if !state.test_commands {
        return Ok(());
    }
    let Some(fault) = state.fail_points.command_fault(&command_site(conn, name, body))? else { return Ok(()) };
    conn.faulted = true;
    if let Some(pause) = fault.block {
        std::thread::sleep(pause);
    }
    if fault.close_connection {
        conn.close = true;
        return Err(CommandError::new(50985, "Location50985", failpoint::FAIL_COMMAND_MESSAGE));
    }
    match fault.error_code {
        Some(code) => {
            effects.labels = fault.error_labels;
            Err(CommandError::with_code(code, failpoint::FAIL_COMMAND_MESSAGE))
        }
        None => Ok(()),
    }
}

/// The `failGetMoreAfterCursorCheckout` fail point: the getMore fails once
/// it has its cursor, which is gone afterwards.
fn fail_get_more(state: &ServerState, conn: &mut ConnInfo, body: &Document) -> CmdResult<()> {
    if !state.test_commands {
        return Ok(());
    }
    let Some(id) = body.get("getMore").and_then(num_i64) else { return Ok(()) };
    let Some(code) = state.fail_points.get_more_fault(&command_site(conn, "getMore", body)) else { return Ok(()) };
    conn.faulted = true;
    state.cursors.kill(&[id]);
    Err(CommandError::with_code(code, "Hit the 'failGetMoreAfterCursorCheckout' failpoint"))
}

/// Commands that may read at a point in time outside a transaction
/// (`readConcern: {level: "snapshot"}`), as in mongod 5.0 and later.
const SNAPSHOT_READS: &[&str] = &["find", "aggregate", "distinct"];

/// The snapshot a `readConcern: snapshot` read outside a transaction reads,
/// and the cluster time it stands for.
fn snapshot_read(state: &ServerState, name: &str, body: &Document) -> CmdResult<Option<(Arc<ReadTransaction>, bson::Timestamp)>> {
    let Some(rc) = concerns::read_concern(body)? else { return Ok(None) };
    if !matches!(rc.get("level"), Some(Bson::String(level)) if level == "snapshot") {
        return Ok(None);
    }
    if !SNAPSHOT_READS.contains(&name) || (name == "aggregate" && reply::takes_write_concern(name, body)) {
        return Err(CommandError::new(72, "InvalidOptions", format!("Command {name} does not support {{ readConcern: {{ level: \"snapshot\" }} }}")));
    }
    let at = match rc.get("atClusterTime") {
        Some(Bson::Timestamp(t)) => Some(*t),
        _ => None,
    };
    Ok(Some(state.storage.snapshot_at(at)?))
}

fn execute(state: &ServerState, conn: &mut ConnInfo, body: &Document, effects: &mut Effects) -> CmdResult<Document> {
    let Some(name) = body.keys().next().cloned() else {
        return Err(CommandError::failed_to_parse("empty command document"));
    };
    let Some(run) = handler(&name) else {
        return Err(CommandError::new(59, "CommandNotFound", format!("no such command: '{name}'")));
    };
    let db = match body.get("$db") {
        Some(Bson::String(db)) => db.clone(),
        None => "admin".to_string(),
        Some(_) => return Err(CommandError::type_mismatch("$db must be a string")),
    };
    if state.users.enabled() && !conn.auth.is_authenticated() && !PRE_AUTH.contains(&name.as_str()) {
        return Err(CommandError::new(13, "Unauthorized", format!("Command {name} requires authentication")));
    }
    reply::gossip(state, body)?;
    check_field_paths(body)?;
    refuse_atlas_only(&name, body)?;
    command_collation(&name, body)?;
    refuse_linearizable_output(&name, body)?;
    concerns::read_preference(body)?;
    let lsid = session_id(body)?;
    if let Some(key) = &lsid {
        state.sessions.seen(key)?;
    }
    effects.change_stream = change_stream::opens_stream(&name, body);
    // As in mongod, a fail point acts before the command reaches its
    // session: a statement it fails neither starts nor ends a transaction.
    fail_command(state, conn, &name, body, effects)?;
    if name == "getMore" {
        // Only a getMore that has found its cursor knows it continues a
        // change stream (mongod labels errors the same way).
        effects.change_stream = body.get("getMore").and_then(num_i64).is_some_and(|id| state.cursors.is_live(id, crate::cursor::LiveKind::Stream));
        fail_get_more(state, conn, body)?;
    }
    let in_txn = matches!(body.get("autocommit"), Some(Bson::Boolean(false)));
    if in_txn && !matches!(name.as_str(), "commitTransaction" | "abortTransaction") {
        return execute_in_transaction(state, conn, body, db, lsid, (&name, run));
    }
    concerns::read_concern(body)?;
    concerns::write_concern(body)?;
    let journaled = concerns::journaled(body);
    let snapshot = snapshot_read(state, &name, body)?;
    let retry = RetryKey::for_command(&name, body, lsid.as_deref())?;
    if let Some((snapshot, time)) = snapshot {
        // (A write at a snapshot: its retry answered from the last commit.)
        if let Some(reply) = retry.as_ref().map(|key| retryable::replay(&state.storage, key)).transpose()?.flatten() {
            return Ok(reply);
        }
        effects.snapshot_time = Some(time);
        let mut ctx = Ctx { state, conn, db, scope: Scope::at_snapshot(&state.storage, snapshot), lsid, retryable: false, changes: Vec::new() };
        return dispatch(&mut ctx, &name, run, body);
    }
    // A write that meets a document an open transaction has written waits
    // for that transaction to finish, then runs again (as mongod retries a
    // write conflict), for up to the write lock timeout or the command's
    // maxTimeMS, whichever is shorter.
    let max_time = concerns::max_time_ms(body, &name)?.map(Duration::from_millis);
    let started = Instant::now();
    let deadline = started + max_time.map_or(state.write_lock_timeout, |t| t.min(state.write_lock_timeout));
    loop {
        let mut ctx = Ctx {
            state,
            conn: &mut *conn,
            db: db.clone(),
            scope: Scope::autocommit(&state.storage, state.write_lock_timeout),
            lsid: lsid.clone(),
            retryable: retry.is_some(),
            changes: Vec::new(),
        };
        // A retried write that was applied already (perhaps by the store's
        // previous server) gets the reply it got then, read in the write
        // transaction that would apply it again.
        if let Some(key) = &retry {
            let replayed = ctx.scope.write().map(drop).and_then(|()| ctx.scope.write.as_ref().map_or(Ok(None), |w| retryable::replay_in(w, key)));
            let answered = match replayed {
                Ok(None) => None,
                Ok(Some(reply)) => Some(Ok(reply)),
                Err(e) => Some(Err(e)),
            };
            if let Some(answered) = answered {
                ctx.scope.finish(false, |_| {})?;
                return answered;
            }
        }
        let result = dispatch(&mut ctx, &name, run, body);
        let bypass = crate::validation::bypass_requested(body);
        let result = result.and_then(|reply| ctx.scope.verify_foreign_keys(bypass).map(|()| reply));
        let blocked = ctx.scope.blocked_on();
        // The reply is recorded in the redb transaction that applies the write.
        let recorded = match (&retry, &result, &ctx.scope.write, &blocked) {
            (Some(key), Ok(reply), Some(write), None) => retryable::record(write, key, reply),
            _ => Ok(()),
        };
        let changes = std::mem::take(&mut ctx.changes);
        if !journaled {
            if let Some(write) = &mut ctx.scope.write {
                write.skip_journal();
            }
        }
        ctx.scope.finish(result.is_ok() && blocked.is_none() && recorded.is_ok(), |time| state.changes.publish(time, changes, None))?;
        recorded?;
        let Some((conflict, owner)) = blocked else { return result };
        if !state.storage.wait_for(&conflict, owner, deadline) {
            if max_time.is_some_and(|t| t < state.write_lock_timeout) {
                return Err(CommandError::new(50, "MaxTimeMSExpired", "operation exceeded time limit"));
            }
            return Err(CommandError::new(
                24,
                "LockTimeout",
                format!(
                    "timed out after {:?} waiting for a multi-document transaction that has written the same document",
                    state.write_lock_timeout
                ),
            ));
        }
    }
}

/// Runs the handler, unless the command opens or continues a change stream
/// (`change_stream`) or names a view (`views`).
fn dispatch(ctx: &mut Ctx<'_>, name: &str, run: Handler, body: &Document) -> CmdResult<Document> {
    let collation = command_collation(name, body)?;
    djongo_engine::collation::scoped(collation, || dispatch_collated(ctx, name, run, body))
}

fn dispatch_collated(ctx: &mut Ctx<'_>, name: &str, run: Handler, body: &Document) -> CmdResult<Document> {
    if change_stream::opens_stream(name, body) {
        return change_stream::open(ctx, body);
    }
    if capped::is_tailable_find(name, body) {
        return capped::tailable_find(ctx, body);
    }
    if name == "getMore" {
        if let Some(reply) = change_stream::get_more(ctx, body)? {
            return Ok(reply);
        }
        if let Some(reply) = capped::get_more(ctx, body)? {
            return Ok(reply);
        }
    }
    match views::intercept(ctx, name, body)? {
        Some(reply) => Ok(reply),
        None => run(ctx, body),
    }
}

/// Atlas Search: its commands and stages need an Atlas deployment; mongod
/// without one answers SearchNotEnabled (31082) with this message.
const ATLAS_SEARCH_MESSAGE: &str = "Using Atlas Search Database Commands and the $listSearchIndexes aggregation stage requires additional configuration. \
Please connect to Atlas or an AtlasCLI local deployment to enable. For more information on how to connect, see https://dochub.mongodb.org/core/atlas-cli-deploy-local-reqs";

pub fn search_not_enabled() -> CommandError {
    CommandError::new(31082, "SearchNotEnabled", ATLAS_SEARCH_MESSAGE)
}

/// The commands whose own `collation` field is the collation of every string
/// comparison they make (update and delete take one per statement:
/// write.rs).
const COLLATED_COMMANDS: [&str; 5] = ["find", "aggregate", "count", "distinct", "findAndModify"];

/// A command's `collation`, parsed (`None`: the simple, binary one). Each
/// one is checked before anything runs; a collection's collation (the
/// default of its operations) is not implemented yet and is refused, never
/// replaced by the binary comparison.
fn command_collation(name: &str, body: &Document) -> CmdResult<Option<std::sync::Arc<djongo_engine::collation::Collation>>> {
    let parse = |v: &Bson| djongo_engine::collation::parse(v).map_err(CommandError::from);
    let nested = match name {
        "update" => "updates",
        "delete" => "deletes",
        "createIndexes" => "indexes",
        _ => "",
    };
    // Each statement's and each index's own collation is checked here, and
    // applied by its statement (write.rs) or index (index.rs).
    if let Some(Bson::Array(items)) = body.get(nested) {
        for item in items {
            if let Some(c) = item.as_document().and_then(|d| d.get("collation")) {
                parse(c)?;
            }
        }
    }
    let Some(value) = body.get("collation") else { return Ok(None) };
    let collation = parse(value)?;
    if collation.is_some() && !COLLATED_COMMANDS.contains(&name) {
        return Err(not_on_the_engine(if name == "create" { "a collection or view" } else { "this command" }));
    }
    Ok(collation)
}

fn not_on_the_engine(what: &str) -> CommandError {
    CommandError::new(
        115,
        "CommandNotSupported",
        format!("a collation on {what} is not supported by the embedded engine: only an operation's (find, aggregate, count, distinct, findAndModify, update and delete statements) and an index's are"),
    )
}

/// mongod refuses `$out`/`$merge` under a linearizable read concern.
fn refuse_linearizable_output(name: &str, body: &Document) -> CmdResult<()> {
    let linearizable = matches!(body.get("readConcern"), Some(Bson::Document(rc)) if matches!(rc.get("level"), Some(Bson::String(l)) if l == "linearizable"));
    if name == "aggregate" && linearizable && reply::takes_write_concern(name, body) {
        return Err(CommandError::new(72, "InvalidOptions", "$out and $merge cannot be used with a 'linearizable' read concern level"));
    }
    Ok(())
}

/// Refuses an aggregate that starts with an Atlas Search stage.
fn refuse_atlas_only(name: &str, body: &Document) -> CmdResult<()> {
    if name != "aggregate" {
        return Ok(());
    }
    let Some(Bson::Array(stages)) = body.get("pipeline") else { return Ok(()) };
    let atlas = |s: &Bson| matches!(s, Bson::Document(d) if d.keys().next().is_some_and(|k| matches!(k.as_str(), "$listSearchIndexes" | "$search" | "$searchMeta" | "$vectorSearch")));
    if stages.iter().any(atlas) {
        return Err(search_not_enabled());
    }
    Ok(())
}

/// Commands that cannot run inside a transaction: they manage sessions
/// (and would wait on the very session they run in).
const NOT_IN_TRANSACTION: &[&str] =
    &["endSessions", "killSessions", "killAllSessions", "killAllSessionsByPattern", "refreshSessions", "startSession"];

/// Longest dotted field path accepted (MongoDB's `FieldPath` limit, the
/// BSON depth limit): the engine walks paths one component per call, so a
/// path of a few hundred thousand components would exhaust the stack.
pub const MAX_FIELD_PATH_COMPONENTS: usize = crate::wire::MAX_BSON_DEPTH;

/// Rejects any field name or `$`-prefixed string (a field path expression)
/// with more components than a path may have. The walk's own depth is
/// bounded by the BSON depth check the wire decoder already made.
fn check_field_paths(body: &Document) -> CmdResult<()> {
    fn too_long(s: &str) -> bool {
        s.bytes().filter(|&b| b == b'.').count() >= MAX_FIELD_PATH_COMPONENTS
    }
    fn walk(v: &Bson) -> bool {
        match v {
            Bson::Document(d) => d.iter().any(|(k, v)| too_long(k) || walk(v)),
            Bson::Array(items) => items.iter().any(walk),
            Bson::String(s) => s.starts_with('$') && too_long(s),
            _ => false,
        }
    }
    if body.iter().any(|(k, v)| too_long(k) || walk(v)) {
        return Err(CommandError::new(15, "Overflow", "FieldPath is too long"));
    }
    Ok(())
}

fn session_id(body: &Document) -> CmdResult<Option<Vec<u8>>> {
    match body.get("lsid") {
        None => Ok(None),
        Some(Bson::Document(l)) => match l.get("id") {
            Some(Bson::Binary(b)) => Ok(Some(b.bytes.clone())),
            _ => Err(CommandError::type_mismatch("lsid.id must be a UUID")),
        },
        Some(_) => Err(CommandError::type_mismatch("lsid must be a document")),
    }
}

pub fn txn_number(body: &Document) -> CmdResult<Option<i64>> {
    match body.get("txnNumber") {
        None => Ok(None),
        Some(v) => num_i64(v).map(Some).ok_or_else(|| CommandError::type_mismatch("txnNumber must be a number")),
    }
}

/// Runs a command that is part of a multi-document transaction
/// (`autocommit: false`), starting the transaction if asked to.
fn execute_in_transaction(
    state: &ServerState,
    conn: &mut ConnInfo,
    body: &Document,
    db: String,
    lsid: Option<Vec<u8>>,
    (name, run): (&str, Handler),
) -> CmdResult<Document> {
    let Some(key) = lsid.clone() else {
        return Err(CommandError::new(50768, "InvalidOptions", "a transaction requires a session id (lsid)"));
    };
    let Some(number) = txn_number(body)? else {
        return Err(CommandError::new(50768, "InvalidOptions", "a transaction requires txnNumber"));
    };
    if NOT_IN_TRANSACTION.contains(&name) {
        return Err(CommandError::new(263, "OperationNotSupportedInTransaction", format!("Cannot run '{name}' in a multi-document transaction.")));
    }
    let starting = truthy(body.get("startTransaction"));
    concerns::check_statement(body, starting)?;
    let session_arc = state.sessions.get(&key);
    let mut session = session_arc.lock();
    let conn_id = conn.id;
    session.touch(conn_id);
    if number < session.txn_number {
        return Err(CommandError::new(225, "TransactionTooOld", format!("txnNumber {number} is less than last txnNumber {} seen in this session", session.txn_number)));
    }
    if starting {
        if number == session.txn_number && !matches!(session.state, TxnState::None) {
            return Err(CommandError::new(251, "NoSuchTransaction", format!("transaction {number} has already been started")));
        }
        session.abort();
        session.txn_number = number;
        // The snapshot is taken now, at the transaction's first statement;
        // nothing waits for other transactions.
        let txn = state.storage.begin_transaction()?;
        session.state = TxnState::Active { txn: Box::new(txn), started: Instant::now(), changes: Default::default() };
    } else if number != session.txn_number || !matches!(session.state, TxnState::Active { .. }) {
        return Err(CommandError::no_such_transaction(format!("Transaction with txnNumber {number} has been aborted or is not in progress")));
    }
    let TxnState::Active { txn, changes, .. } = &mut session.state else {
        return Err(CommandError::internal("transaction vanished"));
    };
    let txn: &Transaction = txn;
    let mark = txn.statement_mark();
    let checks_before = txn.pending_checks().len();
    let mut ctx = Ctx { state, conn, db, scope: Scope::transaction(&state.storage, txn), lsid, retryable: false, changes: Vec::new() };
    let result = dispatch(&mut ctx, name, run, body);
    if crate::validation::bypass_requested(body) {
        // Writes that bypass validation owe no foreign key check either.
        txn.pending_checks().truncate(checks_before);
    }
    let statement_changes = std::mem::take(&mut ctx.changes);
    drop(ctx);
    // The statement's change events join the transaction's (a failed
    // statement wrote nothing that stays); savepoints mark them too.
    if result.is_ok() {
        changes.events.extend(statement_changes);
        if let Some(Bson::String(point)) = body.get(name) {
            match name {
                "savepoint" => changes.savepoint(point),
                "rollbackToSavepoint" => changes.rollback_to(point),
                "releaseSavepoint" => changes.release(point),
                _ => {}
            }
        }
    }
    let failed = match &result {
        Err(_) => true,
        Ok(reply) => reply.get("writeErrors").is_some(),
    };
    // A write conflict dooms the transaction: its snapshot is too old for
    // that document, so only starting again can succeed.
    let conflict = matches!(&result, Err(e) if e.code == CommandError::WRITE_CONFLICT);
    // A failed savepoint command wrote nothing (an unknown name, say), so
    // it leaves the transaction as it was.
    // Nor does checkForeignKeys, whose violation the client may still mend.
    let savepoint_command = matches!(name, "savepoint" | "rollbackToSavepoint" | "releaseSavepoint" | "checkForeignKeys");
    let must_abort = if conflict {
        true
    } else if failed && !savepoint_command {
        match mark {
            // With a savepoint set, a failed statement is undone on its own
            // and the transaction goes on, as in SQL: that is what lets a
            // nested `atomic()` block recover from an IntegrityError.
            Some(mark) => txn.undo_statement(mark).is_err(),
            // Otherwise MongoDB's rule: any failed statement aborts the
            // transaction; drivers then see NoSuchTransaction on commit.
            None => true,
        }
    } else {
        false
    };
    if must_abort {
        session.abort();
    }
    // The idle clock restarts when a statement ends too: one that ran longer
    // than the idle limit (a large update on a loaded machine) must not leave
    // its transaction looking abandoned to the reaper the moment it returns.
    session.touch(conn_id);
    // Labels follow mongod's rules (`reply::labels_for`): a conflict or
    // another transient failure is TransientTransactionError.
    result
}

// ---- argument helpers -------------------------------------------------------

/// A BSON number as i64 (doubles must be integral).
pub fn num_i64(v: &Bson) -> Option<i64> {
    match v {
        Bson::Int32(i) => Some(i64::from(*i)),
        Bson::Int64(i) => Some(*i),
        Bson::Double(f) if f.fract() == 0.0 && f.is_finite() => Some(*f as i64),
        _ => None,
    }
}

pub fn opt_i64(body: &Document, key: &str) -> CmdResult<Option<i64>> {
    match body.get(key) {
        None | Some(Bson::Null) => Ok(None),
        Some(v) => num_i64(v).map(Some).ok_or_else(|| CommandError::type_mismatch(format!("'{key}' must be a number"))),
    }
}

pub fn opt_doc(body: &Document, key: &str) -> CmdResult<Option<Document>> {
    match body.get(key) {
        None | Some(Bson::Null) => Ok(None),
        Some(Bson::Document(d)) => Ok(Some(d.clone())),
        Some(_) => Err(CommandError::type_mismatch(format!("'{key}' must be a document"))),
    }
}

pub fn opt_bool(body: &Document, key: &str) -> bool {
    truthy(body.get(key))
}

/// The collection named by the command's first field (`{find: "coll"}`).
pub fn collection_arg(body: &Document, cmd: &str) -> CmdResult<String> {
    match body.get(cmd) {
        Some(Bson::String(s)) if !s.is_empty() => Ok(s.clone()),
        _ => Err(CommandError::invalid_namespace(format!("collection name for '{cmd}' must be a non-empty string"))),
    }
}

/// Array of documents argument (`documents`, `updates`, `deletes`, `pipeline`).
pub fn doc_array(body: &Document, key: &str) -> CmdResult<Vec<Document>> {
    match body.get(key) {
        None => Ok(Vec::new()),
        Some(Bson::Array(items)) => items
            .iter()
            .map(|i| match i {
                Bson::Document(d) => Ok(d.clone()),
                _ => Err(CommandError::type_mismatch(format!("'{key}' must contain only documents"))),
            })
            .collect(),
        Some(_) => Err(CommandError::type_mismatch(format!("'{key}' must be an array"))),
    }
}
