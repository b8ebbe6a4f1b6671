//! Cluster time: the logical clock a replica set's members keep, which
//! drivers read from every reply (`$clusterTime`, `operationTime`) and send
//! back for causal consistency (`afterClusterTime`) and snapshot reads
//! (`atClusterTime`).
//!
//! Each commit that writes takes the next tick, a BSON timestamp (seconds,
//! increment) that never goes backwards; a client's `$clusterTime` moves the
//! clock forward too, as a member moves on gossip.
//!
//! Snapshot reads at a cluster time need the data as it was at that time.
//! redb keeps a version for as long as a read transaction holds it, so a
//! snapshot read keeps its read transaction here for a while
//! (`SNAPSHOT_HISTORY`, mongod's `minSnapshotHistoryWindowInSeconds`), with
//! the span of cluster times it stands for: from the last commit it reflects
//! to the next commit. A later read at a time in that span reads the same
//! snapshot; a time no kept snapshot covers is `SnapshotTooOld`, as mongod
//! answers when its history is gone.
use crate::error::{CmdResult, CommandError};
use bson::Timestamp;
use parking_lot::Mutex;
use redb::{Database, ReadTransaction, ReadableDatabase};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long a snapshot read's version stays readable at its cluster time.
pub const SNAPSHOT_HISTORY: Duration = Duration::from_secs(300);
/// At most this many snapshots are kept (each holds redb pages).
const MAX_KEPT: usize = 64;

/// A timestamp as one ordered number: seconds in the high half.
fn pack(ts: Timestamp) -> u64 {
    (u64::from(ts.time) << 32) | u64::from(ts.increment)
}

fn unpack(n: u64) -> Timestamp {
    Timestamp { time: (n >> 32) as u32, increment: n as u32 }
}

fn unix_seconds() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0).min(u64::from(u32::MAX))
}

/// A snapshot read's version, kept for reads at the cluster times it stands for.
struct Kept {
    /// The last commit it reflects.
    from: u64,
    /// The first commit it does not reflect (none yet: the latest data).
    until: Option<u64>,
    taken: Instant,
    snapshot: Arc<ReadTransaction>,
}

pub struct Clock {
    /// The cluster time: the latest tick or gossiped time.
    now: AtomicU64,
    /// The tick of the latest commit.
    last_commit: AtomicU64,
    /// Taken by commits (around the redb commit) and by snapshot reads, so a
    /// snapshot and the tick it is labelled with always agree.
    kept: Mutex<Vec<Kept>>,
}

impl Default for Clock {
    fn default() -> Self {
        let start = unix_seconds() << 32;
        Clock { now: AtomicU64::new(start), last_commit: AtomicU64::new(start), kept: Mutex::new(Vec::new()) }
    }
}

impl Clock {
    /// The current cluster time.
    pub fn now(&self) -> Timestamp {
        unpack(self.now.load(Ordering::SeqCst))
    }

    /// The cluster time of the latest commit: every write acknowledged so
    /// far is at or before it.
    pub fn last_commit(&self) -> Timestamp {
        unpack(self.last_commit.load(Ordering::SeqCst))
    }

    /// Moves the clock forward to a time a client has seen (never back).
    pub fn advance(&self, to: Timestamp) {
        self.now.fetch_max(pack(to), Ordering::SeqCst);
    }

    /// The next tick: this second's next increment, or the first of a new second.
    fn tick(&self) -> u64 {
        let wall = unix_seconds() << 32;
        let mut current = self.now.load(Ordering::SeqCst);
        loop {
            let next = if wall > current { wall | 1 } else { current + 1 };
            match self.now.compare_exchange(current, next, Ordering::SeqCst, Ordering::SeqCst) {
                Ok(_) => return next,
                Err(seen) => current = seen,
            }
        }
    }

