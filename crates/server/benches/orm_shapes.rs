//! The engine's own cost on the commands of benches/orm (issue 18), without a
//! socket, a driver or Python: each command runs through `run_command` on a
//! store loaded the way Django loads the benchmark's models (same documents,
//! same indexes).
//!
//!     cargo bench -p djongo-server --bench orm_shapes
//!     DJONGO_BENCH_ROWS=500000 cargo bench -p djongo-server --bench orm_shapes -- annotate
//!     DJONGO_BENCH_CPU=1 cargo bench -p djongo-server --bench orm_shapes
//!
//! Writes commit durably (fsync), as every acknowledged write does.
//! `DJONGO_BENCH_CPU=1` measures the thread's CPU time instead of the wall
//! clock: on a shared machine it moves much less with other work, but it
//! leaves out the time a write waits for the disk.
use bson::{doc, oid::ObjectId, Bson, DateTime, Document};
use criterion::measurement::{Measurement, ValueFormatter};
use criterion::{BatchSize, Criterion, Throughput};
use djongo_server::auth::{ConnAuth, Users};
use djongo_server::commands::run_command;
use djongo_server::state::{ConnInfo, ServerState, WRITE_LOCK_TIMEOUT};
use djongo_server::storage::Storage;
use std::cell::Cell;
use std::time::Duration;

// The allocator the engine runs with (the Python extension, the binary).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const AUTHORS: i64 = 50;
const BATCH: i64 = 1000;
const DB: &str = "bench";

struct Store {
    state: ServerState,
    conn: ConnInfo,
    rows: i64,
    _dir: tempfile::TempDir,
}

impl Store {
    fn run(&mut self, mut body: Document) -> Document {
        body.insert("$db", DB);
        let reply = run_command(&self.state, &mut self.conn, &body);
        assert_eq!(reply.get_f64("ok").ok(), Some(1.0), "{body} failed: {reply}");
        reply
    }
}

