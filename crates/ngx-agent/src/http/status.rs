//! The live status page: `GET /` and `GET /status` serve one HTML page
//! built into the binary (no external fetch), which polls `GET /status.json`
//! every second and draws the last five minutes itself.
//!
//! The request rate and latency on the page come from [`RequestMeter`]:
//! cumulative counters and latency buckets, from which the page computes
//! per-interval rates and percentiles. The page's own requests are not
//! counted.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ngx_cache::{BreakerState, Cache, CacheStats};
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use super::extract::Json;

/// Upper bounds of the latency buckets, microseconds; the last bucket is
/// everything above.
pub(crate) const BUCKETS_US: [u64; 14] = [
    250, 500, 1_000, 2_000, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
    2_500_000, 10_000_000,
];

/// Requests served, server errors and latency buckets since start.
#[derive(Debug, Default)]
pub(crate) struct RequestMeter {
    requests: AtomicU64,
    server_errors: AtomicU64,
    latency_us_sum: AtomicU64,
    buckets: [AtomicU64; BUCKETS_US.len() + 1],
}

impl RequestMeter {
    fn record(&self, micros: u64, server_error: bool) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if server_error {
            self.server_errors.fetch_add(1, Ordering::Relaxed);
        }
        self.latency_us_sum.fetch_add(micros, Ordering::Relaxed);
        let i = BUCKETS_US.partition_point(|&b| b < micros);
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> HttpCounters {
        HttpCounters {
            requests: self.requests.load(Ordering::Relaxed),
            server_errors: self.server_errors.load(Ordering::Relaxed),
            latency_us_sum: self.latency_us_sum.load(Ordering::Relaxed),
            bucket_bounds_us: BUCKETS_US.to_vec(),
            buckets: self
                .buckets
                .iter()
                .map(|b| b.load(Ordering::Relaxed))
                .collect(),
        }
    }
}

/// Middleware: feeds the [`RequestMeter`], leaving out the status page's
/// own requests so an open page does not count itself.
pub(crate) async fn meter(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let own = matches!(req.uri().path(), "/" | "/status" | "/status.json");
    let start = Instant::now();
    let response = next.run(req).await;
    if !own {
        state.meter().record(
            start.elapsed().as_micros() as u64,
            response.status().is_server_error(),
        );
    }
    response
}

/// Cumulative HTTP counters; the page turns deltas into rates.
#[derive(Debug, Serialize, ToSchema)]
pub struct HttpCounters {
    /// Requests answered since start (status page excluded).
    pub requests: u64,
    /// Of which 5xx.
    pub server_errors: u64,
    /// Sum of latencies, microseconds.
    pub latency_us_sum: u64,
    /// Upper bounds of the latency buckets, microseconds.
    pub bucket_bounds_us: Vec<u64>,
    /// Requests per bucket; one more than the bounds (the overflow).
    pub buckets: Vec<u64>,
}

/// Body of `GET /status.json`.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatusSnapshot {
    /// The service's version.
    pub version: &'static str,
    /// Seconds since start.
    pub uptime_secs: f64,
    /// Server clock, Unix milliseconds.
    pub now_ms: u64,
    /// False with `CACHE_ENABLED=false`.
    pub cache_enabled: bool,
    /// `closed`, `open`, `half_open`, or `disabled`.
    pub breaker: &'static str,
    /// SQL statements since start.
    pub db_queries: u64,
    /// HTTP counters.
    pub http: HttpCounters,
    /// The cache statistics (`hits`, `l1_hits`, `l2_hits`, `misses`,
    /// `invalidations_pending`, `invalidation_lag_ms`, `l1_entries`, ...).
    #[schema(value_type = Object)]
    pub cache: CacheStats,
}

/// The live status page (HTML, built into the binary).
#[utoipa::path(
    get, path = "/status", tag = "operations",
    responses((status = 200, description = "The live status page; also served at `/`", content_type = "text/html"))
)]
pub(crate) async fn page() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        PAGE,
    )
        .into_response()
}

/// What the status page polls: version, uptime, HTTP counters, cache stats.
#[utoipa::path(
    get, path = "/status.json", tag = "operations",
    responses((status = 200, description = "A snapshot of the counters behind the status page", body = StatusSnapshot))
)]
pub(crate) async fn snapshot(State(state): State<AppState>) -> Json<StatusSnapshot> {
    let manager = state.cache();
    let cache = manager.map_or_else(|| Cache::disabled().stats(), |m| m.cache().stats());
    let breaker = match (manager, cache.circuit_breaker_state) {
        (None, _) => "disabled",
        (Some(_), BreakerState::Closed) => "closed",
        (Some(_), BreakerState::Open) => "open",
        (Some(_), BreakerState::HalfOpen) => "half_open",
    };
    Json(StatusSnapshot {
        version: env!("CARGO_PKG_VERSION"),
        uptime_secs: state.uptime_secs(),
        now_ms: super::now_millis().max(0) as u64,
        cache_enabled: manager.is_some(),
        breaker,
        db_queries: state.db().query_count(),
        http: state.meter().snapshot(),
        cache,
    })
}

const PAGE: &str = include_str!("status.html");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_land_in_their_bucket() {
        let m = RequestMeter::default();
        m.record(100, false);
        m.record(250, false);
        m.record(251, true);
        m.record(60_000_000, false);
        let s = m.snapshot();
        assert_eq!((s.requests, s.server_errors), (4, 1));
        assert_eq!(s.buckets[0], 2);
        assert_eq!(s.buckets[1], 1);
        assert_eq!(s.buckets[BUCKETS_US.len()], 1);
        assert_eq!(s.buckets.len(), s.bucket_bounds_us.len() + 1);
    }

    #[test]
    fn the_page_fetches_nothing_from_elsewhere() {
        for needle in ["http://", "https://", "//cdn", "<link", "src="] {
            assert!(!PAGE.contains(needle), "the page contains {needle:?}");
        }
    }
}
