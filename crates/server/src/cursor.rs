//! Server-side cursors: the rest of a query's results, served by getMore.
//!
//! Results are materialised when the query runs, so a cursor is a queue of
//! documents; this keeps getMore independent of storage snapshots and of the
//! transaction that produced it. Idle cursors are dropped after a timeout,
//! as MongoDB does (10 minutes).
use crate::changes::Stream;
use crate::error::{CmdResult, CommandError};
use bson::{Document, RawDocumentBuf};
use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// Replies stay under the 16 MiB BSON limit with room for the envelope.
pub const MAX_BATCH_BYTES: usize = 15 * 1024 * 1024;
/// MongoDB's default first-batch size.
pub const DEFAULT_FIRST_BATCH: usize = 101;
pub const CURSOR_IDLE_TIMEOUT: Duration = Duration::from_secs(600);

struct Cursor {
    ns: String,
    docs: Queue,
    last_used: Instant,
    /// A live cursor (change stream, tailable) reads on each getMore
    /// instead of serving a queue; it is taken out while a getMore serves it.
    live: LiveSlot,
}

/// A cursor that reads as it goes.
pub enum Live {
    Stream(Box<Stream>),
    Tail(Box<Tail>),
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum LiveKind {
    Stream,
    Tail,
}

impl Live {
    fn kind(&self) -> LiveKind {
        match self {
            Live::Stream(_) => LiveKind::Stream,
            Live::Tail(_) => LiveKind::Tail,
        }
    }
}

/// A tailable cursor on a capped collection: the rest of its first answer,
/// then the documents inserted after the last one it has seen.
#[derive(Debug, Clone)]
pub struct Tail {
    pub db: String,
    pub coll: String,
    pub queue: VecDeque<Document>,
    /// The insertion number of the last document it has seen.
    pub last_seq: i64,
    pub filter: Document,
    pub projection: Option<Document>,
    pub await_data: bool,
}

enum LiveSlot {
    NotLive,
    Idle(Live),
    Busy(LiveKind),
}

/// The documents a cursor has left to serve.
enum Queue {
    Decoded(VecDeque<Document>),
    /// Reply documents built from stored bytes (`stored_batch`).
    Stored(VecDeque<RawDocumentBuf>),
}

impl Queue {
    fn is_empty(&self) -> bool {
        match self {
            Queue::Decoded(d) => d.is_empty(),
            Queue::Stored(d) => d.is_empty(),
        }
    }
}

/// A getMore's batch, in the form its cursor holds it.
pub enum Batch {
    Decoded(Vec<Document>),
    Stored(Vec<RawDocumentBuf>),
}

impl Batch {
    pub fn len(&self) -> usize {
        match self {
            Batch::Decoded(d) => d.len(),
            Batch::Stored(d) => d.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Default)]
pub struct CursorTable {
    cursors: Mutex<HashMap<i64, Cursor>>,
}

/// Takes up to `limit` documents (and at most MAX_BATCH_BYTES, but always at
/// least one so a cursor makes progress) from the front of `docs`.
pub fn take_batch(docs: &mut VecDeque<Document>, limit: Option<usize>) -> Vec<Document> {
    take_sized(docs, limit, crate::bson_len::encoded_len)
}

/// [`take_batch`] for documents already encoded.
pub fn take_stored_batch(docs: &mut VecDeque<RawDocumentBuf>, limit: Option<usize>) -> Vec<RawDocumentBuf> {
    take_sized(docs, limit, |d| d.as_bytes().len())
}

fn take_sized<T>(docs: &mut VecDeque<T>, limit: Option<usize>, encoded_len: impl Fn(&T) -> usize) -> Vec<T> {
    let mut out = Vec::new();
    let mut bytes = 0usize;
    while let Some(front) = docs.front() {
        if limit.is_some_and(|l| out.len() >= l) {
            break;
        }
        let size = encoded_len(front);
        if !out.is_empty() && bytes + size > MAX_BATCH_BYTES {
            break;
        }
        bytes += size;
        if let Some(d) = docs.pop_front() {
            out.push(d);
        }
    }
    out
}

impl CursorTable {
    /// Stores the remaining documents and returns a new cursor id (0 if
    /// nothing remains, meaning "exhausted" to the driver).
    pub fn register(&self, ns: String, docs: VecDeque<Document>) -> i64 {
        self.register_queue(ns, Queue::Decoded(docs))
    }

    /// [`CursorTable::register`] for reply documents already encoded.
    pub fn register_stored(&self, ns: String, docs: VecDeque<RawDocumentBuf>) -> i64 {
        self.register_queue(ns, Queue::Stored(docs))
    }

    fn register_queue(&self, ns: String, docs: Queue) -> i64 {
        if docs.is_empty() {
            return 0;
        }
        let mut map = self.cursors.lock();
        let id = loop {
            let candidate = rand::random::<i64>() & i64::MAX;
            if candidate != 0 && !map.contains_key(&candidate) {
                break candidate;
            }
        };
        map.insert(id, Cursor { ns, docs, last_used: Instant::now(), live: LiveSlot::NotLive });
        id
    }

