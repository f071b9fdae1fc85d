//! `ngx-agent` end to end over TLS: the binary with `REDIS_URL=rediss://...`
//! and a client certificate against `redis-server --tls-port` that requires
//! one; readiness, a cached endpoint answered from the cache the second
//! time, and the operator CLI over the same settings.

mod ready_support;
mod support {
    #[path = "../../../ngx-cache/tests/support/server.rs"]
    #[allow(dead_code, unreachable_pub)]
    pub mod server;
    #[path = "../../../ngx-cache/tests/support/tls.rs"]
    #[allow(dead_code, unreachable_pub)]
    pub mod tls;
}

use std::process::{Command, Stdio};

use support::server::free_port;
use support::tls::{Certs, TlsServer};

const BIN: &str = env!("CARGO_BIN_EXE_ngx-agent");
const TOKEN: &str = "tls-test-token";

fn tls_env(cmd: &mut Command, server: &TlsServer, certs: &Certs) {
    cmd.env("REDIS_URL", server.url())
        .env("REDIS_TLS_CA_FILE", certs.ca())
        .env("REDIS_TLS_CERT_FILE", certs.client_cert())
        .env("REDIS_TLS_KEY_FILE", certs.client_key())
        .env("CACHE_NAMESPACE", "ngx")
        // TLS handshakes of a debug build on a loaded test machine.
        .env("CACHE_CONNECT_TIMEOUT_MS", "5000")
        .env("REDIS_POOL_SIZE", "2");
}

#[tokio::test]
async fn the_service_runs_over_mutual_tls() {
    let certs = Certs::generate();
    let server = TlsServer::start(&certs, true);
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut cmd = Command::new(BIN);
    tls_env(&mut cmd, &server, &certs);
    let mut child = cmd
        .env("HTTP_ADDR", format!("127.0.0.1:{port}"))
        .env(
            "DATABASE_URL",
            format!("sqlite://{}/ngx.db", dir.path().display()),
        )
        .env("ADMIN_TOKEN", TOKEN)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let body = ready_support::ready_json(&mut child, &base, TOKEN).await;
    assert_eq!(body["cache"]["healthy"], true, "{body}");

    let mut seen = Vec::new();
    for _ in 0..2 {
        let r = client
            .get(format!("{base}/conversations/conv-00001"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        seen.push(r.headers()["x-cache"].to_str().unwrap().to_owned());
    }
    assert!(seen[1].starts_with("HIT"), "{seen:?}");
    // The entry is in Redis, written over TLS.
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("ngx:conv:*")
        .query(&mut server.server.conn())
        .unwrap();
    assert!(!keys.is_empty());

    // The operator CLI connects with the same settings.
    for args in [&["cache", "stats"][..], &["cache", "health"][..]] {
        let mut cli = Command::new(BIN);
        tls_env(&mut cli, &server, &certs);
        let out = cli.args(args).stdin(Stdio::null()).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    child.wait().unwrap();
}
