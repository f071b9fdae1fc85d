//! The invalidation clock: counts the invalidations applied in this process,
//! so work that began before one can tell it happened.
//!
//! A fill reads the clock for its key before its Redis read or load, and
//! puts the value into L1 only if the reading has not moved; a load in
//! flight is joined only by callers that read the same value as its
//! starter. One counter per stripe of keys and one for invalidations that
//! may touch any key (clears, flushes): an invalidation of another key
//! moves a reading only when both keys share a stripe.
//!
//! Tag invalidations have stripes of their own. They move only the readings
//! that name the tag ([`tagged_reading`](InvalidationClock::tagged_reading),
//! which loads take with the tags they will store): a tag invalidation
//! detaches the loads of its entries, not every load in the process. L1
//! fills need no tag reading: L1 checks an entry's tag versions on every
//! lookup.

use std::sync::atomic::{AtomicU64, Ordering};

/// Stripes of per-key counters.
const STRIPES: usize = 64;

/// See the module documentation.
#[derive(Debug)]
pub(crate) struct InvalidationClock {
    all: AtomicU64,
    stripes: [AtomicU64; STRIPES],
    tags: [AtomicU64; STRIPES],
}

impl Default for InvalidationClock {
    fn default() -> Self {
        Self {
            all: AtomicU64::new(0),
            stripes: std::array::from_fn(|_| AtomicU64::new(0)),
            tags: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl InvalidationClock {
    fn stripe(key: &str) -> usize {
        (xxhash_rust::xxh3::xxh3_64(key.as_bytes()) % STRIPES as u64) as usize
    }

    /// The reading for `key`: it changes whenever `key` (or anything) is
    /// invalidated.
    pub(crate) fn reading(&self, key: &str) -> u64 {
        self.all
            .load(Ordering::Acquire)
            .wrapping_add(self.stripes[Self::stripe(key)].load(Ordering::Acquire))
    }

    /// The reading for `key` stored with `tags`: it changes whenever `key`,
    /// one of `tags` (or anything) is invalidated.
    pub(crate) fn tagged_reading(&self, key: &str, tags: &[String]) -> u64 {
        tags.iter().fold(self.reading(key), |r, tag| {
            r.wrapping_add(self.tags[Self::stripe(tag)].load(Ordering::Acquire))
        })
    }

    /// Records an invalidation of `tag`.
    pub(crate) fn tick_tag(&self, tag: &str) {
        self.tags[Self::stripe(tag)].fetch_add(1, Ordering::AcqRel);
    }

    /// Records an invalidation of `key`.
    pub(crate) fn tick_key(&self, key: &str) {
        self.stripes[Self::stripe(key)].fetch_add(1, Ordering::AcqRel);
    }

    /// Records an invalidation that may touch any key.
    pub(crate) fn tick_all(&self) {
        self.all.fetch_add(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::InvalidationClock;

    #[test]
    fn other_keys_do_not_move_a_reading_but_global_events_do() {
        let clock = InvalidationClock::default();
        let k = "conv:v1:a";
        let other = (0..1000)
            .map(|i| format!("k{i}"))
            .find(|o| InvalidationClock::stripe(o) != InvalidationClock::stripe(k))
            .unwrap();
        let before = clock.reading(k);
        clock.tick_key(&other);
        assert_eq!(clock.reading(k), before);
        clock.tick_key(k);
        assert_ne!(clock.reading(k), before);
        let before = clock.reading(k);
        clock.tick_all();
        assert_ne!(clock.reading(k), before);
    }

    #[test]
    fn a_tag_moves_only_the_readings_that_name_it() {
        let clock = InvalidationClock::default();
        let (k, t) = ("order:1", vec!["customer:1".to_owned()]);
        let other = (0..1000)
            .map(|i| format!("customer:{i}"))
            .find(|o| InvalidationClock::stripe(o) != InvalidationClock::stripe(&t[0]))
            .unwrap();
        let (plain, tagged) = (clock.reading(k), clock.tagged_reading(k, &t));
        clock.tick_tag(&other);
        assert_eq!(clock.tagged_reading(k, &t), tagged);
        clock.tick_tag(&t[0]);
        assert_ne!(clock.tagged_reading(k, &t), tagged);
        assert_eq!(clock.reading(k), plain);
    }
}
