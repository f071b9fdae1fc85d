//! Passwords in query parameters stay hidden everywhere the service shows
//! a connection URL: a `unix://` Redis socket URL with `?pass=` (redis-rs
//! reads the password from there) and a `DATABASE_URL` with `?password=`.
//! Checked in `Debug` output, errors, the logs of the real binary at debug
//! level, readiness, cache statistics and metrics.

#[path = "../../ngx-cache/tests/support/server.rs"]
#[allow(dead_code, unreachable_pub)]
mod server;

mod ready_support;

use std::process::{Command, Stdio};

use ngx_agent::config::AppConfig;
use ngx_agent::db::{Database, DbOptions};
use server::{RedisServer, free_port};

const BIN: &str = env!("CARGO_BIN_EXE_ngx-agent");
const REDIS_PASS: &str = "sock-pass-6c1f";
const DB_PASS: &str = "db-pass-93ab";
const TOKEN: &str = "credentials-test-token";

fn assert_hidden(what: &str, text: &str) {
    assert!(
        !text.contains(REDIS_PASS) && !text.contains(DB_PASS),
        "{what} shows a password: {text}"
    );
}

#[test]
fn configuration_debug_hides_query_passwords() {
    let config = AppConfig::from_lookup(|name| match name {
        "DATABASE_URL" => Some(format!("postgres://app@db/ngx?password={DB_PASS}")),
        "REDIS_URL" => Some(format!("unix:///run/redis.sock?pass={REDIS_PASS}")),
        _ => None,
    })
    .unwrap();
    let shown = format!("{config:?}");
    assert_hidden("AppConfig Debug", &shown);
    assert!(shown.contains("password=***"), "{shown}");
    assert!(shown.contains("pass=***"), "{shown}");
}

#[tokio::test]
async fn database_errors_hide_query_passwords() {
    for url in [
        format!("mysql://db/ngx?password={DB_PASS}"),
        format!("mysql://app:{DB_PASS}@db/ngx"),
        format!(
            "postgres://app@127.0.0.1:{}/ngx?password={DB_PASS}",
            free_port()
        ),
    ] {
        let err = Database::connect_with(&url, DbOptions::default())
            .await
            .err()
            .unwrap_or_else(|| panic!("{url} connected"));
        assert_hidden("database error", &format!("{err} / {err:?}"));
    }
}

/// The binary cannot reach its database: it stops with an error that names
/// what failed, and prints no password on the way, even at debug level.
#[test]
fn start_up_failure_hides_query_passwords() {
    let out = Command::new(BIN)
        .env("HTTP_ADDR", format!("127.0.0.1:{}", free_port()))
        .env(
            "DATABASE_URL",
            format!(
                "postgres://app@127.0.0.1:{}/ngx?password={DB_PASS}",
                free_port()
            ),
        )
        .env(
            "REDIS_URL",
            format!("unix:///nonexistent/redis.sock?pass={REDIS_PASS}"),
        )
        .env("RUST_LOG", "debug")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("password=***"),
        "the URL is shown redacted: {text}"
    );
    assert_hidden("start-up output", &text);
}

/// The service runs against Redis on a password-protected unix socket:
/// readiness, statistics and metrics answer, and neither they nor the logs
/// (debug level, a wrong password first, then the right one) show it.
#[tokio::test]
async fn a_running_service_on_a_unix_socket_hides_the_password() {
    let sock_dir = tempfile::Builder::new()
        .prefix("ngx")
        .tempdir_in("/tmp")
        .unwrap();
    let sock = sock_dir.path().join("r.sock");
    let sock_arg = sock.display().to_string();
    let redis = RedisServer::start_with(
        Some(REDIS_PASS.to_owned()),
        &["--unixsocket", &sock_arg, "--unixsocketperm", "700"],
    );
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();

    // A wrong password: the service starts degraded and says why.
    let wrong = format!("unix://{sock_arg}?pass=wrong-{REDIS_PASS}");
    let right = format!("unix://{sock_arg}?pass={REDIS_PASS}");
    for (url, healthy) in [(wrong, false), (right, true)] {
        let port = free_port();
        // Files, not pipes: nobody reads the debug logs while it runs.
        let log_path = dir.path().join(format!("{port}.log"));
        let log = std::fs::File::create(&log_path).unwrap();
        let mut child = Command::new(BIN)
            .env("HTTP_ADDR", format!("127.0.0.1:{port}"))
            .env(
                "DATABASE_URL",
                format!("sqlite://{}/ngx.db", dir.path().display()),
            )
            .env("REDIS_URL", &url)
            .env("ADMIN_TOKEN", TOKEN)
            .env("RUST_LOG", "debug")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let ready = ready_support::ready_body(&mut child, &base, TOKEN).await;
        let body: serde_json::Value = serde_json::from_str(&ready).unwrap();
        assert_eq!(body["cache"]["healthy"], healthy, "{body}");
        assert_hidden("readiness", &ready);
        for path in ["/cache/stats", "/metrics", "/conversations/conv-00001"] {
            let text = client
                .get(format!("{base}{path}"))
                .bearer_auth(TOKEN)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            assert_hidden(path, &text);
        }
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        child.wait().unwrap();
        let logs = std::fs::read_to_string(&log_path).unwrap();
        assert!(
            logs.contains("pass=***"),
            "the URL is logged redacted: {logs}"
        );
        assert_hidden("logs", &logs);
    }
    drop(redis);
}
