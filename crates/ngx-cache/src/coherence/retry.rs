//! The retry task of pending invalidations: repeats deletes and tag bumps
//! that could not reach Redis until they land.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::message::Invalidation;
use super::pending::is_refusal;
use super::state::Coherence;
use crate::error::Error;
use crate::key::lease_key;
use crate::telemetry::Count;

/// Keys sent per retry `UNLINK`.
const BATCH: usize = 200;
const FIRST_RETRY: Duration = Duration::from_millis(50);
const MAX_RETRY: Duration = Duration::from_secs(1);

impl Coherence {
    /// Starts the retry task unless it runs. The task holds this component
    /// and ends when nothing is pending or the cache is dropped.
    pub(crate) fn ensure_retry(self: &Arc<Self>) {
        if self.pending.retrying.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            self.pending.retrying.store(false, Ordering::Release);
            return;
        };
        handle.spawn(retry(Arc::clone(self)));
    }

    /// Retries what is pending at once, again and again, until nothing is
    /// pending or `within` has passed; returns how many deletes, tag
    /// invalidations and messages are still pending. For shutdown, when the retry task is
    /// about to stop with the process.
    pub(crate) async fn settle(&self, within: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if self.pending.is_empty() {
                return 0;
            }
            let _ = tokio::time::timeout_at(deadline, self.retry_once()).await;
            let left = self.pending.len() + self.pending.publishes_len();
            if left == 0 || tokio::time::Instant::now() >= deadline {
                return left;
            }
            tokio::time::sleep_until(deadline.min(tokio::time::Instant::now() + FIRST_RETRY)).await;
        }
    }

    /// Remembers the delete of `full` as pending; false (logged and counted
    /// as dropped) when the set is full.
    pub(super) fn mark_delete_pending(&self, full: &str) -> bool {
        let recorded = self.pending.add_delete(full);
        if !recorded {
            self.counters().inc(Count::InvalidationsDropped, 1);
            tracing::warn!(
                key = full,
                "too many deletes waiting for Redis; this one is not retried"
            );
        }
        recorded
    }

    /// Remembers the invalidation of `tag` as pending; false (logged and
    /// counted as dropped) when the set is full.
    pub(super) fn mark_tag_pending(&self, tag: &str) -> bool {
        let recorded = self.pending.add_tag(tag);
        if !recorded {
            self.counters().inc(Count::InvalidationsDropped, 1);
            tracing::warn!(
                tag,
                "too many tag invalidations waiting for Redis; this one is not retried"
            );
        }
        recorded
    }

    /// One pass over what is pending; true when all of it landed. An item
    /// Redis refuses is dropped and the pass goes on; a failure to reach
    /// Redis ends the pass (the rest would fail the same way).
    async fn retry_once(&self) -> bool {
        let keys = self.pending.deletes(BATCH);
        if !keys.is_empty() {
            match self.unlink_pending(&keys).await {
                Ok(()) => {}
                Err(e) if is_refusal(&e) => {
                    // One refused key fails the whole batch: find it.
                    for full in &keys {
                        match self.unlink_pending(std::slice::from_ref(full)).await {
                            Ok(()) => {}
                            Err(e) if is_refusal(&e) => self.drop_delete(full, &e),
                            Err(e) => {
                                tracing::debug!(error = %e, "pending deletes still failing");
                                return false;
                            }
                        }
                    }
                }
                Err(e) => {
                    tracing::debug!(error = %e, pending = self.pending.len(), "pending deletes still failing");
                    return false;
                }
            }
        }
        if !self.retry_publishes().await {
            return false;
        }
        for tag in self.pending.tags() {
            match self.retry_tag(&tag).await {
                Ok(()) => tracing::info!(tag, "pending tag invalidation applied"),
                Err(e) if is_refusal(&e) => {
                    self.pending.remove_tag(&tag);
                    self.counters().inc(Count::InvalidationsDropped, 1);
                    tracing::error!(error = %e, tag, "Redis refuses the tag invalidation; dropped");
                }
                Err(e) => {
                    tracing::debug!(error = %e, tag, "pending tag invalidation still failing");
                    return false;
                }
            }
        }
        true
    }

    /// Publishes the pending messages again; true when none is pending any more
    /// (the publisher marks again what fails as pending).
    async fn retry_publishes(&self) -> bool {
        let pending = self.pending.take_publishes();
        if pending.is_empty() {
            return true;
        }
        let count = pending.len();
        self.publish_all(pending).await;
        if self.pending.publishes_len() > 0 {
            tracing::debug!(count, "pending invalidation messages still failing");
            return false;
        }
        tracing::info!(count, "pending invalidation messages published");
        true
    }

    /// `UNLINK` of pending deletes (entries and leases); once Redis took them,
    /// they are no longer pending and the other instances are told.
    async fn unlink_pending(&self, keys: &[String]) -> Result<(), Error> {
        let mut targets = Vec::with_capacity(keys.len() * 2);
        for full in keys {
            targets.push(lease_key(full));
            targets.push(full.clone());
        }
        self.remote.call(|b| b.unlink(&targets)).await?;
        for full in keys {
            self.pending.remove_delete(full);
            if let Some(key) = self.keys.short(full) {
                // Another instance may have re-read the old entry while
                // this one could not reach Redis.
                self.publish(Invalidation::Key(key.to_owned())).await;
            }
        }
        tracing::info!(count = keys.len(), "pending cache deletes applied");
        Ok(())
    }

    fn drop_delete(&self, full: &str, e: &Error) {
        self.pending.remove_delete(full);
        self.counters().inc(Count::InvalidationsDropped, 1);
        tracing::error!(error = %e, key = full, "Redis refuses the delete; dropped");
    }
}

/// Retries what is pending with back-off until nothing is left or the cache
/// is dropped.
async fn retry(coherence: Arc<Coherence>) {
    let mut stopped = coherence.stopped.clone();
    let mut backoff = FIRST_RETRY;
    loop {
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            _ = stopped.changed() => return,
        }
        let pending = &coherence.pending;
        if pending.is_empty() {
            pending.retrying.store(false, Ordering::Release);
            // Something added after the check but before the flag was
            // cleared found the flag set and started no task: look again.
            if pending.is_empty() || pending.retrying.swap(true, Ordering::AcqRel) {
                return;
            }
            continue;
        }
        backoff = if coherence.retry_once().await {
            FIRST_RETRY
        } else {
            (backoff * 2).min(MAX_RETRY)
        };
    }
}
