//! A server removes its Unix socket when it stops, and only its own: a newer
//! server bound at the same path (after the old file was deleted) keeps its.
#![cfg(unix)]

use djongo_server::{spawn, Bind, ServerConfig};
use std::os::unix::net::UnixStream;

#[test]
fn a_stopping_server_leaves_a_newer_servers_socket_alone() {
    let sockets = tempfile::tempdir().unwrap();
    let path = sockets.path().join("store.sock");
    let (first_dir, second_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());

    let first = spawn(ServerConfig { data_dir: first_dir.path().into(), bind: Bind::Unix(path.clone()) }).unwrap();
    // The directory holding the socket is cleared while the first server runs,
    // and a second server binds the same path.
    std::fs::remove_file(&path).unwrap();
    let second = spawn(ServerConfig { data_dir: second_dir.path().into(), bind: Bind::Unix(path.clone()) }).unwrap();

    first.shutdown();
    assert!(path.exists(), "the first server removed the second server's socket");
    assert!(UnixStream::connect(&path).is_ok());

    second.shutdown();
    assert!(!path.exists(), "a server removes its own socket when it stops");
}
