//! Invalidations started by this instance: key deletes and tag bumps, and
//! the tag versions entries are judged against. A failure that may leave
//! stale data in Redis makes the invalidation pending.

use std::sync::Arc;

use super::message::Invalidation;
use super::pending::is_pending_after;
use super::state::Coherence;
use crate::error::Error;
use crate::key::lease_key;

impl Coherence {
    /// The current version of each tag: known ones from memory, the others
    /// from Redis (one `MGET`, split per slot in a cluster).
    pub(crate) async fn tag_versions(&self, tags: &[String]) -> Result<Vec<(String, u64)>, Error> {
        let mut out: Vec<(String, u64)> = Vec::with_capacity(tags.len());
        let mut missing = Vec::new();
        // Versions in memory are kept current only by the invalidation
        // channel: without a live subscription they may be old, so ask Redis.
        let trusted = self.is_subscribed();
        for tag in tags {
            match self.tags.get(tag).filter(|_| trusted) {
                Some(v) => out.push((tag.clone(), v)),
                None => {
                    missing.push((out.len(), self.keys.tag(tag)?));
                    out.push((tag.clone(), 0));
                }
            }
        }
        if missing.is_empty() {
            return Ok(out);
        }
        let keys: Vec<&str> = missing.iter().map(|(_, k)| k.as_str()).collect();
        let values = self.remote.call(|b| b.mget(&keys)).await?;
        for ((index, _), raw) in missing.iter().zip(values) {
            let version = raw
                .and_then(|b| std::str::from_utf8(&b).ok()?.parse::<u64>().ok())
                .unwrap_or(0);
            out[*index].1 = version;
            self.tags.observe(&out[*index].0, version);
        }
        Ok(out)
    }

    /// Deletes `key` (full form `full`) and its lease from Redis and every
    /// instance's L1; true when it existed.
    ///
    /// The delete is recorded as pending before the first await and forgotten
    /// only once Redis took it and the other instances were told: a caller
    /// that gives up half-way (a request deadline, a client gone, a shutdown
    /// drain) leaves it pending for the retry task, never lost.
    pub(crate) async fn delete(self: &Arc<Self>, key: &str, full: &str) -> Result<bool, Error> {
        // The lease goes too, so a load in flight cannot fill an old value.
        let targets = [full.to_owned(), lease_key(full)];
        let pending = PendingGuard::delete(self, full);
        // Evict before and after: a concurrent read that fetched the old
        // value between the two cannot leave it in L1.
        self.evict(key);
        let removed = self.remote.call(|b| b.unlink(&targets)).await;
        self.evict(key);
        self.publish(Invalidation::Key(key.to_owned())).await;
        match removed {
            Ok(n) => {
                pending.settled();
                Ok(n > 0)
            }
            Err(e) => {
                // Redis may still hold the old entry: keep this instance
                // from reading it, and retry until Redis takes the delete.
                if !is_pending_after(&e) {
                    pending.settled();
                }
                Err(e)
            }
        }
    }

    /// Makes every entry tagged `tag` a miss, on every instance; returns the
    /// tag's new version. When Redis cannot be reached, entries carrying the
    /// tag stop being served by this instance at once, and the invalidation
    /// is pending: retried in the background until Redis takes it.
    pub(crate) async fn invalidate_tag(self: &Arc<Self>, tag: &str) -> Result<u64, Error> {
        let key = self.keys.tag(tag)?;
        // Pending from here on, as a delete is (see `delete`).
        let pending = PendingGuard::tag(self, tag);
        self.clock.tick_tag(tag);
        match self.bump_tag(tag, &key).await {
            Ok(bump) => {
                // Not yet on a replica: it took effect everywhere, but a
                // failover could still roll it back, so it stays pending and
                // is bumped again until a replica holds it.
                if bump.replicated {
                    pending.settled();
                }
                Ok(bump.version)
            }
            Err(e) => {
                if !is_pending_after(&e) {
                    pending.settled();
                }
                Err(e)
            }
        }
    }

    /// Retries the pending invalidation of `tag`; no longer pending on success.
    pub(crate) async fn retry_tag(&self, tag: &str) -> Result<(), Error> {
        let key = self.keys.tag(tag)?;
        if !self.bump_tag(tag, &key).await?.replicated {
            return Err(Error::Unavailable(
                "the tag's new version is not on a replica yet".into(),
            ));
        }
        self.pending.remove_tag(tag);
        Ok(())
    }

