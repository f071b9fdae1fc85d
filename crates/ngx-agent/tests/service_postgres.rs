//! The service against a real PostgreSQL (`TEST_DATABASE_URL`, else
//! `postgres://postgres@127.0.0.1:5432/test`), each test in a fresh schema:
//!
//! - two instances starting together on a new schema both become ready
//!   (migrations and seeding take an advisory lock);
//! - a table held by `LOCK TABLE` does not hang requests for expired keys:
//!   the stale value is served in time and counted as stale.
//!
//! Without a reachable server the tests say so on stderr and return.

#[path = "../../ngx-cache/tests/support/server.rs"]
#[allow(dead_code, unreachable_pub)]
mod server;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use ngx_agent::config::AppConfig;
use ngx_agent::http::{self, AppState};
use server::RedisServer;
use sqlx::{AnyConnection, Connection, Executor};
use tower::ServiceExt;

/// The server URL, or `None` (with a note) when nothing answers.
async fn postgres() -> Option<String> {
    let url = std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|u| u.starts_with("postgres"))
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    sqlx::any::install_default_drivers();
    match tokio::time::timeout(Duration::from_secs(3), AnyConnection::connect(&url)).await {
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
            Some(url)
        }
        _ => {
            eprintln!("PostgreSQL not reachable at {url}: test skipped");
            None
        }
    }
}

fn fresh_schema(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("t_{tag}_{}_{nanos}", std::process::id())
}

fn config(vars: &[(&str, String)]) -> AppConfig {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    AppConfig::from_lookup(|n| map.get(n).cloned()).expect("valid configuration")
}

async fn drop_schema(url: &str, schema: &str) {
    let mut conn = AnyConnection::connect(url).await.expect("connect");
    conn.execute(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"
    )))
    .await
    .expect("drop schema");
    let _ = conn.close().await;
}

async fn get(app: &axum::Router, uri: &str) -> (StatusCode, serde_json::Value) {
    let resp = app
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_services_starting_together_on_a_new_schema_both_become_ready() {
    let Some(url) = postgres().await else { return };
    // A few rounds: the race is between two unlocked `CREATE TABLE IF NOT
    // EXISTS` (or two seeds of empty tables), so one round may be lucky.
    for round in 0..3 {
        let schema = fresh_schema(&format!("mig{round}"));
        let vars = [
            ("DATABASE_URL", url.clone()),
            ("DATABASE_SCHEMA", schema.clone()),
            ("CACHE_ENABLED", "false".to_owned()),
            ("CACHE_WARM", "false".to_owned()),
        ];
        let (a, b) = (config(&vars), config(&vars));
        let (ra, rb) = tokio::join!(AppState::start(&a), AppState::start(&b));
        let failures: Vec<String> = [&ra, &rb]
            .iter()
            .filter_map(|r| r.as_ref().err().map(|e| format!("{e:?}")))
            .collect();
        for state in [ra, rb].into_iter().flatten() {
            let (status, body) = get(&http::app(state.clone()), "/health/ready").await;
            assert_eq!(status, StatusCode::OK, "{body}");
            let (status, _) = get(&http::app(state.clone()), "/customers/cust-00001").await;
            assert_eq!(status, StatusCode::OK);
            state.close().await;
        }
        drop_schema(&url, &schema).await;
        assert!(failures.is_empty(), "round {round}: {failures:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_locked_table_serves_the_stale_customer_in_time() {
    let Some(url) = postgres().await else { return };
    let redis = RedisServer::start();
    let schema = fresh_schema("lock");
    let config = config(&[
        ("DATABASE_URL", url.clone()),
        ("DATABASE_SCHEMA", schema.clone()),
        ("REDIS_URL", redis.url()),
        ("CACHE_WARM", "false".to_owned()),
        ("CACHE_TTL_CUSTOMER", "1".to_owned()),
        ("HTTP_REQUEST_TIMEOUT_MS", "4000".to_owned()),
    ]);
    let state = AppState::start(&config).await.expect("start");
    let app = http::app(state.clone());
    let (status, fresh) = get(&app, "/customers/cust-00001").await;
    assert_eq!(status, StatusCode::OK);
    // Past the 1 s TTL (Redis and L1 compare wall-clock expiry times).
    tokio::time::sleep(Duration::from_millis(1300)).await;

    let mut locker = AnyConnection::connect(&url).await.expect("connect");
    locker.execute("BEGIN").await.unwrap();
    locker
        .execute(sqlx::AssertSqlSafe(format!(
            "LOCK TABLE \"{schema}\".customers IN ACCESS EXCLUSIVE MODE"
        )))
        .await
        .unwrap();

    let stale_before = get(&app, "/cache/stats").await.1["stale_served"]
        .as_u64()
        .unwrap();
    let started = Instant::now();
    let (status, body) = get(&app, "/customers/cust-00001").await;
    let took = started.elapsed();
    // A second reader joins the running load and gets the stale value too.
    let (status2, _) = get(&app, "/customers/cust-00001").await;
    let stats = get(&app, "/cache/stats").await.1;
    let metrics = {
        let resp = app
            .clone()
            .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
            .await
            .unwrap();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        String::from_utf8_lossy(&bytes).into_owned()
    };

    locker.execute("ROLLBACK").await.unwrap();
    let _ = locker.close().await;
    state.close().await;
    drop_schema(&url, &schema).await;

    assert_eq!(status, StatusCode::OK, "{body} after {took:?}");
    assert_eq!(body, fresh, "the stale profile is the last good one");
    assert!(took < Duration::from_secs(2), "took {took:?}");
    assert_eq!(status2, StatusCode::OK);
    let stale_after = stats["stale_served"].as_u64().unwrap();
    assert!(stale_after >= stale_before + 2, "{stats}");
    // One series per key type: the stale serves of every type, summed.
    let series: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("ngx_cache_stale_served_total"))
        .collect();
    assert!(!series.is_empty(), "no stale series in {metrics}");
    let value: f64 = series
        .iter()
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum();
    assert!(value >= 2.0, "{series:?}");
}