    /// Runs `commit` (a redb commit), gives it the next tick and runs
    /// `then` with that tick, still in the commit's critical section: what
    /// `then` publishes (change events) appears in commit order. The kept
    /// snapshots that showed the latest data stop at this commit.
    pub(crate) fn commit<T>(&self, commit: impl FnOnce() -> CmdResult<T>, then: impl FnOnce(Timestamp)) -> CmdResult<T> {
        let mut kept = self.kept.lock();
        let out = commit()?;
        let tick = self.tick();
        self.last_commit.store(tick, Ordering::SeqCst);
        for k in kept.iter_mut().filter(|k| k.until.is_none()) {
            k.until = Some(tick);
        }
        then(unpack(tick));
        Ok(out)
    }

    /// A read snapshot at cluster time `at` (the latest data when `None`),
    /// and the cluster time it reads at.
    pub(crate) fn snapshot(&self, db: &Database, at: Option<Timestamp>) -> CmdResult<(Arc<ReadTransaction>, Timestamp)> {
        let mut kept = self.kept.lock();
        kept.retain(|k| k.taken.elapsed() < SNAPSHOT_HISTORY);
        let last = self.last_commit.load(Ordering::SeqCst);
        let at = at.map(pack);
        if let Some(at) = at {
            let now = self.now.load(Ordering::SeqCst);
            if at > now {
                return Err(CommandError::new(
                    72,
                    "InvalidOptions",
                    format!("readConcern atClusterTime {} is past the current cluster time {}", show(unpack(at)), show(unpack(now))),
                ));
            }
            if at < last {
                return match kept.iter().find(|k| k.from <= at && k.until.is_none_or(|u| at < u)) {
                    Some(k) => Ok((Arc::clone(&k.snapshot), unpack(at))),
                    None => Err(CommandError::new(
                        239,
                        "SnapshotTooOld",
                        format!("Read timestamp {} is older than the oldest available timestamp", show(unpack(at))),
                    )),
                };
            }
        }
        let read_at = at.unwrap_or(last);
        if let Some(k) = kept.iter().find(|k| k.until.is_none()) {
            return Ok((Arc::clone(&k.snapshot), unpack(read_at)));
        }
        let snapshot = Arc::new(db.begin_read()?);
        if kept.len() >= MAX_KEPT {
            kept.remove(0);
        }
        kept.push(Kept { from: last, until: None, taken: Instant::now(), snapshot: Arc::clone(&snapshot) });
        Ok((snapshot, unpack(read_at)))
    }
}

fn show(ts: Timestamp) -> String {
    format!("Timestamp({}, {})", ts.time, ts.increment)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_never_go_backwards_and_gossip_moves_the_clock() {
        let clock = Clock::default();
        let a = clock.tick();
        let b = clock.tick();
        assert!(b > a);
        let far = Timestamp { time: u32::MAX - 1, increment: 7 };
        clock.advance(far);
        assert_eq!(clock.now(), far);
        clock.advance(unpack(a));
        assert_eq!(clock.now(), far, "gossip never moves the clock back");
        assert_eq!(unpack(clock.tick()), Timestamp { time: u32::MAX - 1, increment: 8 });
    }

    #[test]
    fn a_snapshot_serves_reads_until_the_next_commit() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::create(dir.path().join("t.redb")).unwrap();
        let clock = Clock::default();
        clock.commit(|| Ok(()), |_| {}).unwrap();
        let first = clock.last_commit();
        let (_, at) = clock.snapshot(&db, None).unwrap();
        assert_eq!(at, first);
        clock.commit(|| Ok(()), |_| {}).unwrap();
        let second = clock.last_commit();
        assert!(second > first);
        // The first snapshot still answers for the time it was taken at...
        assert_eq!(clock.snapshot(&db, Some(first)).unwrap().1, first);
        // ...not for a time before it, which no kept snapshot covers.
        let before = Timestamp { time: first.time, increment: first.increment.saturating_sub(1) };
        assert_eq!(clock.snapshot(&db, Some(before)).unwrap_err().code, 239);
        // A time in the future of the cluster is refused.
        let future = Timestamp { time: u32::MAX, increment: 0 };
        assert_eq!(clock.snapshot(&db, Some(future)).unwrap_err().code, 72);
    }
}
