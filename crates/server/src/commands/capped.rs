//! Capped collections (`create` with `capped`, `size`, `max`) and the
//! tailable cursors that follow them.
//!
//! Documents are stored by `_id` like any others; a capped collection's
//! insertion order, its *natural order*, is kept beside it in a companion
//! collection, `system.djongo.capped.<name>` (hidden from listCollections),
//! holding one `{_id: <sequence number>, id: <document _id>, n: <bytes>}`
//! per document and a summary at `_id: 0` (next sequence number, total
//! bytes, the last number evicted). An insert that takes the collection
//! past `size` bytes or `max` documents removes the oldest documents, as
//! MongoDB does. `find` without a sort (or with `{$natural: ±1}`) answers in
//! natural order, and `tailable: true` keeps the cursor open at the end: a
//! getMore returns the documents inserted since, waiting for them up to
//! its `maxTimeMS` with `awaitData`.
//!
//! Like mongod, writes to capped collections inside transactions are
//! refused (263), and a tailable cursor whose next document was already
//! evicted fails with CappedPositionLost (136).
use super::Ctx;
use crate::catalog::CollectionMeta;
use crate::cursor::{Live, LiveKind, Tail};
use crate::error::{CmdResult, CommandError};
use crate::storage::Tables;
use bson::{doc, Bson, Document};
use djongo_engine::{projection::FindProjection, Filter};
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

const COMPANION_PREFIX: &str = "system.djongo.capped.";
/// mongod's smallest capped size, and the granularity it rounds sizes to.
const MIN_SIZE: i64 = 4096;
const SIZE_GRANULARITY: i64 = 256;
/// mongod's default wait of a getMore on an awaitData cursor.
const DEFAULT_AWAIT: Duration = Duration::from_millis(1000);

pub fn is_capped(meta: &CollectionMeta) -> bool {
    matches!(meta.options.get("capped"), Some(Bson::Boolean(true)))
}

/// Whether a collection name is one of these companions (not listed).
pub fn is_companion(name: &str) -> bool {
    name.starts_with(COMPANION_PREFIX)
}

fn companion_name(coll: &str) -> String {
    format!("{COMPANION_PREFIX}{coll}")
}

fn number(v: &Bson) -> Option<f64> {
    match v {
        Bson::Int32(n) => Some(f64::from(*n)),
        Bson::Int64(n) => Some(*n as f64),
        Bson::Double(f) => Some(*f),
        _ => None,
    }
}

/// Checks and normalizes `capped`/`size`/`max` of `create`: the size is
/// rounded up as mongod rounds it.
pub fn check_options(options: &mut Document) -> CmdResult<()> {
    let capped = match options.get("capped") {
        None => false,
        Some(Bson::Boolean(b)) => *b,
        Some(_) => return Err(CommandError::type_mismatch("'capped' must be a boolean")),
    };
    if !capped {
        if options.contains_key("size") || options.contains_key("max") {
            options.remove("size");
            options.remove("max");
        }
        options.remove("capped");
        return Ok(());
    }
    let size = options.get("size").and_then(number).ok_or_else(|| CommandError::new(72, "InvalidOptions", "the 'size' field is required when 'capped' is true"))?;
    if !(1.0..=1e15).contains(&size) {
        return Err(CommandError::bad_value("'size' must be a positive number of bytes"));
    }
    let size = ((size.ceil() as i64).max(MIN_SIZE) + SIZE_GRANULARITY - 1) / SIZE_GRANULARITY * SIZE_GRANULARITY;
    options.insert("size", size);
    match options.get("max").map(number) {
        None => {}
        Some(Some(m)) if m > 0.0 && m < 2f64.powi(31) => {
            options.insert("max", m as i64);
        }
        // mongod treats max <= 0 as "no maximum".
        Some(Some(_)) => {
            options.remove("max");
        }
        Some(None) => return Err(CommandError::type_mismatch("'max' must be a number")),
    }
    Ok(())
}

fn limits(meta: &CollectionMeta) -> (i64, Option<i64>) {
    let size = meta.options.get("size").and_then(number).map_or(i64::MAX, |s| s as i64);
    let max = meta.options.get("max").and_then(number).map(|m| m as i64);
    (size, max)
}

