//! The server-level writer lock.
//!
//! redb allows one write transaction at a time and `begin_write` blocks
//! without a timeout. A multi-document transaction keeps its write
//! transaction open across commands, so another writer must be able to give
//! up with a clear error instead of hanging forever: every writer takes this
//! lock (with a timeout) before calling `begin_write`.
use parking_lot::{Condvar, Mutex};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Default)]
pub struct WriteLock {
    held: Mutex<bool>,
    released: Condvar,
}

/// Proof of holding the lock; releases it when dropped.
#[derive(Debug)]
pub struct LockToken {
    lock: Arc<WriteLock>,
}

impl WriteLock {
    /// Waits up to `timeout` for the lock.
    pub fn acquire(self: &Arc<Self>, timeout: Duration) -> Option<LockToken> {
        let deadline = Instant::now() + timeout;
        let mut held = self.held.lock();
        while *held {
            if self.released.wait_until(&mut held, deadline).timed_out() && *held {
                return None;
            }
        }
        *held = true;
        Some(LockToken { lock: Arc::clone(self) })
    }
}

impl Drop for LockToken {
    fn drop(&mut self) {
        *self.lock.held.lock() = false;
        self.lock.released.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_writer_times_out_then_succeeds() {
        let lock = Arc::new(WriteLock::default());
        let first = lock.acquire(Duration::from_millis(10)).unwrap();
        assert!(lock.acquire(Duration::from_millis(20)).is_none());
        drop(first);
        assert!(lock.acquire(Duration::from_millis(20)).is_some());
    }

    #[test]
    fn waiter_wakes_on_release() {
        let lock = Arc::new(WriteLock::default());
        let first = lock.acquire(Duration::from_millis(10)).unwrap();
        let l2 = Arc::clone(&lock);
        let t = std::thread::spawn(move || l2.acquire(Duration::from_secs(5)).is_some());
        std::thread::sleep(Duration::from_millis(50));
        drop(first);
        assert!(t.join().unwrap());
    }
}
