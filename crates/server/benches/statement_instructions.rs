//! A fixed number of benches/orm's reads, each as the store's own client
//! sends it, for counting instructions per command with callgrind (issue 18):
//! criterion decides how many iterations it runs, this does not, so the
//! count inside `counted` divided by the calls is the cost of one command.
//!
//!     cargo bench -p djongo-server --bench statement_instructions --no-run
//!     valgrind --tool=callgrind --toggle-collect='statement_instructions::counted' \
//!         target/release/deps/statement_instructions-<hash> get_pk in-process 2000
//!
//! Shapes: `get_pk` (Django's `Entry.objects.get(pk=k)`), `filter_indexed`
//! (`list(Entry.objects.filter(headline=h)[:20])`). Modes: `direct` (the
//! command layer, as the wire server calls it for a decoded message) and
//! `in-process` (`InProcessServer::run`, what the Python extension calls in
//! the caller's thread). No clock is read, so it runs under valgrind.
use bson::{doc, Document, RawDocumentBuf};
use djongo_server::commands::run_shared_command_encoded;
use djongo_server::in_process::InProcessServer;
use std::sync::Arc;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[allow(dead_code)] // orm_shapes uses the rest
mod orm_data;

/// Django's columns of an entry, renamed as its SELECT names them.
fn columns() -> Document {
    doc! {"_id": 0, "c0": "$id", "c1": "$author_id", "c2": "$headline", "c3": "$n", "c4": "$rating", "c5": "$at", "c6": "$body"}
}

/// The `i`th command of `shape`, as `StoreClient.find` builds it.
fn command(shape: &str, i: i64, rows: i64) -> Document {
    let k = (i * 7919 + 1) % rows;
    match shape {
        "get_pk" => doc! {"find": "benchapp_entry", "filter": {"id": k + 1}, "projection": columns(), "limit": 21i64, "batchSize": 21i64, "$db": orm_data::DB},
        "filter_indexed" => {
            doc! {"find": "benchapp_entry", "filter": {"headline": format!("h{}", k % 250)}, "projection": columns(), "limit": 20i64, "batchSize": 20i64, "$db": orm_data::DB}
        }
        other => panic!("unknown shape {other}: get_pk or filter_indexed"),
    }
}

/// Runs the commands; the only place callgrind collects. The commands are
/// built outside it.
#[inline(never)]
fn counted(run: &mut dyn FnMut(Document) -> RawDocumentBuf, commands: Vec<Document>) -> usize {
    let mut rows = 0;
    for body in commands {
        let reply = run(body);
        let batch = reply.get_document("cursor").and_then(|c| c.get_array("firstBatch")).expect("a find's reply");
        rows += batch.into_iter().count();
    }
    rows
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let shape = args.first().map_or("get_pk", String::as_str).to_string();
    let mode = args.get(1).map_or("direct", String::as_str).to_string();
    let calls: i64 = args.get(2).and_then(|n| n.parse().ok()).unwrap_or(1000);
    let rows = orm_data::rows();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = orm_data::load(dir.path(), rows);
    let warm_up = 200;
    let commands = |from: i64, n: i64| (from..from + n).map(|i| command(&shape, i, rows)).collect::<Vec<_>>();
    let returned = match mode.as_str() {
        "direct" => {
            let orm_data::Store { state, mut conn } = store;
            // Encoded, as the wire server and the in-process path reply.
            let mut run = |body: Document| run_shared_command_encoded(&state, &mut conn, &Arc::new(body)).expect("an encodable reply");
            commands(0, warm_up).into_iter().for_each(|b| drop(run(b)));
            counted(&mut run, commands(warm_up, calls))
        }
        "in-process" => {
            drop(store);
            let server = InProcessServer::start(dir.path(), None).expect("the store is served");
            let mut run = |body: Document| server.run(body).expect("served here").expect("an encodable reply");
            commands(0, warm_up).into_iter().for_each(|b| drop(run(b)));
            let returned = counted(&mut run, commands(warm_up, calls));
            server.stop();
            returned
        }
        other => panic!("unknown mode {other}: direct or in-process"),
    };
    println!("{shape} {mode}: {calls} commands, {returned} rows");
}