fn companion(tables: &Tables<'_>, meta: &CollectionMeta) -> CmdResult<CollectionMeta> {
    tables
        .collection(&meta.db, &companion_name(&meta.name))?
        .ok_or_else(|| CommandError::internal(format!("capped collection {} has lost its insertion order", meta.ns())))
}

/// The summary document: `{_id: 0, next, bytes, evicted}`.
fn summary(tables: &Tables<'_>, companion: &CollectionMeta) -> CmdResult<Document> {
    Ok(tables.get_by_id_key(companion, &crate::keyenc::encode_one(&Bson::Int64(0)))?.unwrap_or_else(|| doc! {"_id": 0i64, "next": 1i64, "bytes": 0i64, "evicted": 0i64}))
}

/// Creates the companion of a new capped collection.
pub fn create(tables: &mut Tables<'_>, meta: &CollectionMeta) -> CmdResult<()> {
    let mut companion = tables.create_collection(&meta.db, &companion_name(&meta.name), Document::new())?;
    tables.create_index(&mut companion, &doc! {"key": {"id": 1}, "name": "id_1", "unique": true})?;
    tables.insert(&companion, &doc! {"_id": 0i64, "next": 1i64, "bytes": 0i64, "evicted": 0i64})
}

fn refuse_in_transaction(ctx_in_txn: bool, meta: &CollectionMeta) -> CmdResult<()> {
    if ctx_in_txn {
        return Err(CommandError::new(
            263,
            "OperationNotSupportedInTransaction",
            format!("Collection '{}' is a capped collection. Writes in transactions are not allowed on capped collections.", meta.ns()),
        ));
    }
    Ok(())
}

fn size_of(doc: &Document) -> i64 {
    doc.to_vec().map_or(0, |b| b.len() as i64)
}

/// Records documents just inserted, then removes the oldest documents while
/// the collection is past its size or count. Returns the documents removed.
pub fn inserted(tables: &mut Tables<'_>, meta: &CollectionMeta, docs: &[Document], in_txn: bool) -> CmdResult<Vec<Document>> {
    if !is_capped(meta) || docs.is_empty() {
        return Ok(Vec::new());
    }
    refuse_in_transaction(in_txn, meta)?;
    let (size, max) = limits(meta);
    let companion = companion(tables, meta)?;
    let mut state = summary(tables, &companion)?;
    let mut next = state.get_i64("next").unwrap_or(1);
    let mut bytes = state.get_i64("bytes").unwrap_or(0);
    for d in docs {
        let n = size_of(d);
        if n > size {
            return Err(CommandError::new(10003, "CannotGrowDocumentInCappedNamespace", format!("document is larger than the capped collection {} ({n} > {size} bytes)", meta.ns())));
        }
        tables.insert(&companion, &doc! {"_id": next, "id": d.get("_id").cloned().unwrap_or(Bson::Null), "n": n})?;
        next += 1;
        bytes += n;
    }
    let mut count = tables.count(meta)? as i64;
    let mut evicted_through = state.get_i64("evicted").unwrap_or(0);
    let mut removed = Vec::new();
    if bytes > size || max.is_some_and(|m| count > m) {
        for entry in tables.scan(&companion)? {
            if bytes <= size && max.is_none_or(|m| count <= m) {
                break;
            }
            let Ok(seq) = entry.get_i64("_id") else { continue };
            if seq == 0 {
                continue;
            }
            let id = entry.get("id").cloned().unwrap_or(Bson::Null);
            if let Some(doc) = tables.get_by_id_key(meta, &crate::keyenc::encode_one(&id))? {
                tables.delete(meta, &doc)?;
                removed.push(doc);
            }
            tables.delete(&companion, &entry)?;
            bytes -= entry.get_i64("n").unwrap_or(0);
            count -= 1;
            evicted_through = seq;
        }
    }
    let old_state = state.clone();
    state.insert("next", next);
    state.insert("bytes", bytes.max(0));
    state.insert("evicted", evicted_through);
    tables.replace(&companion, &old_state, &state)?;
    Ok(removed)
}

fn entry_of(tables: &Tables<'_>, companion: &CollectionMeta, id: &Bson) -> CmdResult<Option<Document>> {
    let Some(ix) = companion.index("id_1") else { return Ok(None) };
    let key = crate::keyenc::encode_one(id);
    let bound = std::ops::Bound::Included(key.as_slice());
    match tables.index_entries(companion, ix, bound, bound, false)?.next().transpose()? {
        Some(entry) => tables.get_by_id_key(companion, &entry.id),
        None => Ok(None),
    }
}

