//! The change log that change streams (`$changeStream`) read: the events of
//! every committed write, in commit order, as mongod derives them from its
//! oplog.
//!
//! Write commands describe what they changed (`PendingChange`); the events
//! are published when their write commits, inside the commit's critical
//! section, so the log's order is the commit order and a reader never sees
//! a commit's cluster time before its events. A transaction's events are
//! published together at its commit, carrying its `lsid` and `txnNumber`.
//!
//! The log lives in memory and is bounded (`MAX_EVENTS`, `MAX_BYTES`): a
//! stream that falls behind its start, or resumes from before this server
//! started, gets `ChangeStreamHistoryLost` (286), as one whose resume point
//! has left mongod's oplog.
use bson::{doc, Bson, DateTime, Document, RawDocumentBuf, Timestamp};
use parking_lot::{Condvar, Mutex};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

/// At most this many events are kept...
pub const MAX_EVENTS: usize = 100_000;
/// ...holding at most this many bytes of documents.
pub const MAX_BYTES: usize = 64 * 1024 * 1024;

/// A place in the log: events are ordered by (cluster time, index within
/// the commit). A position names the last event seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub time: u64,
    pub index: u32,
}

impl Position {
    /// Everything up to and including cluster time `time`.
    pub fn end_of(time: u64) -> Position {
        Position { time, index: u32::MAX }
    }

    /// Just before cluster time `time` (a stream starting at an operation time).
    pub fn before(time: u64) -> Position {
        match time.checked_sub(1) {
            Some(t) => Position::end_of(t),
            None => Position { time: 0, index: 0 },
        }
    }

    pub fn timestamp(&self) -> Timestamp {
        Timestamp { time: (self.time >> 32) as u32, increment: self.time as u32 }
    }

    /// The resume token (`_id` of an event, `postBatchResumeToken`):
    /// `{_data: <hex>}`, opaque to drivers as mongod's is.
    pub fn token(&self) -> Document {
        let mut bytes = Vec::with_capacity(13);
        bytes.push(TOKEN_VERSION);
        bytes.extend_from_slice(&self.time.to_be_bytes());
        bytes.extend_from_slice(&self.index.to_be_bytes());
        let hex: String = bytes.iter().map(|b| format!("{b:02X}")).collect();
        doc! {"_data": hex}
    }

    /// Reads a resume token this server made.
    pub fn from_token(token: &Bson) -> Option<Position> {
        let Bson::Document(d) = token else { return None };
        let Some(Bson::String(hex)) = d.get("_data") else { return None };
        if hex.len() != 26 || !hex.is_ascii() {
            return None;
        }
        let bytes: Option<Vec<u8>> = (0..13).map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()).collect();
        let bytes = bytes?;
        if bytes[0] != TOKEN_VERSION {
            return None;
        }
        let time = u64::from_be_bytes(bytes[1..9].try_into().ok()?);
        let index = u32::from_be_bytes(bytes[9..13].try_into().ok()?);
        Some(Position { time, index })
    }
}

const TOKEN_VERSION: u8 = 0x82;

pub fn pack(ts: Timestamp) -> u64 {
    (u64::from(ts.time) << 32) | u64::from(ts.increment)
}

/// What an event is about, for the streams that watch it.
#[derive(Debug, Clone, PartialEq)]
pub enum Scope {
    /// A collection's documents or the collection itself.
    Collection { db: String, coll: String },
    /// A whole database (`dropDatabase`).
    Database { db: String },
}

/// An event a write describes before it commits.
#[derive(Debug, Clone)]
pub struct PendingChange {
    pub scope: Scope,
    /// The event without `_id`, `clusterTime`, `wallTime` and session fields
    /// (empty for an insert: see `inserted`).
    pub event: Document,
    /// An insert's document as stored: the bytes the write encoded anyway.
    /// Every insert is logged, whether a stream is open or not (a stream may
    /// start at an earlier operation time), so an insert's event is kept as
    /// these bytes alone and built when a stream reads it.
    pub inserted: Option<RawDocumentBuf>,
    /// The document before and after the change, kept when the collection
    /// has `changeStreamPreAndPostImages` enabled.
    pub pre_image: Option<Document>,
    pub post_image: Option<Document>,
    /// Whether a stream on the event's collection (or database) ends after
    /// it (drop, rename, dropDatabase).
    pub invalidates: bool,
    /// Shown only with `showExpandedEvents`: the collection's UUID, and an
    /// update's ambiguous paths spelled out (`disambiguatedPaths`).
    pub collection_uuid: Option<bson::Binary>,
    pub disambiguated: Option<Document>,
    /// Fields an event has only with `showExpandedEvents` (a rename's
    /// `operationDescription`).
    pub expanded_fields: Option<Document>,
}

