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
use bson::{doc, Document};
use criterion::measurement::{Measurement, ValueFormatter};
use criterion::{BatchSize, Criterion, Throughput};
use std::cell::Cell;

// The allocator the engine runs with (the Python extension, the binary).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod measure;
mod orm_data;

use measure::thread_cpu_ns;
use orm_data::{entry, Store, BATCH};

/// The benchmark's store, in a temporary directory that lives as long as it.
fn load() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = orm_data::load(dir.path(), orm_data::rows());
    (store, dir)
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
    let (mut store, _dir) = load();
    let rows = orm_data::rows();
    let mut g = c.benchmark_group(format!("{rows} entries{clock}"));
    g.sample_size(20);
    let next = Cell::new(0i64);
    g.bench_function("get_pk", |b| {
        b.iter(|| {
            next.set((next.get() * 7919 + 1) % rows);
            store.run_encoded(doc! {"find": "benchapp_entry", "filter": {"id": next.get() + 1}, "limit": 1, "singleBatch": true})
        })
    });
    // What Django sends for `Entry.objects.get(pk=...)`: its columns renamed.
    g.bench_function("get_pk_projected", |b| {
        b.iter(|| {
            next.set((next.get() * 7919 + 1) % rows);
            store.run_encoded(doc! {"find": "benchapp_entry", "filter": {"id": next.get() + 1},
                "projection": {"_id": 0, "c0": "$id", "c1": "$author_id", "c2": "$headline", "c3": "$n", "c4": "$rating", "c5": "$at", "c6": "$body"},
                "limit": 21, "singleBatch": true})
        })
    });
    // `list(Entry.objects.filter(headline=h)[:20])`: 20 of the rows with one headline.
    g.bench_function("filter_indexed", |b| {
        b.iter(|| {
            next.set((next.get() * 7919 + 1) % rows);
            store.run_encoded(doc! {"find": "benchapp_entry", "filter": {"headline": format!("h{}", next.get() % 250)},
                "projection": {"_id": 0, "c0": "$id", "c1": "$author_id", "c2": "$headline", "c3": "$n", "c4": "$rating", "c5": "$at", "c6": "$body"},
                "limit": 20})
        })
    });
    g.bench_function("range_sort", |b| {
        b.iter(|| store.run_encoded(doc! {"find": "benchapp_entry", "filter": {"n": {"$gte": rows / 2}}, "sort": {"at": -1}, "limit": 20}))
    });
    g.bench_function("count", |b| {
        b.iter(|| store.run(doc! {"aggregate": "benchapp_entry", "pipeline": [{"$match": {"rating": {"$lt": 5.0}}}, {"$count": "c0"}], "cursor": {}}))
    });
    // `Entry.objects.count()`: the admin changelist's COUNT(*).
    g.bench_function("count_all", |b| {
        b.iter(|| store.run(doc! {"aggregate": "benchapp_entry", "pipeline": [{"$count": "c0"}], "cursor": {}}))
    });
    // A count over a join (`$count` after `$lookup` and `$unwind`), and the
    // same with a stage between that keeps it off the join's streamed
    // group (the joined documents decoded): what the fused path saves.
    let count_join = |between: bool| {
        let mut pipeline = vec![
            doc! {"$lookup": {"from": "benchapp_entry", "localField": "id", "foreignField": "author_id", "as": "__djongo_join1"}},
            doc! {"$unwind": "$__djongo_join1"},
            doc! {"$count": "c0"},
        ];
        if between {
            pipeline.insert(2, doc! {"$project": {"not_a_field": 0}});
        }
        doc! {"aggregate": "benchapp_author", "pipeline": pipeline, "cursor": {}}
    };
    g.bench_function("count_join", |b| b.iter(|| store.run(count_join(false))));
    g.bench_function("count_join_decoded", |b| b.iter(|| store.run(count_join(true))));
    g.bench_function("select_related", |b| {
        let pipeline = vec![
            doc! {"$lookup": {"from": "benchapp_author", "localField": "author_id", "foreignField": "id", "as": "__djongo_join1"}},
            doc! {"$unwind": "$__djongo_join1"},
            doc! {"$limit": 20},
        ];
        b.iter(|| store.run_encoded(doc! {"aggregate": "benchapp_entry", "pipeline": pipeline.clone(), "cursor": {}}))
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