/// Forgets a document removed by a delete.
pub fn removed(tables: &mut Tables<'_>, meta: &CollectionMeta, doc: &Document, in_txn: bool) -> CmdResult<()> {
    if !is_capped(meta) {
        return Ok(());
    }
    refuse_in_transaction(in_txn, meta)?;
    let companion = companion(tables, meta)?;
    let Some(entry) = entry_of(tables, &companion, doc.get("_id").unwrap_or(&Bson::Null))? else { return Ok(()) };
    tables.delete(&companion, &entry)?;
    let state = summary(tables, &companion)?;
    let mut updated = state.clone();
    updated.insert("bytes", (state.get_i64("bytes").unwrap_or(0) - entry.get_i64("n").unwrap_or(0)).max(0));
    tables.replace(&companion, &state, &updated)
}

/// Accounts for a document that an update changed in place (its place in
/// the natural order stays).
pub fn replaced(tables: &mut Tables<'_>, meta: &CollectionMeta, new: &Document, in_txn: bool) -> CmdResult<()> {
    if !is_capped(meta) {
        return Ok(());
    }
    refuse_in_transaction(in_txn, meta)?;
    let companion = companion(tables, meta)?;
    let Some(entry) = entry_of(tables, &companion, new.get("_id").unwrap_or(&Bson::Null))? else { return Ok(()) };
    let n = size_of(new);
    let (size, _) = limits(meta);
    if n > size {
        return Err(CommandError::new(10003, "CannotGrowDocumentInCappedNamespace", format!("document is larger than the capped collection {}", meta.ns())));
    }
    let mut updated = entry.clone();
    updated.insert("n", n);
    tables.replace(&companion, &entry, &updated)?;
    let state = summary(tables, &companion)?;
    let mut new_state = state.clone();
    new_state.insert("bytes", (state.get_i64("bytes").unwrap_or(0) - entry.get_i64("n").unwrap_or(0) + n).max(0));
    tables.replace(&companion, &state, &new_state)
}

/// Drops the companion with its collection.
pub fn dropped(tables: &mut Tables<'_>, meta: &CollectionMeta) -> CmdResult<()> {
    if let Some(companion) = tables.collection(&meta.db, &companion_name(&meta.name))? {
        tables.drop_collection(&companion)?;
    }
    Ok(())
}

/// Moves the companion with its collection.
pub fn renamed(tables: &mut Tables<'_>, meta: &CollectionMeta, to_db: &str, to_coll: &str) -> CmdResult<()> {
    if let Some(companion) = tables.collection(&meta.db, &companion_name(&meta.name))? {
        tables.rename_collection(&companion, to_db, &companion_name(to_coll))?;
    }
    Ok(())
}

/// `Some(reverse)` for a `{$natural: 1 | -1}` sort.
pub fn natural_direction(sort: &Document) -> Option<bool> {
    if sort.len() != 1 {
        return None;
    }
    match sort.get("$natural").and_then(number) {
        Some(d) if d > 0.0 => Some(false),
        Some(d) if d < 0.0 => Some(true),
        _ => None,
    }
}

/// How a find on `meta` sorted by `sort` is ordered by natural order:
/// `Some(reverse)` for a `$natural` sort, or for a capped collection with
/// no sort; `None` otherwise.
pub fn natural_order(meta: &CollectionMeta, sort: Option<&Document>) -> Option<bool> {
    match sort {
        Some(s) => natural_direction(s),
        None => is_capped(meta).then_some(false),
    }
}

/// The sequence numbers of a capped collection's documents, by `_id` key.
fn sequence_numbers(tables: &Tables<'_>, meta: &CollectionMeta) -> CmdResult<HashMap<Vec<u8>, i64>> {
    let companion = companion(tables, meta)?;
    let mut out = HashMap::new();
    for entry in tables.scan(&companion)? {
        let Ok(seq) = entry.get_i64("_id") else { continue };
        if seq > 0 {
            out.insert(crate::keyenc::encode_one(entry.get("id").unwrap_or(&Bson::Null)), seq);
        }
    }
    Ok(out)
}

