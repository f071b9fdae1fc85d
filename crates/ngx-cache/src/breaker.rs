//! A three-state circuit breaker: closed, open, half-open with one probe.
//!
//! Only transient failures (I/O, timeouts, dropped connections) count toward
//! opening it. A call asks [`CircuitBreaker::acquire`] for a [`Permit`] and
//! reports the outcome through it. A permit dropped without an outcome (its
//! future was cancelled) counts as a failure, so a lost probe cannot leave the
//! breaker half-open for ever; a probe that hangs is superseded after
//! `probe_timeout`.

use std::sync::atomic::{AtomicU8, AtomicU32, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

/// Circuit breaker settings.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct BreakerConfig {
    /// When false, every call is admitted (`CACHE_CIRCUIT_BREAKER_ENABLED`).
    pub enabled: bool,
    /// Consecutive transient failures that open the breaker (`CACHE_CIRCUIT_BREAKER_FAILURES`).
    pub failure_threshold: u32,
    /// How long calls fail fast before a probe is admitted (`CACHE_CIRCUIT_BREAKER_TIMEOUT`).
    pub open_duration: Duration,
    /// A probe that has not reported after this long is presumed failed and a
    /// new probe may go.
    pub probe_timeout: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            failure_threshold: 5,
            open_duration: Duration::from_secs(30),
            probe_timeout: Duration::from_secs(1),
        }
    }
}

impl BreakerConfig {
    /// Settings with the given threshold and open duration.
    pub fn new(failure_threshold: u32, open_duration: Duration) -> Self {
        Self {
            failure_threshold,
            open_duration,
            ..Self::default()
        }
    }

    /// A breaker that admits every call.
    pub fn disabled() -> Self {
        Self {
            enabled: false,
            ..Self::default()
        }
    }
}

/// The breaker's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Calls go through; failures are counted.
    Closed,
    /// Calls fail fast until the open period ends.
    Open,
    /// One probe is in flight; its outcome closes or reopens the breaker.
    HalfOpen,
}

const CLOSED: u8 = 0;
const OPEN: u8 = 1;
const HALF_OPEN: u8 = 2;

/// The circuit breaker. Cheap on the closed path: one atomic load per call.
#[derive(Debug)]
pub struct CircuitBreaker {
    config: BreakerConfig,
    state: AtomicU8,
    failures: AtomicU32,
    /// Generation of the newest probe; a superseded probe's late report is
    /// treated as an ordinary call's.
    probe_gen: AtomicU32,
    /// When the breaker last opened, or when the current probe started.
    /// Touched only on transitions, never on the closed fast path.
    since: Mutex<Instant>,
}

/// Admission to make one call. Report the outcome with
/// [`success`](Permit::success) or [`failure`](Permit::failure).
#[derive(Debug)]
#[must_use = "report the outcome of the call through the permit"]
pub struct Permit<'a> {
    breaker: Option<&'a CircuitBreaker>,
    /// The probe generation, when this permit is a probe.
    probe: Option<u32>,
}

impl CircuitBreaker {
    /// A closed breaker.
    pub fn new(config: BreakerConfig) -> Self {
        Self {
            config,
            state: AtomicU8::new(CLOSED),
            failures: AtomicU32::new(0),
            probe_gen: AtomicU32::new(0),
            since: Mutex::new(Instant::now()),
        }
    }

    /// The current state.
    pub fn state(&self) -> BreakerState {
        match self.state.load(Ordering::Acquire) {
            CLOSED => BreakerState::Closed,
            OPEN => BreakerState::Open,
            _ => BreakerState::HalfOpen,
        }
    }

    /// Consecutive transient failures seen while closed.
    pub fn failure_count(&self) -> u32 {
        self.failures.load(Ordering::Relaxed)
    }