    /// `INCR` of the tag's version, then the local and remote bookkeeping;
    /// announced also when no replica acknowledged it yet.
    ///
    /// Tag counters have no TTL but can still vanish (eviction under
    /// `allkeys-lru`, a manual `DEL`): the next `INCR` then starts again at
    /// 1, below versions entries already carry, which would make those
    /// entries current again once the counter climbs back. A version not
    /// above the highest one known here is such a reset: the counter is
    /// moved past the known version before it is announced.
    async fn bump_tag(&self, tag: &str, key: &str) -> Result<TagBump, Error> {
        let mut bump = self.remote.call(|b| b.bump(key, 1)).await?;
        let mut version = bump.value.max(0) as u64;
        if let Some(known) = self.tags.get(tag)
            && version <= known
        {
            tracing::warn!(
                tag,
                version,
                known,
                "tag version went back (counter key lost); moving it past the known version"
            );
            let step = i64::try_from(known - version + 1).unwrap_or(i64::MAX);
            bump = self.remote.call(|b| b.bump(key, step)).await?;
            version = bump.value.max(0) as u64;
        }
        self.tags.observe(tag, version);
        self.clock.tick_tag(tag);
        self.publish(Invalidation::Tag {
            tag: tag.to_owned(),
            version,
        })
        .await;
        Ok(TagBump {
            version,
            replicated: bump.replicated,
        })
    }

    /// Another instance announced `version` of `tag`, below the version
    /// known here: its counter was lost and that instance did not know
    /// how far it had gone. Entries carrying the tag stop being current
    /// here at once, and the counter is moved past the known version (in
    /// the background), so old entries never become current again.
    pub(super) fn tag_went_back(self: &Arc<Self>, tag: &str, version: u64, known: u64) {
        self.tags.replace(tag, version);
        self.clock.tick_tag(tag);
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let Ok(key) = self.keys.tag(tag) else { return };
        let coherence = Arc::clone(self);
        let tag = tag.to_owned();
        handle.spawn(async move {
            let step = i64::try_from(known.saturating_sub(version) + 1).unwrap_or(i64::MAX);
            match coherence.remote.call(|b| b.incr(&key, step)).await {
                Ok(v) => {
                    let v = v.max(0) as u64;
                    coherence.tags.observe(&tag, v);
                    coherence.clock.tick_tag(&tag);
                    coherence
                        .publish(Invalidation::Tag { tag, version: v })
                        .await;
                }
                Err(e) => {
                    // Entries of the tag cannot be trusted until the bump
                    // lands: it is pending like a failed invalidation.
                    if is_pending_after(&e) && coherence.mark_tag_pending(&tag) {
                        coherence.ensure_retry();
                    }
                }
            }
        });
    }
}

/// A tag's new version, and whether a replica holds it.
struct TagBump {
    version: u64,
    replicated: bool,
}

/// An invalidation recorded as pending while it runs. Dropped without
/// [`settled`](PendingGuard::settled) (the call failed or its future was
/// cancelled), it stays pending and the retry task is started.
struct PendingGuard<'a> {
    coherence: &'a Arc<Coherence>,
    what: Option<PendingItem<'a>>,
}

enum PendingItem<'a> {
    Delete(&'a str),
    Tag(&'a str),
}

impl<'a> PendingGuard<'a> {
    fn delete(coherence: &'a Arc<Coherence>, full: &'a str) -> Self {
        // Already pending (an earlier attempt failed) or recorded now; when
        // the set is full the delete is only attempted.
        let recorded = coherence.pending.has_delete(full) || coherence.mark_delete_pending(full);
        Self {
            coherence,
            what: recorded.then_some(PendingItem::Delete(full)),
        }
    }

    fn tag(coherence: &'a Arc<Coherence>, tag: &'a str) -> Self {
        let recorded = coherence.mark_tag_pending(tag);
        Self {
            coherence,
            what: recorded.then_some(PendingItem::Tag(tag)),
        }
    }

    /// Redis took it (or it can never be pending): no longer pending.
    fn settled(mut self) {
        match self.what.take() {
            Some(PendingItem::Delete(full)) => self.coherence.pending.remove_delete(full),
            Some(PendingItem::Tag(tag)) => self.coherence.pending.remove_tag(tag),
            None => {}
        }
    }
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        if self.what.is_some() {
            self.coherence.ensure_retry();
        }
    }
}