/// Puts a find's documents in natural order: insertion order for a capped
/// collection, `_id` order (the storage order) for any other; `reverse` for
/// `{$natural: -1}`.
pub fn order_naturally(tables: &Tables<'_>, meta: &CollectionMeta, reverse: bool, docs: &mut [Document]) -> CmdResult<()> {
    if is_capped(meta) {
        let seqs = sequence_numbers(tables, meta)?;
        docs.sort_by_cached_key(|d| seqs.get(&crate::keyenc::encode_one(d.get("_id").unwrap_or(&Bson::Null))).copied().unwrap_or(i64::MAX));
    }
    if reverse {
        docs.reverse();
    }
    Ok(())
}

/// Whether a find asks for a tailable cursor.
pub fn is_tailable_find(name: &str, body: &Document) -> bool {
    name == "find" && super::opt_bool(body, "tailable")
}

/// A tailable find: the documents there are now, in natural order, and a
/// cursor that stays open for the ones inserted later (only on a capped
/// collection). The first batch never waits.
pub fn tailable_find(ctx: &mut Ctx<'_>, body: &Document) -> CmdResult<Document> {
    let coll = super::collection_arg(body, "find")?;
    let db = ctx.db.clone();
    if super::opt_doc(body, "sort")?.filter(|s| !s.is_empty()).is_some_and(|s| natural_direction(&s) != Some(false)) {
        return Err(CommandError::bad_value("error processing query: cannot use tailable option with a sort other than {$natural: 1}"));
    }
    // The documents there now start after the last one evicted.
    let (evicted, last_seq) = {
        let tables = ctx.scope.read()?;
        match tables.collection(&db, &coll)? {
            Some(meta) if is_capped(&meta) => {
                let companion = companion(&tables, &meta)?;
                let state = summary(&tables, &companion)?;
                (state.get_i64("evicted").unwrap_or(0), state.get_i64("next").unwrap_or(1) - 1)
            }
            _ => {
                return Err(CommandError::bad_value(format!("error processing query: ns={db}.{coll}: tailable cursor requested on non capped collection")));
            }
        }
    };
    let vars = super::let_vars::parse(body)?;
    let filter = super::let_vars::bind_filter(super::opt_doc(body, "filter")?.unwrap_or_default(), vars.as_ref());
    let projection = super::opt_doc(body, "projection")?.filter(|p| !p.is_empty());
    // Everything there now goes through the queue, then the tail follows.
    let mut tail = Tail { db: db.clone(), coll: coll.clone(), queue: VecDeque::new(), last_seq: evicted, filter, projection, await_data: super::opt_bool(body, "awaitData") };
    let batch_size = match super::opt_i64(body, "batchSize")? {
        Some(n) if n < 0 => return Err(CommandError::bad_value("batchSize must be non-negative")),
        Some(0) | None => crate::cursor::DEFAULT_FIRST_BATCH,
        Some(n) => n as usize,
    };
    let first = {
        let await_data = std::mem::replace(&mut tail.await_data, false);
        let first = next_batch(ctx, &mut tail, batch_size, None)?.unwrap_or_default();
        tail.await_data = await_data;
        first
    };
    tail.last_seq = tail.last_seq.max(last_seq);
    let ns = format!("{db}.{coll}");
    let id = ctx.state.cursors.register_live(ns.clone(), Live::Tail(Box::new(tail)));
    let batch: Vec<Bson> = first.into_iter().map(Bson::Document).collect();
    Ok(doc! {"cursor": {"firstBatch": batch, "id": id, "ns": ns}, "ok": 1.0})
}

