//! Deletes that could not reach Redis, retried until they do.
//!
//! A write commits to the database, then deletes the cached entry. When
//! Redis is unreachable at that moment but keeps its data (a network cut, a
//! paused server, an open breaker), the old entry would come back with the
//! connection and be served until its TTL. Instead the key is remembered
//! here: reads of it from Redis count as misses in this instance, and a
//! background task repeats the `UNLINK` (entry and lease) and the
//! invalidation message until Redis takes them, so other instances stop
//! seeing the old entry shortly after the connection returns too.
//!
//! A later successful `set` of the key supersedes its pending delete. The
//! set is bounded ([`MAX_PENDING`]); past it, further keys are only logged.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;

use crate::Cache;
use crate::bus::Invalidation;
use crate::cache::Inner;
use crate::fill::lease_key;

/// Most deletes remembered at once.
pub(crate) const MAX_PENDING: usize = 10_000;
/// Keys sent per retry `UNLINK`.
const BATCH: usize = 200;
const FIRST_RETRY: Duration = Duration::from_millis(50);
const MAX_RETRY: Duration = Duration::from_secs(1);

/// Full keys whose delete has not reached Redis yet.
#[derive(Debug, Default)]
pub(crate) struct PendingDeletes {
    /// `keys.len()`, readable without the lock: the read path checks it on
    /// every Redis read and takes the lock only when something is pending.
    count: AtomicUsize,
    keys: Mutex<HashSet<String>>,
    /// Set while a retry task runs.
    running: AtomicBool,
}

impl PendingDeletes {
    /// Whether a delete of `full` is still owed to Redis.
    pub(crate) fn contains(&self, full: &str) -> bool {
        self.count.load(Ordering::Acquire) != 0 && self.keys.lock().contains(full)
    }

    /// Remembers `full`; false when the set is full.
    fn add(&self, full: &str) -> bool {
        let mut keys = self.keys.lock();
        if keys.len() >= MAX_PENDING && !keys.contains(full) {
            return false;
        }
        keys.insert(full.to_owned());
        self.count.store(keys.len(), Ordering::Release);
        true
    }

    /// Forgets `full` (its delete landed, or a newer value replaced it).
    pub(crate) fn remove(&self, full: &str) {
        if self.count.load(Ordering::Acquire) == 0 {
            return;
        }
        let mut keys = self.keys.lock();
        keys.remove(full);
        self.count.store(keys.len(), Ordering::Release);
    }

    /// Up to `n` pending keys.
    fn batch(&self, n: usize) -> Vec<String> {
        self.keys.lock().iter().take(n).cloned().collect()
    }

    /// How many deletes are owed.
    pub(crate) fn len(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }
}

impl Cache {
    /// Records that the delete of `full` did not reach Redis and makes sure
    /// a retry task runs.
    pub(crate) fn defer_delete(&self, full: &str) {
        let pending = &self.inner.pending;
        if !pending.add(full) {
            tracing::warn!(
                limit = MAX_PENDING,
                "too many deletes waiting for Redis; this one is not retried"
            );
            return;
        }
        if pending.running.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            pending.running.store(false, Ordering::Release);
            return;
        };
        handle.spawn(retry(Arc::downgrade(&self.inner)));
    }
}

/// Retries pending deletes with back-off until none is left or the cache
/// is dropped.
async fn retry(weak: Weak<Inner>) {
    let mut backoff = FIRST_RETRY;
    loop {
        tokio::time::sleep(backoff).await;
        let Some(inner) = weak.upgrade() else { return };
        let cache = Cache { inner };
        let pending = &cache.inner.pending;
        let keys = pending.batch(BATCH);
        if keys.is_empty() {
            pending.running.store(false, Ordering::Release);
            // A key added after the batch was read but before `running`
            // was cleared would have found the flag set: look again.
            if pending.len() == 0 || pending.running.swap(true, Ordering::AcqRel) {
                return;
            }
            continue;
        }
        let mut targets = Vec::with_capacity(keys.len() * 2);
        for full in &keys {
            targets.push(lease_key(full));
            targets.push(full.clone());
        }
        match cache.call(|b| b.unlink(&targets)).await {
            Ok(_) => {
                let prefix = format!("{}:", cache.inner.config.namespace);
                for full in &keys {
                    pending.remove(full);
                    if let Some(key) = full.strip_prefix(&prefix) {
                        // Another instance may have re-read the old entry
                        // while this one could not reach Redis.
                        cache.publish(Invalidation::Key(key.to_owned())).await;
                    }
                }
                tracing::info!(count = keys.len(), "deferred cache deletes applied");
                backoff = FIRST_RETRY;
            }
            Err(e) => {
                tracing::debug!(error = %e, pending = pending.len(), "deferred deletes still failing");
                backoff = (backoff * 2).min(MAX_RETRY);
            }
        }
    }
}