/// Whether a collection keeps pre- and post-images for change streams
/// (`changeStreamPreAndPostImages: {enabled: true}`).
pub fn images_enabled(options: &Document) -> bool {
    matches!(options.get("changeStreamPreAndPostImages"), Some(Bson::Document(d)) if matches!(d.get("enabled"), Some(Bson::Boolean(true))))
}

fn ns(db: &str, coll: &str) -> Document {
    doc! {"db": db, "coll": coll}
}

fn with_images(mut change: PendingChange, images: bool, pre: Option<&Document>, post: Option<&Document>) -> PendingChange {
    if images {
        change.pre_image = pre.cloned();
        change.post_image = post.cloned();
    }
    change
}

fn document_key(doc: &Document) -> Document {
    doc! {"_id": doc.get("_id").cloned().unwrap_or(Bson::Null)}
}

impl PendingChange {
    fn collection(db: &str, coll: &str, event: Document) -> PendingChange {
        PendingChange {
            scope: Scope::Collection { db: db.to_string(), coll: coll.to_string() },
            event,
            inserted: None,
            pre_image: None,
            post_image: None,
            invalidates: false,
            collection_uuid: None,
            disambiguated: None,
            expanded_fields: None,
        }
    }

    /// An insert of `doc`, whose stored bytes are `stored`.
    pub fn insert(db: &str, coll: &str, doc: &Document, stored: RawDocumentBuf, images: bool) -> PendingChange {
        let mut change = with_images(PendingChange::collection(db, coll, Document::new()), images, None, Some(doc));
        change.inserted = Some(stored);
        change
    }

    fn operation_type(&self) -> Option<&str> {
        match &self.inserted {
            Some(_) => Some("insert"),
            None => self.event.get_str("operationType").ok(),
        }
    }

    /// An update by operators or a pipeline: what changed, as paths.
    pub fn update(db: &str, coll: &str, old: &Document, new: &Document, images: bool) -> PendingChange {
        let (description, ambiguous) = update_description(old, new);
        let event = doc! {
            "operationType": "update",
            "ns": ns(db, coll),
            "documentKey": document_key(new),
            "updateDescription": description,
        };
        let mut change = with_images(PendingChange::collection(db, coll, event), images, Some(old), Some(new));
        change.disambiguated = Some(ambiguous);
        change
    }

    /// Notes the UUID of the collection the event is about.
    pub fn in_collection(mut self, uuid: &bson::Binary) -> PendingChange {
        self.collection_uuid = Some(uuid.clone());
        self
    }

    pub fn replace(db: &str, coll: &str, old: &Document, new: &Document, images: bool) -> PendingChange {
        let event = doc! {"operationType": "replace", "ns": ns(db, coll), "documentKey": document_key(new), "fullDocument": new.clone()};
        with_images(PendingChange::collection(db, coll, event), images, Some(old), Some(new))
    }

    pub fn delete(db: &str, coll: &str, old: &Document, images: bool) -> PendingChange {
        let event = doc! {"operationType": "delete", "ns": ns(db, coll), "documentKey": document_key(old)};
        with_images(PendingChange::collection(db, coll, event), images, Some(old), None)
    }

    pub fn drop(db: &str, coll: &str) -> PendingChange {
        let mut change = PendingChange::collection(db, coll, doc! {"operationType": "drop", "ns": ns(db, coll)});
        change.invalidates = true;
        change
    }

    /// A rename; `dropped` is the UUID of the target it replaced, if any.
    pub fn rename(db: &str, coll: &str, to_db: &str, to_coll: &str, dropped: Option<&bson::Binary>) -> PendingChange {
        let event = doc! {"operationType": "rename", "ns": ns(db, coll), "to": ns(to_db, to_coll)};
        let mut change = PendingChange::collection(db, coll, event);
        change.invalidates = true;
        let mut description = doc! {"to": ns(to_db, to_coll)};
        if let Some(uuid) = dropped {
            description.insert("dropTarget", uuid.clone());
        }
        change.expanded_fields = Some(doc! {"operationDescription": description});
        change
    }

