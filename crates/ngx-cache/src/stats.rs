//! Lock-free counters and the `stats()` snapshot.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

/// Counters updated on every operation; relaxed atomics, no locks.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) hits: AtomicU64,
    pub(crate) misses: AtomicU64,
    pub(crate) errors: AtomicU64,
    pub(crate) sets: AtomicU64,
    pub(crate) sets_skipped: AtomicU64,
    pub(crate) circuit_rejections: AtomicU64,
    pub(crate) corrupt_evicted: AtomicU64,
}

impl Counters {
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
    pub circuit_breaker_state: crate::BreakerState,
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
}

impl CacheStats {
    pub(crate) fn build(
        c: &Counters,
        connected: bool,
        breaker: &crate::CircuitBreaker,
        reconnects: u64,
    ) -> Self {
        let hits = load(&c.hits);
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
            circuit_breaker_open: state != crate::BreakerState::Closed,
            failure_count: breaker.failure_count(),
            circuit_breaker_state: state,
            circuit_rejections: load(&c.circuit_rejections),
            sets: load(&c.sets),
            sets_skipped: load(&c.sets_skipped),
            corrupt_evicted: load(&c.corrupt_evicted),
            reconnects,
        }
    }
}
