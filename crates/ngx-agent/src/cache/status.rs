//! Where a request's cached values came from, for the `X-Cache` response
//! header.
//!
//! The HTTP layer runs each request inside [`scope`]; every lookup the
//! request makes through [`NgxCacheManager`](super::NgxCacheManager)
//! records its [`Source`] here. A request that made several lookups reports
//! the weakest one: a miss anywhere makes the response a `MISS`, a stale
//! value anywhere makes it `STALE`.

use std::cell::Cell;
use std::future::Future;

use ngx_cache::Source;

/// The value of the `X-Cache` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CacheStatus {
    /// Every value came from the in-process tier.
    HitL1,
    /// Every value came from L1 or Redis, at least one from Redis.
    HitL2,
    /// At least one value was loaded (database or computation).
    Miss,
    /// At least one value was stale, served by fail-safe.
    Stale,
}

impl CacheStatus {
    /// The header value: `HIT-L1`, `HIT-L2`, `MISS` or `STALE`.
    pub fn as_str(self) -> &'static str {
        match self {
            CacheStatus::HitL1 => "HIT-L1",
            CacheStatus::HitL2 => "HIT-L2",
            CacheStatus::Miss => "MISS",
            CacheStatus::Stale => "STALE",
        }
    }
}

impl From<Source> for CacheStatus {
    fn from(source: Source) -> Self {
        match source {
            Source::L1 => CacheStatus::HitL1,
            Source::L2 => CacheStatus::HitL2,
            Source::Stale => CacheStatus::Stale,
            Source::Loader => CacheStatus::Miss,
        }
    }
}

tokio::task_local! {
    static STATUS: Cell<Option<CacheStatus>>;
}

/// Runs `fut` with a fresh status; returns its output and the status its
/// lookups left (`None`: no cache lookup was made).
pub async fn scope<F: Future>(fut: F) -> (F::Output, Option<CacheStatus>) {
    STATUS
        .scope(Cell::new(None), async move {
            let out = fut.await;
            (out, STATUS.with(Cell::get))
        })
        .await
}

/// Records one lookup's source in the current scope, if any.
pub(crate) fn record(source: Source) {
    let status = CacheStatus::from(source);
    let _ = STATUS.try_with(|cell| cell.set(cell.get().max(Some(status))));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_weakest_lookup_wins() {
        let (_, s) = scope(async {}).await;
        assert_eq!(s, None);
        let (_, s) = scope(async {
            record(Source::L1);
            record(Source::L2);
            record(Source::L1);
        })
        .await;
        assert_eq!(s, Some(CacheStatus::HitL2));
        let (_, s) = scope(async {
            record(Source::Stale);
            record(Source::Loader);
        })
        .await;
        assert_eq!(s, Some(CacheStatus::Stale));
        // Outside a scope, recording is a no-op.
        record(Source::Loader);
    }
}
