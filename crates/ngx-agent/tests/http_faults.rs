//! The service without Redis: killed mid-test, disabled by configuration,
//! and unreachable at start (then healing).

#[path = "../../ngx-cache/tests/support/server.rs"]
#[allow(dead_code, unreachable_pub)]
mod server;

mod http_support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use http_support::{TOKEN, TestApp};
use ngx_agent::config::AppConfig;
use ngx_agent::http::{self, AppState};
use serde_json::{Value, json};

/// Every read endpoint with its request, for before/after comparisons.
/// `owner` is the customer of `conv-00002` (tier detection with history
/// must name the conversation's own customer).
fn reads(owner: &str) -> Vec<(&'static str, &'static str, Option<Value>)> {
    vec![
        ("GET", "/conversations/conv-00001", None),
        ("GET", "/customers/cust-00001", None),
        (
            "POST",
            "/tier-detection",
            Some(
                json!({"customer_id": owner, "message": "I need a coach", "conversation_id": "conv-00002"}),
            ),
        ),
        (
            "POST",
            "/predictions/conversion",
            Some(json!({"conversation_id": "conv-00001"})),
        ),
        (
            "POST",
            "/predictions/objection",
            Some(json!({"conversation_id": "conv-00002"})),
        ),
        (
            "POST",
            "/programs/recommendations",
            Some(json!({"customer_id": "cust-00002"})),
        ),
        (
            "POST",
            "/roi",
            Some(
                json!({"profession": "lawyer", "hourly_rate": 200.0, "billable_hours_per_week": 30.0,
                        "weeks_per_year": 46.0, "program_type": "PRIME", "tier": "ELITE"}),
            ),
        ),
        ("GET", "/config/agent", None),
        ("GET", "/knowledge/pricing", None),
        ("GET", "/health", None),
    ]
}

