//! Helpers shared by the hand-rolled paired benches.

/// The median of `v` (sorted in place); the upper one of an even count.
pub(crate) fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// A multi-thread runtime with the default worker count, timers and I/O on.
#[allow(dead_code)]
pub(crate) fn multi_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}
