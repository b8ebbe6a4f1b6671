//! Why a 50-document delete costs more in a larger collection (issue 18,
//! benches/engine/delete-growth.md), on redb alone: no commands, no
//! documents, only the index entries a delete of benches/orm's entries
//! removes, with the store's key layout (`storage/tables.rs`: collection id,
//! index id, encoded value, encoded `_id` → encoded `_id`), in one redb table
//! as the store keeps them.
//!
//!     cargo bench -p djongo-server --bench redb_pages [-- N ...]
//!
//! For each N (5,000 and 500,000 by default): N documents' entries in six
//! indexes (the unique `id`, and `headline`, `rating`, `at`, `n`,
//! `author_id` with the values benches/engine/delete_growth.py gives them),
//! then rounds of inserting the entries of 50 new documents in one durable
//! commit and removing them in another. Printed per N: the index tree's
//! shape (redb's `TableStats`), and per removal commit its median CPU time
//! (this thread, kernel time included), the bytes it hands to the kernel
//! (`wchar`), and those bytes in 4 KiB pages; the same with the removals in
//! key order; for a commit that removes 50 entries whose keys lie side by
//! side; and, per delete, for one commit that removes the entries of 30 such
//! deletes (what deferring removals to a batch would write).
//!
//! Two other key layouts are measured alongside, to see what one would buy:
//! `no value` stores nothing under a non-unique entry (its `_id` already ends
//! the key), and `a table per index` keeps each index in a redb table of its
//! own, so keys lose the 12-byte collection and index prefix.
mod measure;
use measure::{thread_cpu_ns, written_bytes};
use bson::{oid::ObjectId, Bson, DateTime};
use djongo_server::keyenc::encode_one;
use rand::{rngs::StdRng, Rng, SeedableRng};
use redb::{Database, ReadableTableMetadata, TableDefinition};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const TABLES: [&str; 6] = ["ix1", "ix2", "ix3", "ix4", "ix5", "ix6"];
const ROUNDS: usize = 30;
const DOOMED: usize = 50;
const COLLECTION: u64 = 7;


fn median(v: &mut [u64]) -> u64 {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

#[derive(Clone, Copy, PartialEq)]
enum Layout {
    /// As the store keeps them (`storage/tables.rs`).
    Store,
    NoValue,
    TablePerIndex,
}

impl Layout {
    fn name(self) -> &'static str {
        match self {
            Layout::Store => "the store's layout",
            Layout::NoValue => "no value",
            Layout::TablePerIndex => "a table per index",
        }
    }
}

/// One index entry: its table (an index of `TABLES`), key and value.
type Entry = (usize, Vec<u8>, Vec<u8>);

/// The index entries of document `i` of a collection of `size`, its
/// `headline` given or the benchmark's.
fn entries(rnd: &mut StdRng, layout: Layout, i: u64, size: u64, headline: Option<&str>) -> Vec<Entry> {
    let id = encode_one(&Bson::ObjectId(ObjectId::new()));
    let base = 1_704_067_200_000i64;
    let values = [
        Bson::Int64(i as i64 + 1),
        Bson::String(headline.map_or_else(|| format!("h{}", i % 40), str::to_string)),
        Bson::Double(rnd.random::<f64>() * 10.0),
        Bson::DateTime(DateTime::from_millis(base + rnd.random_range(0..10_000_000i64) * 1000)),
        Bson::Int64(rnd.random_range(0..size as i64)),
        Bson::Int64((i % 50) as i64),
    ];
    values
        .iter()
        .enumerate()
        .map(|(ix, value)| {
            let mut key = Vec::with_capacity(40);
            if layout != Layout::TablePerIndex {
                key.extend_from_slice(&COLLECTION.to_be_bytes());
                key.extend_from_slice(&(ix as u32 + 1).to_be_bytes());
            }
            key.extend_from_slice(&encode_one(value));
            // The unique `id` index is keyed by value alone.
            if ix > 0 {
                key.extend_from_slice(&id);
            }
            let value = if ix > 0 && layout == Layout::NoValue { Vec::new() } else { id.clone() };
            let table = if layout == Layout::TablePerIndex { ix } else { 0 };
            (table, key, value)
        })
        .collect()
}

