//! Handshake and diagnostics: hello/isMaster, ping, buildInfo and friends.
//! The server presents itself as the primary of a one-node replica set, so
//! drivers enable sessions and transactions.
use super::{opt_i64, Ctx};
use crate::error::CmdResult;
use bson::{doc, oid::ObjectId, Bson, DateTime, Document};
use std::time::{Duration, Instant};

pub const SET_NAME: &str = "djongo";
pub const VERSION: &str = "7.0.0";
pub const MAX_WIRE_VERSION: i32 = 21;

pub fn hello(ctx: &mut Ctx<'_>, body: &Document) -> CmdResult<Document> {
    // Streaming monitors send topologyVersion + maxAwaitTimeMS and expect the
    // server to hold the reply until the topology changes or the time is up;
    // answering at once would make them spin. Our topology never changes.
    if body.contains_key("topologyVersion") {
        if let Some(ms) = opt_i64(body, "maxAwaitTimeMS")? {
            let deadline = Instant::now() + Duration::from_millis(ms.clamp(0, 60_000) as u64);
            while Instant::now() < deadline && !ctx.state.is_shutting_down() {
                std::thread::sleep(Duration::from_millis(50).min(deadline.saturating_duration_since(Instant::now())));
            }
        }
    }
    // The handshake names the application (fail points may target it).
    if let Some(Bson::Document(client)) = body.get("client") {
        if let Ok(name) = client.get_document("application").and_then(|a| a.get_str("name")) {
            ctx.conn.app_name = Some(name.to_string());
        }
    }
    let me = ctx.conn.local_address.clone();
    let name = body.keys().next().map(String::as_str).unwrap_or("hello");
    let mut reply = Document::new();
    if name == "hello" {
        reply.insert("isWritablePrimary", true);
    } else {
        reply.insert("ismaster", true);
    }
    reply.insert("topologyVersion", doc! {"processId": ctx.state.process_id, "counter": 0i64});
    reply.insert("hosts", vec![Bson::String(me.clone())]);
    reply.insert("setName", SET_NAME);
    reply.insert("setVersion", 1);
    reply.insert("electionId", ObjectId::from_bytes([0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 1]));
    reply.insert("primary", me.clone());
    reply.insert("me", me);
    reply.insert("secondary", false);
    reply.insert("maxBsonObjectSize", 16_777_216i32);
    reply.insert("maxMessageSizeBytes", 48_000_000i32);
    reply.insert("maxWriteBatchSize", 100_000i32);
    reply.insert("localTime", DateTime::now());
    reply.insert("logicalSessionTimeoutMinutes", 30i32);
    reply.insert("connectionId", ctx.conn.id);
    reply.insert("minWireVersion", 0i32);
    reply.insert("maxWireVersion", MAX_WIRE_VERSION);
    reply.insert("readOnly", false);
    // Our own extensions, for the djongo backend to detect (MongoDB sends
    // no such field): the savepoint commands in commands/sessions.rs, and
    // which djongo-rs serves (a process of another version will not join
    // a store's server) in which process (the backend logs it).
    reply.insert("djongo", doc! {"savepoints": true, "foreignKeys": true, "version": crate::VERSION, "pid": i64::from(std::process::id())});
    if let Some(Bson::String(user)) = body.get("saslSupportedMechs") {
        if ctx.state.users.contains(user) {
            reply.insert("saslSupportedMechs", vec![Bson::String("SCRAM-SHA-256".into())]);
        }
    }
    reply.insert("ok", 1.0);
    Ok(reply)
}

pub fn ping(_ctx: &mut Ctx<'_>, _body: &Document) -> CmdResult<Document> {
    Ok(doc! {"ok": 1.0})
}

