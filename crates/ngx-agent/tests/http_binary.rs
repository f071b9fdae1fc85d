//! The real `ngx-agent` binary: start on a free port, answer readiness and
//! metrics, stop on SIGTERM with exit code 0 within 5 s; refuse a malformed
//! configuration naming the variable, without printing credentials.

#[path = "../../ngx-cache/tests/support/server.rs"]
#[allow(dead_code, unreachable_pub)]
mod server;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use server::{RedisServer, free_port};

const BIN: &str = env!("CARGO_BIN_EXE_ngx-agent");

#[tokio::test]
async fn serves_then_stops_cleanly_on_sigterm() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = Command::new(BIN)
        .env("HTTP_ADDR", format!("127.0.0.1:{port}"))
        .env(
            "DATABASE_URL",
            format!("sqlite://{}/ngx.db", dir.path().display()),
        )
        .env("REDIS_URL", redis.url())
        .env("ADMIN_TOKEN", "binary-test-secret-token")
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ngx-agent");
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder().no_proxy().build().unwrap();

    let deadline = Instant::now() + Duration::from_secs(60);
    let ready = loop {
        if let Ok(r) = client.get(format!("{base}/health/ready")).send().await {
            break r;
        }
        assert!(Instant::now() < deadline, "the binary never answered");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the binary exited early"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["status"], "ready", "{body}");
    assert_eq!(body["cache"]["healthy"], true);

    let conv = client
        .get(format!("{base}/conversations/conv-00001"))
        .send()
        .await
        .unwrap();
    assert_eq!(conv.status(), 200);
    let id = conv
        .headers()
        .get("x-request-id")
        .expect("request id header");
    assert!(!id.is_empty());

    let metrics = client.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(metrics.status(), 200);
    assert!(
        metrics.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = metrics.text().await.unwrap();
    for series in [
        "ngx_cache_hits_total",
        "ngx_db_queries_total",
        "http_requests_total",
    ] {
        assert!(text.contains(series), "{series} missing");
    }

    let sent = Instant::now();
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(
            sent.elapsed() < Duration::from_secs(5),
            "still running 5 s after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(exit.success(), "exit status {exit:?}");

    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stdout.contains("binary-test-secret-token")
            && !stderr.contains("binary-test-secret-token")
    );
    assert!(
        stdout.contains(&format!("http://127.0.0.1:{port}/docs")),
        "{stdout}"
    );
    let logs: Vec<serde_json::Value> = stdout
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).expect("JSON log line"))
        .collect();
    assert!(
        logs.iter()
            .any(|l| l.to_string().contains("SIGTERM received")),
        "{stdout}"
    );
    assert!(
        logs.iter()
            .any(|l| l.to_string().contains("/conversations/conv-00001")),
        "request log"
    );
}

#[test]
fn malformed_configuration_stops_start_up_naming_the_variable() {
    for (var, value) in [
        ("HTTP_ADDR", "not-an-address"),
        ("CACHE_ENABLED", "sometimes"),
        ("HTTP_BODY_LIMIT_BYTES", "lots"),
        ("CACHE_TTL_CUSTOMER", "1h"),
    ] {
        let out = Command::new(BIN)
            .env(var, value)
            .env("DATABASE_URL", "postgres://app:hunter2@127.0.0.1:1/ngx")
            .env("ADMIN_TOKEN", "should-not-print")
            .output()
            .unwrap();
        assert!(!out.status.success(), "{var}={value} was accepted");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains(var), "{var} not named: {text}");
        assert!(
            !text.contains("hunter2") && !text.contains("should-not-print"),
            "{text}"
        );
    }
}
