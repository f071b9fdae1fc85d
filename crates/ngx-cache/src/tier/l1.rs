//! The in-process L1 tier: a bounded map of typed values with lazy expiry.
//!
//! Implementation: [`L1Store`], a sharded hash map with CLOCK eviction
//! (`tier/store.rs`), whose table points straight at the entries, chosen by
//! profile over `quick_cache` and `moka` (see `docs/benchmarks.md`).
//!
//! Entries hold the decoded value, so a hit costs a lookup, a downcast and
//! a clone: no I/O and no decoding. Its lifetimes are judged against the
//! clock reading a ticking thread keeps, while the tier exists
//! ([`Now`]), not against a clock read of its own.
//!
//! The tier is bounded twice: by weight (`CACHE_L1_MAX_BYTES`) and by entry
//! count (`CACHE_L1_CAPACITY`). An entry weighs the size of its bytes in
//! Redis plus its key and a fixed overhead, and at least `max_bytes /
//! capacity`, so a full tier of small entries stops at the entry count and
//! a few large ones stop at the byte bound. The decoded value in memory is
//! usually of the order of its encoded size (more for a [`Shared`] value
//! that has rendered its JSON, up to about twice). The map is sharded and
//! each shard holds its part of the byte bound, so a single value larger
//! than that part is served from Redis only.
//!
//! [`Shared`]: crate::Shared

use std::any::Any;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use std::time::Duration;

use super::store::{EntryKey, L1Store};
use crate::options::EntryOptions;
use crate::time::{Instant, Now, Ticker, Ticking};
use crate::value::entry::Meta;

/// Lifetimes of a value being put into L1.
#[derive(Debug, Clone, Default)]
pub(crate) struct L1Times {
    pub(crate) fresh_for: Duration,
    pub(crate) stale_for: Option<Duration>,
    pub(crate) refresh_in: Option<Duration>,
    /// The value is a fail-safe answer held for the throttle period.
    pub(crate) throttled: bool,
    /// Size of the value's stored bytes (0 when unknown).
    pub(crate) bytes: u64,
}

impl L1Times {
    /// Lifetimes for an L1 copy of a value Redis holds with `meta`, under
    /// `opts`, capped by `l1_max`.
    pub(crate) fn of(meta: &Meta, opts: Option<&EntryOptions>, l1_max: Duration) -> Self {
        let logical = meta.logical_left.or(meta.physical_left).unwrap_or(l1_max);
        let mut fresh_for = logical.min(l1_max);
        if let Some(l1_ttl) = opts.and_then(|o| o.l1_ttl) {
            fresh_for = fresh_for.min(l1_ttl);
        }
        let stale_for = match (opts.and_then(|o| o.fail_safe), meta.physical_left) {
            (Some(_), Some(physical)) => Some(physical),
            (Some(window), None) => Some(logical + window),
            (None, _) => None,
        };
        let refresh_in = match (opts.and_then(|o| o.eager_refresh), meta.ttl) {
            (Some(f), Some(ttl)) if f > 0.0 && f < 1.0 => {
                let age = ttl.saturating_sub(logical);
                Some(ttl.mul_f64(f).saturating_sub(age))
            }
            _ => None,
        };
        Self {
            fresh_for,
            stale_for,
            refresh_in,
            throttled: false,
            bytes: meta.bytes,
        }
    }
}

/// One cached value and its lifetimes. Built as `L1Entry<T>` and stored as
/// `Arc<L1Entry>` (the value unsized to `dyn Any`), so the value lives in the
/// same allocation as its metadata: one pointer less to chase on a hit.
pub(crate) struct L1Entry<V: ?Sized = dyn Any + Send + Sync> {
    /// [`L1Store::hash`] of `key`.
    pub(crate) hash: u64,
    /// The key (namespace stripped).
    pub(crate) key: EntryKey,
    /// The entry's place in its shard's eviction ring (changed only under
    /// the shard's write lock).
    pub(crate) slot: AtomicUsize,
    /// Set by a hit, cleared by the eviction sweep.
    pub(crate) referenced: AtomicBool,
    /// Served as a fresh hit until then.
    pub(crate) fresh_until: Instant,
    /// Usable as a fail-safe fallback until then (`None`: no fail-safe).
    pub(crate) stale_until: Option<Instant>,
    /// A hit after this starts an eager background refresh.
    pub(crate) refresh_at: Option<Instant>,
    /// The coherence epoch at insertion; an older epoch is never fresh.
    pub(crate) epoch: u64,
    /// Tags with the versions seen when the value was loaded.
    pub(crate) tags: Box<[(String, u64)]>,
    /// A stale value held after a failed load: until `fresh_until` it is
    /// served as stale without calling the loader (the fail-safe throttle).
    pub(crate) throttled: bool,
    /// What the entry counts against the byte bound (before the minimum).
    pub(crate) weight: u64,
    /// The decoded value (last: it is the unsized field).
    pub(crate) value: V,
}

