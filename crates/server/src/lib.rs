//! The embedded MongoDB-compatible server: storage on redb, the command set
//! the backend and drivers use, and the wire protocol.
//!
//! Embedding: `spawn(ServerConfig { data_dir, bind })` opens the data
//! directory and serves on background threads; `ServerHandle::shutdown`
//! stops it and closes the database file.
#![deny(unsafe_code)]

pub mod auth;
pub mod catalog;
pub mod commands;
pub mod cursor;
pub mod error;
pub mod index;
pub mod keyenc;
pub mod plan;
pub mod server;
pub mod session;
pub mod state;
pub mod storage;
pub mod wire;

#[cfg(test)]
mod test_support;

pub use error::{CommandError, ServerError};
pub use server::{spawn, spawn_with, Bind, ServerConfig, ServerHandle, ServerOptions};