/// Serves a getMore on a tailable cursor; `None` if the cursor is not one.
pub fn get_more(ctx: &mut Ctx<'_>, body: &Document) -> CmdResult<Option<Document>> {
    let Some(id) = body.get("getMore").and_then(super::num_i64) else { return Ok(None) };
    let Some(Bson::String(coll)) = body.get("collection") else { return Ok(None) };
    let ns = format!("{}.{coll}", ctx.db);
    let Some(live) = ctx.state.cursors.take_live(id, &ns, LiveKind::Tail)? else { return Ok(None) };
    let Live::Tail(mut tail) = live else { return Ok(None) };
    let batch_size = super::opt_i64(body, "batchSize")?.filter(|n| *n > 0).map_or(usize::MAX, |n| n as usize);
    let wait = super::concerns::max_time_ms(body, "getMore")?.map(Duration::from_millis);
    let batch = match next_batch(ctx, &mut tail, batch_size, wait) {
        Ok(b) => b,
        Err(e) => {
            ctx.state.cursors.kill(&[id]);
            return Err(e);
        }
    };
    let Some(batch) = batch else {
        ctx.state.cursors.kill(&[id]);
        return Ok(Some(doc! {"cursor": {"nextBatch": [], "id": 0i64, "ns": ns}, "ok": 1.0}));
    };
    ctx.state.cursors.return_live(id, Live::Tail(tail));
    let batch: Vec<Bson> = batch.into_iter().map(Bson::Document).collect();
    Ok(Some(doc! {"cursor": {"nextBatch": batch, "id": id, "ns": ns}, "ok": 1.0}))
}

/// The next batch of a tailable cursor; `None` when its collection is gone
/// (the cursor dies).
pub fn next_batch(ctx: &mut Ctx<'_>, tail: &mut Tail, limit: usize, wait: Option<Duration>) -> CmdResult<Option<Vec<Document>>> {
    let deadline = Instant::now() + if tail.await_data { wait.unwrap_or(DEFAULT_AWAIT) } else { Duration::ZERO };
    loop {
        if !tail.queue.is_empty() {
            let n = limit.min(tail.queue.len());
            return Ok(Some(tail.queue.drain(..n).collect()));
        }
        let since = ctx.state.changes.high_water();
        let fresh = {
            // A fresh read each time round: new inserts are in newer snapshots.
            let mut scope = super::Scope::autocommit(&ctx.state.storage, ctx.state.write_lock_timeout);
            let tables = scope.read()?;
            let Some(meta) = tables.collection(&tail.db, &tail.coll)?.filter(is_capped) else { return Ok(None) };
            let companion = companion(&tables, &meta)?;
            let state = summary(&tables, &companion)?;
            if state.get_i64("evicted").unwrap_or(0) > tail.last_seq {
                return Err(CommandError::new(136, "CappedPositionLost", format!("CollectionScan died due to position in capped collection being deleted. Last seen record id: {}", tail.last_seq)));
            }
            let filter = Filter::parse(&tail.filter)?;
            let projection = match &tail.projection {
                Some(p) => Some(FindProjection::parse(p, &tail.filter)?),
                None => None,
            };
            let mut out = Vec::new();
            for entry in tables.scan(&companion)? {
                let Ok(seq) = entry.get_i64("_id") else { continue };
                if seq <= tail.last_seq {
                    continue;
                }
                tail.last_seq = seq;
                let id = entry.get("id").cloned().unwrap_or(Bson::Null);
                let Some(doc) = tables.get_by_id_key(&meta, &crate::keyenc::encode_one(&id))? else { continue };
                if filter.matches(&doc)? {
                    out.push(match &projection {
                        Some(p) => p.apply(&doc)?,
                        None => doc,
                    });
                }
            }
            out
        };
        tail.queue.extend(fresh);
        if !tail.queue.is_empty() || Instant::now() >= deadline {
            let n = limit.min(tail.queue.len());
            return Ok(Some(tail.queue.drain(..n).collect()));
        }
        // Every commit moves the change log's high-water mark: wait for one.
        ctx.state.changes.wait_for_commit(since, deadline);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_checked_and_sizes_rounded() {
        let mut o = doc! {"capped": true, "size": 5000, "max": 3};
        check_options(&mut o).unwrap();
        assert_eq!(o, doc! {"capped": true, "size": 5120i64, "max": 3i64});
        let mut o = doc! {"capped": true, "size": 1};
        check_options(&mut o).unwrap();
        assert_eq!(o.get_i64("size").unwrap(), 4096);
        assert_eq!(check_options(&mut doc! {"capped": true}).unwrap_err().code, 72);
        let mut o = doc! {"capped": false, "size": 10};
        check_options(&mut o).unwrap();
        assert!(o.is_empty());
        assert_eq!(natural_direction(&doc! {"$natural": -1}), Some(true));
        assert_eq!(natural_direction(&doc! {"a": 1}), None);
    }
}
