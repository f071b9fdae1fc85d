//! Tags for group invalidation, in O(1) Redis work per invalidation.
//!
//! Each tag has a version counter in Redis, `{namespace}:__tag:{tag}`.
//! An entry records the versions of its tags when it was loaded;
//! `invalidate_tag` increments the counter, so every entry holding the old
//! version becomes a miss on every instance, however many keys carry the tag.
//! Nothing enumerates tagged keys and no tag set grows. Each counter is a
//! single key, so this works unchanged on Redis Cluster.
//!
//! Versions are cached in memory only while the invalidation bus is
//! subscribed (it delivers every new version); otherwise they are read from
//! Redis on every check.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::RwLock;

use crate::Cache;
use crate::bus::Invalidation;
use crate::error::Error;

/// Tag versions this instance knows; kept current by the invalidation bus
/// and cleared when the bus may have missed messages.
#[derive(Debug, Default)]
pub(crate) struct TagVersions {
    map: RwLock<HashMap<String, u64>>,
    /// Tags whose invalidation has not reached Redis yet: entries carrying
    /// them are neither current nor usable as stale fallbacks here until
    /// the retry lands (see `pending.rs`).
    pending: RwLock<HashSet<String>>,
    pending_count: AtomicUsize,
}

/// Past this many known tags the map is cleared (versions are re-read from
/// Redis on demand), which bounds its memory.
const MAX_KNOWN_TAGS: usize = 100_000;

impl TagVersions {
    pub(crate) fn get(&self, tag: &str) -> Option<u64> {
        self.map.read().get(tag).copied()
    }

    /// Records `version` unless a newer one is known.
    pub(crate) fn observe(&self, tag: &str, version: u64) {
        let mut map = self.map.write();
        if map.len() >= MAX_KNOWN_TAGS && !map.contains_key(tag) {
            map.clear();
        }
        let slot = map.entry(tag.to_owned()).or_insert(version);
        *slot = (*slot).max(version);
    }

    pub(crate) fn clear(&self) {
        self.map.write().clear();
    }

    /// Remembers that the invalidation of `tag` did not reach Redis.
    pub(crate) fn defer(&self, tag: &str) {
        let mut pending = self.pending.write();
        pending.insert(tag.to_owned());
        self.pending_count.store(pending.len(), Ordering::Release);
    }

    /// The invalidation of `tag` reached Redis.
    pub(crate) fn settle(&self, tag: &str) {
        let mut pending = self.pending.write();
        pending.remove(tag);
        self.pending_count.store(pending.len(), Ordering::Release);
    }

    /// Tags whose invalidation is still owed to Redis.
    pub(crate) fn pending(&self) -> Vec<String> {
        if self.pending_len() == 0 {
            return Vec::new();
        }
        self.pending.read().iter().cloned().collect()
    }

    pub(crate) fn pending_len(&self) -> usize {
        self.pending_count.load(Ordering::Acquire)
    }

    /// Whether any of `tags` has an invalidation still owed to Redis.
    pub(crate) fn any_pending<'a>(&self, mut tags: impl Iterator<Item = &'a str>) -> bool {
        if self.pending_len() == 0 {
            return false;
        }
        let pending = self.pending.read();
        tags.any(|t| pending.contains(t))
    }

    /// Whether no recorded `(tag, version)` is known to be invalidated. An
    /// unknown tag passes: this is the test for fail-safe fallbacks, which
    /// must stay usable when tag versions cannot be read (Redis down). A tag
    /// whose invalidation is still owed to Redis fails.
    pub(crate) fn none_invalidated(&self, tags: &[(String, u64)]) -> bool {
        if tags.is_empty() {
            return true;
        }
        if self.any_pending(tags.iter().map(|(t, _)| t.as_str())) {
            return false;
        }
        let map = self.map.read();
        tags.iter()
            .all(|(t, v)| map.get(t).is_none_or(|current| current <= v))
    }

    /// Whether every recorded `(tag, version)` is still the current version.
    /// An unknown tag is not valid (it must be read from Redis first).
    pub(crate) fn all_current(&self, tags: &[(String, u64)]) -> bool {
        if tags.is_empty() {
            return true;
        }
        if self.any_pending(tags.iter().map(|(t, _)| t.as_str())) {
            return false;
        }
        let map = self.map.read();
        tags.iter().all(|(t, v)| map.get(t) == Some(v))
    }
}