    pub fn drop_database(db: &str) -> PendingChange {
        PendingChange {
            scope: Scope::Database { db: db.to_string() },
            event: doc! {"operationType": "dropDatabase", "ns": {"db": db}},
            inserted: None,
            pre_image: None,
            post_image: None,
            invalidates: true,
            collection_uuid: None,
            disambiguated: None,
            expanded_fields: None,
        }
    }

    /// Events shown only to streams with `showExpandedEvents`.
    pub fn expanded(db: &str, coll: &str, operation: &str, description: Document) -> PendingChange {
        let event = doc! {"operationType": operation, "ns": ns(db, coll), "operationDescription": description};
        PendingChange::collection(db, coll, event)
    }

    pub fn is_expanded(&self) -> bool {
        matches!(self.operation_type(), Some("create" | "createIndexes" | "dropIndexes" | "modify"))
    }
}

/// One step of a path into a document: a field name or an array position.
#[derive(Debug, Clone)]
enum Step {
    Field(String),
    Index(usize),
}

/// What an update changed, as change events describe it.
struct Diff {
    updated: Document,
    removed: Vec<Bson>,
    truncated: Vec<Bson>,
    /// Paths whose dotted form is ambiguous (an array position, or a field
    /// named like one), with their steps spelled out.
    ambiguous: Document,
}

impl Diff {
    fn name(&mut self, path: &[Step]) -> String {
        let dotted = path
            .iter()
            .map(|s| match s {
                Step::Field(f) => f.clone(),
                Step::Index(i) => i.to_string(),
            })
            .collect::<Vec<_>>()
            .join(".");
        let ambiguous = path.iter().any(|s| match s {
            Step::Index(_) => true,
            Step::Field(f) => !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()),
        });
        if ambiguous {
            let steps: Vec<Bson> = path
                .iter()
                .map(|s| match s {
                    Step::Field(f) => Bson::String(f.clone()),
                    Step::Index(i) => i32::try_from(*i).map(Bson::Int32).unwrap_or(Bson::Int64(*i as i64)),
                })
                .collect();
            self.ambiguous.insert(dotted.clone(), steps);
        }
        dotted
    }
}

/// `updateDescription`: the fields set (dotted paths into embedded
/// documents, `a.3` for array elements appended or changed in place), the
/// fields removed, and arrays cut short; and the ambiguous paths among them
/// (`disambiguatedPaths`, shown with `showExpandedEvents`).
pub fn update_description(old: &Document, new: &Document) -> (Document, Document) {
    let mut diff = Diff { updated: Document::new(), removed: Vec::new(), truncated: Vec::new(), ambiguous: Document::new() };
    diff_documents(&mut Vec::new(), old, new, &mut diff);
    let description = doc! {"updatedFields": diff.updated, "removedFields": diff.removed, "truncatedArrays": diff.truncated};
    (description, diff.ambiguous)
}

fn diff_documents(path: &mut Vec<Step>, old: &Document, new: &Document, diff: &mut Diff) {
    for (key, value) in new {
        path.push(Step::Field(key.clone()));
        match (old.get(key), value) {
            (Some(before), _) if before == value => {}
            (Some(Bson::Document(a)), Bson::Document(b)) => diff_documents(path, a, b, diff),
            (Some(Bson::Array(a)), Bson::Array(b)) => diff_arrays(path, a, b, diff),
            _ => {
                let name = diff.name(path);
                diff.updated.insert(name, value.clone());
            }
        }
        path.pop();
    }
    for key in old.keys() {
        if !new.contains_key(key) {
            path.push(Step::Field(key.clone()));
            let name = diff.name(path);
            diff.removed.push(Bson::String(name));
            path.pop();
        }
    }
}

fn diff_arrays(path: &mut Vec<Step>, old: &[Bson], new: &[Bson], diff: &mut Diff) {
    let common = old.len().min(new.len());
    let changed_in_place = (0..common).filter(|&i| old[i] != new[i]).count();
    // A whole new array reads better than most of its elements one by one.
    if changed_in_place * 2 > common.max(1) && changed_in_place > 1 {
        let name = diff.name(path);
        diff.updated.insert(name, Bson::Array(new.to_vec()));
        return;
    }
    for i in 0..common {
        if old[i] != new[i] {
            path.push(Step::Index(i));
            match (&old[i], &new[i]) {
                (Bson::Document(a), Bson::Document(b)) => diff_documents(path, a, b, diff),
                _ => {
                    let name = diff.name(path);
                    diff.updated.insert(name, new[i].clone());
                }
            }
            path.pop();
        }
    }
    for (i, value) in new.iter().enumerate().skip(common) {
        path.push(Step::Index(i));
        let name = diff.name(path);
        diff.updated.insert(name, value.clone());
        path.pop();
    }
    if new.len() < old.len() {
        let name = diff.name(path);
        diff.truncated.push(Bson::Document(doc! {"field": name, "newSize": new.len() as i32}));
    }
}

