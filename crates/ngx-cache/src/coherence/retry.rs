//! The retry task of pending invalidations: repeats deletes and tag bumps
//! that could not reach Redis until they land.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::message::Invalidation;
use super::state::Coherence;
use crate::key::lease_key;

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

    /// One pass over what is pending; true when all of it landed.
    async fn retry_once(&self) -> bool {
        let keys = self.pending.deletes(BATCH);
        if !keys.is_empty() {
            let mut targets = Vec::with_capacity(keys.len() * 2);
            for full in &keys {
                targets.push(lease_key(full));
                targets.push(full.clone());
            }
            if let Err(e) = self.remote.call(|b| b.unlink(&targets)).await {
                tracing::debug!(error = %e, pending = self.pending.len(), "pending deletes still failing");
                return false;
            }
            for full in &keys {
                self.pending.remove_delete(full);
                if let Some(key) = self.keys.short(full) {
                    // Another instance may have re-read the old entry while
                    // this one could not reach Redis.
                    self.publish(Invalidation::Key(key.to_owned())).await;
                }
            }
            tracing::info!(count = keys.len(), "pending cache deletes applied");
        }
        for tag in self.pending.tags() {
            if let Err(e) = self.retry_tag(&tag).await {
                tracing::debug!(error = %e, tag, "pending tag invalidation still failing");
                return false;
            }
            tracing::info!(tag, "pending tag invalidation applied");
        }
        true
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
        if pending.len() == 0 {
            pending.retrying.store(false, Ordering::Release);
            // Something added after the check but before the flag was
            // cleared found the flag set and started no task: look again.
            if pending.len() == 0 || pending.retrying.swap(true, Ordering::AcqRel) {
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
