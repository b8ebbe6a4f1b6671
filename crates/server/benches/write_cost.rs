//! What one write costs the engine, per operation of benches/orm and of the
//! ODM benchmark's updates: wall time, the calling thread's CPU time, and the
//! bytes the process hands to the kernel (`wchar` of `/proc/self/io`: every
//! page a commit writes, whether or not the disk has it yet), on a store
//! loaded as benches/orm loads it (issue 18's write path).
//!
//!     cargo bench -p djongo-server --bench write_cost
//!     DJONGO_BENCH_ROWS=500000 cargo bench -p djongo-server --bench write_cost
//!
//! Each operation runs `DJONGO_BENCH_REPEAT` times (30 by default; a tenth as
//! many for bulk_create), interleaved with the others, and the median of
//! each measure is printed. `DJONGO_BENCH_OPS=bulk_create,delete 50` runs
//! only the operations named (bulk_create then in every round). Writes commit durably (fsync), as every
//! acknowledged write does. The `retryable` rows send a session id and a
//! txnNumber, as drivers do outside a transaction, so the write also stores
//! its retry record (`retryable.rs`); the others do not. The `counted` rows
//! number the entry as Django's create() does (`djongoCounter`: the id from
//! the table's `__schema__` document, which also records its columns; the
//! `(120 columns)` one from a document as large as a 120-field model's).
use bson::{doc, spec::BinarySubtype, Binary, Document};
use std::time::Instant;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod measure;
mod orm_data;

use measure::{thread_cpu_ns, written_bytes};
use orm_data::{entry, Store, BATCH};

#[derive(Default)]
struct Samples {
    wall_ns: Vec<u64>,
    cpu_ns: Vec<u64>,
    bytes: Vec<u64>,
}

