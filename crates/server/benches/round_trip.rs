//! What the store's socket costs a point read (issue 18, docs/statement-path.md):
//! Django's `Entry.objects.get(pk=k)` command run through `run_command` in the
//! calling thread, against the same command sent as an OP_MSG over a Unix
//! socket to a server (`djongo_server::spawn`) holding an identical store.
//!
//!     cargo bench -p djongo-server --bench round_trip
//!     DJONGO_BENCH_ROUNDS=20 DJONGO_BENCH_CALLS=500 cargo bench -p djongo-server --bench round_trip
//!
//! Between calls the caller may spin for a while (`gap`), as the Python
//! process does Django's own work between two statements: a server thread
//! that has gone to sleep in the meantime has to be woken, which a back-to-back
//! loop never shows. The ways alternate in rounds, so load on a shared
//! machine hits them alike. Printed: median and 90th percentile wall time per
//! call, and the mean CPU time of the whole process (the server's threads
//! included) from the start to the end of a call.
use bson::{doc, Document, RawDocumentBuf};
use djongo_server::{wire, Bind, ServerConfig};
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod orm_data;

/// The command the backend's store client sends for `get(pk=k)` (Django's
/// SELECT of the seven columns, `LIMIT 21`).
fn get_pk(k: i64) -> Document {
    doc! {
        "find": "benchapp_entry",
        "filter": {"id": {"$eq": k}},
        "projection": {"_id": 0, "c0": "$id", "c1": "$author_id", "c2": "$headline", "c3": "$n", "c4": "$rating", "c5": "$at", "c6": "$body"},
        "limit": 21i64,
        "batchSize": 21i64,
        "$db": orm_data::DB,
    }
}

fn assert_one_row(reply: &Document) {
    let rows = reply.get_document("cursor").and_then(|c| c.get_array("firstBatch")).map(Vec::len).ok();
    assert_eq!(rows, Some(1), "{reply}");
}

/// The store's client, reduced to what a statement does: frame, send, read
/// the reply's body.
struct Client {
    stream: UnixStream,
    request_id: i32,
    /// How long to poll for the reply before sleeping in `read` (zero: sleep at once).
    poll: Duration,
}

impl Client {
    fn find(&mut self, body: &Document) -> RawDocumentBuf {
        self.request_id += 1;
        let request = wire::encode_msg(self.request_id, 0, 0, body).expect("the command encodes");
        self.stream.write_all(&request).expect("the request is sent");
        if !self.poll.is_zero() {
            self.wait_polling();
        }
        let (header, payload) = wire::read_message(&mut self.stream).expect("a reply").expect("a reply, not the end");
        assert_eq!(header.response_to, self.request_id);
        RawDocumentBuf::from_bytes(payload[5..].to_vec()).expect("the reply is BSON")
    }
}

impl Client {
    /// Spins until the reply is there (or `poll` has passed), so that the
    /// thread is still running when it comes and need not be woken.
    fn wait_polling(&mut self) {
        let until = Instant::now() + self.poll;
        let mut byte = [0u8; 1];
        let flags = rustix::net::RecvFlags::PEEK | rustix::net::RecvFlags::DONTWAIT;
        while Instant::now() < until {
            match rustix::net::recv(&self.stream, &mut byte, flags) {
                Err(rustix::io::Errno::AGAIN) => std::hint::spin_loop(),
                _ => break,
            }
        }
    }
}

fn spin(gap: Duration) {
    let until = Instant::now() + gap;
    while Instant::now() < until {
        std::hint::spin_loop();
    }
}

fn process_cpu_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

#[derive(Default)]
struct Samples {
    wall_ns: Vec<u64>,
    cpu_ns: u64,
    calls: u64,
}

impl Samples {
    fn percentile(&mut self, p: usize) -> f64 {
        self.wall_ns.sort_unstable();
        self.wall_ns[(self.wall_ns.len() - 1) * p / 100] as f64 / 1000.0
    }
}

/// `calls` calls of `call`, each after `gap` of spinning (not timed).
fn block(samples: &mut Samples, calls: usize, gap: Duration, mut call: impl FnMut(i64)) {
    let mut k = 0i64;
    for _ in 0..calls {
        k = (k * 7919 + 1) % 5000;
        if !gap.is_zero() {
            spin(gap);
        }
        let (t0, c0) = (Instant::now(), process_cpu_ns());
        call(k + 1);
        let (wall, cpu) = (t0.elapsed().as_nanos() as u64, process_cpu_ns() - c0);
        samples.wall_ns.push(wall);
        samples.cpu_ns += cpu;
        samples.calls += 1;
    }
}

fn main() {
    let env = |name: &str, default: usize| std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    let (rounds, calls) = (env("DJONGO_BENCH_ROUNDS", 10), env("DJONGO_BENCH_CALLS", 300));
    let rows = orm_data::rows();
    let direct_dir = tempfile::tempdir().expect("a temporary directory");
    let mut direct = orm_data::load(direct_dir.path(), rows);
    let served_dir = tempfile::tempdir().expect("a temporary directory");
    drop(orm_data::load(served_dir.path(), rows));
    let socket = served_dir.path().join("bench.sock");
    let server = djongo_server::spawn(ServerConfig { data_dir: served_dir.path().to_owned(), bind: Bind::Unix(socket.clone()) }).expect("the server starts");
    let connect = |poll| Client { stream: UnixStream::connect(&socket).expect("the server accepts"), request_id: 0, poll };
    let mut client = connect(Duration::ZERO);
    let mut polling = connect(Duration::from_micros(100));
    let ways = ["in the calling thread (run_command)", "over the Unix socket", "over the Unix socket, polling up to 100 µs for the reply"];
    let gaps = [0u64, 50, 200, 1000].map(Duration::from_micros);
    let mut samples: Vec<Vec<Samples>> = gaps.iter().map(|_| ways.iter().map(|_| Samples::default()).collect()).collect();
    // Warm up both: caches, pages, the server's connection thread.
    block(&mut Samples::default(), 200, Duration::ZERO, |k| assert_one_row(&direct.run(get_pk(k))));
    block(&mut Samples::default(), 200, Duration::ZERO, |k| assert_one_row(&Document::try_from(&*client.find(&get_pk(k))).expect("a document")));
    block(&mut Samples::default(), 200, Duration::ZERO, |k| assert_one_row(&Document::try_from(&*polling.find(&get_pk(k))).expect("a document")));
    for _ in 0..rounds {
        for (g, gap) in gaps.iter().enumerate() {
            block(&mut samples[g][0], calls, *gap, |k| {
                std::hint::black_box(direct.run(get_pk(k)));
            });
            block(&mut samples[g][1], calls, *gap, |k| {
                std::hint::black_box(client.find(&get_pk(k)));
            });
            block(&mut samples[g][2], calls, *gap, |k| {
                std::hint::black_box(polling.find(&get_pk(k)));
            });
        }
    }
    println!("get(pk) command, {rows} entries, {rounds} rounds of {calls} calls per way and gap (µs per call)");
    println!("| gap between calls | way | median | p90 | process CPU |");
    println!("| ---: | --- | ---: | ---: | ---: |");
    for (g, gap) in gaps.iter().enumerate() {
        for (w, way) in ways.iter().enumerate() {
            let s = &mut samples[g][w];
            let cpu = s.cpu_ns as f64 / s.calls as f64 / 1000.0;
            println!("| {} µs | {way} | {:.1} | {:.1} | {cpu:.1} |", gap.as_micros(), s.percentile(50), s.percentile(90));
        }
    }
    drop((client, polling));
    server.shutdown();
}
