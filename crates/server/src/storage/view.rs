//! One redb table as a command sees it: a read snapshot, the live table of
//! an autocommit write, or a transaction's snapshot with its pending writes
//! (`overlay`) merged over it.
//!
//! `View::get` and `View::range` have the shapes of redb's `ReadableTable`
//! methods (guards with `.value()`, a double-ended range), so every reader in
//! `Tables` works the same in and out of a transaction.
use super::overlay::{Entry, Overlay, TableId};
use crate::error::{CmdResult, CommandError};
use redb::{AccessGuard, Key, ReadOnlyTable, ReadableTable, Table, Value};
use std::borrow::Borrow;
use std::cell::RefCell;
use std::cmp::Ordering;
use std::collections::VecDeque;
use std::ops::{Bound, RangeBounds};

pub struct View<'t, K: Key + 'static, V: Value + 'static> {
    source: Source<'t, K, V>,
}

enum Source<'t, K: Key + 'static, V: Value + 'static> {
    Snapshot(ReadOnlyTable<K, V>),
    /// A table of the latest snapshot that reads share (`latest`).
    Shared(&'t ReadOnlyTable<K, V>),
    Live(Table<'t, K, V>),
    Overlaid { base: ReadOnlyTable<K, V>, overlay: &'t RefCell<Overlay>, table: TableId },
}

/// A value read through a view: stored in redb, or pending in an overlay.
pub enum Guard<'a, V: Value + 'static> {
    Stored(AccessGuard<'a, V>),
    Pending(Vec<u8>),
}

impl<V: Value + 'static> Guard<'_, V> {
    pub fn value(&self) -> V::SelfType<'_> {
        match self {
            Guard::Stored(g) => g.value(),
            Guard::Pending(bytes) => V::from_bytes(bytes),
        }
    }
}

fn busy() -> CommandError {
    CommandError::internal("transaction overlay is already borrowed")
}

fn owned_bound<K: Key + 'static>(b: Bound<&K::SelfType<'_>>) -> Bound<Vec<u8>> {
    match b {
        Bound::Included(k) => Bound::Included(K::as_bytes(k).as_ref().to_vec()),
        Bound::Excluded(k) => Bound::Excluded(K::as_bytes(k).as_ref().to_vec()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

fn as_slice(b: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match b {
        Bound::Included(k) => Bound::Included(k.as_slice()),
        Bound::Excluded(k) => Bound::Excluded(k.as_slice()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

impl<'t, K: Key + 'static, V: Value + 'static> View<'t, K, V> {
    pub(crate) fn snapshot(table: ReadOnlyTable<K, V>) -> Self {
        View { source: Source::Snapshot(table) }
    }

    pub(crate) fn shared(table: &'t ReadOnlyTable<K, V>) -> Self {
        View { source: Source::Shared(table) }
    }

    pub(crate) fn live(table: Table<'t, K, V>) -> Self {
        View { source: Source::Live(table) }
    }

    pub(crate) fn overlaid(base: ReadOnlyTable<K, V>, overlay: &'t RefCell<Overlay>, table: TableId) -> Self {
        View { source: Source::Overlaid { base, overlay, table } }
    }

    pub fn get<'a>(&self, key: impl Borrow<K::SelfType<'a>>) -> CmdResult<Option<Guard<'_, V>>> {
        let key = key.borrow();
        match &self.source {
            Source::Snapshot(t) => Ok(t.get(key)?.map(Guard::Stored)),
            Source::Shared(t) => Ok(t.get(key)?.map(Guard::Stored)),
            Source::Live(t) => Ok(t.get(key)?.map(Guard::Stored)),
            Source::Overlaid { base, overlay, table } => {
                let pending = overlay.try_borrow().map_err(|_| busy())?.get(*table, K::as_bytes(key).as_ref()).cloned();
                match pending {
                    Some(entry) => Ok(entry.map(Guard::Pending)),
                    None => Ok(base.get(key)?.map(Guard::Stored)),
                }
            }
        }
    }

    /// The entries within `range`, in key order (double-ended, like redb's).
    pub fn range<'a, KR>(&self, range: impl RangeBounds<KR> + 'a) -> CmdResult<Range<'_, K, V>>
    where
        KR: Borrow<K::SelfType<'a>> + 'a,
    {
        match &self.source {
            Source::Snapshot(t) => Ok(Range::stored(t.range(range)?)),
            Source::Shared(t) => Ok(Range::stored(t.range(range)?)),
            Source::Live(t) => Ok(Range::stored(t.range(range)?)),
            Source::Overlaid { base, overlay, table } => {
                let lower = owned_bound::<K>(range.start_bound().map(Borrow::borrow));
                let upper = owned_bound::<K>(range.end_bound().map(Borrow::borrow));
                let pending = overlay.try_borrow().map_err(|_| busy())?.range(*table, as_slice(&lower), as_slice(&upper));
                Ok(Range { base: base.range(range)?, pending: pending.into(), front: None, back: None })
            }
        }
    }

    /// Every entry, in key order.
    pub fn iter(&self) -> CmdResult<Range<'_, K, V>> {
        self.range::<K::SelfType<'_>>(..)
    }

    /// The entry with the smallest key.
    pub fn first(&self) -> CmdResult<Option<(Guard<'_, K>, Guard<'_, V>)>> {
        self.iter()?.next().transpose()
    }

    /// The entry with the largest key.
    pub fn last(&self) -> CmdResult<Option<(Guard<'_, K>, Guard<'_, V>)>> {
        self.iter()?.next_back().transpose()
    }

    pub(crate) fn insert<'k, 'v>(&mut self, key: impl Borrow<K::SelfType<'k>>, value: impl Borrow<V::SelfType<'v>>) -> CmdResult<()> {
        match &mut self.source {
            Source::Live(t) => {
                t.insert(key, value)?;
                Ok(())
            }
            Source::Overlaid { overlay, table, .. } => {
                let key = K::as_bytes(key.borrow()).as_ref().to_vec();
                let value = V::as_bytes(value.borrow()).as_ref().to_vec();
                overlay.try_borrow_mut().map_err(|_| busy())?.write(*table, key, Some(value));
                Ok(())
            }
            Source::Snapshot(_) | Source::Shared(_) => Err(read_only()),
        }
    }

    pub(crate) fn remove<'k>(&mut self, key: impl Borrow<K::SelfType<'k>>) -> CmdResult<()> {
        match &mut self.source {
            Source::Live(t) => {
                t.remove(key)?;
                Ok(())
            }
            Source::Overlaid { overlay, table, .. } => {
                let key = K::as_bytes(key.borrow()).as_ref().to_vec();
                overlay.try_borrow_mut().map_err(|_| busy())?.write(*table, key, None);
                Ok(())
            }
            Source::Snapshot(_) | Source::Shared(_) => Err(read_only()),
        }
    }
}

impl<'t, K: Key + 'static, V: Value + 'static> View<'t, K, V> {
    /// [`insert`](Self::insert), telling whether the key was new. `None` in
    /// a transaction: its writes are counted when it commits.
    pub(crate) fn insert_counted<'k, 'v>(&mut self, key: impl Borrow<K::SelfType<'k>>, value: impl Borrow<V::SelfType<'v>>) -> CmdResult<Option<bool>> {
        match &mut self.source {
            Source::Live(t) => Ok(Some(t.insert(key, value)?.is_none())),
            _ => self.insert(key, value).map(|()| None),
        }
    }

    /// [`remove`](Self::remove), telling whether the key held a value.
    /// `None` in a transaction, as for `insert_counted`.
    pub(crate) fn remove_counted<'k>(&mut self, key: impl Borrow<K::SelfType<'k>>) -> CmdResult<Option<bool>> {
        match &mut self.source {
            Source::Live(t) => Ok(Some(t.remove(key)?.is_some())),
            _ => self.remove(key).map(|()| None),
        }
    }
}

impl View<'_, &'static [u8], &'static [u8]> {
    /// How much a transaction's pending writes between the bounds change the
    /// number of entries of its snapshot: a pending value for a key the
    /// snapshot lacks adds one, a pending removal of a key it holds takes
    /// one. Zero outside a transaction.
    pub fn pending_delta(&self, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> CmdResult<i64> {
        let Source::Overlaid { base, overlay, table } = &self.source else { return Ok(0) };
        let pending = overlay.try_borrow().map_err(|_| busy())?.range(*table, lower, upper);
        let mut delta = 0i64;
        for (key, entry) in pending {
            let stored = base.get(key.as_slice())?.is_some();
            match (entry.is_some(), stored) {
                (true, false) => delta += 1,
                (false, true) => delta -= 1,
                _ => {}
            }
        }
        Ok(delta)
    }
}

fn read_only() -> CommandError {
    CommandError::internal("write attempted in a read-only transaction")
}

type Pair<'a, K, V> = (AccessGuard<'a, K>, AccessGuard<'a, V>);

/// A range over a view: the stored entries, with pending ones (if any)
/// merged in by key; a pending removal hides the stored entry.
pub struct Range<'a, K: Key + 'static, V: Value + 'static> {
    base: redb::Range<'a, K, V>,
    pending: VecDeque<(Vec<u8>, Entry)>,
    /// A stored entry taken from the front (back) of `base` but not yet
    /// returned, because a pending entry came first.
    front: Option<Pair<'a, K, V>>,
    back: Option<Pair<'a, K, V>>,
}