fn median(v: &mut [u64]) -> u64 {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

/// The session every `retryable` write runs in, with its next txnNumber.
struct Session {
    lsid: Document,
    txn_number: i64,
}

impl Session {
    fn tag(&mut self, mut body: Document) -> Document {
        self.txn_number += 1;
        body.insert("lsid", self.lsid.clone());
        body.insert("txnNumber", self.txn_number);
        body
    }
}

const OPS: &[&str] = &[
    "create",
    "create retryable",
    "create counted retryable",
    "create counted (120 columns) retryable",
    "create uncounted (120 columns) retryable",
    "bulk_create",
    "bulk_create in a transaction",
    "update one",
    "update one retryable",
    "update one by _id retryable",
    "delete 50",
    "delete 50 retryable",
];

fn main() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let rows = orm_data::rows();
    let repeat: usize = std::env::var("DJONGO_BENCH_REPEAT").ok().and_then(|v| v.parse().ok()).unwrap_or(30);
    let loaded = Instant::now();
    let mut store: Store = orm_data::load(dir.path(), rows);
    eprintln!("loaded {rows} entries in {:.1} s", loaded.elapsed().as_secs_f64());
    // The tables' records, as Django's migrations leave them.
    let column = |name: String| doc! {"name": name, "type": "varchar", "null": false, "primary_key": false, "unique": false, "auto": false, "default": null, "index": null, "collation": null};
    let entry_columns: Vec<Document> = ["id", "author_id", "headline", "n", "rating", "at", "body"].iter().map(|c| column(c.to_string())).collect();
    let wide_columns: Vec<Document> = (0..120).map(|i| column(format!("field{i}"))).collect();
    store.run(doc! {"insert": "__schema__", "documents": [
        {"name": "benchapp_entry", "auto": {"field_names": ["id"], "seq": rows}, "columns": entry_columns},
        {"name": "wide", "auto": {"field_names": ["id"], "seq": 0}, "columns": wide_columns},
    ]});
    store.run(doc! {"createIndexes": "__schema__", "indexes": [{"key": {"name": 1}, "name": "name_1", "unique": true}]});
    let file = dir.path().join(djongo_server::storage::DATA_FILE);
    let file_size = || std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
    let size_before = file_size();
    let mut session = Session { lsid: doc! {"id": Binary { subtype: BinarySubtype::Uuid, bytes: vec![7; 16] }}, txn_number: 0 };
    let mut fresh = rows + 1_000_000;
    let mut take = |n: i64| {
        fresh += n;
        fresh - n
    };
    let only: Option<Vec<String>> = std::env::var("DJONGO_BENCH_OPS").ok().map(|v| v.split(',').map(str::to_string).collect());
    let runs = |name: &str| only.as_ref().is_none_or(|only| only.iter().any(|o| o == name));
    let mut samples: Vec<Samples> = OPS.iter().map(|_| Samples::default()).collect();
    for round in 0..repeat {
        for (op, name) in OPS.iter().enumerate() {
            let retryable = name.ends_with("retryable");
            if !runs(name) || (name.starts_with("bulk_create") && only.is_none() && round % 10 != 0) {
                continue;
            }
            let body = match name.trim_end_matches(" retryable") {
                "create" => doc! {"insert": "benchapp_entry", "documents": [entry(take(1), rows)]},
                // The same insert with its id given: what the counter adds.
                "create uncounted (120 columns)" => doc! {"insert": "wide", "documents": [entry(take(1), rows)]},
                "create counted" | "create counted (120 columns)" => {
                    let table = if name.contains("120") { "wide" } else { "benchapp_entry" };
                    let mut d = entry(take(1), rows);
                    d.remove("id");
                    // With the record's digest asked for, as Django's create()
                    // asks for it or sends the one it kept (the same work here).
                    let counter = doc! {"collection": "__schema__", "filter": {"name": table}, "path": "auto.seq", "field": "id", "digest": null};
                    doc! {"insert": table, "documents": [d], "djongoCounter": counter}
                }
                "bulk_create" | "bulk_create in a transaction" => {
                    let first = take(BATCH);
                    doc! {"insert": "benchapp_entry", "documents": (first..first + BATCH).map(|i| entry(i, rows)).collect::<Vec<_>>()}
                }
                // Django's save(): the row by its primary key (the `id`
                // field's unique index), a new value each time.
                "update one" => {
                    let id = (op as i64 * 7919 + round as i64 * 104_729) % rows + 1;
                    doc! {"update": "benchapp_entry", "updates": [{"q": {"id": id}, "u": {"$set": {"headline": format!("u{round}")}}, "multi": true}]}
                }
                // django-mongodb-backend's: the document by `_id`.
                "update one by _id" => {
                    let id = (op as i64 * 7919 + round as i64 * 104_729) % rows + 1;
                    let found = store.run(doc! {"find": "benchapp_entry", "filter": {"id": id}, "projection": {"_id": 1}, "limit": 1});
                    let oid = found.get_document("cursor").and_then(|c| c.get_array("firstBatch")).ok().and_then(|b| b.first()).and_then(|d| d.as_document()).and_then(|d| d.get("_id")).cloned().expect("the entry exists");
                    doc! {"update": "benchapp_entry", "updates": [{"q": {"_id": oid}, "u": {"$set": {"headline": format!("u{round}")}}, "multi": true}]}
                }
                _ => {
                    // 50 rows to delete, inserted beforehand (not measured).
                    let first = take(50);
                    let doomed: Vec<Document> = (first..first + 50)
                        .map(|i| {
                            let mut d = entry(i, rows);
                            d.insert("headline", "gone");
                            d
                        })
                        .collect();
                    store.run(doc! {"insert": "benchapp_entry", "documents": doomed});
                    doc! {"delete": "benchapp_entry", "deletes": [{"q": {"headline": "gone"}, "limit": 0}]}
                }
            };
            let body = if retryable { session.tag(body) } else { body };
            // Django's bulk_create(): the insert in a transaction, and its commit.
            let commit = name.ends_with("in a transaction").then(|| {
                let mut body = session.tag(body.clone());
                body.insert("startTransaction", true);
                body.insert("autocommit", false);
                let ends = doc! {"commitTransaction": 1, "$db": "admin", "lsid": session.lsid.clone(), "txnNumber": session.txn_number, "autocommit": false};
                (body, ends)
            });
            let (w0, c0, b0) = (Instant::now(), thread_cpu_ns(), written_bytes());
            match commit {
                Some((body, ends)) => {
                    store.run(body);
                    store.run(ends);
                }
                None => {
                    store.run(body);
                }
            }
            let s = &mut samples[op];
            s.bytes.push(written_bytes() - b0);
            s.cpu_ns.push(thread_cpu_ns() - c0);
            s.wall_ns.push(w0.elapsed().as_nanos() as u64);
        }
    }
    let bulk_rounds = if only.is_some() { repeat } else { repeat.div_ceil(10) };
    println!("{rows} entries, median of {repeat} (bulk_create: of {bulk_rounds}):");
    println!("the store's file: {:.1} MB after loading, {:.1} MB after the writes", size_before as f64 / 1e6, file_size() as f64 / 1e6);
    println!("| operation | wall | CPU | bytes written |");
    println!("| --- | ---: | ---: | ---: |");
    for (name, s) in OPS.iter().zip(samples.iter_mut()).filter(|(name, _)| runs(name)) {
        let (wall, cpu, bytes) = (median(&mut s.wall_ns), median(&mut s.cpu_ns), median(&mut s.bytes));
        println!("| {name} | {:.2} ms | {:.2} ms | {:.1} KB |", wall as f64 / 1e6, cpu as f64 / 1e6, bytes as f64 / 1024.0);
    }
}