/// A published event.
#[derive(Debug, Clone)]
pub struct Entry {
    pub position: Position,
    /// Boxed: the log holds many entries, most of them never read.
    pub change: Box<PendingChange>,
    pub wall_time: DateTime,
    /// A transaction's `(lsid, txnNumber)`, shared by its events.
    session: Option<Arc<(Bson, i64)>>,
    bytes: usize,
}

impl Entry {
    /// The whole event as streams see it (with `_id`, `clusterTime`...).
    /// Built when a stream reads it, not when the write commits: most
    /// events are never read.
    pub fn event(&self) -> Document {
        let change = &self.change;
        let mut event = doc! {"_id": self.position.token()};
        event.insert("operationType", change.operation_type().map_or(Bson::Null, |t| Bson::String(t.to_string())));
        event.insert("clusterTime", self.position.timestamp());
        event.insert("wallTime", self.wall_time);
        for (k, v) in &change.event {
            if k != "operationType" {
                event.insert(k.clone(), v.clone());
            }
        }
        if let (Some(stored), Scope::Collection { db, coll }) = (&change.inserted, &change.scope) {
            // The bytes are what this server stored from a valid document.
            let document = Document::try_from(&**stored).unwrap_or_default();
            event.insert("ns", ns(db, coll));
            event.insert("documentKey", document_key(&document));
            event.insert("fullDocument", document);
        }
        if let Some((lsid, txn_number)) = self.session.as_deref() {
            event.insert("lsid", lsid.clone());
            event.insert("txnNumber", *txn_number);
        }
        event
    }
}

/// Roughly what a document holds, for the log's bound: the encoded size of
/// its values without building the encoding (a change's documents are
/// counted once each; the log's own fields are small and left out).
fn approximate_size(doc: &Document) -> usize {
    doc.iter().map(|(k, v)| k.len() + 2 + approximate_value_size(v)).sum::<usize>() + 5
}

fn approximate_value_size(v: &Bson) -> usize {
    match v {
        Bson::Document(d) => approximate_size(d),
        Bson::Array(items) => items.iter().map(|i| 4 + approximate_value_size(i)).sum::<usize>() + 5,
        Bson::String(s) | Bson::JavaScriptCode(s) | Bson::Symbol(s) => s.len() + 5,
        Bson::Binary(b) => b.bytes.len() + 5,
        Bson::RegularExpression(r) => r.pattern.len() + r.options.len() + 2,
        Bson::JavaScriptCodeWithScope(c) => c.code.len() + approximate_size(&c.scope) + 9,
        Bson::Decimal128(_) => 16,
        Bson::ObjectId(_) | Bson::DbPointer(_) => 12,
        _ => 8,
    }
}

impl PendingChange {
    /// What the change holds, for the log's bound.
    fn approximate_size(&self) -> usize {
        approximate_size(&self.event)
            + self.inserted.as_ref().map_or(0, |d| d.as_bytes().len())
            + self.pre_image.as_ref().map_or(0, approximate_size)
            + self.post_image.as_ref().map_or(0, approximate_size)
    }
}

struct Log {
    entries: VecDeque<Entry>,
    bytes: usize,
    /// Everything up to here has been published (moves with every commit).
    high_water: Position,
    /// Positions before this are no longer in the log.
    floor: Position,
}

pub struct ChangeLog {
    log: Mutex<Log>,
    published: Condvar,
}

impl ChangeLog {
    /// An empty log that starts at cluster time `start` (this server's start).
    pub fn new(start: Timestamp) -> ChangeLog {
        let start = Position::end_of(pack(start));
        ChangeLog { log: Mutex::new(Log { entries: VecDeque::new(), bytes: 0, high_water: start, floor: start }), published: Condvar::new() }
    }