    /// Asks to make a call. `None` means the breaker is open (or a probe is
    /// already in flight) and the call must fail fast.
    pub fn acquire(&self) -> Option<Permit<'_>> {
        if !self.config.enabled {
            return Some(Permit {
                breaker: None,
                probe: None,
            });
        }
        match self.state.load(Ordering::Acquire) {
            CLOSED => Some(Permit {
                breaker: Some(self),
                probe: None,
            }),
            state => {
                let mut since = self.since.lock();
                let wait = if state == OPEN {
                    self.config.open_duration
                } else {
                    self.config.probe_timeout
                };
                if since.elapsed() < wait || self.state.load(Ordering::Acquire) != state {
                    return None;
                }
                // Open period over (or the previous probe hung): admit one probe.
                self.state.store(HALF_OPEN, Ordering::Release);
                crate::telemetry::breaker_transition(BreakerState::HalfOpen);
                *since = Instant::now();
                let generation = self.probe_gen.fetch_add(1, Ordering::AcqRel) + 1;
                Some(Permit {
                    breaker: Some(self),
                    probe: Some(generation),
                })
            }
        }
    }

    /// Whether `probe` is the current probe (not one that was superseded).
    fn is_current(&self, probe: Option<u32>) -> bool {
        probe.is_some_and(|g| g == self.probe_gen.load(Ordering::Acquire))
            && self.state.load(Ordering::Acquire) == HALF_OPEN
    }

    fn on_success(&self, probe: Option<u32>) {
        // Read before writing: on the hot path the count is already 0, and an
        // unconditional store would bounce this cache line between cores on
        // every call.
        if self.failures.load(Ordering::Relaxed) != 0 {
            self.failures.store(0, Ordering::Relaxed);
        }
        if self.is_current(probe) {
            let _guard = self.since.lock();
            self.state.store(CLOSED, Ordering::Release);
            crate::telemetry::breaker_transition(BreakerState::Closed);
            tracing::info!("circuit breaker closed");
        }
    }

    fn on_failure(&self, probe: Option<u32>) {
        if self.is_current(probe) {
            self.open();
            return;
        }
        let n = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
        if n >= self.config.failure_threshold && self.state.load(Ordering::Acquire) == CLOSED {
            self.open();
        }
    }

    /// Whether the breaker would admit a probe now: open (or half-open
    /// with a hung probe) for longer than its wait.
    pub fn probe_due(&self) -> bool {
        let state = self.state.load(Ordering::Acquire);
        if !self.config.enabled || state == CLOSED {
            return false;
        }
        let wait = if state == OPEN {
            self.config.open_duration
        } else {
            self.config.probe_timeout
        };
        self.since.lock().elapsed() >= wait
    }

    /// Closes the breaker on evidence that the server answers again (a new
    /// connection, a subscription), without waiting for the open period
    /// or a probe. Does nothing when closed.
    pub fn close(&self) {
        if self.state.load(Ordering::Acquire) == CLOSED {
            return;
        }
        let _guard = self.since.lock();
        self.failures.store(0, Ordering::Relaxed);
        if self.state.swap(CLOSED, Ordering::AcqRel) != CLOSED {
            crate::telemetry::breaker_transition(BreakerState::Closed);
            tracing::info!("circuit breaker closed: Redis answers again");
        }
    }

    fn open(&self) {
        let mut since = self.since.lock();
        *since = Instant::now();
        if self.state.swap(OPEN, Ordering::AcqRel) != OPEN {
            crate::telemetry::breaker_transition(BreakerState::Open);
            tracing::warn!(
                failures = self.failures.load(Ordering::Relaxed),
                open_for = ?self.config.open_duration,
                "circuit breaker opened"
            );
        }
    }
}

