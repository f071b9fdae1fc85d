//! Prometheus metrics: the process-wide `metrics-exporter-prometheus`
//! recorder, the HTTP middleware that records request counts and latency,
//! and `GET /metrics`.
//!
//! The cache's own metrics (`ngx_cache_*`) are recorded by `ngx-cache`
//! through the `metrics` facade; this module adds the HTTP series and, at
//! scrape time, the database query count, uptime and cache connectivity.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics::Unit;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use ngx_cache::telemetry;

use super::AppState;

const REQUESTS: &str = "http_requests_total";
const LATENCY: &str = "http_request_duration_seconds";
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Installs the process-wide Prometheus recorder (once) and returns its
/// handle. The `metrics` facade has one global recorder, so every
/// [`AppState`] in a process (tests build many) shares it.
///
/// Call it before connecting the cache: `ngx-cache` takes its metric
/// handles from the recorder installed when it connects.
pub fn install() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let histograms = [
                (LATENCY, BUCKETS),
                (
                    telemetry::REDIS_COMMAND_DURATION,
                    telemetry::REDIS_COMMAND_BUCKETS,
                ),
                (
                    telemetry::INVALIDATION_LAG,
                    telemetry::INVALIDATION_LAG_BUCKETS,
                ),
            ];
            let mut builder = PrometheusBuilder::new();
            for (name, buckets) in histograms {
                builder = builder
                    .set_buckets_for_metric(Matcher::Full(name.to_owned()), buckets)
                    .expect("static, non-empty buckets");
            }
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; metrics go there");
            }
            describe();
            handle
        })
        .clone()
}

/// Help text and units of the series this module records.
fn describe() {
    metrics::describe_counter!(
        REQUESTS,
        Unit::Count,
        "HTTP requests answered, by method, route template and status."
    );
    metrics::describe_histogram!(
        LATENCY,
        Unit::Seconds,
        "HTTP request latency, by method, route template and status."
    );
    metrics::describe_counter!(
        "ngx_db_queries_total",
        Unit::Count,
        "SQL statements run by the service."
    );
    metrics::describe_gauge!(
        "ngx_uptime_seconds",
        Unit::Seconds,
        "Seconds since the service started."
    );
    metrics::describe_gauge!("ngx_cache_enabled", "1 when the cache is enabled.");
    metrics::describe_gauge!("ngx_cache_connected", "1 when a Redis connection is up.");
    telemetry::describe();
}

/// The `route` label of requests that matched no route.
const UNMATCHED: &str = "unmatched";

/// The `method` label: the standard methods by name, anything else (hyper
/// accepts any token as a method) as `other`, so clients cannot mint series.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

/// The per-response cache status header (see [`crate::cache::status`]).
pub(crate) const X_CACHE: &str = "x-cache";

/// Middleware: sets `X-Cache` on responses that made cache lookups; counts
/// each request and records its latency, labelled by
/// method (bounded, see [`method_label`]), route template (never the raw
/// path, which would explode the label set) and status.
pub(crate) async fn track(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = method_label(req.method());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| UNMATCHED.to_owned(), |p| p.as_str().to_owned());
    let (mut response, cache) = crate::cache::status::scope(next.run(req)).await;
    if let Some(cache) = cache {
        response
            .headers_mut()
            .insert(X_CACHE, HeaderValue::from_static(cache.as_str()));
    }
    let status = response.status().as_u16().to_string();
    let labels = [
        ("method", method.to_owned()),
        ("route", route),
        ("status", status),
    ];
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
    metrics::counter!("ngx_db_queries_total").absolute(state.db().query_count());
    metrics::gauge!("ngx_uptime_seconds").set(state.uptime_secs());
    let connected = state.cache().map(|m| m.cache().stats().connected);
    metrics::gauge!("ngx_cache_enabled").set(f64::from(u8::from(connected.is_some())));
    metrics::gauge!("ngx_cache_connected").set(f64::from(u8::from(connected == Some(true))));
    state.metrics().run_upkeep();
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        state.metrics().render(),
    )
        .into_response()
}