fn table(name: &str) -> TableDefinition<'_, &'static [u8], &'static [u8]> {
    TableDefinition::new(name)
}

fn write(db: &Database, rows: &[Entry], remove: bool) -> (u64, u64) {
    let (cpu, bytes) = (thread_cpu_ns(), written_bytes());
    let txn = db.begin_write().expect("a write transaction");
    {
        // Only the tables the layout uses.
        let used = rows.iter().map(|(t, _, _)| *t + 1).max().unwrap_or(0);
        let mut tables: Vec<_> = TABLES[..used].iter().map(|name| txn.open_table(table(name)).expect("the table")).collect();
        for (t, k, v) in rows {
            if remove {
                tables[*t].remove(k.as_slice()).expect("a removal");
            } else {
                tables[*t].insert(k.as_slice(), v.as_slice()).expect("an insert");
            }
        }
    }
    txn.commit().expect("a durable commit");
    (thread_cpu_ns() - cpu, written_bytes() - bytes)
}

fn measure(size: u64, layout: Layout) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let db = Database::create(dir.path().join("pages.redb")).expect("the database");
    let mut rnd = StdRng::seed_from_u64(1);
    for start in (0..size).step_by(10_000) {
        let rows: Vec<_> = (start..size.min(start + 10_000)).flat_map(|i| entries(&mut rnd, layout, i, size, None)).collect();
        write(&db, &rows, false);
    }
    let stats = {
        let txn = db.begin_write().expect("a write transaction");
        let (mut height, mut leaves, mut branches) = (0, 0, 0);
        let used = if layout == Layout::TablePerIndex { TABLES.len() } else { 1 };
        for name in &TABLES[..used] {
            let s = txn.open_table(table(name)).expect("the table").stats().expect("the table's stats");
            height = height.max(s.tree_height());
            leaves += s.leaf_pages();
            branches += s.branch_pages();
        }
        format!("height {height}, {leaves} leaf and {branches} branch pages")
    };
    // Per measure: its name, and the CPU and bytes of each commit (counted
    // per `per` deletes of 50 documents).
    let mut measures: Vec<(&str, u64, Vec<u64>, Vec<u64>)> = vec![
        ("300 entries of 50 documents", 1, vec![], vec![]),
        ("the same, in key order", 1, vec![], vec![]),
        ("50 adjacent entries", 1, vec![], vec![]),
        ("the entries of 30 such deletes in one commit, per delete", ROUNDS as u64, vec![], vec![]),
    ];
    let mut next = size;
    let mut doomed_docs = |rnd: &mut StdRng, n: u64| -> Vec<Entry> {
        next += n;
        (next - n..next).flat_map(|i| entries(rnd, layout, i, size, Some("gone"))).collect()
    };
    let mut run = |measure: usize, rows: &[Entry]| {
        write(&db, rows, false);
        let (cpu, bytes) = write(&db, rows, true);
        measures[measure].2.push(cpu);
        measures[measure].3.push(bytes);
    };
    for _ in 0..ROUNDS {
        let doomed = doomed_docs(&mut rnd, DOOMED as u64);
        run(0, &doomed);
        let mut sorted = doomed_docs(&mut rnd, DOOMED as u64);
        sorted.sort();
        run(1, &sorted);
        // The `headline` ones alone.
        let adjacent: Vec<_> = doomed_docs(&mut rnd, DOOMED as u64).into_iter().skip(1).step_by(6).collect();
        run(2, &adjacent);
    }
    run(3, &doomed_docs(&mut rnd, (ROUNDS * DOOMED) as u64));
    println!("{size} documents, {} index entries, {}: {stats}", size * 6, layout.name());
    for (what, per, cpu, bytes) in &mut measures {
        let (cpu, bytes) = (median(cpu) / *per, median(bytes) / *per);
        println!("  removing {what}: CPU {:.2} ms, {:.0} KiB written ({} pages)", cpu as f64 / 1e6, bytes as f64 / 1024.0, bytes / 4096);
    }
}

fn main() {
    let sizes: Vec<u64> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    for size in if sizes.is_empty() { vec![5_000, 500_000] } else { sizes } {
        for layout in [Layout::Store, Layout::NoValue, Layout::TablePerIndex] {
            measure(size, layout);
        }
    }
}
