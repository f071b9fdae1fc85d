//! Tags for group invalidation, in O(1) Redis work per invalidation.
//!
//! Each tag has a version counter in Redis, `{namespace}:__tag:{tag}`.
//! An entry records the versions of its tags when it was loaded;
//! `invalidate_tag` increments the counter, so every entry holding the old
//! version becomes a miss on every instance, however many keys carry the tag.
//! Nothing enumerates tagged keys and no tag set grows. Each counter is a
//! single key, so this works unchanged on Redis Cluster.
//!
//! Versions are cached in memory only while the invalidation channel is
//! subscribed (it delivers every new version); otherwise they are read from
//! Redis on every check. A tag whose invalidation has not reached Redis yet
//! is pending (see `pending.rs`): entries carrying it are neither current
//! nor usable as stale fallbacks here until the retry lands.

use std::collections::HashMap;

use parking_lot::RwLock;

/// Tag versions this instance knows; kept current by the invalidation
/// channel and cleared when the channel may have missed messages.
#[derive(Debug, Default)]
pub(super) struct TagVersions {
    map: RwLock<HashMap<String, u64>>,
}

/// Past this many known tags the map is cleared (versions are re-read from
/// Redis on demand), which bounds its memory.
const MAX_KNOWN_TAGS: usize = 100_000;

impl TagVersions {
    pub(super) fn get(&self, tag: &str) -> Option<u64> {
        self.map.read().get(tag).copied()
    }

    /// Records `version` unless a newer one is known.
    pub(super) fn observe(&self, tag: &str, version: u64) {
        let mut map = self.map.write();
        if map.len() >= MAX_KNOWN_TAGS && !map.contains_key(tag) {
            map.clear();
        }
        let slot = map.entry(tag.to_owned()).or_insert(version);
        *slot = (*slot).max(version);
    }

    /// Records `version` even when it is lower than the known one (the
    /// counter in Redis started again).
    pub(super) fn replace(&self, tag: &str, version: u64) {
        self.map.write().insert(tag.to_owned(), version);
    }

    pub(super) fn clear(&self) {
        self.map.write().clear();
    }

    /// Whether no recorded `(tag, version)` is known to be invalidated. An
    /// unknown tag passes: this is the test for fail-safe fallbacks, which
    /// must stay usable when tag versions cannot be read (Redis down).
    pub(super) fn none_invalidated(&self, tags: &[(String, u64)]) -> bool {
        if tags.is_empty() {
            return true;
        }
        let map = self.map.read();
        tags.iter()
            .all(|(t, v)| map.get(t).is_none_or(|current| current <= v))
    }

    /// Whether every recorded `(tag, version)` is still the current version.
    /// An unknown tag is not valid (it must be read from Redis first).
    pub(super) fn all_current(&self, tags: &[(String, u64)]) -> bool {
        if tags.is_empty() {
            return true;
        }
        let map = self.map.read();
        tags.iter().all(|(t, v)| map.get(t) == Some(v))
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