    /// Publishes the events of the commit at cluster time `time` (none for
    /// a commit that changed nothing streams show, which still moves the
    /// high-water mark). `session` is a transaction's `(lsid, txnNumber)`.
    pub fn publish(&self, time: Timestamp, changes: Vec<PendingChange>, session: Option<(Bson, i64)>) {
        let packed = pack(time);
        let wall = DateTime::now();
        let session = session.map(Arc::new);
        let sized: Vec<(Box<PendingChange>, usize)> = changes
            .into_iter()
            .map(|c| {
                let bytes = c.approximate_size();
                (Box::new(c), bytes)
            })
            .collect();
        let mut log = self.log.lock();
        for (index, (change, bytes)) in sized.into_iter().enumerate() {
            let position = Position { time: packed, index: index as u32 };
            log.bytes += bytes;
            log.entries.push_back(Entry { position, change, wall_time: wall, session: session.clone(), bytes });
        }
        log.high_water = log.high_water.max(Position::end_of(packed));
        while log.entries.len() > MAX_EVENTS || log.bytes > MAX_BYTES {
            let Some(gone) = log.entries.pop_front() else { break };
            log.bytes -= gone.bytes;
            log.floor = gone.position;
        }
        drop(log);
        self.published.notify_all();
    }

    /// Where a stream opened now starts: after everything published.
    pub fn high_water(&self) -> Position {
        self.log.lock().high_water
    }

    /// Waits until a commit after `since` (the high-water mark seen before)
    /// is published, or `deadline` passes.
    pub fn wait_for_commit(&self, since: Position, deadline: Instant) {
        let mut log = self.log.lock();
        while log.high_water <= since {
            if self.published.wait_until(&mut log, deadline).timed_out() {
                return;
            }
        }
    }

    /// Whether events after `position` may have left the log (or predate it).
    pub fn lost(&self, position: Position) -> bool {
        position < self.log.lock().floor
    }

    /// Up to `limit` entries after `position` that `wanted` keeps, and the
    /// position up to which the log was read (past skipped entries too);
    /// waits until `deadline` for one to be published when there is none.
    pub fn read(&self, position: Position, limit: usize, deadline: Option<Instant>, wanted: impl Fn(&Entry) -> bool) -> (Vec<Entry>, Position) {
        let mut log = self.log.lock();
        loop {
            let mut out = Vec::new();
            let mut reached = position;
            let start = log.entries.partition_point(|e| e.position <= position);
            for entry in log.entries.iter().skip(start) {
                reached = entry.position;
                if wanted(entry) {
                    out.push(entry.clone());
                    if out.len() >= limit {
                        break;
                    }
                }
            }
            if out.len() < limit {
                reached = reached.max(log.high_water);
            }
            let wait = match deadline {
                Some(d) if out.is_empty() && Instant::now() < d => d,
                _ => return (out, reached.max(position)),
            };
            if self.published.wait_until(&mut log, wait).timed_out() {
                // One last look, then give up with what there is.
                let start = log.entries.partition_point(|e| e.position <= position);
                let out: Vec<Entry> = log.entries.iter().skip(start).filter(|e| wanted(e)).take(limit).cloned().collect();
                let reached = out.last().map_or(log.high_water.max(position), |e| e.position);
                return (out, reached);
            }
        }
    }
}

/// What a change stream watches.
#[derive(Debug, Clone, PartialEq)]
pub enum Watch {
    Collection { db: String, coll: String },
    Database { db: String },
    /// Every database but `admin`, `config` and `local`.
    Cluster,
}

fn internal_namespace(db: &str, coll: Option<&str>) -> bool {
    matches!(db, "admin" | "config" | "local") || coll.is_some_and(|c| c.starts_with("system."))
}

impl Watch {
    /// Whether the stream shows `change`.
    pub fn shows(&self, change: &PendingChange, expanded: bool) -> bool {
        if change.is_expanded() && !expanded {
            return false;
        }
        match (self, &change.scope) {
            (Watch::Collection { db, coll }, Scope::Collection { db: d, coll: c }) => db == d && coll == c,
            (Watch::Collection { .. }, Scope::Database { .. }) => false,
            (Watch::Database { db }, Scope::Collection { db: d, coll }) => db == d && !internal_namespace(d, Some(coll)),
            (Watch::Database { db }, Scope::Database { db: d }) => db == d,
            (Watch::Cluster, Scope::Collection { db, coll }) => !internal_namespace(db, Some(coll)),
            (Watch::Cluster, Scope::Database { db }) => !internal_namespace(db, None),
        }
    }

