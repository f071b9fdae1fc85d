//! Pending invalidations: key deletes and tag invalidations that could not
//! reach Redis, retried until they do.
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
//! A later successful `set` of the key supersedes its pending delete. A tag
//! invalidation that fails is pending the same way: entries carrying the tag
//! stop being served here at once, and the version bump is retried.
//! `invalidations_pending` in the statistics counts both.
//!
//! Each set is bounded (`CACHE_MAX_PENDING`); past it, further items are
//! only logged and counted in `invalidations_dropped`. An item Redis
//! refuses (see [`is_refusal`]) is dropped the same way instead of being
//! retried for ever: retrying cannot change the answer, and keeping it would
//! make what it covers a miss here for good.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use parking_lot::{Mutex, RwLock};

use super::message::Invalidation;
use crate::error::Error;

/// Whether an invalidation that failed with `e` may still be pending in
/// Redis: anything but a caller mistake or a disabled cache, which never
/// reach it.
pub(super) fn is_pending_after(e: &Error) -> bool {
    !e.is_caller_error() && !matches!(e, Error::Disabled)
}

/// Whether a retry that failed with `e` was refused by Redis itself (a
/// `WRONGTYPE`, `NOPERM` or `READONLY` reply, say), so that repeating it
/// cannot succeed; unreachable servers, timeouts and an open breaker are
/// not refusals.
pub(super) fn is_refusal(e: &Error) -> bool {
    !e.is_transient() && !matches!(e, Error::CircuitOpen | Error::Disabled)
}

/// Full keys whose delete, and tags whose invalidation, has not reached
/// Redis yet.
#[derive(Debug)]
pub(crate) struct Pending {
    /// Most deletes, and most tags, remembered at once.
    limit: usize,
    /// `deletes.len()`, readable without the lock: the read path checks it
    /// on every Redis read and takes the lock only when something is pending.
    delete_count: AtomicUsize,
    deletes: Mutex<HashSet<String>>,
    /// `tags.len()`, likewise.
    tag_count: AtomicUsize,
    tags: RwLock<HashSet<String>>,
    /// Messages to the other instances that could not be published after
    /// their write landed; past the limit they collapse into one `Clear`.
    publishes: Mutex<VecDeque<Invalidation>>,
    /// `publishes.len()`, likewise.
    publish_count: AtomicUsize,
    /// Set while a retry task runs.
    pub(super) retrying: AtomicBool,
}

