//! Lock-free counters and the [`CacheStats`] snapshot.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use crate::breaker::{BreakerState, CircuitBreaker};
use crate::telemetry::{Count, Telemetry, Tier};

/// Counters updated on every operation; relaxed atomics, no locks.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) misses: AtomicU64,
    pub(crate) errors: AtomicU64,
    pub(crate) sets: AtomicU64,
    pub(crate) sets_skipped: AtomicU64,
    pub(crate) circuit_rejections: AtomicU64,
    pub(crate) corrupt_evicted: AtomicU64,
    pub(crate) l1_hits: AtomicU64,
    pub(crate) l2_hits: AtomicU64,
    pub(crate) stale_served: AtomicU64,
    pub(crate) loads: AtomicU64,
    pub(crate) load_failures: AtomicU64,
    pub(crate) coalesced_waits: AtomicU64,
    pub(crate) distributed_waits: AtomicU64,
    pub(crate) eager_refreshes: AtomicU64,
    pub(crate) fills_rejected: AtomicU64,
    pub(crate) invalidations_sent: AtomicU64,
    pub(crate) invalidations_received: AtomicU64,
    pub(crate) l1_flushes: AtomicU64,
    pub(crate) resubscribes: AtomicU64,
    pub(crate) invalidations_dropped: AtomicU64,
    /// The same events through the `metrics` facade, with bounded labels.
    pub(crate) telemetry: Telemetry,
}

/// Counters that carry a `key_type` label.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Keyed {
    StaleServed,
    Loads,
    LoadFailures,
    CoalescedWaits,
}

impl Counters {
    /// A hit on `tier` for `key` (namespace stripped).
    pub(crate) fn hit(&self, tier: Tier, key: &str) {
        match tier {
            // One atomic per hit: `stats()` adds the tiers up into `hits`.
            Tier::L1 => Self::bump(&self.l1_hits),
            Tier::L2 => Self::bump(&self.l2_hits),
        }
        self.telemetry.hit(tier, key);
    }

    /// A miss for `key` (namespace stripped).
    pub(crate) fn miss(&self, key: &str) {
        Self::bump(&self.misses);
        self.telemetry.miss(key);
    }

    /// `hits` L2 hits and `misses` misses of keys of `key`'s type (a batch
    /// counts each run of keys of one type once).
    pub(crate) fn l2_reads(&self, key: &str, hits: u64, misses: u64) {
        if hits > 0 {
            self.l2_hits.fetch_add(hits, Ordering::Relaxed);
        }
        if misses > 0 {
            self.misses.fetch_add(misses, Ordering::Relaxed);
        }
        self.telemetry.reads(key, hits, misses);
    }

    /// A per-key-type event for `key` (namespace stripped).
    pub(crate) fn keyed(&self, which: Keyed, key: &str) {
        let atomic = match which {
            Keyed::StaleServed => &self.stale_served,
            Keyed::Loads => &self.loads,
            Keyed::LoadFailures => &self.load_failures,
            Keyed::CoalescedWaits => &self.coalesced_waits,
        };
        Self::bump(atomic);
        self.telemetry.with_key(key, |m| {
            match which {
                Keyed::StaleServed => &m.stale_served,
                Keyed::Loads => &m.loads,
                Keyed::LoadFailures => &m.load_failures,
                Keyed::CoalescedWaits => &m.coalesced_waits,
            }
            .increment(1)
        });
    }

    /// `n` more of a plain counter.
    pub(crate) fn inc(&self, which: Count, n: u64) {
        let atomic = match which {
            Count::Sets => &self.sets,
            Count::SetsSkipped => &self.sets_skipped,
            Count::CircuitRejections => &self.circuit_rejections,
            Count::CorruptEvicted => &self.corrupt_evicted,
            Count::DistributedWaits => &self.distributed_waits,
            Count::EagerRefreshes => &self.eager_refreshes,
            Count::FillsRejected => &self.fills_rejected,
            Count::InvalidationsSent => &self.invalidations_sent,
            Count::InvalidationsReceived => &self.invalidations_received,
            Count::L1Flushes => &self.l1_flushes,
            Count::Resubscribes => &self.resubscribes,
            Count::InvalidationsDropped => &self.invalidations_dropped,
        };
        Self::add(atomic, n);
        self.telemetry.count(which, n);
    }

