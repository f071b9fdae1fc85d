//! The in-process L1 tier: a bounded map of typed values with lazy expiry.
//!
//! Implementation: `quick_cache::sync::Cache` (S3-FIFO eviction, sharded
//! read-write locks), chosen by benchmark over `moka` (see
//! `docs/benchmarks.md`). It sits behind [`L1Store`] so it can change.
//!
//! Entries hold the decoded value (`Arc<dyn Any>`), so a hit costs a lookup,
//! a clock read, a downcast and a clone: no I/O and no decoding.

use std::any::Any;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use std::time::{Duration, Instant};

use crate::options::EntryOptions;
use crate::value::entry::Meta;

/// Lifetimes of a value being put into L1.
#[derive(Debug, Clone, Default)]
pub(crate) struct L1Times {
    pub(crate) fresh_for: Duration,
    pub(crate) stale_for: Option<Duration>,
    pub(crate) refresh_in: Option<Duration>,
    /// The value is a fail-safe answer held for the throttle period.
    pub(crate) throttled: bool,
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
        }
    }
}

/// One cached value and its lifetimes. Built as `L1Entry<T>` and stored as
/// `Arc<L1Entry>` (the value unsized to `dyn Any`), so the value lives in the
/// same allocation as its metadata: one pointer less to chase on a hit.
pub(crate) struct L1Entry<V: ?Sized = dyn Any + Send + Sync> {
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
    pub(crate) fn usable_stale(&self, now: Instant) -> bool {
        self.stale_until.is_some_and(|t| now < t)
    }
}

/// The operations the cache needs from an L1 implementation.
pub(crate) trait L1Store: Send + Sync + fmt::Debug {
    fn get(&self, key: &str) -> Option<Arc<L1Entry>>;
    fn insert(&self, key: String, entry: Arc<L1Entry>);
    fn remove(&self, key: &str);
    fn clear(&self);
    fn len(&self) -> usize;
}

/// `quick_cache` behind [`L1Store`].
pub(crate) struct QuickL1 {
    map: quick_cache::sync::Cache<String, Arc<L1Entry>>,
}

impl QuickL1 {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            map: quick_cache::sync::Cache::new(capacity.max(1)),
        }
    }
}

impl fmt::Debug for QuickL1 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QuickL1")
            .field("len", &self.map.len())
            .finish()
    }
}

impl L1Store for QuickL1 {
    fn get(&self, key: &str) -> Option<Arc<L1Entry>> {
        self.map.get(key)
    }

    fn insert(&self, key: String, entry: Arc<L1Entry>) {
        self.map.insert(key, entry);
    }

    fn remove(&self, key: &str) {
        self.map.remove(key);
    }

    fn clear(&self) {
        self.map.clear();
    }

    fn len(&self) -> usize {
        self.map.len()
    }
}

/// The L1 tier with its coherence epoch.
#[derive(Debug)]
pub(crate) struct L1 {
    pub(crate) store: Box<dyn L1Store>,
    /// Bumped when invalidations may have been missed; entries from an older
    /// epoch are kept only as fail-safe fallbacks.
    pub(crate) epoch: AtomicU64,
    pub(crate) max_ttl: Duration,
}

impl L1 {
    pub(crate) fn new(capacity: usize, max_ttl: Duration) -> Self {
        Self {
            store: Box::new(QuickL1::new(capacity)),
            epoch: AtomicU64::new(1),
            max_ttl,
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
        self.store.insert(
            key.to_owned(),
            Arc::new(L1Entry {
                value,
                fresh_until: now + fresh_for,
                stale_until: times.stale_for.map(|d| now + d),
                refresh_at: times.refresh_in.map(|d| now + d),
                epoch: self.epoch(),
                tags: tags.into_boxed_slice(),
                throttled: times.throttled,
            }),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(v: u32, epoch: u64) -> Arc<L1Entry> {
        Arc::new(L1Entry {
            value: v,
            fresh_until: Instant::now() + Duration::from_secs(1),
            stale_until: None,
            refresh_at: None,
            epoch,
            tags: Box::new([]),
            throttled: false,
        })
    }

    #[test]
    fn stores_typed_values() {
        let l1 = L1::new(10, Duration::from_secs(60));
        l1.store.insert("a".into(), entry(7, l1.epoch()));
        let e = l1.store.get("a").unwrap();
        assert_eq!(e.downcast::<u32>(), Some(7));
        assert_eq!(e.downcast::<String>(), None);
        l1.store.remove("a");
        assert!(l1.store.get("a").is_none());
    }

    #[test]
    fn is_bounded() {
        let l1 = L1::new(100, Duration::from_secs(60));
        for i in 0..10_000 {
            l1.store.insert(format!("k{i}"), entry(i, 1));
        }
        assert!(l1.store.len() <= 200, "len {}", l1.store.len());
    }

    #[test]
    fn flush_bumps_the_epoch() {
        let l1 = L1::new(10, Duration::from_secs(60));
        let before = l1.epoch();
        l1.flush();
        assert!(l1.epoch() > before);
    }
}
