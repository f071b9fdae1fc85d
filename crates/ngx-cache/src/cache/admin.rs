//! Group invalidation on [`Cache`]: tags, clearing a namespace or a
//! prefix with `SCAN` + `UNLINK`, and settling pending invalidations.

use std::time::Duration;

use super::handle::Cache;
use crate::error::{ClearTally, Error, log_skipped};
use crate::key::{escape_glob, lease_glob, version_glob};

/// Keys asked for per `SCAN` step.
const SCAN_BATCH: usize = 500;

impl Cache {
    /// Makes every entry tagged `tag` a miss, on every instance. Returns
    /// false when Redis is unavailable (nothing was invalidated).
    pub async fn invalidate_tag(&self, tag: &str) -> bool {
        self.try_invalidate_tag(tag)
            .await
            .map_err(|e| log_skipped("invalidate_tag", &e))
            .is_ok()
    }

    /// Like [`invalidate_tag`](Self::invalidate_tag), returning the failure;
    /// on success returns the tag's new version.
    ///
    /// When Redis cannot be reached, entries carrying the tag stop being
    /// served by this instance at once, and the invalidation is retried in
    /// the background until Redis takes it.
    pub async fn try_invalidate_tag(&self, tag: &str) -> Result<u64, Error> {
        self.inner.coherence.invalidate_tag(tag).await
    }

    /// Settles pending work: deletes and tag invalidations that could not
    /// reach Redis yet are retried at once until none is pending or `within`
    /// has passed. Returns how many are still pending (0: all settled).
    ///
    /// Call it at shutdown: the background retry task stops with the
    /// process, and what is still pending is lost then.
    ///
    /// ```no_run
    /// # async fn demo(cache: ngx_cache::Cache) {
    /// let left = cache.settle_pending(std::time::Duration::from_secs(5)).await;
    /// if left > 0 {
    ///     eprintln!("{left} cache invalidations could not be settled");
    /// }
    /// # }
    /// ```
    pub async fn settle_pending(&self, within: Duration) -> usize {
        self.inner.coherence.settle(within).await
    }

    /// Removes every key of this cache's namespace with `SCAN MATCH` (the
    /// namespace glob-escaped) and `UNLINK`, in batches; never `KEYS`. On a
    /// cluster every primary is scanned. Returns how many keys were removed.
    ///
    /// Every instance's L1 is dropped even when the clear fails. A clear
    /// that fails after removing some keys (Redis lost after some batches;
    /// on a cluster with a shard down, the other shards' keys are removed
    /// all the same, the shards being scanned side by side) returns
    /// [`Error::PartlyCleared`], with how many keys were removed.
    pub async fn clear_namespace(&self) -> Result<u64, Error> {
        let ns = escape_glob(&self.inner.config.namespace);
        // Lease and version keys start with the namespace prefix too.
        let keys = format!("{ns}:*");
        let remote = &self.inner.remote;
        let removed = remote.call(|b| b.scan_unlink(&keys, SCAN_BATCH)).await;
        self.inner.coherence.cleared(true).await;
        removed
    }

    /// Removes every key of this namespace that starts with `prefix`
    /// (glob-escaped), with `SCAN` + `UNLINK`, and clears every instance's
    /// L1 (also when it fails, as [`clear_namespace`](Self::clear_namespace)
    /// does).
    pub async fn clear_prefix(&self, prefix: &str) -> Result<u64, Error> {
        let full = self.full_key(prefix)?;
        let removed = self.unlink_prefix(&full).await;
        self.inner.coherence.cleared(false).await;
        removed
    }

    /// The keys of `full*`, their leases and their tag versions, removed;
    /// a pattern that fails does not stop the next, and the first failure
    /// is returned, as a partial clear with every pattern's count when some
    /// of them removed keys.
    async fn unlink_prefix(&self, full: &str) -> Result<u64, Error> {
        let remote = &self.inner.remote;
        let mut tally = ClearTally::default();
        for pattern in [
            format!("{}*", escape_glob(full)),
            lease_glob(full),
            version_glob(full),
        ] {
            tally.add(remote.call(|b| b.scan_unlink(&pattern, SCAN_BATCH)).await);
        }
        tally.finish()
    }
}