impl<'a, K: Key + 'static, V: Value + 'static> Range<'a, K, V> {
    fn stored(base: redb::Range<'a, K, V>) -> Self {
        Range { base, pending: VecDeque::new(), front: None, back: None }
    }

    /// How many entries are left, read from either end. Without pending
    /// entries this steps redb's iterator alone and drops each pair where it
    /// is made: no guard is wrapped and moved through the merge (a count of
    /// index keys is nothing but this loop).
    pub fn count_remaining(self) -> CmdResult<u64> {
        let mut n = 0u64;
        if self.pending.is_empty() && self.front.is_none() && self.back.is_none() {
            for item in self.base {
                item?;
                n += 1;
            }
            return Ok(n);
        }
        for item in self {
            item?;
            n += 1;
        }
        Ok(n)
    }

    fn stored_pair(pair: Pair<'a, K, V>) -> (Guard<'a, K>, Guard<'a, V>) {
        (Guard::Stored(pair.0), Guard::Stored(pair.1))
    }

    fn key_order(stored: &AccessGuard<'a, K>, pending: &[u8]) -> Ordering {
        K::compare(K::as_bytes(&stored.value()).as_ref(), pending)
    }

    /// One step from the front (`forward`) or the back.
    fn step(&mut self, forward: bool) -> Option<CmdResult<(Guard<'a, K>, Guard<'a, V>)>> {
        loop {
            // The next stored entry from this end; once `base` is exhausted
            // the last one may be waiting in the other end's slot.
            let slot_empty = if forward { self.front.is_none() } else { self.back.is_none() };
            if slot_empty {
                let next = if forward { self.base.next() } else { self.base.next_back() };
                let next = match next {
                    Some(Ok(pair)) => Some(pair),
                    Some(Err(e)) => return Some(Err(e.into())),
                    None => {
                        if forward {
                            self.back.take()
                        } else {
                            self.front.take()
                        }
                    }
                };
                if forward {
                    self.front = next;
                } else {
                    self.back = next;
                }
            }
            let stored = if forward { &mut self.front } else { &mut self.back };
            let pending = if forward { self.pending.front() } else { self.pending.back() };
            let take_pending = match (stored.as_ref(), pending) {
                (None, None) => return None,
                (Some(_), None) => false,
                (None, Some(_)) => true,
                (Some(s), Some((pk, _))) => {
                    let order = Self::key_order(&s.0, pk);
                    if order == Ordering::Equal {
                        // The pending entry replaces the stored one.
                        *stored = None;
                        true
                    } else {
                        (order == Ordering::Greater) == forward
                    }
                }
            };
            if !take_pending {
                return stored.take().map(|pair| Ok(Self::stored_pair(pair)));
            }
            let popped = if forward { self.pending.pop_front() } else { self.pending.pop_back() };
            match popped {
                Some((key, Some(value))) => return Some(Ok((Guard::Pending(key), Guard::Pending(value)))),
                // A pending removal: nothing to return for this key.
                Some((_, None)) => continue,
                None => return None,
            }
        }
    }
}