impl Pending {
    /// An empty set that remembers at most `limit` deletes and `limit` tags.
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            limit,
            delete_count: AtomicUsize::new(0),
            deletes: Mutex::default(),
            tag_count: AtomicUsize::new(0),
            tags: RwLock::default(),
            publishes: Mutex::default(),
            publish_count: AtomicUsize::new(0),
            retrying: AtomicBool::new(false),
        }
    }

    /// Whether a delete of `full` is pending.
    pub(crate) fn has_delete(&self, full: &str) -> bool {
        self.delete_count.load(Ordering::Acquire) != 0 && self.deletes.lock().contains(full)
    }

    /// Remembers `full`; false when the set is full.
    pub(super) fn add_delete(&self, full: &str) -> bool {
        let mut keys = self.deletes.lock();
        if keys.len() >= self.limit && !keys.contains(full) {
            return false;
        }
        keys.insert(full.to_owned());
        self.delete_count.store(keys.len(), Ordering::Release);
        crate::telemetry::pending_deletes(keys.len());
        true
    }

    /// Forgets `full` (its delete landed, or a newer value replaced it).
    pub(crate) fn remove_delete(&self, full: &str) {
        if self.delete_count.load(Ordering::Acquire) == 0 {
            return;
        }
        let mut keys = self.deletes.lock();
        keys.remove(full);
        self.delete_count.store(keys.len(), Ordering::Release);
        crate::telemetry::pending_deletes(keys.len());
    }

    /// Up to `n` pending deletes.
    pub(super) fn deletes(&self, n: usize) -> Vec<String> {
        self.deletes.lock().iter().take(n).cloned().collect()
    }

    /// Remembers that the invalidation of `tag` did not reach Redis; false
    /// when the set is full.
    pub(crate) fn add_tag(&self, tag: &str) -> bool {
        let mut tags = self.tags.write();
        if tags.len() >= self.limit && !tags.contains(tag) {
            return false;
        }
        tags.insert(tag.to_owned());
        self.tag_count.store(tags.len(), Ordering::Release);
        crate::telemetry::pending_tag_invalidations(tags.len());
        true
    }

    /// The invalidation of `tag` reached Redis.
    pub(crate) fn remove_tag(&self, tag: &str) {
        let mut tags = self.tags.write();
        tags.remove(tag);
        self.tag_count.store(tags.len(), Ordering::Release);
        crate::telemetry::pending_tag_invalidations(tags.len());
    }

    /// Tags whose invalidation is pending.
    pub(super) fn tags(&self) -> Vec<String> {
        if self.tag_count.load(Ordering::Acquire) == 0 {
            return Vec::new();
        }
        self.tags.read().iter().cloned().collect()
    }

    /// Whether any of `tags` has a pending invalidation.
    pub(crate) fn has_any_tag<'a>(&self, mut tags: impl Iterator<Item = &'a str>) -> bool {
        if self.tag_count.load(Ordering::Acquire) == 0 {
            return false;
        }
        let pending = self.tags.read();
        tags.any(|t| pending.contains(t))
    }

    /// Remembers a message that could not be published. Past the limit,
    /// everything pending becomes one `Clear` (every instance clears its L1),
    /// which covers any message.
    pub(crate) fn add_publish(&self, what: Invalidation) {
        let mut pending = self.publishes.lock();
        if pending.front() == Some(&Invalidation::Clear) && pending.len() == 1 {
            return;
        }
        if pending.len() >= self.limit || what == Invalidation::Clear {
            pending.clear();
            pending.push_back(Invalidation::Clear);
        } else {
            pending.push_back(what);
        }
        self.publish_count.store(pending.len(), Ordering::Release);
    }

    /// Takes every pending message, oldest first.
    pub(super) fn take_publishes(&self) -> Vec<Invalidation> {
        if self.publish_count.load(Ordering::Acquire) == 0 {
            return Vec::new();
        }
        let mut pending = self.publishes.lock();
        self.publish_count.store(0, Ordering::Release);
        pending.drain(..).collect()
    }

    /// Pending messages.
    pub(crate) fn publishes_len(&self) -> usize {
        self.publish_count.load(Ordering::Acquire)
    }

    /// Whether nothing at all is pending.
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0 && self.publishes_len() == 0
    }

    /// Pending deletes and tag invalidations.
    pub(crate) fn len(&self) -> usize {
        self.delete_count.load(Ordering::Acquire) + self.tag_count.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deletes_and_tags_are_counted_together() {
        let p = Pending::new(10);
        assert!(!p.has_delete("ngx:a"));
        assert!(p.add_delete("ngx:a"));
        assert!(p.add_tag("t"));
        assert_eq!(p.len(), 2);
        assert!(p.has_delete("ngx:a"));
        assert!(p.has_any_tag(["x", "t"].into_iter()));
        p.remove_delete("ngx:a");
        p.remove_tag("t");
        assert_eq!(p.len(), 0);
        assert!(!p.has_any_tag(["t"].into_iter()));
        assert!(is_pending_after(&Error::CircuitOpen));
        assert!(!is_pending_after(&Error::Disabled));
        assert!(!is_refusal(&Error::CircuitOpen));
        assert!(!is_refusal(&Error::Timeout(std::time::Duration::ZERO)));
        let wrongtype = Error::Redis {
            category: "response error".into(),
            message: "WRONGTYPE".into(),
            transient: false,
        };
        assert!(is_refusal(&wrongtype));
    }

    #[test]
    fn pending_messages_collapse_into_a_clear_past_the_limit() {
        let p = Pending::new(2);
        p.add_publish(Invalidation::Key("a".into()));
        p.add_publish(Invalidation::Key("b".into()));
        assert_eq!(p.publishes_len(), 2);
        assert!(!p.is_empty());
        p.add_publish(Invalidation::Key("c".into()));
        p.add_publish(Invalidation::Key("d".into()));
        assert_eq!(p.take_publishes(), vec![Invalidation::Clear]);
        assert!(p.is_empty());
    }

    #[test]
    fn each_set_is_bounded() {
        let p = Pending::new(1);
        assert!(p.add_delete("a"));
        assert!(p.add_delete("a"));
        assert!(!p.add_delete("b"));
        assert!(p.add_tag("x"));
        assert!(!p.add_tag("y"));
        assert_eq!(p.len(), 2);
    }
}