async fn snapshot(t: &TestApp) -> Vec<Value> {
    let mut out = Vec::new();
    let (status, conv) = t.call("GET", "/conversations/conv-00002", None).await;
    assert_eq!(status, StatusCode::OK, "{conv}");
    let owner = conv["customer"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    for (method, uri, body) in reads(&owner) {
        let (status, v) = t.call(method, uri, body).await;
        assert_eq!(status, StatusCode::OK, "{method} {uri}: {v}");
        out.push(v);
    }
    out
}

/// Writes through every write endpoint and checks they are read back.
async fn write_and_read_back(t: &TestApp, tag: &str) {
    let id = format!("conv-{tag}");
    let (status, v) = t
        .call(
            "POST",
            "/conversations",
            Some(json!({"conversation_id": id, "customer_id": "cust-00003", "initial_message": "hello"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let (status, v) = t
        .call(
            "POST",
            &format!("/conversations/{id}/messages"),
            Some(json!({"content": "second"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let (_, read) = t.call("GET", &format!("/conversations/{id}"), None).await;
    assert_eq!(read["messages"].as_array().unwrap().len(), 2, "{read}");

    // The existing, cached conversation too.
    let (_, before) = t.call("GET", "/conversations/conv-00004", None).await;
    let n = before["messages"].as_array().unwrap().len();
    let (status, _) = t
        .call(
            "POST",
            "/conversations/conv-00004/messages",
            Some(json!({"content": format!("while {tag}")})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, after) = t.call("GET", "/conversations/conv-00004", None).await;
    assert_eq!(
        after["messages"].as_array().unwrap().len(),
        n + 1,
        "stale read"
    );

    let name = format!("Name {tag}");
    let (status, v) = t
        .call(
            "PUT",
            "/customers/cust-00005",
            Some(json!({"name": name, "email": "c5@example.com", "age": 44})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let (_, read) = t.call("GET", "/customers/cust-00005", None).await;
    assert_eq!(read["name"], name, "stale customer");
}

#[tokio::test]
async fn redis_killed_mid_test_every_endpoint_still_answers() {
    let mut t = TestApp::with_admin().await;
    // Warm the cache for customer 5 so a failed invalidation would show.
    t.call("GET", "/customers/cust-00005", None).await;
    let before = snapshot(&t).await;
    write_and_read_back(&t, "with-redis").await;
    let (_, ready) = t.call("GET", "/health/ready", None).await;
    assert_eq!(ready["status"], "ready");

    t.redis.as_mut().unwrap().kill();

    let start = Instant::now();
    let after = snapshot(&t).await;
    assert_eq!(after, before, "same data without Redis");
    write_and_read_back(&t, "redis-dead").await;
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "{:?}",
        start.elapsed()
    );

    // Readiness reuses a check for a second: wait for a fresh one.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let bearer = format!("Bearer {TOKEN}");
    let (status, ready) = t
        .call_with("GET", "/health/ready", None, Some(&bearer))
        .await;
    assert_eq!(status, StatusCode::OK, "{ready}");
    assert_eq!(ready["status"], "degraded");
    assert_eq!(ready["database"]["healthy"], true);
    assert_eq!(ready["cache"]["healthy"], false);
    let stats = t.stats().await;
    assert!(stats["errors"].as_u64().unwrap() > 0, "{stats}");
    let (status, metrics) = t.call("GET", "/metrics", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(metrics.as_str().unwrap().contains("ngx_cache_connected"));

    // Warming falls back to the database (nothing stored) and still answers.
    let bearer = format!("Bearer {TOKEN}");
    let (status, warm) = t
        .call_with("POST", "/cache/warm", None, Some(&bearer))
        .await;
    assert_eq!(status, StatusCode::OK, "{warm}");
    // An invalidation cannot be honoured without Redis: it says so (503)
    // instead of pretending, and leaks nothing about Redis.
    let (status, inv) = t
        .call_with(
            "POST",
            "/cache/invalidate",
            Some(json!({"type": "conversation"})),
            Some(&bearer),
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{inv}");
    assert!(!inv.to_string().contains("127.0.0.1"), "{inv}");
}

#[tokio::test]
async fn cache_disabled_serves_everything_from_the_database() {
    let t = TestApp::without_cache().await;
    let first = snapshot(&t).await;
    assert_eq!(snapshot(&t).await, first);
    write_and_read_back(&t, "no-cache").await;
    let stats = t.stats().await;
    assert_eq!(stats["enabled"], false);
    assert_eq!(stats["hits"], 0);
    assert!(stats["db_queries"].as_u64().unwrap() > 20);
    let bearer = format!("Bearer {TOKEN}");
    let (status, ready) = t
        .call_with("GET", "/health/ready", None, Some(&bearer))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["cache"]["status"], "disabled");
    let (status, inv) = t
        .call_with(
            "POST",
            "/cache/invalidate",
            Some(json!({"type": "all"})),
            Some(&bearer),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(inv["cache_enabled"], false);
    let (_, metrics) = t.call("GET", "/metrics", None).await;
    assert!(metrics.as_str().unwrap().contains("ngx_cache_enabled 0"));
}

/// Redis down at start: the service starts, serves from the database, and
/// uses the cache once Redis appears (no restart).
#[tokio::test]
async fn redis_down_at_start_then_healing() {
    let port = server::free_port();
    let dir = tempfile::tempdir().unwrap();
    let vars: HashMap<&str, String> = HashMap::from([
        (
            "DATABASE_URL",
            format!("sqlite://{}/ngx.db", dir.path().display()),
        ),
        ("REDIS_URL", format!("redis://127.0.0.1:{port}")),
        ("CACHE_NAMESPACE", "heal".to_owned()),
        ("CACHE_CIRCUIT_BREAKER_TIMEOUT", "1".to_owned()),
    ]);
    let config = AppConfig::from_lookup(|n| vars.get(n).cloned()).unwrap();
    let state = AppState::start(&config)
        .await
        .expect("starts without Redis");
    assert!(state.cache().is_some(), "lazy cache, not disabled");
    let app = http::app(state.clone());
    let get = |uri: &'static str| {
        let app = app.clone();
        async move {
            use tower::ServiceExt;
            let req = axum::http::Request::get(uri)
                .body(axum::body::Body::empty())
                .unwrap();
            let resp = app.oneshot(req).await.unwrap();
            let status = resp.status();
            let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
                .await
                .unwrap();
            (status, serde_json::from_slice::<Value>(&body).unwrap())
        }
    };
    let (status, conv) = get("/conversations/conv-00001").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(get("/health/ready").await.1["status"], "degraded");

    let _redis = start_on(port);

    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, again) = get("/conversations/conv-00001").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(again, conv);
        let stats = get("/cache/stats").await.1;
        if stats["hits"].as_u64().unwrap_or(0) > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "cache never healed: {stats}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Readiness reuses a check for a second: wait for a fresh one.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(get("/health/ready").await.1["status"], "ready");
}

/// A bare `redis-server` on `port`, killed on drop.
fn start_on(port: u16) -> KillOnDrop {
    let dir = tempfile::tempdir().unwrap();
    let child = std::process::Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .arg("--dir")
        .arg(dir.path())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("redis-server");
    KillOnDrop(child, dir)
}

struct KillOnDrop(std::process::Child, #[allow(dead_code)] tempfile::TempDir);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