    /// Registers a live cursor (never exhausted) and returns its id.
    pub fn register_live(&self, ns: String, live: Live) -> i64 {
        let mut map = self.cursors.lock();
        let id = loop {
            let candidate = rand::random::<i64>() & i64::MAX;
            if candidate != 0 && !map.contains_key(&candidate) {
                break candidate;
            }
        };
        map.insert(id, Cursor { ns, docs: Queue::Decoded(VecDeque::new()), last_used: Instant::now(), live: LiveSlot::Idle(live) });
        id
    }

    /// Takes out live cursor `id` of `kind` for a getMore; `None` if `id`
    /// is a cursor of another kind (or none at all: the ordinary getMore
    /// reports it).
    pub fn take_live(&self, id: i64, ns: &str, kind: LiveKind) -> CmdResult<Option<Live>> {
        let mut map = self.cursors.lock();
        let Some(cursor) = map.get_mut(&id) else { return Ok(None) };
        let found = match &cursor.live {
            LiveSlot::NotLive => return Ok(None),
            LiveSlot::Idle(live) => live.kind(),
            LiveSlot::Busy(k) => *k,
        };
        if found != kind {
            return Ok(None);
        }
        if cursor.ns != ns {
            return Err(CommandError::new(13, "Unauthorized", format!("cursor id {id} belongs to namespace {}, not {ns}", cursor.ns)));
        }
        cursor.last_used = Instant::now();
        match std::mem::replace(&mut cursor.live, LiveSlot::Busy(kind)) {
            LiveSlot::Idle(live) => Ok(Some(live)),
            other => {
                cursor.live = other;
                Err(CommandError::new(143, "CursorInUse", format!("cursor id {id} is already in use")))
            }
        }
    }

    /// Whether cursor `id` is a live cursor of `kind`.
    pub fn is_live(&self, id: i64, kind: LiveKind) -> bool {
        self.cursors.lock().get(&id).is_some_and(|c| match &c.live {
            LiveSlot::NotLive => false,
            LiveSlot::Idle(live) => live.kind() == kind,
            LiveSlot::Busy(k) => *k == kind,
        })
    }

    /// Puts back a live cursor taken by `take_live` (unless it was killed
    /// meanwhile).
    pub fn return_live(&self, id: i64, live: Live) {
        if let Some(cursor) = self.cursors.lock().get_mut(&id) {
            cursor.last_used = Instant::now();
            cursor.live = LiveSlot::Idle(live);
        }
    }

    /// The next batch of cursor `id`; returns the documents and the id to
    /// report (0 once exhausted, after which the cursor is gone).
    pub fn get_more(&self, id: i64, ns: &str, batch_size: Option<usize>) -> CmdResult<(Batch, i64)> {
        let mut map = self.cursors.lock();
        let Some(cursor) = map.get_mut(&id) else {
            return Err(CommandError::new(43, "CursorNotFound", format!("cursor id {id} not found")));
        };
        if cursor.ns != ns {
            return Err(CommandError::new(13, "Unauthorized", format!("cursor id {id} belongs to namespace {}, not {ns}", cursor.ns)));
        }
        cursor.last_used = Instant::now();
        let batch = match &mut cursor.docs {
            Queue::Decoded(docs) => Batch::Decoded(take_batch(docs, batch_size)),
            Queue::Stored(docs) => Batch::Stored(take_stored_batch(docs, batch_size)),
        };
        if cursor.docs.is_empty() {
            map.remove(&id);
            return Ok((batch, 0));
        }
        Ok((batch, id))
    }

    /// Moves cursor `id` to namespace `ns` (a cursor on a view is read from
    /// the view's source, but getMore names the view).
    pub fn rename(&self, id: i64, ns: String) {
        if let Some(cursor) = self.cursors.lock().get_mut(&id) {
            cursor.ns = ns;
        }
    }

    /// Removes cursors; returns (killed, not found).
    pub fn kill(&self, ids: &[i64]) -> (Vec<i64>, Vec<i64>) {
        let mut map = self.cursors.lock();
        ids.iter().partition(|id| map.remove(id).is_some())
    }

    pub fn reap(&self, idle: Duration) {
        let now = Instant::now();
        self.cursors.lock().retain(|_, c| matches!(c.live, LiveSlot::Busy(_)) || now.duration_since(c.last_used) < idle);
    }

    pub fn len(&self) -> usize {
        self.cursors.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    #[test]
    fn batches_until_exhausted() {
        let table = CursorTable::default();
        let docs: VecDeque<Document> = (0..5).map(|i| doc! {"i": i}).collect();
        let id = table.register("d.c".into(), docs);
        assert_ne!(id, 0);
        let (b, same) = table.get_more(id, "d.c", Some(2)).unwrap();
        assert_eq!((b.len(), same), (2, id));
        assert!(table.get_more(id, "d.x", Some(2)).is_err());
        let (b, last) = table.get_more(id, "d.c", None).unwrap();
        assert_eq!((b.len(), last), (3, 0));
        assert!(table.get_more(id, "d.c", None).is_err());
    }

    #[test]
    fn kill_and_reap() {
        let table = CursorTable::default();
        let a = table.register("d.c".into(), VecDeque::from(vec![doc! {}]));
        let b = table.register("d.c".into(), VecDeque::from(vec![doc! {}]));
        let (killed, missing) = table.kill(&[a, 42]);
        assert_eq!((killed, missing), (vec![a], vec![42]));
        table.reap(Duration::ZERO);
        assert!(table.get_more(b, "d.c", None).is_err());
    }
}
