//! `health_check()` against a live server, and after it is killed.

mod support;

use std::time::Duration;

use ngx_cache::Cache;
use support::server::RedisServer;
use support::util::config;

#[tokio::test]
async fn reports_a_live_server() {
    let server = RedisServer::start();
    let cache = Cache::connect(config(&server).pool_size(3).build().unwrap())
        .await
        .unwrap();
    cache.set("k", &1, None).await.unwrap();
    assert_eq!(cache.get::<i32>("k").await, Some(1));
    assert_eq!(cache.get::<i32>("nope").await, None);

    let h = cache.health_check().await;
    assert_eq!(h.status, "connected");
    assert!(h.healthy);
    assert!(h.latency_ms > 0.0 && h.latency_ms < 1000.0, "{h:?}");
    let version = h.version.as_deref().expect("version");
    assert!(version.split('.').count() == 3, "{version}");
    let memory = h.used_memory.as_deref().expect("used_memory");
    assert!(memory.ends_with(['B', 'K', 'M', 'G']), "{memory}");
    // Our three pooled connections at least.
    assert!(
        h.connected_clients.expect("connected_clients") >= 3,
        "{h:?}"
    );
    assert_eq!((h.hits, h.misses), (1, 1));
    assert_eq!(h.error, None);

    let json = serde_json::to_value(&h).unwrap();
    for field in [
        "status",
        "healthy",
        "latency_ms",
        "version",
        "used_memory",
        "connected_clients",
        "hits",
        "misses",
    ] {
        assert!(json.get(field).is_some(), "missing {field}: {json}");
    }
}

#[tokio::test]
async fn reports_disconnected_after_kill_and_connected_after_restart() {
    let mut server = RedisServer::start();
    let cache = Cache::connect(
        config(&server)
            .op_timeout(Duration::from_millis(200))
            .build()
            .unwrap(),
    )
    .await
    .unwrap();
    assert!(cache.health_check().await.healthy);
    server.kill();

    let h = cache.health_check().await;
    assert_eq!(h.status, "disconnected");
    assert!(!h.healthy);
    assert!(h.error.is_some());
    assert_eq!(h.version, None);
    // Still disconnected when asked again (the pool is reconnecting).
    assert_eq!(cache.health_check().await.status, "disconnected");

    server.restart();
    let back = support::util::eventually(Duration::from_secs(5), || async {
        cache.health_check().await.healthy
    })
    .await;
    assert!(back.is_some(), "health never recovered");
    assert_eq!(cache.health_check().await.status, "connected");
}