    /// Whether `change`, shown to this stream, ends it: the watched
    /// collection dropped or renamed, the watched database dropped.
    pub fn ended_by(&self, change: &PendingChange) -> bool {
        change.invalidates
            && match self {
                Watch::Collection { .. } => matches!(change.scope, Scope::Collection { .. }),
                Watch::Database { .. } => matches!(change.scope, Scope::Database { .. }),
                Watch::Cluster => false,
            }
    }
}

/// `fullDocument` of a change stream.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FullDocument {
    Default,
    UpdateLookup,
    WhenAvailable,
    Required,
}

/// `fullDocumentBeforeChange` of a change stream.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BeforeChange {
    Off,
    WhenAvailable,
    Required,
}

/// An open change stream: what it watches, how far it has read, and how it
/// shapes events.
#[derive(Debug, Clone)]
pub struct Stream {
    pub watch: Watch,
    pub position: Position,
    /// The stages after `$changeStream`.
    pub pipeline: Vec<Document>,
    pub full_document: FullDocument,
    pub before_change: BeforeChange,
    pub show_expanded: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(time: u32, increment: u32) -> Timestamp {
        Timestamp { time, increment }
    }

    #[test]
    fn tokens_round_trip_and_order() {
        let a = Position { time: pack(ts(5, 1)), index: 0 };
        let b = Position { time: pack(ts(5, 1)), index: 1 };
        assert!(a < b);
        assert_eq!(Position::from_token(&Bson::Document(b.token())), Some(b));
        assert_eq!(Position::from_token(&Bson::Document(doc! {"_data": "zz"})), None);
        assert_eq!(b.timestamp(), ts(5, 1));
    }

    #[test]
    fn update_descriptions_name_what_changed() {
        let old = doc! {"_id": 1, "a": {"b": 1, "c": 2}, "arr": [1, 2, 3], "gone": true, "same": 5};
        let new = doc! {"_id": 1, "a": {"b": 9, "c": 2}, "arr": [1, 2], "same": 5, "added": "x"};
        let (d, ambiguous) = update_description(&old, &new);
        assert!(ambiguous.is_empty());
        assert_eq!(d.get_document("updatedFields").unwrap(), &doc! {"a.b": 9, "added": "x"});
        assert_eq!(d.get_array("removedFields").unwrap(), &vec![Bson::String("gone".into())]);
        assert_eq!(d.get_array("truncatedArrays").unwrap(), &vec![Bson::Document(doc! {"field": "arr", "newSize": 2})]);
        let (pushed, ambiguous) = update_description(&doc! {"arr": [1]}, &doc! {"arr": [1, 2]});
        assert_eq!(pushed.get_document("updatedFields").unwrap(), &doc! {"arr.1": 2});
        assert_eq!(ambiguous, doc! {"arr.1": ["arr", 1]});
        let (_, ambiguous) = update_description(&doc! {"a": {"1": 1}}, &doc! {"a": {"1": 2}});
        assert_eq!(ambiguous, doc! {"a.1": ["a", "1"]});
    }

    #[test]
    fn readers_see_events_in_commit_order_and_history_is_bounded() {
        let log = ChangeLog::new(ts(1, 0));
        let start = log.high_water();
        let inserted = doc! {"_id": 1, "a": "x"};
        let stored = RawDocumentBuf::try_from(&inserted).unwrap();
        log.publish(ts(2, 1), vec![PendingChange::insert("d", "c", &inserted, stored, false)], None);
        log.publish(ts(2, 2), vec![], None);
        log.publish(ts(2, 3), vec![PendingChange::delete("d", "c", &doc! {"_id": 1}, false)], None);
        let (events, reached) = log.read(start, 10, None, |_| true);
        assert_eq!(events.len(), 2);
        let insert = events[0].event();
        assert_eq!(insert.get_str("operationType").unwrap(), "insert");
        assert_eq!(insert.get_document("fullDocument").unwrap(), &inserted);
        assert_eq!(insert.get_document("documentKey").unwrap(), &doc! {"_id": 1});
        assert_eq!(insert.get_timestamp("clusterTime").unwrap(), ts(2, 1));
        assert_eq!(events[1].event().get_str("operationType").unwrap(), "delete");
        assert_eq!(reached, Position::end_of(pack(ts(2, 3))));
        let (events, _) = log.read(events[0].position, 10, None, |_| true);
        assert_eq!(events.len(), 1);
        assert!(log.lost(Position::before(pack(ts(1, 0)))));
        assert!(!log.lost(start));
    }
}
