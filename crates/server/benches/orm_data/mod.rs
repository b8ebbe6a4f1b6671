//! benches/orm's data in a store of its own, as Django loads it: the same
//! documents and indexes (`benches/orm/bench.py`). Shared by the benches.
use bson::{doc, oid::ObjectId, Bson, DateTime, Document, RawDocumentBuf};
use djongo_server::auth::{ConnAuth, Users};
use djongo_server::commands::{run_command, run_shared_command_encoded};
use djongo_server::state::{ConnInfo, ServerState, WRITE_LOCK_TIMEOUT};
use djongo_server::storage::Storage;
use std::path::Path;
use std::time::Duration;

pub const AUTHORS: i64 = 50;
pub const BATCH: i64 = 1000;
pub const DB: &str = "bench";

pub struct Store {
    pub state: ServerState,
    pub conn: ConnInfo,
}

impl Store {
    pub fn run(&mut self, mut body: Document) -> Document {
        if !body.contains_key("$db") {
            body.insert("$db", DB);
        }
        let reply = run_command(&self.state, &mut self.conn, &body);
        assert_eq!(reply.get_f64("ok").ok(), Some(1.0), "{body} failed: {reply}");
        reply
    }

    /// Runs `body` as a connection does: the reply encoded as it goes to
    /// the client (the socket's bytes, the in-process client's reply).
    /// Apart from its callgrind name, as is `encoded_reply`.
    #[inline(never)]
    #[allow(dead_code)] // orm_shapes' only
    pub fn run_encoded(&mut self, mut body: Document) -> RawDocumentBuf {
        if !body.contains_key("$db") {
            body.insert("$db", DB);
        }
        let reply = self.encoded_reply(body);
        assert_eq!(reply.get_f64("ok").ok(), Some(1.0), "failed: {reply:?}");
        reply
    }

    #[inline(never)]
    #[allow(dead_code)]
    fn encoded_reply(&mut self, body: Document) -> RawDocumentBuf {
        run_shared_command_encoded(&self.state, &mut self.conn, &std::sync::Arc::new(body)).expect("an encodable reply")
    }
}

/// Row `i` of the benchmark's entries (benches/orm/bench.py `entry_fields`).
pub fn entry(i: i64, rows: i64) -> Document {
    let base = 1_704_067_200_000i64; // 2024-01-01T00:00:00Z
    doc! {
        "_id": ObjectId::new(),
        "author_id": i % AUTHORS + 1,
        "headline": format!("h{}", i % 250),
        "n": i,
        "rating": ((i * 7919) % 1000) as f64 / 100.0,
        "at": DateTime::from_millis(base + ((i * 104_729) % rows) * 1000),
        "body": "lorem ipsum ".repeat(8),
        "id": i + 1,
    }
}

/// The unique index Django's primary key becomes (a partial index on the
/// non-null types), and one index per `db_index`/foreign key.
fn primary_key(table: &str) -> Bson {
    let non_null = vec!["double", "string", "object", "array", "binData", "objectId", "bool", "date", "int", "timestamp", "long", "decimal", "regex"];
    Bson::Document(doc! {
        "key": {"id": 1}, "name": format!("{table}_pkey"), "unique": true,
        "partialFilterExpression": {"id": {"$type": non_null}},
    })
}

fn indexes() -> Vec<Bson> {
    let mut out = vec![primary_key("benchapp_entry")];
    for field in ["author_id", "headline", "n", "rating", "at"] {
        out.push(Bson::Document(doc! {"key": {field: 1}, "name": format!("benchapp_entry_{field}")}));
    }
    out
}

/// The number of entries: `DJONGO_BENCH_ROWS`, 5,000 by default.
pub fn rows() -> i64 {
    std::env::var("DJONGO_BENCH_ROWS").ok().and_then(|v| v.parse().ok()).unwrap_or(5000)
}

/// A store in `dir` holding the benchmark's authors and `rows` entries.
pub fn load(dir: &Path, rows: i64) -> Store {
    let storage = Storage::open(dir).expect("the store opens");
    let state = ServerState::new(storage, Users::default(), WRITE_LOCK_TIMEOUT, Duration::from_secs(60));
    let conn = ConnInfo::new(1, "bench".into(), "bench".into(), ConnAuth::owner());
    let mut store = Store { state, conn };
    store.run(doc! {"createIndexes": "benchapp_entry", "indexes": indexes()});
    store.run(doc! {"createIndexes": "benchapp_author", "indexes": [primary_key("benchapp_author")]});
    let authors: Vec<Document> = (0..AUTHORS).map(|i| doc! {"_id": ObjectId::new(), "name": format!("author {i}"), "id": i + 1}).collect();
    store.run(doc! {"insert": "benchapp_author", "documents": authors});
    for start in (0..rows).step_by(BATCH as usize) {
        let batch: Vec<Document> = (start..rows.min(start + BATCH)).map(|i| entry(i, rows)).collect();
        store.run(doc! {"insert": "benchapp_entry", "documents": batch});
    }
    store
}