impl Permit<'_> {
    /// The call succeeded, or failed in a way that shows the server is up
    /// (a `WRONGTYPE` reply, say).
    pub fn success(mut self) {
        if let Some(b) = self.breaker.take() {
            b.on_success(self.probe);
        }
    }

    /// The call failed. Transient failures count toward opening the breaker;
    /// others count as success because the server answered.
    pub fn failure(mut self, transient: bool) {
        if let Some(b) = self.breaker.take() {
            if transient {
                b.on_failure(self.probe);
            } else {
                b.on_success(self.probe);
            }
        }
    }

    /// Whether this permit is the half-open probe.
    pub fn is_probe(&self) -> bool {
        self.probe.is_some()
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        // Cancelled before reporting: a probe counts as failed; an ordinary
        // call reports nothing (the caller gave up, not the server).
        if let Some(b) = self.breaker.take()
            && self.probe.is_some()
        {
            b.on_failure(self.probe);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker() -> CircuitBreaker {
        CircuitBreaker::new(BreakerConfig {
            enabled: true,
            failure_threshold: 3,
            open_duration: Duration::from_secs(30),
            probe_timeout: Duration::from_secs(1),
        })
    }

    fn fail(b: &CircuitBreaker, n: usize) {
        for _ in 0..n {
            b.acquire().expect("admitted").failure(true);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn opens_after_threshold_of_transient_failures() {
        let b = breaker();
        fail(&b, 2);
        assert_eq!(b.state(), BreakerState::Closed);
        assert_eq!(b.failure_count(), 2);
        fail(&b, 1);
        assert_eq!(b.state(), BreakerState::Open);
        assert!(b.acquire().is_none(), "open breaker fails fast");
    }

    #[tokio::test(start_paused = true)]
    async fn success_resets_the_count_and_non_transient_failures_do_not_count() {
        let b = breaker();
        fail(&b, 2);
        b.acquire().unwrap().success();
        fail(&b, 2);
        for _ in 0..10 {
            b.acquire().unwrap().failure(false);
        }
        assert_eq!(b.state(), BreakerState::Closed);
        assert_eq!(b.failure_count(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn half_open_admits_one_probe_and_success_closes() {
        let b = breaker();
        fail(&b, 3);
        tokio::time::advance(Duration::from_secs(29)).await;
        assert!(b.acquire().is_none());
        tokio::time::advance(Duration::from_secs(1)).await;
        let probe = b.acquire().expect("probe admitted");
        assert!(probe.is_probe());
        assert_eq!(b.state(), BreakerState::HalfOpen);
        assert!(b.acquire().is_none(), "only one probe at a time");
        probe.success();
        assert_eq!(b.state(), BreakerState::Closed);
        assert!(!b.acquire().unwrap().is_probe());
    }

    #[tokio::test(start_paused = true)]
    async fn failed_probe_reopens_for_a_full_period() {
        let b = breaker();
        fail(&b, 3);
        tokio::time::advance(Duration::from_secs(30)).await;
        b.acquire().unwrap().failure(true);
        assert_eq!(b.state(), BreakerState::Open);
        tokio::time::advance(Duration::from_secs(29)).await;
        assert!(b.acquire().is_none());
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(b.acquire().unwrap().is_probe());
    }

    #[tokio::test(start_paused = true)]
    async fn hanging_probe_is_superseded_after_probe_timeout() {
        let b = breaker();
        fail(&b, 3);
        tokio::time::advance(Duration::from_secs(30)).await;
        let hung = b.acquire().unwrap();
        tokio::time::advance(Duration::from_millis(999)).await;
        assert!(b.acquire().is_none());
        tokio::time::advance(Duration::from_millis(1)).await;
        let second = b.acquire().expect("new probe after the first hung");
        assert!(second.is_probe());
        second.success();
        assert_eq!(b.state(), BreakerState::Closed);
        // The superseded probe finally fails: it counts as an ordinary call
        // and does not reopen the breaker a newer probe closed.
        hung.failure(true);
        assert_eq!(b.state(), BreakerState::Closed);
        assert_eq!(b.failure_count(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn cancelled_probe_counts_as_failure() {
        let b = breaker();
        fail(&b, 3);
        tokio::time::advance(Duration::from_secs(30)).await;
        drop(b.acquire().unwrap());
        assert_eq!(b.state(), BreakerState::Open);
        // A cancelled ordinary call counts for nothing.
        let b = breaker();
        drop(b.acquire().unwrap());
        assert_eq!(b.failure_count(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn disabled_breaker_admits_everything() {
        let b = CircuitBreaker::new(BreakerConfig::disabled());
        fail(&b, 100);
        assert_eq!(b.state(), BreakerState::Closed);
        assert!(b.acquire().is_some());
    }
}
