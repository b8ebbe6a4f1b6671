//! `djongo-server --dbpath DIR [--bind 127.0.0.1] [--port 27017] [--unix-socket PATH]
//! [--no-tcp] [--user NAME:PASSWORD] [--idle-exit SECONDS] [--write-lock-timeout-ms MS]`
//!
//! Runs the embedded MongoDB-compatible server standalone until SIGINT or
//! SIGTERM, then shuts down cleanly (open transactions are aborted; every
//! acknowledged write is already durable). See `standalone` for the flags;
//! the Python package's `djongo-server` command runs the same code.
#![deny(unsafe_code)]

use std::process::ExitCode;

// See the workspace Cargo.toml: the engine allocates per document field.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let status = djongo_server::standalone::main(std::env::args().skip(1), Default::default());
    ExitCode::from(u8::try_from(status).unwrap_or(1))
}
