//! `/cache/*`: statistics (public) and the admin operations (bearer token):
//! invalidate by key, tag or whole type, and warm.

use axum::extract::State;
use ngx_cache::{Cache, CacheStats, WarmReport};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::extract::{Admin, CacheDep, Json};
use super::{AppError, AppState};
use crate::cache::KeySpace;

/// Body of `GET /cache/stats`: `stats()` of the cache plus service counters.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatsResponse {
    /// False when the service runs with `CACHE_ENABLED=false`.
    pub enabled: bool,
    /// SQL statements run by this process so far (benchmarks divide its
    /// delta by the request count).
    pub db_queries: u64,
    /// `hits`, `misses`, `errors`, `hit_rate`, `total_requests`,
    /// `circuit_breaker_open`, `failure_count`, `l1_hits`, `stale_served`, ...
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub stats: CacheStats,
}

/// Body of `POST /cache/invalidate`: exactly one of `key`, `tag`, `type`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InvalidateRequest {
    /// A key without the namespace, e.g. `conv:v1:conv-00001`.
    #[schema(example = "conv:v1:conv-00001")]
    pub key: Option<String>,
    /// A tag, e.g. `customer:cust-00001` (a customer's derived data).
    #[schema(example = "customer:cust-00001")]
    pub tag: Option<String>,
    /// A whole key space: `conversation`, `customer`, `prediction`, `tier`,
    /// `program`, `roi`, `config`, `knowledge`, `catalog`, or `all` (the
    /// namespace).
    #[serde(rename = "type")]
    #[schema(example = "knowledge")]
    pub space: Option<String>,
}

/// The documented shape of `POST /cache/invalidate`: exactly one of the
/// three. The handler reads [`InvalidateRequest`] to word its errors.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub(crate) enum InvalidateTarget {
    /// One key.
    Key(InvalidateKey),
    /// One tag.
    Tag(InvalidateTag),
    /// A whole key space.
    Type(InvalidateType),
}

/// Invalidates one key.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub(crate) struct InvalidateKey {
    /// A key without the namespace, e.g. `conv:v1:conv-00001`: 1 to 200
    /// characters, no control characters.
    #[schema(example = "conv:v1:conv-00001")]
    key: String,
}

/// Invalidates one tag.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub(crate) struct InvalidateTag {
    /// A tag, e.g. `customer:cust-00001`: 1 to 200 characters, no control
    /// characters.
    #[schema(example = "customer:cust-00001")]
    tag: String,
}

/// Invalidates a whole key space, or the namespace (`all`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub(crate) struct InvalidateType {
    /// `conversation`, `customer`, `prediction`, `tier`, `program`, `roi`,
    /// `config`, `knowledge`, `catalog` or `all`.
    #[serde(rename = "type")]
    #[schema(example = "knowledge")]
    space: String,
}

/// Longest key or tag `POST /cache/invalidate` takes, in characters: with
/// the longest namespace it stays under the library's key limit.
pub(crate) const MAX_TARGET_CHARS: usize = 200;

/// Body of the answer to `POST /cache/invalidate`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct InvalidateResponse {
    /// `key`, `tag` or `type`.
    pub target: String,
    /// What was invalidated.
    pub value: String,
    /// Keys removed (types), 1/0 (key existed) or the tag's new version.
    pub removed: u64,
    /// False when the cache is disabled (nothing to invalidate).
    pub cache_enabled: bool,
}

/// Cache statistics (public, read-only).
#[utoipa::path(
    get, path = "/cache/stats", operation_id = "cache_stats", tag = "cache",
    responses((status = 200, description = "Cache statistics and the database query count", body = StatsResponse))
)]
pub(crate) async fn stats(
    State(state): State<AppState>,
    CacheDep(cache): CacheDep,
) -> Json<StatsResponse> {
    let stats = match &cache {
        Some(m) => m.cache().stats(),
        None => Cache::disabled().stats(),
    };
    Json(StatsResponse {
        enabled: cache.is_some(),
        db_queries: state.db().query_count(),
        stats,
    })
}