pub fn build_info(_ctx: &mut Ctx<'_>, _body: &Document) -> CmdResult<Document> {
    Ok(doc! {
        "version": VERSION,
        "gitVersion": "djongo-rs",
        "versionArray": [7, 0, 0, 0],
        "bits": 64,
        "debug": false,
        "maxBsonObjectSize": 16_777_216i32,
        "storageEngines": ["redb"],
        "javascriptEngine": "none",
        "modules": [],
        "djongo": crate::VERSION,
        "ok": 1.0,
    })
}

pub fn get_parameter(ctx: &mut Ctx<'_>, body: &Document) -> CmdResult<Document> {
    let lifetime = i64::try_from(ctx.state.transaction_lifetime_limit.as_secs()).unwrap_or(i64::MAX);
    let known = doc! {
        "featureCompatibilityVersion": {"version": "7.0"},
        "transactionLifetimeLimitSeconds": lifetime,
        "ttlMonitorSleepSecs": i64::try_from(ctx.state.ttl_monitor_interval.as_secs()).unwrap_or(i64::MAX),
        "ttlMonitorEnabled": true,
        // Transactions never wait for one another: a conflict fails at once.
        "maxTransactionLockRequestTimeoutMillis": 0,
        "authenticationMechanisms": ["SCRAM-SHA-256"],
        // Drivers' test suites read it to decide whether fail points exist.
        "enableTestCommands": ctx.state.test_commands,
    };
    let all = matches!(body.get("getParameter"), Some(Bson::String(s)) if s == "*");
    let mut reply = Document::new();
    for (k, v) in &known {
        if all || body.contains_key(k) {
            reply.insert(k.clone(), v.clone());
        }
    }
    reply.insert("ok", 1.0);
    Ok(reply)
}

pub fn host_info(_ctx: &mut Ctx<'_>, _body: &Document) -> CmdResult<Document> {
    let cores = std::thread::available_parallelism().map(|n| n.get() as i32).unwrap_or(1);
    Ok(doc! {
        "system": {"currentTime": DateTime::now(), "numCores": cores, "cpuArch": std::env::consts::ARCH},
        "os": {"type": std::env::consts::OS},
        "extra": {},
        "ok": 1.0,
    })
}

pub fn server_status(ctx: &mut Ctx<'_>, _body: &Document) -> CmdResult<Document> {
    let state = ctx.state;
    Ok(doc! {
        "host": ctx.conn.local_address.clone(),
        "version": VERSION,
        "process": "djongo-server",
        "pid": i64::from(std::process::id()),
        "uptime": state.started.elapsed().as_secs_f64(),
        "uptimeMillis": state.started.elapsed().as_millis() as i64,
        "localTime": DateTime::now(),
        "storageEngine": {"name": "redb", "persistent": true, "supportsCommittedReads": true},
        "metrics": {"cursor": {"open": {"total": state.cursors.len() as i64}}},
        "transactions": {"currentOpen": state.sessions.active_transactions() as i64},
        "ok": 1.0,
    })
}

pub fn connection_status(ctx: &mut Ctx<'_>, _body: &Document) -> CmdResult<Document> {
    let users: Vec<Bson> = ctx.conn.auth.user().map(|(u, db)| Bson::Document(doc! {"user": u, "db": db})).into_iter().collect();
    Ok(doc! {"authInfo": {"authenticatedUsers": users, "authenticatedUserRoles": []}, "ok": 1.0})
}

pub fn whatsmyuri(ctx: &mut Ctx<'_>, _body: &Document) -> CmdResult<Document> {
    Ok(doc! {"you": ctx.conn.peer_address.clone(), "ok": 1.0})
}

pub fn get_cmd_line_opts(_ctx: &mut Ctx<'_>, _body: &Document) -> CmdResult<Document> {
    let argv: Vec<Bson> = std::env::args().map(Bson::String).collect();
    Ok(doc! {"argv": argv, "parsed": {}, "ok": 1.0})
}

pub fn get_log(_ctx: &mut Ctx<'_>, _body: &Document) -> CmdResult<Document> {
    Ok(doc! {"totalLinesWritten": 0, "log": [], "ok": 1.0})
}