impl<V: ?Sized> fmt::Debug for L1Entry<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("L1Entry")
            .field("fresh_until", &self.fresh_until)
            .field("stale_until", &self.stale_until)
            .field("epoch", &self.epoch)
            .field("tags", &self.tags)
            .finish_non_exhaustive()
    }
}

impl L1Entry {
    /// The value, if it is a `T`.
    pub(crate) fn downcast<T: Clone + 'static>(&self) -> Option<T> {
        self.value.downcast_ref::<T>().cloned()
    }

    /// Whether the entry may be served as stale at `now`.
    pub(crate) fn usable_stale(&self, now: Now) -> bool {
        self.stale_until.is_some_and(|t| now.before(t))
    }
}

/// Bytes an entry costs besides its value and key: the entry's metadata,
/// the map slot and the allocation headers, roughly.
const ENTRY_OVERHEAD: u64 = 128;

/// The L1 tier with its coherence epoch.
#[derive(Debug)]
pub(crate) struct L1 {
    pub(crate) store: L1Store,
    /// Bumped when invalidations may have been missed; entries from an older
    /// epoch are kept only as fail-safe fallbacks.
    pub(crate) epoch: AtomicU64,
    pub(crate) max_ttl: Duration,
    /// Keeps the clock reading that lookups judge against up to date.
    _ticking: Ticking,
}

impl L1 {
    pub(crate) fn new(capacity: usize, max_bytes: u64, max_ttl: Duration) -> Self {
        Self {
            store: L1Store::new(capacity, max_bytes),
            epoch: AtomicU64::new(1),
            max_ttl,
            _ticking: Ticker::global().start(),
        }
    }

    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Marks every current entry as not fresh (they stay as fallbacks).
    pub(crate) fn flush(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// Stores `value` under `key` for `times` (capped by the L1 maximum),
    /// tagged at `tags`. A value with no fresh and no stale lifetime is not
    /// stored.
    pub(crate) fn put<T: Send + Sync + 'static>(
        &self,
        key: &str,
        value: T,
        times: &L1Times,
        tags: Vec<(String, u64)>,
    ) {
        let now = Instant::now();
        let fresh_for = times.fresh_for.min(self.max_ttl);
        if fresh_for.is_zero() && times.stale_for.is_none() {
            return;
        }
        self.store.insert(Arc::new(L1Entry {
            hash: self.store.hash(key),
            key: EntryKey::new(key),
            slot: AtomicUsize::new(0),
            referenced: AtomicBool::new(false),
            value,
            fresh_until: now + fresh_for,
            stale_until: times.stale_for.map(|d| now + d),
            refresh_at: times.refresh_in.map(|d| now + d),
            epoch: self.epoch(),
            tags: tags.into_boxed_slice(),
            throttled: times.throttled,
            weight: times.bytes + key.len() as u64 + ENTRY_OVERHEAD,
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(l1: &L1, key: &str, v: u32, epoch: u64) -> Arc<L1Entry> {
        Arc::new(L1Entry {
            hash: l1.store.hash(key),
            key: EntryKey::new(key),
            slot: AtomicUsize::new(0),
            referenced: AtomicBool::new(false),
            value: v,
            fresh_until: Instant::now() + Duration::from_secs(1),
            stale_until: None,
            refresh_at: None,
            epoch,
            tags: Box::new([]),
            throttled: false,
            weight: 0,
        })
    }

    #[test]
    fn stores_typed_values() {
        let l1 = L1::new(10, 1 << 20, Duration::from_secs(60));
        l1.store.insert(entry(&l1, "a", 7, l1.epoch()));
        let e = l1.store.get("a").unwrap();
        assert_eq!(e.downcast::<u32>(), Some(7));
        assert_eq!(e.downcast::<String>(), None);
        l1.store.remove("a");
        assert!(l1.store.get("a").is_none());
    }

    #[test]
    fn is_bounded() {
        let l1 = L1::new(100, 1 << 20, Duration::from_secs(60));
        for i in 0..10_000 {
            l1.store.insert(entry(&l1, &format!("k{i}"), i, 1));
        }
        assert!(l1.store.len() <= 200, "len {}", l1.store.len());
    }

    #[test]
    fn flush_bumps_the_epoch() {
        let l1 = L1::new(10, 1 << 20, Duration::from_secs(60));
        let before = l1.epoch();
        l1.flush();
        assert!(l1.epoch() > before);
    }
}
