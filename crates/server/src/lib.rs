//! The embedded MongoDB-compatible server: storage on redb, the command set
//! the backend and drivers use, and the wire protocol.
#![deny(unsafe_code)]