/// Row `i` of the benchmark's entries (benches/orm/bench.py `entry_fields`).
fn entry(i: i64, rows: i64) -> Document {
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
fn indexes() -> Vec<Bson> {
    let non_null = vec!["double", "string", "object", "array", "binData", "objectId", "bool", "date", "int", "timestamp", "long", "decimal", "regex"];
    let mut out = vec![Bson::Document(doc! {
        "key": {"id": 1}, "name": "benchapp_entry_pkey", "unique": true,
        "partialFilterExpression": {"id": {"$type": non_null}},
    })];
    for field in ["author_id", "headline", "n", "rating", "at"] {
        out.push(Bson::Document(doc! {"key": {field: 1}, "name": format!("benchapp_entry_{field}")}));
    }
    out
}

fn load() -> Store {
    let rows: i64 = std::env::var("DJONGO_BENCH_ROWS").ok().and_then(|v| v.parse().ok()).unwrap_or(5000);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let storage = Storage::open(dir.path()).expect("the store opens");
    let state = ServerState::new(storage, Users::default(), WRITE_LOCK_TIMEOUT, Duration::from_secs(60));
    let conn = ConnInfo::new(1, "bench".into(), "bench".into(), ConnAuth::owner());
    let mut store = Store { state, conn, rows, _dir: dir };
    store.run(doc! {"createIndexes": "benchapp_entry", "indexes": indexes()});
    let authors: Vec<Document> = (0..AUTHORS).map(|i| doc! {"_id": ObjectId::new(), "name": format!("author {i}"), "id": i + 1}).collect();
    store.run(doc! {"insert": "benchapp_author", "documents": authors});
    for start in (0..rows).step_by(BATCH as usize) {
        let batch: Vec<Document> = (start..rows.min(start + BATCH)).map(|i| entry(i, rows)).collect();
        store.run(doc! {"insert": "benchapp_entry", "documents": batch});
    }
    store
}

/// The pipeline Django's `Author.objects.annotate(Count('entry'), Avg('entry__n'))` compiles to.
fn annotate() -> Vec<Document> {
    vec![
        doc! {"$lookup": {"from": "benchapp_entry", "localField": "id", "foreignField": "author_id", "as": "__djongo_join1"}},
        doc! {"$unwind": {"path": "$__djongo_join1", "preserveNullAndEmptyArrays": true}},
        doc! {"$group": {
            "_id": {"g0": {"$ifNull": ["$id", null]}, "g1": {"$ifNull": ["$name", null]}},
            "a0": {"$sum": {"$cond": [{"$ne": [{"$ifNull": ["$__djongo_join1.id", null]}, null]}, 1, 0]}},
            "a1": {"$avg": "$__djongo_join1.n"},
        }},
        doc! {"$project": {"_id": 0, "c0": "$_id.g0", "c1": "$_id.g1", "c2": "$a0", "c3": "$a1"}},
    ]
}

fn bench<M: Measurement>(c: &mut Criterion<M>, clock: &str) {
    let mut store = load();
    let rows = store.rows;
    let mut g = c.benchmark_group(format!("{rows} entries{clock}"));
    g.sample_size(20);
    let next = Cell::new(0i64);
    g.bench_function("get_pk", |b| {
        b.iter(|| {
            next.set((next.get() * 7919 + 1) % rows);
            store.run(doc! {"find": "benchapp_entry", "filter": {"id": next.get() + 1}, "limit": 1, "singleBatch": true})
        })
    });
    g.bench_function("range_sort", |b| {
        b.iter(|| store.run(doc! {"find": "benchapp_entry", "filter": {"n": {"$gte": rows / 2}}, "sort": {"at": -1}, "limit": 20}))
    });
    g.bench_function("count", |b| {
        b.iter(|| store.run(doc! {"aggregate": "benchapp_entry", "pipeline": [{"$match": {"rating": {"$lt": 5.0}}}, {"$count": "c0"}], "cursor": {}}))
    });
    g.bench_function("select_related", |b| {
        let pipeline = vec![
            doc! {"$lookup": {"from": "benchapp_author", "localField": "author_id", "foreignField": "id", "as": "__djongo_join1"}},
            doc! {"$unwind": "$__djongo_join1"},
            doc! {"$limit": 20},
        ];
        b.iter(|| store.run(doc! {"aggregate": "benchapp_entry", "pipeline": pipeline.clone(), "cursor": {}}))
    });
    g.bench_function("annotate", |b| b.iter(|| store.run(doc! {"aggregate": "benchapp_author", "pipeline": annotate(), "cursor": {}})));
    g.bench_function("update", |b| {
        b.iter(|| store.run(doc! {"update": "benchapp_entry", "updates": [{"q": {"n": {"$lt": 50}}, "u": {"$set": {"rating": 1.5}}, "multi": true}]}))
    });
    let fresh = Cell::new(rows + 1_000_000);
    let take = |n: i64| {
        let first = fresh.get();
        fresh.set(first + n);
        first
    };
    g.bench_function("create", |b| {
        b.iter(|| {
            let i = take(1);
            store.run(doc! {"insert": "benchapp_entry", "documents": [entry(i, rows)]})
        })
    });
    g.bench_function("bulk_create", |b| {
        b.iter(|| {
            let first = take(BATCH);
            let docs: Vec<Document> = (first..first + BATCH).map(|i| entry(i, rows)).collect();
            store.run(doc! {"insert": "benchapp_entry", "documents": docs})
        })
    });
    let store = std::cell::RefCell::new(store);
    g.bench_function("delete", |b| {
        b.iter_batched(
            || {
                let first = take(50);
                let docs: Vec<Document> = (first..first + 50)
                    .map(|i| {
                        let mut d = entry(i, rows);
                        d.insert("headline", "gone");
                        d
                    })
                    .collect();
                store.borrow_mut().run(doc! {"insert": "benchapp_entry", "documents": docs});
            },
            |()| store.borrow_mut().run(doc! {"delete": "benchapp_entry", "deletes": [{"q": {"headline": "gone"}, "limit": 0}]}),
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

/// The calling thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`), in nanoseconds.
struct CpuTime;

fn thread_cpu_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

impl Measurement for CpuTime {
    type Intermediate = u64;
    type Value = u64;

    fn start(&self) -> u64 {
        thread_cpu_ns()
    }
    fn end(&self, started: u64) -> u64 {
        thread_cpu_ns().saturating_sub(started)
    }
    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }
    fn zero(&self) -> u64 {
        0
    }
    fn to_f64(&self, v: &u64) -> f64 {
        *v as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        &Nanoseconds
    }
}

/// Shows nanoseconds as criterion shows durations (ns, µs, ms, s).
struct Nanoseconds;

impl ValueFormatter for Nanoseconds {
    fn scale_values(&self, typical: f64, values: &mut [f64]) -> &'static str {
        let (factor, unit) = match typical {
            t if t < 1e3 => (1.0, "ns"),
            t if t < 1e6 => (1e-3, "µs"),
            t if t < 1e9 => (1e-6, "ms"),
            _ => (1e-9, "s"),
        };
        values.iter_mut().for_each(|v| *v *= factor);
        unit
    }
    fn scale_throughputs(&self, _typical: f64, throughput: &Throughput, values: &mut [f64]) -> &'static str {
        let per = match throughput {
            Throughput::Elements(n) | Throughput::Bytes(n) | Throughput::BytesDecimal(n) => *n as f64,
        };
        values.iter_mut().for_each(|v| *v = per * 1e9 / *v);
        "/s"
    }
    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns"
    }
}

fn main() {
    if std::env::var_os("DJONGO_BENCH_CPU").is_some() {
        let mut c = Criterion::default().with_measurement(CpuTime).configure_from_args();
        bench(&mut c, " (CPU time)");
        c.final_summary();
    } else {
        let mut c = Criterion::default().configure_from_args();
        bench(&mut c, "");
        c.final_summary();
    }
}
