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
        let keys: Vec<String> = missing.iter().map(|(_, k)| k.clone()).collect();
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
    /// instance's L1; true when it existed. A failure that may leave the old
    /// entry in Redis makes the delete pending.
    pub(crate) async fn delete(self: &Arc<Self>, key: &str, full: &str) -> Result<bool, Error> {
        // The lease goes too, so a load in flight cannot fill an old value.
        let targets = [full.to_owned(), lease_key(full)];
        // Evict before and after: a concurrent read that fetched the old
        // value between the two cannot leave it in L1.
        self.evict(key);
        let removed = self.remote.call(|b| b.unlink(&targets)).await;
        self.evict(key);
        self.publish(Invalidation::Key(key.to_owned())).await;
        match removed {
            Ok(n) => Ok(n > 0),
            Err(e) => {
                // Redis may still hold the old entry: keep this instance
                // from reading it, and retry until Redis takes the delete.
                if is_pending_after(&e) {
                    self.add_pending_delete(full);
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
        match self.bump_tag(tag, &key).await {
            Ok(version) => Ok(version),
            Err(e) => {
                if is_pending_after(&e) {
                    self.pending.add_tag(tag);
                    self.note_invalidation();
                    self.ensure_retry();
                }
                Err(e)
            }
        }
    }

    /// Retries the pending invalidation of `tag`; no longer pending on success.
    pub(crate) async fn retry_tag(&self, tag: &str) -> Result<(), Error> {
        let key = self.keys.tag(tag)?;
        self.bump_tag(tag, &key).await?;
        self.pending.remove_tag(tag);
        Ok(())
    }

    /// `INCR` of the tag's version, then the local and remote bookkeeping.
    async fn bump_tag(&self, tag: &str, key: &str) -> Result<u64, Error> {
        let version = self.remote.call(|b| b.incr(key, 1)).await?;
        let version = version.max(0) as u64;
        self.tags.observe(tag, version);
        self.note_invalidation();
        self.publish(Invalidation::Tag {
            tag: tag.to_owned(),
            version,
        })
        .await;
        Ok(version)
    }
}
