//! Deletes and tag invalidations that could not reach Redis, retried until
//! they do.
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
//! A tag invalidation that fails is handled the same way: entries carrying
//! the tag stop being served here at once (`TagVersions::defer`), and the
//! version bump is retried.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;

use crate::Cache;
use crate::bus::Invalidation;
use crate::cache::Inner;
use crate::error::Error;
use crate::fill::lease_key;

/// Most deletes remembered at once.
pub(crate) const MAX_PENDING: usize = 10_000;
/// Keys sent per retry `UNLINK`.
const BATCH: usize = 200;
const FIRST_RETRY: Duration = Duration::from_millis(50);
const MAX_RETRY: Duration = Duration::from_secs(1);

/// Whether an invalidation that failed with `e` may still be owed to Redis:
/// anything but a caller mistake or a disabled cache, which never reach it.
pub(crate) fn is_owed_after(e: &Error) -> bool {
    !e.is_caller_error() && !matches!(e, Error::Disabled)
}

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
        if !self.inner.pending.add(full) {
            tracing::warn!(
                limit = MAX_PENDING,
                "too many deletes waiting for Redis; this one is not retried"
            );
            return;
        }
        self.ensure_retry();
    }

    /// Starts the retry task unless it runs.
    pub(crate) fn ensure_retry(&self) {
        let pending = &self.inner.pending;
        if pending.running.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            pending.running.store(false, Ordering::Release);
            return;
        };
        handle.spawn(retry(Arc::downgrade(&self.inner)));
    }

    /// Deletes and tag invalidations still owed to Redis.
    pub(crate) fn owed(&self) -> usize {
        self.inner.pending.len() + self.inner.tags.pending_len()
    }

    /// One pass over what is owed; true when all of it landed.
    async fn retry_once(&self) -> bool {
        let pending = &self.inner.pending;
        let keys = pending.batch(BATCH);
        if !keys.is_empty() {
            let mut targets = Vec::with_capacity(keys.len() * 2);
            for full in &keys {
                targets.push(lease_key(full));
                targets.push(full.clone());
            }
            if let Err(e) = self.call(|b| b.unlink(&targets)).await {
                tracing::debug!(error = %e, owed = self.owed(), "deferred deletes still failing");
                return false;
            }
            let prefix = format!("{}:", self.inner.config.namespace);
            for full in &keys {
                pending.remove(full);
                if let Some(key) = full.strip_prefix(&prefix) {
                    // Another instance may have re-read the old entry while
                    // this one could not reach Redis.
                    self.publish(Invalidation::Key(key.to_owned())).await;
                }
            }
            tracing::info!(count = keys.len(), "deferred cache deletes applied");
        }
        for tag in self.inner.tags.pending() {
            if let Err(e) = self.retry_tag_invalidation(&tag).await {
                tracing::debug!(error = %e, tag, "deferred tag invalidation still failing");
                return false;
            }
            tracing::info!(tag, "deferred tag invalidation applied");
        }
        true
    }
}

/// Retries what is owed with back-off until nothing is left or the cache
/// is dropped.
async fn retry(weak: Weak<Inner>) {
    let mut backoff = FIRST_RETRY;
    loop {
        tokio::time::sleep(backoff).await;
        let Some(inner) = weak.upgrade() else { return };
        let cache = Cache { inner };
        if cache.owed() == 0 {
            let running = &cache.inner.pending.running;
            running.store(false, Ordering::Release);
            // Something deferred after the check but before the flag was
            // cleared found the flag set and started no task: look again.
            if cache.owed() == 0 || running.swap(true, Ordering::AcqRel) {
                return;
            }
            continue;
        }
        backoff = if cache.retry_once().await {
            FIRST_RETRY
        } else {
            (backoff * 2).min(MAX_RETRY)
        };
    }
}
