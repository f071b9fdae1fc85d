//! The cache runs as a least-privilege ACL user made with
//! `ngx_cache::acl_rule`: single keys, batches, counters, loads under a
//! lease, tags, clears, health, and two instances kept coherent over the
//! invalidation channel, with nothing denied (`ACL LOG` stays empty). A
//! user without `INFO` still gets a health report.

mod support;

use std::time::{Duration, Instant};

use ngx_cache::{Cache, CacheConfig, EntryOptions, LoadError, acl_rule};
use support::server::RedisServer;

const USER: &str = "ngx-cache";
const PASSWORD: &str = "acl-test-pass";

/// Creates the user with `rule` (plus `extra` rules) on `server`.
fn create_user(server: &RedisServer, rule: &str, extra: &[&str]) {
    let mut cmd = redis::cmd("ACL");
    cmd.arg("SETUSER").arg(USER).arg(format!(">{PASSWORD}"));
    for part in rule.split_whitespace().chain(extra.iter().copied()) {
        cmd.arg(part);
    }
    let _: () = cmd.query(&mut server.conn()).expect("ACL SETUSER");
    let _: () = redis::cmd("ACL")
        .arg("LOG")
        .arg("RESET")
        .query(&mut server.conn())
        .unwrap();
}

fn acl_log(server: &RedisServer) -> Vec<redis::Value> {
    redis::cmd("ACL")
        .arg("LOG")
        .query(&mut server.conn())
        .unwrap()
}

fn user_config(server: &RedisServer, namespace: &str) -> CacheConfig {
    CacheConfig::builder()
        .url(format!(
            "redis://{USER}:{PASSWORD}@127.0.0.1:{}",
            server.port()
        ))
        .namespace(namespace)
        .ttl_jitter(0.0)
        .build()
        .unwrap()
}

#[tokio::test]
async fn every_operation_runs_as_the_acl_user() {
    let server = RedisServer::start();
    let config = user_config(&server, "app");
    create_user(&server, &acl_rule(&config), &[]);
    let a = Cache::connect(config.clone()).await.unwrap();
    let b = Cache::connect(config).await.unwrap();

    // Single keys, batches, counters, expiry.
    a.try_set("k", &1, None).await.unwrap();
    assert_eq!(a.try_get::<i32>("k").await.unwrap(), Some(1));
    assert!(a.exists("k").await);
    assert!(a.try_expire("k", Duration::from_secs(60)).await.unwrap());
    assert!(a.try_ttl("k").await.is_ok());
    a.set_many(&[("m1", 1), ("m2", 2)], None).await.unwrap();
    assert_eq!(
        a.get_many::<i32, _>(&["m1", "m2", "m3"]).await,
        vec![Some(1), Some(2), None]
    );
    assert_eq!(a.increment("n", 2).await, Some(2));
    assert_eq!(a.counter("n").await, Some(2));

    // A load under a lease with a checked fill, fail-safe and tags.
    let opts = EntryOptions::new()
        .ttl(Duration::from_secs(60))
        .fail_safe(Duration::from_secs(60))
        .tag("customer:1");
    let got: Result<String, LoadError<std::io::Error>> = a
        .get_or_load("loaded", &opts, || async { Ok("v1".to_owned()) })
        .await;
    assert_eq!(got.unwrap(), "v1");

    // Coherence: B reads (L1), A deletes and invalidates the tag.
    assert_eq!(b.try_get::<i32>("k").await.unwrap(), Some(1));
    assert!(a.delete("k").await);
    let deadline = Instant::now() + Duration::from_secs(5);
    while b.get::<i32>("k").await.is_some() {
        assert!(Instant::now() < deadline, "the invalidation never arrived");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(a.invalidate_tag("customer:1").await);
    let got: Result<String, LoadError<std::io::Error>> = b
        .get_or_load("loaded", &opts, || async { Ok("v2".to_owned()) })
        .await;
    assert_eq!(got.unwrap(), "v2");

    // Health, statistics and a namespace clear.
    let health = a.health_check().await;
    assert!(health.healthy, "{health:?}");
    assert!(health.version.is_some(), "INFO is granted: {health:?}");
    assert!(a.clear_namespace().await.unwrap() > 0);
    assert_eq!(a.stats().errors, 0, "{:?}", a.stats());

    drop((a, b));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let log = acl_log(&server);
    assert!(log.is_empty(), "denied: {log:?}");
}

#[tokio::test]
async fn without_info_the_health_report_still_answers() {
    let server = RedisServer::start();
    let config = user_config(&server, "app");
    create_user(&server, &acl_rule(&config), &["-info"]);
    let cache = Cache::connect(config).await.unwrap();
    cache.try_set("k", &1, None).await.unwrap();
    let health = cache.health_check().await;
    assert!(health.healthy, "{health:?}");
    assert_eq!(health.version, None);
    assert_eq!(cache.try_get::<i32>("k").await.unwrap(), Some(1));
}

#[test]
fn the_rule_covers_the_namespace_only() {
    let config = CacheConfig::builder().namespace("a*b").build().unwrap();
    let rule = acl_rule(&config);
    assert!(rule.contains(r"~a\*b:* "), "{rule}");
    assert!(rule.contains(r"&a\*b:__invalidation "), "{rule}");
    assert!(!rule.contains("+select"), "{rule}");
    let config = CacheConfig::builder()
        .url("redis://h:6379/3")
        .build()
        .unwrap();
    assert!(acl_rule(&config).ends_with(" +select"));
    // The documented rule is the one the code writes.
    let docs = include_str!("../../../docs/operations.md");
    let default = acl_rule(&CacheConfig::default());
    assert!(
        docs.contains(&default),
        "docs/operations.md lacks:\n{default}"
    );
}