impl Cache {
    fn tag_key(&self, tag: &str) -> Result<String, Error> {
        if tag.is_empty() {
            return Err(Error::invalid_key("tag is empty"));
        }
        self.full_key(&format!("__tag:{tag}"))
    }

    /// The current version of each tag: known ones from memory, the others
    /// from Redis (one `MGET`, split per slot in a cluster).
    pub(crate) async fn tag_versions(&self, tags: &[String]) -> Result<Vec<(String, u64)>, Error> {
        let mut out: Vec<(String, u64)> = Vec::with_capacity(tags.len());
        let mut missing = Vec::new();
        // Versions in memory are kept current only by the invalidation bus:
        // without a live subscription they may be old, so ask Redis.
        let trusted = self
            .inner
            .bus
            .as_ref()
            .is_some_and(crate::bus::Bus::is_subscribed);
        for tag in tags {
            match self.inner.tags.get(tag).filter(|_| trusted) {
                Some(v) => out.push((tag.clone(), v)),
                None => {
                    missing.push((out.len(), self.tag_key(tag)?));
                    out.push((tag.clone(), 0));
                }
            }
        }
        if missing.is_empty() {
            return Ok(out);
        }
        let keys: Vec<String> = missing.iter().map(|(_, k)| k.clone()).collect();
        let values = self.call(|b| b.mget(&keys)).await?;
        for ((index, _), raw) in missing.iter().zip(values) {
            let version = raw
                .and_then(|b| std::str::from_utf8(&b).ok()?.parse::<u64>().ok())
                .unwrap_or(0);
            out[*index].1 = version;
            self.inner.tags.observe(&out[*index].0, version);
        }
        Ok(out)
    }

    /// Makes every entry tagged `tag` a miss, on every instance. Returns
    /// false when Redis is unavailable (nothing was invalidated).
    pub async fn invalidate_tag(&self, tag: &str) -> bool {
        self.try_invalidate_tag(tag)
            .await
            .map_err(|e| self.swallow("invalidate_tag", &e))
            .is_ok()
    }

    /// Like [`invalidate_tag`](Self::invalidate_tag), returning the failure;
    /// on success returns the tag's new version.
    ///
    /// When Redis cannot be reached, entries carrying the tag stop being
    /// served by this instance at once, and the invalidation is retried in
    /// the background until Redis takes it.
    pub async fn try_invalidate_tag(&self, tag: &str) -> Result<u64, Error> {
        let key = self.tag_key(tag)?;
        match self.apply_tag_invalidation(tag, &key).await {
            Ok(version) => Ok(version),
            Err(e) => {
                if crate::pending::is_owed_after(&e) {
                    self.inner.tags.defer(tag);
                    self.note_invalidation();
                    self.ensure_retry();
                }
                Err(e)
            }
        }
    }

    /// Retries the invalidation of a deferred tag; settles it on success.
    pub(crate) async fn retry_tag_invalidation(&self, tag: &str) -> Result<(), Error> {
        let key = self.tag_key(tag)?;
        self.apply_tag_invalidation(tag, &key).await?;
        self.inner.tags.settle(tag);
        Ok(())
    }

    /// `INCR` of the tag's version, then the local and remote bookkeeping.
    async fn apply_tag_invalidation(&self, tag: &str, key: &str) -> Result<u64, Error> {
        let mut cmd = redis::cmd("INCR");
        cmd.arg(key);
        let version = match self.call(|b| b.query(&cmd)).await? {
            redis::Value::Int(n) => n as u64,
            other => {
                return Err(Error::Redis {
                    category: "type error".to_owned(),
                    message: format!("INCR returned {other:?}"),
                    transient: false,
                });
            }
        };
        self.inner.tags.observe(tag, version);
        self.note_invalidation();
        self.publish(Invalidation::Tag {
            tag: tag.to_owned(),
            version,
        })
        .await;
        Ok(version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_only_move_forward() {
        let t = TagVersions::default();
        assert!(!t.all_current(&[("a".into(), 0)]));
        t.observe("a", 2);
        t.observe("a", 1);
        assert_eq!(t.get("a"), Some(2));
        assert!(t.all_current(&[("a".into(), 2)]));
        assert!(!t.all_current(&[("a".into(), 1)]));
        assert!(t.all_current(&[]));
        assert!(t.none_invalidated(&[("a".into(), 2), ("unknown".into(), 0)]));
        assert!(!t.none_invalidated(&[("a".into(), 1)]));
    }
}
