//! `X-Cache` on cached endpoints: `MISS` when the value was loaded,
//! `HIT-L1` from this instance's memory, `HIT-L2` from Redis (a second
//! instance), `STALE` when fail-safe answered because the database failed;
//! absent on endpoints that read no cached data; `MISS` on every read with
//! the cache disabled. The header is in OpenAPI.

#[path = "../../ngx-cache/tests/support/server.rs"]
#[allow(dead_code, unreachable_pub)]
mod server;

mod http_support;

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use ngx_agent::cache::{DomainCacheSettings, KeySpace, NgxCacheManager};
use ngx_agent::http::{self, AppState};
use ngx_cache::{Cache, CacheConfig};
use server::RedisServer;
use tower::ServiceExt;

/// One instance: its own state and L1 over `redis` and `namespace`.
async fn instance(
    db: &ngx_agent::db::Database,
    redis: &RedisServer,
    namespace: &str,
    settings: DomainCacheSettings,
) -> Router {
    http::install_metrics();
    let config = CacheConfig::builder()
        .url(redis.url())
        .namespace(namespace)
        .build()
        .unwrap();
    let cache = Cache::connect(config).await.unwrap();
    let manager = NgxCacheManager::new(cache, settings);
    http::app(AppState::new(db.clone(), Some(manager)))
}

/// `GET uri`: the status and the `X-Cache` header.
async fn get(app: &Router, uri: &str) -> (StatusCode, Option<String>) {
    let req = Request::get(uri).body(Body::empty()).unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let header = resp
        .headers()
        .get("x-cache")
        .map(|v| v.to_str().unwrap().to_owned());
    (resp.status(), header)
}

/// The app's OpenAPI document.
async fn openapi(app: Router) -> serde_json::Value {
    let req = Request::get("/openapi.json").body(Body::empty()).unwrap();
    let resp = app.oneshot(req).await.unwrap();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn miss_then_l1_hit_then_l2_hit_on_another_instance() {
    let (db, _dir) = http_support::seeded_db().await;
    let redis = RedisServer::start();
    let ns = format!("xc{}", std::process::id());
    let a = instance(&db, &redis, &ns, DomainCacheSettings::default()).await;
    let b = instance(&db, &redis, &ns, DomainCacheSettings::default()).await;

    for uri in ["/customers/cust-00001", "/conversations/conv-00001"] {
        assert_eq!(
            get(&a, uri).await,
            (StatusCode::OK, Some("MISS".into())),
            "{uri}"
        );
        assert_eq!(
            get(&a, uri).await,
            (StatusCode::OK, Some("HIT-L1".into())),
            "{uri}"
        );
        assert_eq!(
            get(&b, uri).await,
            (StatusCode::OK, Some("HIT-L2".into())),
            "{uri}"
        );
        assert_eq!(
            get(&b, uri).await,
            (StatusCode::OK, Some("HIT-L1".into())),
            "{uri}"
        );
    }
    // Endpoints that read no cached data carry no header.
    assert_eq!(get(&a, "/health").await, (StatusCode::OK, None));
}

#[tokio::test]
async fn stale_when_the_database_fails_after_expiry() {
    let (db, _dir) = http_support::seeded_db().await;
    let redis = RedisServer::start();
    let ns = format!("xs{}", std::process::id());
    let settings =
        DomainCacheSettings::default().with_ttl(KeySpace::Customer, Duration::from_secs(1));
    assert!(settings.fail_safe.is_some(), "fail-safe is on by default");
    let app = instance(&db, &redis, &ns, settings).await;
    let uri = "/customers/cust-00002";
    assert_eq!(get(&app, uri).await, (StatusCode::OK, Some("MISS".into())));
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    db.close().await;
    assert_eq!(get(&app, uri).await, (StatusCode::OK, Some("STALE".into())));
}

#[tokio::test]
async fn the_header_is_in_the_openapi_document() {
    let (db, _dir) = http_support::seeded_db().await;
    let app = http::app(AppState::new(db, None));
    let doc = openapi(app).await;
    for (method, path) in [
        ("get", "/customers/{id}"),
        ("get", "/conversations/{id}"),
        ("post", "/tier-detection"),
    ] {
        let header = &doc["paths"][path][method]["responses"]["200"]["headers"]["X-Cache"];
        assert_eq!(
            header["schema"]["enum"],
            serde_json::json!(["HIT-L1", "HIT-L2", "MISS", "STALE"]),
            "{method} {path}: {header}"
        );
    }
    assert!(
        doc["paths"]["/health"]["get"]["responses"]["200"]["headers"]
            .get("X-Cache")
            .is_none()
    );
}

#[tokio::test]
async fn with_the_cache_disabled_every_read_is_a_miss() {
    let (db, _dir) = http_support::seeded_db().await;
    let app = http::app(AppState::new(db, None));
    for _ in 0..2 {
        for uri in ["/customers/cust-00001", "/conversations/conv-00001"] {
            assert_eq!(
                get(&app, uri).await,
                (StatusCode::OK, Some("MISS".to_owned())),
                "{uri}"
            );
        }
    }
    // What the OpenAPI document says about it.
    let doc = openapi(app).await;
    let description = doc["paths"]["/customers/{id}"]["get"]["responses"]["200"]["headers"]
        ["X-Cache"]["description"]
        .as_str()
        .unwrap();
    assert!(
        description.contains("cache disabled (`CACHE_ENABLED=false`) every value is loaded"),
        "{description}"
    );
}
