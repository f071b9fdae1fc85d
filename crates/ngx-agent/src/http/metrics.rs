//! Prometheus metrics: HTTP request counters and latency histograms
//! recorded by a middleware, plus the cache statistics and the database
//! query count rendered at scrape time from their atomic counters.

use std::fmt::Write as _;
use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use ngx_cache::{BreakerState, CacheStats};

use super::AppState;

const LATENCY: &str = "http_request_duration_seconds";
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The process-wide recorder's handle. The `metrics` facade has one global
/// recorder, so every [`AppState`] in a process (tests build many) shares it.
pub(crate) fn handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(LATENCY.to_owned()), BUCKETS)
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; HTTP metrics go there");
            }
            handle
        })
        .clone()
}

/// Middleware: counts each request and records its latency, labelled by
/// method, route template (never the raw path, which would explode the
/// label set) and status.
pub(crate) async fn track(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().as_str().to_owned();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    let labels = [("method", method), ("route", route), ("status", status)];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!(LATENCY, &labels).record(start.elapsed().as_secs_f64());
    response
}

/// `GET /metrics`: Prometheus text format.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    tag = "operations",
    responses((status = 200, description = "Prometheus text exposition format", content_type = "text/plain", body = String))
)]
pub(crate) async fn metrics(State(state): State<AppState>) -> Response {
    state.metrics().run_upkeep();
    let mut out = state.metrics().render();
    let stats = state.cache().map(|m| m.cache().stats());
    render_app(
        &mut out,
        state.db().query_count(),
        stats.as_ref(),
        state.uptime_secs(),
    );
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        out,
    )
        .into_response()
}

fn metric(out: &mut String, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
    let _ = write!(
        out,
        "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
    );
}

/// Appends the application's own series to `out`.
fn render_app(out: &mut String, db_queries: u64, stats: Option<&CacheStats>, uptime: f64) {
    metric(
        out,
        "ngx_db_queries_total",
        "counter",
        "SQL statements run by the service.",
        db_queries,
    );
    metric(
        out,
        "ngx_uptime_seconds",
        "gauge",
        "Seconds since start.",
        uptime,
    );
    metric(
        out,
        "ngx_cache_enabled",
        "gauge",
        "1 when the cache is enabled.",
        u8::from(stats.is_some()),
    );
    let Some(s) = stats else { return };
    let counters: [(&str, &str, u64); 21] = [
        (
            "hits",
            "Cache reads that found a value (L1 or Redis).",
            s.hits,
        ),
        ("misses", "Cache reads that found nothing.", s.misses),
        (
            "errors",
            "Failed Redis operations and undecodable values.",
            s.errors,
        ),
        ("sets", "Values written.", s.sets),
        (
            "sets_skipped",
            "Writes skipped because Redis was unavailable.",
            s.sets_skipped,
        ),
        (
            "circuit_rejections",
            "Calls rejected by the open circuit breaker.",
            s.circuit_rejections,
        ),
        (
            "corrupt_evicted",
            "Corrupt values deleted and counted as misses.",
            s.corrupt_evicted,
        ),
        ("reconnects", "Redis connections rebuilt.", s.reconnects),
        (
            "l1_hits",
            "Hits served by the in-process L1 tier.",
            s.l1_hits,
        ),
        ("l2_hits", "Hits served by Redis.", s.l2_hits),
        (
            "stale_served",
            "Stale values served by fail-safe.",
            s.stale_served,
        ),
        ("loads", "Loader runs started.", s.loads),
        (
            "load_failures",
            "Loader runs that failed or timed out.",
            s.load_failures,
        ),
        (
            "coalesced_waits",
            "Callers that waited for a load in flight here.",
            s.coalesced_waits,
        ),
        (
            "distributed_waits",
            "Loads skipped because another instance held the lease.",
            s.distributed_waits,
        ),
        (
            "eager_refreshes",
            "Background refreshes started before expiry.",
            s.eager_refreshes,
        ),
        (
            "fills_rejected",
            "Fills refused because the key was invalidated meanwhile.",
            s.fills_rejected,
        ),
        (
            "invalidations_sent",
            "Invalidation messages published.",
            s.invalidations_sent,
        ),
        (
            "invalidations_received",
            "Invalidation messages from other instances applied.",
            s.invalidations_received,
        ),
        (
            "l1_flushes",
            "Times the whole L1 was marked stale.",
            s.l1_flushes,
        ),
        (
            "resubscribes",
            "Times the invalidation channel was subscribed again.",
            s.resubscribes,
        ),
    ];
    for (name, help, value) in counters {
        metric(
            out,
            &format!("ngx_cache_{name}_total"),
            "counter",
            help,
            value,
        );
    }
    metric(
        out,
        "ngx_cache_connected",
        "gauge",
        "1 when a Redis connection is up.",
        u8::from(s.connected),
    );
    metric(
        out,
        "ngx_cache_hit_rate",
        "gauge",
        "hits / (hits + misses) since start.",
        s.hit_rate,
    );
    metric(
        out,
        "ngx_cache_circuit_breaker_open",
        "gauge",
        "1 when the breaker is open or half-open.",
        u8::from(s.circuit_breaker_open),
    );
    metric(
        out,
        "ngx_cache_circuit_breaker_failures",
        "gauge",
        "Consecutive transient failures.",
        s.failure_count,
    );
    let _ = writeln!(
        out,
        "# HELP ngx_cache_circuit_breaker_state 1 for the current state.\n# TYPE ngx_cache_circuit_breaker_state gauge"
    );
    for (label, state) in [
        ("closed", BreakerState::Closed),
        ("open", BreakerState::Open),
        ("half_open", BreakerState::HalfOpen),
    ] {
        let _ = writeln!(
            out,
            "ngx_cache_circuit_breaker_state{{state=\"{label}\"}} {}",
            u8::from(s.circuit_breaker_state == state)
        );
    }
    metric(
        out,
        "ngx_cache_l1_entries",
        "gauge",
        "Entries held in L1.",
        s.l1_entries,
    );
    metric(
        out,
        "ngx_cache_deletes_pending",
        "gauge",
        "Deletes that could not reach Redis, being retried.",
        s.deletes_pending,
    );
    let _ = writeln!(
        out,
        "# HELP ngx_cache_invalidation_lag_ms Invalidation lag, publish to eviction, over recent messages.\n# TYPE ngx_cache_invalidation_lag_ms gauge"
    );
    let lag = &s.invalidation_lag_ms;
    let _ = writeln!(
        out,
        "ngx_cache_invalidation_lag_ms{{quantile=\"0.5\"}} {}",
        lag.p50
    );
    let _ = writeln!(
        out,
        "ngx_cache_invalidation_lag_ms{{quantile=\"0.99\"}} {}",
        lag.p99
    );
}
