//! `ngx-agent` as a least-privilege Redis user made with
//! `ngx_cache::acl_rule`: cached endpoints, admin invalidations by key, tag
//! and type, warming, readiness, statistics and the operator CLI, with
//! nothing denied (`ACL LOG` stays empty).

#[path = "../../ngx-cache/tests/support/server.rs"]
#[allow(dead_code, unreachable_pub)]
mod server;

mod ready_support;

use std::process::{Command, Stdio};

use ngx_cache::{CacheConfig, acl_rule};
use server::{RedisServer, free_port};

const USER: &str = "ngx-cache";
const PASSWORD: &str = "acl-service-pass";
const TOKEN: &str = "acl-test-token";

fn user_env(cmd: &mut Command, redis: &RedisServer, dir: &std::path::Path) {
    cmd.env(
        "REDIS_URL",
        format!("redis://{USER}:{PASSWORD}@127.0.0.1:{}", redis.port()),
    )
    .env("CACHE_NAMESPACE", "ngx")
    .env("DATABASE_URL", format!("sqlite://{}/ngx.db", dir.display()))
    .env("ADMIN_TOKEN", TOKEN)
    .env("RUST_LOG", "warn")
    .stdin(Stdio::null());
}

#[tokio::test]
async fn the_service_needs_nothing_beyond_the_rule() {
    let redis = RedisServer::start();
    let rule = acl_rule(&CacheConfig::default());
    let mut cmd = redis::cmd("ACL");
    cmd.arg("SETUSER").arg(USER).arg(format!(">{PASSWORD}"));
    for part in rule.split_whitespace() {
        cmd.arg(part);
    }
    let _: () = cmd.query(&mut redis.conn()).unwrap();
    let _: () = redis::cmd("ACL")
        .arg("LOG")
        .arg("RESET")
        .query(&mut redis.conn())
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut service = Command::new(BIN);
    user_env(&mut service, &redis, dir.path());
    let mut child = service
        .env("HTTP_ADDR", format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let body = ready_support::ready_json(&mut child, &base, TOKEN).await;
    assert_eq!(body["cache"]["healthy"], true, "{body}");

    for path in [
        "/conversations/conv-00001",
        "/conversations/conv-00001",
        "/customers/cust-00001",
        "/customers/cust-00001",
        "/config/agent",
        "/cache/stats",
        "/metrics",
    ] {
        let r = client
            .get(format!("{base}{path}"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
    }
    for body in [
        serde_json::json!({"key": "conv:v1:conv-00001"}),
        serde_json::json!({"tag": "customer:cust-00001"}),
        serde_json::json!({"type": "conversation"}),
        serde_json::json!({"type": "all"}),
    ] {
        let r = client
            .post(format!("{base}/cache/invalidate"))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{body}: {}", r.status());
    }
    let r = client
        .post(format!("{base}/cache/warm"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "warm: {}", r.status());

    for args in [
        &["cache", "stats"][..],
        &["cache", "health"][..],
        &["cache", "keys", "knowledge"][..],
        &["cache", "clear", "--yes"][..],
    ] {
        let mut cli = Command::new(BIN);
        user_env(&mut cli, &redis, dir.path());
        let out = cli.args(args).output().unwrap();
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
    let log: Vec<redis::Value> = redis::cmd("ACL")
        .arg("LOG")
        .query(&mut redis.conn())
        .unwrap();
    assert!(log.is_empty(), "denied: {log:?}");
}

const BIN: &str = env!("CARGO_BIN_EXE_ngx-agent");
