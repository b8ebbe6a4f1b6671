//! The operations running right now, as `$currentOp` lists them.
//!
//! Each command is registered while it runs, sharing (not copying) its
//! command document; `$currentOp` shows it without its bulk (`documents`,
//! `updates`, `deletes`), as mongod truncates large commands in its output.
use bson::{doc, Bson, Document};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Arguments that may hold a whole batch of documents.
const BULK: &[&str] = &["documents", "updates", "deletes"];

pub struct Op {
    pub connection: i64,
    pub client: String,
    pub app_name: Option<String>,
    pub command: Arc<Document>,
    pub started: Instant,
}

#[derive(Default)]
pub struct ActiveOps {
    next: AtomicI64,
    running: Mutex<HashMap<i64, Op>>,
}

/// Unregisters its operation when dropped.
pub struct Running<'a> {
    ops: &'a ActiveOps,
    opid: i64,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.ops.running.lock().remove(&self.opid);
    }
}

impl ActiveOps {
    /// Registers a command for as long as the returned guard lives.
    pub fn begin(&self, connection: i64, client: &str, app_name: Option<&str>, body: &Arc<Document>) -> Running<'_> {
        let opid = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let op = Op { connection, client: client.to_string(), app_name: app_name.map(str::to_string), command: Arc::clone(body), started: Instant::now() };
        self.running.lock().insert(opid, op);
        Running { ops: self, opid }
    }

    /// The running operations, by opid.
    pub fn snapshot(&self) -> Vec<(i64, Document)> {
        let running = self.running.lock();
        let mut out: Vec<(i64, Document)> = running
            .iter()
            .map(|(opid, op)| {
                let micros = op.started.elapsed().as_micros() as i64;
                let body = &op.command;
                let db = body.get_str("$db").unwrap_or("admin");
                let ns = match body.iter().next() {
                    Some((_, Bson::String(coll))) => format!("{db}.{coll}"),
                    _ => format!("{db}.$cmd"),
                };
                let command: Document = body
                    .iter()
                    .map(|(k, v)| match (BULK.contains(&k.as_str()), v) {
                        (true, Bson::Array(items)) => (k.clone(), Bson::Document(doc! {"$truncated": items.len() as i64})),
                        _ => (k.clone(), v.clone()),
                    })
                    .collect();
                let mut d = doc! {
                    "type": "op",
                    "desc": format!("conn{}", op.connection),
                    "connectionId": op.connection,
                    "client": op.client.clone(),
                    "active": true,
                    "opid": *opid,
                    "secs_running": micros / 1_000_000,
                    "microsecs_running": micros,
                    "op": "command",
                    "ns": ns,
                    "command": command,
                };
                if let Some(app) = &op.app_name {
                    d.insert("appName", app.clone());
                }
                if let Some(lsid) = op.command.get("lsid") {
                    d.insert("lsid", lsid.clone());
                }
                (*opid, d)
            })
            .collect();
        out.sort_by_key(|(opid, _)| *opid);
        out
    }
}
