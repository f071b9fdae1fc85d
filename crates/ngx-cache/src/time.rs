//! The clock of the hot paths: L1 lifetimes, read on every L1 lookup, and
//! the latency of every Redis command.
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
//! Timeouts, back-off and deadlines that tokio waits on keep tokio's clock,
//! so `tokio::time::pause()` still drives them in tests.

pub(crate) use quanta::Instant;

/// Takes the clock's one-time calibration now.
pub(crate) fn calibrate() {
    let _ = Instant::now();
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::Instant;

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
}
