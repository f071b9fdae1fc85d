//! `/health` (liveness) and `/health/ready` (database and cache).
//!
//! Both reveal only a status to anonymous callers. The readiness details
//! (latencies, Redis version, memory, clients, error text) need the admin
//! token, or `HEALTH_DETAILS_PUBLIC=true`. A readiness check costs a SQL
//! query, a PING and an INFO, so its result is reused for
//! [`READINESS_CACHE`]: probes at any rate cost at most one check a second.

use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use ngx_cache::HealthReport;
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use super::extract::{CacheDep, Json, admin_authorized};

/// How long one readiness check answers the probes.
pub(crate) const READINESS_CACHE: Duration = Duration::from_secs(1);

/// The last readiness check and when it ran. One check runs at a time;
/// concurrent probes wait for it and share its result.
#[derive(Debug, Default)]
pub(crate) struct ReadinessCache {
    last: tokio::sync::Mutex<Option<(Instant, Readiness, StatusCode)>>,
}

/// Body of `GET /health`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Liveness {
    /// Always `ok`.
    pub status: &'static str,
}

/// The database part of the readiness report.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DatabaseHealth {
    /// `SELECT 1` succeeded within 2 s.
    pub healthy: bool,
    /// `sqlite` or `postgres`.
    pub backend: &'static str,
    /// Round trip of `SELECT 1`, milliseconds.
    pub latency_ms: f64,
}

/// Body of `GET /health/ready`: only `status` without the admin token.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Readiness {
    /// `ready`; `degraded` when the cache is enabled but unhealthy (requests
    /// are still served, from the database); `not_ready` when the database
    /// is down.
    #[schema(value_type = String, pattern = "^(ready|degraded|not_ready)$")]
    pub status: &'static str,
    /// The database check (admin token or `HEALTH_DETAILS_PUBLIC`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<DatabaseHealth>,
    /// The cache health from `health_check()` (`status`, `healthy`,
    /// `latency_ms`, `version`, `used_memory`, `connected_clients`, `hits`,
    /// `misses`); `status` is `disabled` when the cache is off (admin token
    /// or `HEALTH_DETAILS_PUBLIC`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub cache: Option<HealthReport>,
}

/// Liveness: the process answers. Touches nothing else.
#[utoipa::path(
    get, path = "/health", operation_id = "liveness", tag = "operations",
    responses((status = 200, description = "The process is alive", body = Liveness))
)]
pub(crate) async fn live() -> Json<Liveness> {
    Json(Liveness { status: "ok" })
}

/// Readiness: the database answers (503 otherwise) and the cache's health.
/// Details only with the admin token (or `HEALTH_DETAILS_PUBLIC=true`);
/// the check is reused for a second.
#[utoipa::path(
    get, path = "/health/ready", operation_id = "readiness", tag = "operations",
    responses(
        (status = 200, description = "Ready (or degraded: cache unhealthy)", body = Readiness),
        (status = 503, description = "The database is unavailable", body = Readiness),
    )
)]
pub(crate) async fn ready(
    State(state): State<AppState>,
    cache: CacheDep,
    headers: HeaderMap,
) -> Response {
    let details = state.details_public() || admin_authorized(&headers, &state);
    let (mut report, code) = {
        let mut last = state.readiness().last.lock().await;
        match &*last {
            Some((at, report, code)) if at.elapsed() < READINESS_CACHE => (report.clone(), *code),
            _ => {
                let (report, code) = check(&state, cache).await;
                *last = Some((Instant::now(), report.clone(), code));
                (report, code)
            }
        }
    };
    if !details {
        report.database = None;
        report.cache = None;
    }
    (code, Json(report)).into_response()
}

/// Runs the checks: `SELECT 1` within 2 s, and the cache's health.
async fn check(state: &AppState, CacheDep(cache): CacheDep) -> (Readiness, StatusCode) {
    let db = state.db();
    let start = Instant::now();
    let ping = tokio::time::timeout(
        Duration::from_secs(2),
        sqlx::query("SELECT 1").execute(db.pool()),
    )
    .await;
    let healthy = matches!(ping, Ok(Ok(_)));
    if let Ok(Err(e)) = &ping {
        tracing::warn!(error = %e, "readiness: database check failed");
    }
    let database = DatabaseHealth {
        healthy,
        backend: match db.backend() {
            crate::db::Backend::Sqlite => "sqlite",
            crate::db::Backend::Postgres => "postgres",
        },
        latency_ms: start.elapsed().as_secs_f64() * 1000.0,
    };
    let (cache, cache_ok) = match &cache {
        Some(m) => {
            let report = m.cache().health_check().await;
            let ok = report.healthy;
            (report, ok)
        }
        None => (ngx_cache::Cache::disabled().health_check().await, true),
    };
    let (status, code) = match (healthy, cache_ok) {
        (false, _) => ("not_ready", StatusCode::SERVICE_UNAVAILABLE),
        (true, false) => ("degraded", StatusCode::OK),
        (true, true) => ("ready", StatusCode::OK),
    };
    (
        Readiness {
            status,
            database: Some(database),
            cache: Some(cache),
        },
        code,
    )
}
