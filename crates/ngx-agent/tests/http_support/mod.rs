//! Shared helpers of the HTTP tests: a seeded SQLite file, a real Redis
//! (the launcher of `ngx-cache`'s tests) and `oneshot` calls into `app()`.

#![allow(dead_code, unreachable_pub)]

use std::sync::atomic::{AtomicU32, Ordering};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use ngx_agent::cache::{DomainCacheSettings, NgxCacheManager};
use ngx_agent::db::{Database, SeedSpec};
use ngx_agent::http::{self, AppState};
use ngx_cache::{Cache, CacheConfig};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::server::RedisServer;

/// Customers and conversations seeded into every test database.
pub const CUSTOMERS: usize = 60;
/// See [`CUSTOMERS`].
pub const CONVERSATIONS: usize = 30;
/// The admin token of [`TestApp::with_admin`].
pub const TOKEN: &str = "test-admin-token-0123456789";

/// A seeded database, a Redis server and the state over both.
pub struct TestApp {
    pub state: AppState,
    pub app: Router,
    pub redis: Option<RedisServer>,
    pub db: Database,
    _dir: tempfile::TempDir,
}

/// A fresh, migrated and seeded SQLite database in a temporary directory.
pub async fn seeded_db() -> (Database, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}/ngx.db", dir.path().display());
    let db = Database::connect(&url).await.expect("open sqlite");
    db.migrate().await.expect("migrate");
    db.seed_with(SeedSpec::new(CUSTOMERS, CONVERSATIONS))
        .await
        .expect("seed");
    (db, dir)
}

/// A cache on `redis` under a namespace private to this test.
pub async fn cache_on(redis: &RedisServer) -> NgxCacheManager {
    // The cache takes its metric handles from the recorder installed when it
    // connects, as in `AppState::start`.
    http::install_metrics();
    static N: AtomicU32 = AtomicU32::new(0);
    let config = CacheConfig::builder()
        .url(redis.url())
        .namespace(format!(
            "t{}x{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ))
        .build()
        .expect("cache config");
    let cache = Cache::connect(config).await.expect("connect to test redis");
    NgxCacheManager::new(cache, DomainCacheSettings::default())
}

impl TestApp {
    /// Cache on (real Redis), admin endpoints disabled.
    pub async fn new() -> Self {
        Self::build(true, None).await
    }

    /// Cache on, admin token [`TOKEN`].
    pub async fn with_admin() -> Self {
        Self::build(true, Some(TOKEN.to_owned())).await
    }

    /// `CACHE_ENABLED=false`: no Redis at all.
    pub async fn without_cache() -> Self {
        Self::build(false, Some(TOKEN.to_owned())).await
    }

    async fn build(cache: bool, admin: Option<String>) -> Self {
        let (db, dir) = seeded_db().await;
        let redis = cache.then(RedisServer::start);
        let manager = match &redis {
            Some(r) => Some(cache_on(r).await),
            None => None,
        };
        let state = AppState::new(db.clone(), manager).admin_token(admin);
        Self {
            app: http::app(state.clone()),
            state,
            redis,
            db,
            _dir: dir,
        }
    }

    /// Sends one request; returns the status and the body parsed as JSON
    /// (`Value::String` with the raw text when it is not JSON).
    pub async fn call(&self, method: &str, uri: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.call_with(method, uri, body, None).await
    }

    /// [`call`](Self::call) with an `Authorization` header value.
    pub async fn call_with(
        &self,
        method: &str,
        uri: &str,
        body: Option<Value>,
        authorization: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(auth) = authorization {
            req = req.header(header::AUTHORIZATION, auth);
        }
        let req = match body {
            Some(b) => req
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        }
        .expect("request");
        self.raw(req).await
    }

    /// Sends a prepared request.
    pub async fn raw(&self, req: Request<Body>) -> (StatusCode, Value) {
        let resp = self.app.clone().oneshot(req).await.expect("infallible");
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .expect("body");
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, value)
    }

    /// `GET /cache/stats`.
    pub async fn stats(&self) -> Value {
        let (status, v) = self.call("GET", "/cache/stats", None).await;
        assert_eq!(status, StatusCode::OK);
        v
    }
}

/// Asserts an error response: the status and the `{error, detail}` shape.
#[track_caller]
pub fn assert_error(got: &(StatusCode, Value), status: StatusCode, code: &str) {
    assert_eq!(got.0, status, "body: {}", got.1);
    assert_eq!(got.1["error"], code, "body: {}", got.1);
    assert!(got.1["detail"].is_string(), "body: {}", got.1);
}

/// A valid `POST /roi` body.
pub fn roi_body() -> Value {
    json!({
        "profession": "lawyer",
        "hourly_rate": 250.0,
        "billable_hours_per_week": 30.0,
        "weeks_per_year": 46.0,
        "program_type": "PRIME",
        "tier": "PRO"
    })
}
