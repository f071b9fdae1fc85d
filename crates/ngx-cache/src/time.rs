//! The clock of the hot paths: L1 lifetimes, judged on every L1 lookup,
//! and the latency of every Redis command.
//!
//! [`Instant`] is `quanta`'s: where the CPU's time-stamp counter is
//! invariant it reads the counter, scaled to nanoseconds (about 10 ns a
//! read, against about 25 ns for `std::time::Instant::now()` through the
//! vDSO; docs/benchmarks.md), and elsewhere it reads the monotonic clock.
//! Its first read calibrates the counter against the monotonic clock (under
//! a millisecond on the benchmark machine, at most 200 ms), so
//! [`calibrate`] runs when a cache is built rather than in its first
//! request.
//!
//! An L1 hit does not read the clock at all while the entry's deadlines
//! are far off. Reading the time-stamp counter costs 10 ns alone, but in a
//! run of lookups it waits for the memory loads in flight before it, which
//! cost a hit up to 200 ns on the Intel machines of docs/benchmarks.md
//! ("The clock read inside a run of hits"). While an L1 tier exists, a
//! thread of its own ([`Ticker`]) takes a reading every [`TICK`], and a
//! lookup judges against that reading ([`Now::recent`]). The reading lags
//! the clock, never leads it, so a deadline it has passed has passed. A
//! deadline less than [`SLACK`] after it is judged against the clock
//! itself, so an entry outlives its deadline only if the ticking thread is
//! kept off the CPU for longer than [`SLACK`] (a suspended process or
//! virtual machine, in the moment after it resumes).
//!
//! Timeouts, back-off and deadlines that tokio waits on keep tokio's clock,
//! so `tokio::time::pause()` still drives them in tests.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
pub(crate) use quanta::Instant;

/// How often the ticker takes a reading.
const TICK: Duration = Duration::from_millis(10);

/// A deadline closer than this after the ticker's reading is judged
/// against the clock itself.
const SLACK: Duration = Duration::from_secs(1);

/// Takes the clock's one-time calibration now.
pub(crate) fn calibrate() {
    let _ = Instant::now();
}

/// A time to judge L1 deadlines against: the ticker's latest reading, or
/// the clock's own.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Now {
    at: Instant,
    /// `at` was read from the clock itself.
    exact: bool,
}

impl Now {
    /// The ticker's latest reading, or the clock's while no ticker runs.
    #[inline]
    pub(crate) fn recent() -> Self {
        Ticker::global().now()
    }

    /// The clock's reading.
    fn exact() -> Self {
        Self {
            at: Instant::now(),
            exact: true,
        }
    }

    /// Whether `deadline` is still ahead. Reads the clock only when the
    /// reading is the ticker's and `deadline` is less than [`SLACK`] after
    /// it.
    #[inline]
    pub(crate) fn before(self, deadline: Instant) -> bool {
        if self.at >= deadline {
            // The clock is at or past the ticker's reading.
            return false;
        }
        if self.exact || deadline.duration_since(self.at) > SLACK {
            return true;
        }
        Instant::now() < deadline
    }
}

/// A reading of the clock taken every [`TICK`] by a thread of its own,
/// which runs while a [`Ticking`] is held.
#[derive(Debug)]
pub(crate) struct Ticker {
    base: Instant,
    /// Nanoseconds from `base` to the latest reading; 0 while no thread
    /// ticks.
    recent: AtomicU64,
    state: Mutex<TickerState>,
}

#[derive(Debug, Default)]
struct TickerState {
    /// Live [`Ticking`]s.
    users: usize,
    /// A ticking thread runs (it ends within a tick of `users` reaching 0).
    running: bool,
}