    /// An error of `kind` (see [`Error::kind`](crate::Error::kind)).
    pub(crate) fn error(&self, kind: &'static str) {
        Self::bump(&self.errors);
        self.telemetry.error(kind);
    }
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

fn load(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

/// A snapshot of the cache's statistics, in the shape of the original
/// service's `get_stats()` plus new fields alongside.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct CacheStats {
    /// At least one Redis connection is established.
    pub connected: bool,
    /// Reads that found a value.
    pub hits: u64,
    /// Reads that found nothing (including reads skipped by an open breaker
    /// and corrupt values).
    pub misses: u64,
    /// Failed Redis operations and undecodable values.
    pub errors: u64,
    /// `hits / (hits + misses)`, 0 when there were no reads.
    pub hit_rate: f64,
    /// `hits + misses`.
    pub total_requests: u64,
    /// The circuit breaker is open (or half-open, probing).
    pub circuit_breaker_open: bool,
    /// Consecutive transient failures counted by the breaker.
    pub failure_count: u32,
    /// The breaker state: `closed`, `open` or `half_open`.
    pub circuit_breaker_state: BreakerState,
    /// Calls rejected without I/O because the breaker was open.
    pub circuit_rejections: u64,
    /// Values written.
    pub sets: u64,
    /// Writes skipped because Redis was unavailable.
    pub sets_skipped: u64,
    /// Corrupt values that were read, deleted and counted as misses.
    pub corrupt_evicted: u64,
    /// Connections rebuilt after I/O errors or stuck timeouts.
    pub reconnects: u64,
    /// Hits served by the in-process L1 tier (no I/O).
    pub l1_hits: u64,
    /// Hits served by Redis.
    pub l2_hits: u64,
    /// Stale values served by fail-safe (loader or Redis failed, or was slow).
    pub stale_served: u64,
    /// Loader runs started (foreground, background and eager refreshes).
    pub loads: u64,
    /// Loader runs that failed or timed out.
    pub load_failures: u64,
    /// Callers that waited for a load already running in this process.
    pub coalesced_waits: u64,
    /// Loads skipped because another instance held the lease and filled Redis.
    pub distributed_waits: u64,
    /// Background refreshes started by eager refresh.
    pub eager_refreshes: u64,
    /// Fills refused because the key was invalidated during the load.
    pub fills_rejected: u64,
    /// Invalidation messages published.
    pub invalidations_sent: u64,
    /// Invalidation messages from other instances applied.
    pub invalidations_received: u64,
    /// Times the whole L1 was marked stale (lost channel or sequence gap).
    pub l1_flushes: u64,
    /// Times the invalidation channel was subscribed again after a loss.
    pub resubscribes: u64,
    /// Entries currently held in L1.
    pub l1_entries: usize,
    /// Current weight of L1 in bytes (stored size of each value plus its
    /// key and overhead), bounded by `CACHE_L1_MAX_BYTES`.
    pub l1_bytes: u64,
    /// Key deletes and tag invalidations that could not reach Redis and are
    /// being retried; this instance treats what they cover as misses until
    /// then.
    pub invalidations_pending: usize,
    /// Invalidation messages to the other instances that could not be
    /// published after their write landed, being retried.
    pub publishes_pending: usize,
    /// Pending deletes and tag invalidations given up: refused by Redis
    /// (`WRONGTYPE`, `NOPERM`, `READONLY`, ...) or beyond the bound of
    /// `CACHE_MAX_PENDING`.
    pub invalidations_dropped: u64,
    /// Invalidation lag, publish to eviction here.
    pub invalidation_lag_ms: LagPercentiles,
}

/// Invalidation lag, publish to eviction on this instance.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct LagPercentiles {
    /// Median, in milliseconds.
    pub p50: f64,
    /// 99th percentile, in milliseconds.
    pub p99: f64,
    /// Number of samples (the most recent 1,024 messages).
    pub samples: usize,
}

/// The parts of a [`CacheStats`] snapshot that are not counters.
#[derive(Debug, Default)]
pub(crate) struct Gauges {
    pub(crate) connected: bool,
    pub(crate) reconnects: u64,
    pub(crate) l1_entries: usize,
    pub(crate) l1_bytes: u64,
    pub(crate) invalidations_pending: usize,
    pub(crate) publishes_pending: usize,
    pub(crate) invalidation_lag_ms: LagPercentiles,
}

impl CacheStats {
    pub(crate) fn build(c: &Counters, breaker: &CircuitBreaker, gauges: Gauges) -> Self {
        let Gauges {
            connected,
            reconnects,
            l1_entries,
            l1_bytes,
            invalidations_pending,
            publishes_pending,
            invalidation_lag_ms,
        } = gauges;
        // A hit bumps only its tier's counter (one atomic on the hot path).
        let hits = load(&c.l1_hits) + load(&c.l2_hits);
        let misses = load(&c.misses);
        let total = hits + misses;
        let state = breaker.state();
        Self {
            connected,
            hits,
            misses,
            errors: load(&c.errors),
            hit_rate: if total == 0 {
                0.0
            } else {
                hits as f64 / total as f64
            },
            total_requests: total,
            circuit_breaker_open: state != BreakerState::Closed,
            failure_count: breaker.failure_count(),
            circuit_breaker_state: state,
            circuit_rejections: load(&c.circuit_rejections),
            sets: load(&c.sets),
            sets_skipped: load(&c.sets_skipped),
            corrupt_evicted: load(&c.corrupt_evicted),
            reconnects,
            l1_hits: load(&c.l1_hits),
            l2_hits: load(&c.l2_hits),
            stale_served: load(&c.stale_served),
            loads: load(&c.loads),
            load_failures: load(&c.load_failures),
            coalesced_waits: load(&c.coalesced_waits),
            distributed_waits: load(&c.distributed_waits),
            eager_refreshes: load(&c.eager_refreshes),
            fills_rejected: load(&c.fills_rejected),
            invalidations_sent: load(&c.invalidations_sent),
            invalidations_received: load(&c.invalidations_received),
            l1_flushes: load(&c.l1_flushes),
            resubscribes: load(&c.resubscribes),
            l1_entries,
            l1_bytes,
            invalidations_pending,
            publishes_pending,
            invalidations_dropped: load(&c.invalidations_dropped),
            invalidation_lag_ms,
        }
    }
}
