//! The embedded MongoDB-compatible server: storage on redb, the command set
//! the backend and drivers use, and the wire protocol.
//!
//! Embedding: `spawn(ServerConfig { data_dir, bind })` opens the data
//! directory and serves on background threads; `ServerHandle::shutdown`
//! stops it and closes the database file. Serving a store that several
//! processes share (its lock, its owner-only socket, the `djongo-server`
//! command): `standalone` and `data_dir`.
#![deny(unsafe_code)]

pub mod auth;
pub mod bson_len;
pub mod catalog;
pub mod changes;
pub mod commands;
pub mod cursor;
#[cfg(unix)]
pub mod data_dir;
pub mod error;
pub mod failpoint;
pub mod foreign_keys;
pub mod hashed;
pub mod geo_index;
pub mod index;
#[cfg(unix)]
pub mod in_process;
pub mod keyenc;
pub mod ops;
pub mod plan;
pub mod retryable;
pub mod server;
pub mod session;
#[cfg(unix)]
pub mod standalone;
pub mod state;
pub mod storage;
pub mod stored_batch;
pub mod text;
pub mod ttl;
pub mod validation;
pub mod wildcard;
pub mod wire;

#[cfg(test)]
mod test_support;

pub use error::{CommandError, ServerError};

/// The djongo-rs version a server reports in `hello` (`djongo.version`): a
/// process of another version refuses to join a store's server.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub use server::{spawn, spawn_with, Bind, ServerConfig, ServerHandle, ServerOptions};
