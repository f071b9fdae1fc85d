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
        if let Ok(r) = client
            .get(format!("{base}/health/ready"))
            .bearer_auth("binary-test-secret-token")
            .send()
            .await
        {
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

/// Starts the binary on a free port with a fresh SQLite file, no cache and
/// `vars`; returns it once `/health` answers.
async fn start_binary(vars: &[(&str, &str)]) -> (std::process::Child, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut cmd = Command::new(BIN);
    cmd.env("HTTP_ADDR", format!("127.0.0.1:{port}"))
        .env(
            "DATABASE_URL",
            format!("sqlite://{}/ngx.db", dir.path().display()),
        )
        .env("CACHE_ENABLED", "false")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("start ngx-agent");
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while client.get(format!("{base}/health")).send().await.is_err() {
        assert!(Instant::now() < deadline, "the binary never answered");
        assert!(child.try_wait().unwrap().is_none(), "exited early");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (child, base, dir)
}

/// Stops a child we started, by its pid.
fn stop(mut child: std::process::Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(5);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Reads until the server closes the socket; `false` if it is still open
/// at `deadline`.
async fn closed_by(mut socket: tokio::net::TcpStream, deadline: tokio::time::Instant) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = [0_u8; 1024];
    loop {
        match tokio::time::timeout_at(deadline, socket.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {}
            Err(_) => return false,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_closed_while_others_are_served() {
    use tokio::io::AsyncWriteExt;
    const HEADER_TIMEOUT: Duration = Duration::from_millis(2000);
    let timeout = HEADER_TIMEOUT.as_millis().to_string();
    let (child, base, _dir) = start_binary(&[("HTTP_HEADER_TIMEOUT_MS", &timeout)]).await;
    let addr = base.trim_start_matches("http://").to_owned();
    let mut slow = Vec::new();
    for _ in 0..500 {
        let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
        s.write_all(b"GET /health HT").await.unwrap();
        slow.push(s);
    }
    let opened = tokio::time::Instant::now();
    // A normal client keeps being served while the 500 hang. Every request
    // must succeed; at least the first completes before the slow sockets
    // can have been closed, however loaded the machine (no rate is
    // asserted).
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let mut served_while_hanging = 0;
    for _ in 0..5 {
        let r = client
            .get(format!("{base}/customers/cust-00001"))
            .send()
            .await;
        assert_eq!(r.expect("normal client served").status(), 200);
        if opened.elapsed() < HEADER_TIMEOUT {
            served_while_hanging += 1;
        }
    }
    // Every slow socket is closed within the timeout (plus slack for a
    // loaded machine), not held open.
    let deadline = opened + HEADER_TIMEOUT + Duration::from_secs(4);
    let checks: Vec<_> = slow
        .into_iter()
        .map(|s| tokio::spawn(closed_by(s, deadline)))
        .collect();
    let mut still_open = 0;
    for c in checks {
        if !c.await.unwrap() {
            still_open += 1;
        }
    }
    stop(child);
    assert_eq!(still_open, 0, "{still_open} of 500 slow sockets still open");
    assert!(
        served_while_hanging >= 1,
        "no request was served while the slow sockets were open"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_capped_and_idle_ones_closed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (child, base, _dir) = start_binary(&[
        ("HTTP_MAX_CONNECTIONS", "8"),
        ("HTTP_HEADER_TIMEOUT_MS", "10000"),
        ("HTTP_IDLE_TIMEOUT_MS", "1000"),
    ])
    .await;
    let addr = base.trim_start_matches("http://").to_owned();
    // Give the probe connection of `start_binary` time to be released.
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Eight keep-alive connections, each served once, then idle.
    let mut idle = Vec::new();
    for _ in 0..8 {
        let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
        s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0_u8; 512];
        let n = s.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        idle.push(s);
    }
    let started = Instant::now();
    // A ninth client waits for a free slot: the idle ones are closed after
    // the idle timeout (not the 10 s header timeout), then it is served.
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let ninth = tokio::spawn({
        let base = base.clone();
        async move { client.get(format!("{base}/health")).send().await }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !ninth.is_finished(),
        "a ninth connection was served at once"
    );
    let resp = tokio::time::timeout(Duration::from_secs(5), ninth)
        .await
        .expect("served once an idle connection closed")
        .unwrap()
        .unwrap();
    let waited = started.elapsed();
    assert_eq!(resp.status(), 200);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    for s in idle {
        assert!(closed_by(s, deadline).await, "idle connection kept open");
    }
    stop(child);
    assert!(waited >= Duration::from_millis(700), "waited {waited:?}");
    assert!(waited < Duration::from_secs(5), "waited {waited:?}");
}