/// Keeps the ticker's thread running; the last one dropped ends it.
#[derive(Debug)]
pub(crate) struct Ticking(&'static Ticker);

impl Drop for Ticking {
    fn drop(&mut self) {
        self.0.state.lock().users -= 1;
    }
}

impl Ticker {
    fn new() -> Self {
        Self {
            base: Instant::now(),
            recent: AtomicU64::new(0),
            state: Mutex::default(),
        }
    }

    /// The process's ticker, shared by every L1 tier.
    pub(crate) fn global() -> &'static Self {
        static GLOBAL: OnceLock<Ticker> = OnceLock::new();
        GLOBAL.get_or_init(Self::new)
    }

    /// Keeps the ticker running, starting its thread if none runs. Without
    /// a thread (it could not be spawned), [`Now::recent`] reads the clock.
    pub(crate) fn start(&'static self) -> Ticking {
        let mut state = self.state.lock();
        state.users += 1;
        if !state.running {
            self.tick();
            let spawned = std::thread::Builder::new()
                .name("ngx-cache-clock".into())
                .spawn(move || self.run());
            state.running = spawned.is_ok();
            if let Err(e) = spawned {
                self.recent.store(0, Ordering::Release);
                tracing::warn!(error = %e, "L1 clock thread not started; L1 lookups read the clock");
            }
        }
        Ticking(self)
    }

    fn run(&self) {
        loop {
            std::thread::sleep(TICK);
            let mut state = self.state.lock();
            if state.users == 0 {
                state.running = false;
                self.recent.store(0, Ordering::Release);
                return;
            }
            drop(state);
            self.tick();
        }
    }

    fn tick(&self) {
        let nanos = Instant::now().duration_since(self.base).as_nanos();
        // Never 0, which means "not ticking".
        let nanos = u64::try_from(nanos).unwrap_or(u64::MAX).max(1);
        self.recent.store(nanos, Ordering::Release);
    }

    fn now(&self) -> Now {
        match self.recent.load(Ordering::Acquire) {
            0 => Now::exact(),
            nanos => Now {
                at: self.base + Duration::from_nanos(nanos),
                exact: false,
            },
        }
    }

    /// Whether a thread is ticking.
    #[cfg(test)]
    fn ticking(&self) -> bool {
        self.recent.load(Ordering::Acquire) != 0
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{Instant, Now, SLACK, TICK, Ticker};

    #[test]
    fn the_clock_moves_forward_with_real_time() {
        let start = Instant::now();
        let std_start = std::time::Instant::now();
        std::thread::sleep(Duration::from_millis(20));
        let ours = start.elapsed();
        let std_elapsed = std_start.elapsed();
        assert!(ours >= Duration::from_millis(19), "{ours:?}");
        // Read after ours, so std's span holds it, with room for scaling.
        assert!(
            ours <= std_elapsed + Duration::from_millis(2),
            "{ours:?} vs {std_elapsed:?}"
        );
        assert!(Instant::now() + Duration::from_secs(1) > Instant::now());
    }

    /// A reading taken `ago` before now, as a lagging ticker holds it.
    fn lagging(ago: Duration) -> Now {
        Now {
            at: Instant::now() - ago,
            exact: false,
        }
    }

    #[test]
    fn a_deadline_far_from_the_reading_is_judged_without_the_clock() {
        // The reading is 10 s old and the deadline 5 s ago: only a judgement
        // from the reading alone still calls it ahead.
        let deadline = Instant::now() - Duration::from_secs(5);
        assert!(lagging(Duration::from_secs(10)).before(deadline));
    }

    #[test]
    fn a_deadline_near_the_reading_is_judged_against_the_clock() {
        let now = Instant::now();
        let reading = lagging(SLACK / 2);
        // Passed by the clock, ahead by the reading: the clock decides.
        assert!(!reading.before(now - SLACK / 4));
        assert!(reading.before(now + SLACK / 4));
        // Passed by the reading itself.
        assert!(!reading.before(now - SLACK));
        let exact = Now::exact();
        assert!(exact.before(Instant::now() + Duration::from_millis(50)));
        assert!(!exact.before(exact.at));
    }

    #[test]
    fn the_ticker_runs_while_held_and_stops_after() {
        let ticker: &'static Ticker = Box::leak(Box::new(Ticker::new()));
        assert!(!ticker.ticking());
        assert!(ticker.now().exact);
        let first = ticker.start();
        let second = ticker.start();
        assert!(ticker.ticking());
        let before = ticker.now();
        assert!(!before.exact);
        // Within a few ticks, even on a busy machine.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while ticker.now().at == before.at && std::time::Instant::now() < deadline {
            std::thread::sleep(TICK);
        }
        let after = ticker.now();
        assert!(after.at > before.at, "{before:?} then {after:?}");
        assert!(after.at <= Instant::now());
        drop(first);
        std::thread::sleep(TICK * 3);
        assert!(ticker.ticking(), "one holder is left");
        drop(second);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while ticker.ticking() && std::time::Instant::now() < deadline {
            std::thread::sleep(TICK);
        }
        assert!(!ticker.ticking(), "the thread ends with its last holder");
        assert!(ticker.now().exact);
        // And starts again.
        let again = ticker.start();
        assert!(ticker.ticking());
        drop(again);
    }
}