impl Range<'_, &'static [u8], &'static [u8]> {
    /// The next pair from the front (`forward`) or the back, lent to `f`
    /// where it lies. Without pending entries redb's pair goes to `f`
    /// directly instead of being wrapped in `Guard`s and moved out first.
    pub fn next_with<T>(&mut self, forward: bool, f: impl FnOnce(&[u8], &[u8]) -> CmdResult<T>) -> Option<CmdResult<T>> {
        if self.pending.is_empty() && self.front.is_none() && self.back.is_none() {
            let item = if forward { self.base.next() } else { self.base.next_back() };
            return item.map(|r| r.map_err(Into::into).and_then(|(k, v)| f(k.value(), v.value())));
        }
        let item = if forward { self.next() } else { self.next_back() };
        item.map(|r| r.and_then(|(k, v)| f(k.value(), v.value())))
    }
}

impl<'a, K: Key + 'static, V: Value + 'static> Iterator for Range<'a, K, V> {
    type Item = CmdResult<(Guard<'a, K>, Guard<'a, V>)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pending.is_empty() && self.front.is_none() && self.back.is_none() {
            return self.base.next().map(|r| r.map(Self::stored_pair).map_err(Into::into));
        }
        self.step(true)
    }
}

impl<K: Key + 'static, V: Value + 'static> DoubleEndedIterator for Range<'_, K, V> {
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.pending.is_empty() && self.front.is_none() && self.back.is_none() {
            return self.base.next_back().map(|r| r.map(Self::stored_pair).map_err(Into::into));
        }
        self.step(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use redb::{Database, ReadableDatabase, TableDefinition};
    use std::collections::BTreeMap;

    const T: TableDefinition<&[u8], &[u8]> = TableDefinition::new("t");

    fn collect(r: Range<'_, &'static [u8], &'static [u8]>, backwards: bool) -> Vec<(Vec<u8>, Vec<u8>)> {
        let items: Vec<_> = if backwards { r.rev().collect() } else { r.collect() };
        items.into_iter().map(|i| i.unwrap()).map(|(k, v)| (k.value().to_vec(), v.value().to_vec())).collect()
    }

    proptest! {
        /// Reading through an overlay gives exactly what applying the
        /// overlay to the table would hold, from either end, interleaved.
        #[test]
        fn overlaid_reads_match_the_applied_writes(
            stored in proptest::collection::btree_map(0u8..40, 0u8..5, 0..20),
            writes in proptest::collection::vec((0u8..40, proptest::option::of(0u8..5)), 0..30),
            lo in 0u8..45, hi in 0u8..45, pattern in proptest::collection::vec(any::<bool>(), 0..60),
        ) {
            let file = tempfile::NamedTempFile::new().unwrap();
            let db = Database::create(file.path()).unwrap();
            let w = db.begin_write().unwrap();
            {
                let mut t = w.open_table(T).unwrap();
                for (k, v) in &stored {
                    t.insert([*k].as_slice(), [*v].as_slice()).unwrap();
                }
            }
            w.commit().unwrap();
            let overlay = RefCell::new(Overlay::default());
            let mut expected: BTreeMap<Vec<u8>, Vec<u8>> = stored.iter().map(|(k, v)| (vec![*k], vec![*v])).collect();
            for (k, v) in &writes {
                overlay.borrow_mut().write(TableId::Docs, vec![*k], v.map(|v| vec![v]));
                match v {
                    Some(v) => expected.insert(vec![*k], vec![*v]),
                    None => expected.remove(&vec![*k]),
                };
            }
            let r = db.begin_read().unwrap();
            let view = View::overlaid(r.open_table(T).unwrap(), &overlay, TableId::Docs);
            for (k, v) in &expected {
                prop_assert_eq!(view.get(k.as_slice()).unwrap().map(|g| g.value().to_vec()), Some(v.clone()));
            }
            let (lo, hi) = (vec![lo], vec![hi]);
            let want: Vec<(Vec<u8>, Vec<u8>)> = expected.iter()
                .filter(|(k, _)| **k >= lo && **k < hi).map(|(k, v)| (k.clone(), v.clone())).collect();
            if lo <= hi {
                prop_assert_eq!(collect(view.range(lo.as_slice()..hi.as_slice()).unwrap(), false), want.clone());
                let mut back = collect(view.range(lo.as_slice()..hi.as_slice()).unwrap(), true);
                back.reverse();
                prop_assert_eq!(back, want.clone());
                // Interleaved from both ends: front items then reversed back items.
                let mut range = view.range(lo.as_slice()..hi.as_slice()).unwrap();
                let (mut front, mut rear) = (Vec::new(), Vec::new());
                for from_front in pattern.iter().copied().chain(std::iter::repeat_n(true, want.len() + 1)) {
                    let item = if from_front { range.next() } else { range.next_back() };
                    let Some(item) = item else { break };
                    let (k, v) = item.unwrap();
                    let pair = (k.value().to_vec(), v.value().to_vec());
                    if from_front { front.push(pair) } else { rear.push(pair) }
                }
                rear.reverse();
                front.extend(rear);
                prop_assert_eq!(front, want);
            }
            let first = view.first().unwrap().map(|(k, _)| k.value().to_vec());
            let last = view.last().unwrap().map(|(k, _)| k.value().to_vec());
            prop_assert_eq!(first, expected.keys().next().cloned());
            prop_assert_eq!(last, expected.keys().next_back().cloned());
            let all = collect(view.iter().unwrap(), false);
            prop_assert_eq!(all, expected.into_iter().collect::<Vec<_>>());
        }
    }
}
