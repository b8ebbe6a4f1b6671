//! Retryable writes (`retryable.rs`): a write sent again with its session id
//! and txnNumber is answered from what was recorded, never applied twice,
//! however many writes its session made before, and across a restart.
mod common;

use bson::{doc, spec::BinarySubtype, Binary, Document};
use common::{Client, TestServer};

fn lsid(byte: u8) -> Document {
    doc! {"id": Binary { subtype: BinarySubtype::Uuid, bytes: vec![byte; 16] }}
}

/// `$inc` of the one counter document, as statement `txn` of session `session`.
fn inc(session: u8, txn: i64) -> Document {
    doc! {"update": "c", "updates": [{"q": {"_id": 1}, "u": {"$inc": {"n": 1}}}], "lsid": lsid(session), "txnNumber": txn}
}

fn count(c: &mut Client) -> i32 {
    c.find_all("db", "c")[0].get_i32("n").unwrap()
}

#[test]
fn many_writes_on_one_session_the_latest_is_answered_again_and_older_ones_refused() {
    let mut server = TestServer::start();
    let mut c = server.client();
    c.ok("db", doc! {"insert": "c", "documents": [{"_id": 1, "n": 0}]});
    // Two sessions writing in turn, many statements each.
    for txn in 1..=300 {
        for session in [1, 2] {
            let reply = c.ok("db", inc(session, txn));
            assert_eq!((reply.get_i32("n").unwrap(), reply.get_i32("nModified").unwrap()), (1, 1));
        }
    }
    assert_eq!(count(&mut c), 600);
    // The retry of each session's latest statement gets its reply again and
    // changes nothing, before and after a restart (another server of the store).
    for round in 0..2 {
        for session in [1, 2] {
            let reply = c.ok("db", inc(session, 300));
            assert_eq!((reply.get_i32("n").unwrap(), reply.get_i32("nModified").unwrap()), (1, 1), "round {round}");
        }
        assert_eq!(count(&mut c), 600, "round {round}");
        // An earlier statement of the session can no longer be retried.
        let reply = c.cmd("db", inc(1, 150));
        assert_eq!(reply.get_i32("code").unwrap(), 225, "{reply}");
        assert_eq!(reply.get_str("codeName").unwrap(), "TransactionTooOld");
        assert_eq!(count(&mut c), 600);
        server.restart();
        c = server.client();
    }
    // The next statement runs.
    c.ok("db", inc(1, 301));
    assert_eq!(count(&mut c), 601);
}

#[test]
fn a_retried_insert_and_delete_are_not_applied_twice() {
    let server = TestServer::start();
    let mut c = server.client();
    let mut txn = 0;
    for i in 0..100 {
        txn += 1;
        c.ok("db", doc! {"insert": "t", "documents": [{"_id": i}], "lsid": lsid(3), "txnNumber": txn});
    }
    // Resent: the same reply, not a duplicate key error.
    let again = c.ok("db", doc! {"insert": "t", "documents": [{"_id": 99}], "lsid": lsid(3), "txnNumber": txn});
    assert_eq!(again.get_i32("n").unwrap(), 1);
    assert!(again.get("writeErrors").is_none(), "{again}");
    txn += 1;
    let delete = doc! {"delete": "t", "deletes": [{"q": {"_id": {"$gte": 50}}, "limit": 0}], "lsid": lsid(3), "txnNumber": txn};
    assert_eq!(c.ok("db", delete.clone()).get_i32("n").unwrap(), 50);
    // Rows matching the delete's filter arrive before the retry: the retry
    // answers from the record and leaves them alone.
    c.ok("db", doc! {"insert": "t", "documents": [{"_id": 200}]});
    assert_eq!(c.ok("db", delete).get_i32("n").unwrap(), 50);
    assert_eq!(c.find_all("db", "t").len(), 51);
}
