//! Applying many writes, already in key order, to one redb table.
//!
//! One `Table::insert` per key descends the B-tree from its root and edits
//! one leaf, splitting it when full: for a statement's thousand new
//! documents that is a thousand descents and hundreds of leaf rebuilds,
//! although most of the new keys land side by side (fresh `_id`s and
//! counters append at the end of their collection, a low-cardinality index
//! gets a handful of new entries after each of its values). Keys that fall
//! into one gap between stored keys go in instead as one run through a
//! cursor, which redb (`CursorMut::insert_before`) buffers and splices into
//! the leaves at once. Finding a gap's upper end costs a read descent, so a
//! part of the table whose keys keep landing in gaps of their own (an index
//! on a value spread over the whole range) stops being probed and gets plain
//! inserts, as before.
use super::overlay::Entry;
use crate::error::{CmdResult, CommandError};
use redb::{CursorError, ReadableTable, Table};
use std::collections::BTreeMap;
use std::ops::Bound;

/// After this many gaps in a row that took a single key, the rest of that
/// part of the table is written key by key.
const LONE_GAPS_BEFORE_GIVING_UP: u32 = 3;

type Bytes = &'static [u8];

/// Writes `entries` (a value, or `None` to remove the key) into `table` in
/// their key order. `moved(key, ±1)` is told of every key added or removed
/// (a replaced value moves nothing), for the collections' counts. `prefix`
/// is how many leading key bytes name the part of the table (collection,
/// index) within which gaps are judged.
pub(super) fn write_in_order(
    table: &mut Table<'_, Bytes, Bytes>,
    entries: BTreeMap<Vec<u8>, Entry>,
    prefix: usize,
    mut moved: impl FnMut(&[u8], i64) -> CmdResult<()>,
) -> CmdResult<()> {
    let part_of = |key: &[u8]| key.get(..prefix).unwrap_or(key).to_vec();
    let mut part: Vec<u8> = Vec::new();
    let mut lone_gaps = 0u32;
    let mut entries = entries.into_iter().peekable();
    while let Some((key, entry)) = entries.next() {
        let Some(value) = entry else {
            if table.remove(key.as_slice())?.is_some() {
                moved(&key, -1)?;
            }
            continue;
        };
        if part_of(&key) != part {
            part = part_of(&key);
            lone_gaps = 0;
        }
        let next_is_insert = matches!(entries.peek(), Some((_, Some(_))));
        if next_is_insert && lone_gaps < LONE_GAPS_BEFORE_GIVING_UP {
            // The first stored key at or after `key`: the gap's upper end.
            let upper: Option<Vec<u8>> = match table.range::<&[u8]>(key.as_slice()..)?.next() {
                Some(item) => Some(item?.0.value().to_vec()),
                None => None,
            };
            let fits = |k: &[u8]| upper.as_deref().is_none_or(|u| k < u);
            // (When `key` itself is stored, no later key fits: a replacement
            // goes in below, by key.)
            if entries.peek().is_some_and(|(k, _)| fits(k)) {
                lone_gaps = 0;
                let mut cursor = table.lower_bound_mut(Bound::Included(key.as_slice()))?;
                insert_before(&mut cursor, &key, &value)?;
                moved(&key, 1)?;
                while let Some((k, Some(v))) = entries.next_if(|(k, e)| e.is_some() && fits(k)) {
                    insert_before(&mut cursor, &k, &v)?;
                    moved(&k, 1)?;
                }
                cursor.close()?;
                continue;
            }
            lone_gaps += 1;
        }
        if table.insert(key.as_slice(), value.as_slice())?.is_none() {
            moved(&key, 1)?;
        }
    }
    Ok(())
}

fn insert_before(cursor: &mut redb::CursorMut<'_, Bytes, Bytes>, key: &[u8], value: &[u8]) -> CmdResult<()> {
    cursor.insert_before(key, value).map_err(|e| match e {
        // The gap was measured against the stored keys just before, and the
        // keys come in strictly ascending order: this is a bug, not data.
        CursorError::UnorderedKey => CommandError::internal("a sorted write fell outside its gap"),
        CursorError::Storage(e) => e.into(),
        other => CommandError::internal(format!("storage error: {other}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use redb::{Database, TableDefinition};

    const T: TableDefinition<&[u8], &[u8]> = TableDefinition::new("t");

    /// Keys of two bytes of "part" and up to three more, so that parts,
    /// runs, lone gaps, equal keys and prefixes of other keys all occur.
    fn key() -> impl Strategy<Value = Vec<u8>> {
        (0u8..3, proptest::collection::vec(0u8..6, 0..4)).prop_map(|(part, rest)| {
            let mut k = vec![b'p', part];
            k.extend(rest);
            k
        })
    }

    fn value() -> impl Strategy<Value = Vec<u8>> {
        // Up to a few hundred bytes, so that leaves fill and split.
        (0u8..=255, 0usize..400).prop_map(|(b, n)| vec![b; n])
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// The table ends up holding what a key-by-key application would
        /// leave, and every added or removed key is reported once.
        #[test]
        fn writes_in_order_as_one_by_one_would(
            stored in proptest::collection::btree_map(key(), value(), 0..200),
            writes in proptest::collection::btree_map(key(), proptest::option::weighted(0.8, value()), 0..200),
        ) {
            let file = tempfile::NamedTempFile::new().unwrap();
            let db = Database::create(file.path()).unwrap();
            let w = db.begin_write().unwrap();
            let mut expected = stored.clone();
            let mut expected_moves = 0i64;
            for (k, v) in &writes {
                match v {
                    Some(v) => expected_moves += i64::from(expected.insert(k.clone(), v.clone()).is_none()),
                    None => expected_moves -= i64::from(expected.remove(k).is_some()),
                }
            }
            {
                let mut t = w.open_table(T).unwrap();
                for (k, v) in &stored {
                    t.insert(k.as_slice(), v.as_slice()).unwrap();
                }
                let mut moves = 0i64;
                let mut reported = Vec::new();
                write_in_order(&mut t, writes.clone(), 2, |k, m| {
                    reported.push(k.to_vec());
                    moves += m;
                    Ok(())
                }).unwrap();
                let distinct: std::collections::BTreeSet<&Vec<u8>> = reported.iter().collect();
                prop_assert_eq!(distinct.len(), reported.len());
                prop_assert_eq!(moves, expected_moves);
                let got: BTreeMap<Vec<u8>, Vec<u8>> = t.iter().unwrap().map(|item| {
                    let (k, v) = item.unwrap();
                    (k.value().to_vec(), v.value().to_vec())
                }).collect();
                prop_assert_eq!(got, expected);
            }
            w.commit().unwrap();
        }
    }
}
