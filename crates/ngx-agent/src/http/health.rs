//! `/health` (liveness) and `/health/ready` (database and cache).

use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ngx_cache::HealthReport;
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use super::extract::{CacheDep, Json};

/// Body of `GET /health`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Liveness {
    /// Always `ok`.
    pub status: &'static str,
}

/// The database part of the readiness report.
#[derive(Debug, Serialize, ToSchema)]
pub struct DatabaseHealth {
    /// `SELECT 1` succeeded within 2 s.
    pub healthy: bool,
    /// `sqlite` or `postgres`.
    pub backend: &'static str,
    /// Round trip of `SELECT 1`, milliseconds.
    pub latency_ms: f64,
}

/// Body of `GET /health/ready`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// `ready`; `degraded` when the cache is enabled but unhealthy (requests
    /// are still served, from the database); `not_ready` when the database
    /// is down.
    pub status: &'static str,
    /// The database check.
    pub database: DatabaseHealth,
    /// The cache health from `health_check()` (`status`, `healthy`,
    /// `latency_ms`, `version`, `used_memory`, `connected_clients`, `hits`,
    /// `misses`); `status` is `disabled` when the cache is off.
    #[schema(value_type = Object)]
    pub cache: HealthReport,
}

/// Liveness: the process answers. Touches nothing else.
#[utoipa::path(
    get, path = "/health", tag = "operations",
    responses((status = 200, description = "The process is alive", body = Liveness))
)]
pub(crate) async fn live() -> Json<Liveness> {
    Json(Liveness { status: "ok" })
}

/// Readiness: the database answers (503 otherwise) and the cache's health.
#[utoipa::path(
    get, path = "/health/ready", tag = "operations",
    responses(
        (status = 200, description = "Ready (or degraded: cache unhealthy)", body = Readiness),
        (status = 503, description = "The database is unavailable", body = Readiness),
    )
)]
pub(crate) async fn ready(State(state): State<AppState>, CacheDep(cache): CacheDep) -> Response {
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
        code,
        Json(Readiness {
            status,
            database,
            cache,
        }),
    )
        .into_response()
}