/// Invalidates one key, one tag or a whole type, on every instance.
#[utoipa::path(
    post, path = "/cache/invalidate", operation_id = "invalidate_cache", tag = "cache",
    request_body = InvalidateTarget,
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "Invalidated", body = InvalidateResponse),
        (status = 401, description = "No bearer token", body = super::ErrorBody),
        (status = 403, description = "Wrong token, or ADMIN_TOKEN unset", body = super::ErrorBody),
        (status = 422, description = "Not exactly one target, or an unknown type", body = super::ErrorBody),
        (status = 503, description = "Redis unavailable", body = super::ErrorBody),
    )
)]
pub(crate) async fn invalidate(
    _admin: Admin,
    CacheDep(cache): CacheDep,
    Json(req): Json<InvalidateRequest>,
) -> Result<Json<InvalidateResponse>, AppError> {
    let (target, value) = match (req.key, req.tag, req.space) {
        (Some(k), None, None) => ("key", k),
        (None, Some(t), None) => ("tag", t),
        (None, None, Some(s)) => ("type", s),
        _ => {
            return Err(AppError::Validation(
                "give exactly one of `key`, `tag` or `type`".into(),
            ));
        }
    };
    if target != "type" {
        let chars = value.chars().count();
        if chars == 0 || chars > MAX_TARGET_CHARS || value.chars().any(char::is_control) {
            return Err(AppError::Validation(format!(
                "`{target}` must be 1 to {MAX_TARGET_CHARS} characters without control characters"
            )));
        }
    }
    let space = if target == "type" && value != "all" {
        Some(KeySpace::parse(&value).ok_or_else(|| {
            let names: Vec<&str> = KeySpace::ALL.iter().map(|s| s.name()).collect();
            AppError::Validation(format!(
                "unknown type {value:?}; expected one of {} or all",
                names.join(", ")
            ))
        })?)
    } else {
        None
    };
    let Some(manager) = cache else {
        return Ok(Json(InvalidateResponse {
            target: target.into(),
            value,
            removed: 0,
            cache_enabled: false,
        }));
    };
    let c = manager.cache();
    let removed = match (target, space) {
        ("key", _) => c.try_delete(&value).await.map(u64::from),
        ("tag", _) => c.try_invalidate_tag(&value).await,
        (_, Some(space)) => manager.clear_space(space).await,
        _ => c.clear_namespace().await,
    }
    .map_err(|e| {
        if e.is_caller_error() {
            AppError::Validation(e.to_string())
        } else {
            AppError::Unavailable(format!("cache invalidation: {e}"))
        }
    })?;
    tracing::info!(target, value = %value, removed, "cache invalidated by admin");
    Ok(Json(InvalidateResponse {
        target: target.into(),
        value,
        removed,
        cache_enabled: true,
    }))
}

/// Warms the knowledge base, the default agent configuration, the program
/// catalog, and the profiles and recommendations of the most recently
/// active customers (`CACHE_WARM_CUSTOMERS`).
#[utoipa::path(
    post, path = "/cache/warm", operation_id = "warm_cache", tag = "cache",
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "Entries warmed (`total`, `done`, `failed`)", body = Object),
        (status = 401, description = "No bearer token", body = super::ErrorBody),
        (status = 403, description = "Wrong token, or ADMIN_TOKEN unset", body = super::ErrorBody),
    )
)]
pub(crate) async fn warm(
    _admin: Admin,
    State(state): State<AppState>,
    CacheDep(cache): CacheDep,
) -> Result<Json<WarmReport>, AppError> {
    if cache.is_none() {
        return Ok(Json(WarmReport::default()));
    }
    let services = state.services();
    Ok(Json(services.content.warm(&services.programs).await?))
}
