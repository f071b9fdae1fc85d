//! The HTTP API: an axum [`Router`] over [`AppState`].
//!
//! # Layout
//! - `state`: [`AppState`], built once at start ([`AppState::start`]) and
//!   shared by every handler: database, optional cache manager, services.
//! - `extract`: JSON/path/query extractors that answer with [`AppError`],
//!   the [`CacheDep`] dependency and the [`Admin`] guard.
//! - `error`: [`AppError`] and its `{error, detail}` body.
//! - `conversation`, `customer`, `compute`, `content`: the resource handlers.
//! - `health`, `admin`, `metrics`: operations endpoints.
//! - `status`: the live status page (`/`, `/status`) and its `/status.json`.
//! - `openapi`: [`ApiDoc`], served at `/openapi.json` and `/docs`.
//! - `middleware`, `shutdown`: request ids, deadline, panic guard, signals.
//!
//! # The request pipeline
//! Outermost first: request id (`x-request-id`, kept when the client sends
//! one), trace span, panic guard (500 without details), HTTP metrics,
//! deadline (503 after `HTTP_REQUEST_TIMEOUT_MS`), body limit (413 above
//! `HTTP_BODY_LIMIT_BYTES`), then the route.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use ngx_agent::config::AppConfig;
//! use ngx_agent::http::{self, AppState};
//!
//! let config = AppConfig::from_env()?;
//! let state = AppState::start(&config).await?;
//! let listener = tokio::net::TcpListener::bind(config.http_addr).await?;
//! http::serve(listener, state, http::shutdown::signal(), config.shutdown_timeout).await?;
//! # Ok(()) }
//! ```

mod admin;
mod cache_header;
mod compute;
mod content;
mod contract;
mod conversation;
mod customer;
mod error;
mod extract;
mod health;
mod metrics;
mod middleware;
mod openapi;
mod server;
pub mod shutdown;
mod state;
mod status;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::Request;
use axum::routing::{get, post};
use tower::ServiceBuilder;
use tower_http::ServiceBuilderExt;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;
use utoipa_swagger_ui::SwaggerUi;

pub use self::metrics::install as install_metrics;
pub use admin::{InvalidateRequest, InvalidateResponse, StatsResponse};
pub use compute::{DetectTier, PredictRequest, RecommendRequest, RoiRequest};
pub use content::AgentConfigQuery;
pub use conversation::{AppendMessage, CreateConversation};
pub use customer::{CustomersResponse, UpdateCustomer};
pub use error::{AppError, ErrorBody};
pub use extract::{Admin, CacheDep, Json, Path, Query};
pub use health::{DatabaseHealth, Liveness, Readiness};
pub use openapi::ApiDoc;
pub use state::{AppState, StartError};
pub use status::{HttpCounters, StatusSnapshot};

/// The whole API over `state`: used by `main` and by the tests
/// (`app(state).oneshot(request)`).
pub fn app(state: AppState) -> Router {
    let limits = state.http_limits();
    Router::new()
        .route("/conversations", post(conversation::create))
        .route("/conversations/{id}", get(conversation::get))
        .route("/conversations/{id}/messages", post(conversation::append))
        .route("/customers", get(customer::get_many))
        .route("/customers/{id}", get(customer::get).put(customer::update))
        .route("/tier-detection", post(compute::detect_tier))
        .route("/predictions/{model}", post(compute::predict))
        .route("/programs/recommendations", post(compute::recommend))
        .route("/roi", post(compute::roi))
        .route("/config/agent", get(content::agent_config))
        .route("/knowledge/{topic}", get(content::knowledge))
        .route("/health", get(health::live))
        .route("/health/ready", get(health::ready))
        .route("/cache/stats", get(admin::stats))
        .route("/cache/invalidate", post(admin::invalidate))
        .route("/cache/warm", post(admin::warm))
        .route("/metrics", get(metrics::metrics))
        .route("/", get(status::page))
        .route("/status", get(status::page))
        .route("/status.json", get(status::snapshot))
        .merge(SwaggerUi::new("/docs").external_url_unchecked("/openapi.json", ApiDoc::document()))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limits.body_limit))
        .layer(axum::middleware::from_fn_with_state(
            limits.request_timeout,
            middleware::deadline,
        ))
        .layer(axum::middleware::from_fn(metrics::track))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            status::meter,
        ))
        .layer(
            ServiceBuilder::new()
                .set_x_request_id(middleware::RandomRequestId)
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(|req: &Request<_>| {
                            let id = req
                                .headers()
                                .get("x-request-id")
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or("-");
                            let route = req
                                .extensions()
                                .get::<axum::extract::MatchedPath>()
                                .map_or("unmatched", |p| p.as_str());
                            tracing::info_span!(
                                "request",
                                method = %req.method(),
                                path = %req.uri().path(),
                                request_id = %id,
                                otel.name = %format_args!("{} {route}", req.method()),
                                otel.kind = "server",
                                http.route = route,
                            )
                        })
                        .on_response(DefaultOnResponse::new().level(Level::INFO)),
                )
                .propagate_x_request_id()
                .layer(CatchPanicLayer::custom(middleware::panic_response)),
        )
        .with_state(state)
}

/// Serves `app(state)` on `listener` until `shutdown` resolves, then stops
/// accepting, waits up to `drain` for in-flight requests, settles the
/// cache invalidations that Redis has not taken yet with what is left of `drain`
/// (at least [`SETTLE_AT_LEAST`]), and closes the database. The cache
/// closes when the state's last clone is dropped.
///
/// Connections are bounded by the state's [`HttpLimits`](crate::config::HttpLimits):
/// a header-read timeout, an idle keep-alive timeout and a cap on open
/// connections (see `server`).
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
    drain: Duration,
) -> std::io::Result<()> {
    let limits = state.http_limits();
    let signalled = Arc::new(std::sync::OnceLock::new());
    let shutdown = {
        let signalled = Arc::clone(&signalled);
        async move {
            shutdown.await;
            let _ = signalled.set(std::time::Instant::now());
        }
    };
    if !server::run(listener, app(state.clone()), limits, shutdown, drain).await {
        tracing::warn!(
            ?drain,
            "in-flight requests did not finish in time, closing them"
        );
    }
    let used = signalled.get().map_or(Duration::ZERO, |t| t.elapsed());
    state
        .settle_cache(drain.saturating_sub(used).max(SETTLE_AT_LEAST))
        .await;
    state.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// The least time shutdown gives pending cache invalidations, even when the
/// drain used up the shutdown timeout.
pub const SETTLE_AT_LEAST: Duration = Duration::from_millis(500);

async fn not_found() -> AppError {
    AppError::NotFound("no such route".into())
}

async fn method_not_allowed() -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        axum::Json(ErrorBody {
            error: "method_not_allowed".into(),
            detail: "method not allowed on this route".into(),
        }),
    )
        .into_response()
}

/// Current time in unix milliseconds.
pub(crate) fn now_millis() -> i64 {
    crate::db::now_millis()
}
