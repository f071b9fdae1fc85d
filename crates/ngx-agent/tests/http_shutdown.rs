//! Shutdown settles the cache invalidations that Redis has not taken yet: a delete
//! that could not reach Redis during a network cut lands before `serve`
//! returns once Redis answers again, and what cannot land is reported.

#[path = "../../ngx-cache/tests/support/server.rs"]
#[allow(dead_code, unreachable_pub)]
mod server;

#[path = "../../ngx-cache/tests/support/proxy.rs"]
#[allow(dead_code, unreachable_pub)]
mod proxy;

mod http_support;

use std::time::{Duration, Instant};

use ngx_agent::cache::{DomainCacheSettings, NgxCacheManager};
use ngx_agent::http::{self, AppState};
use ngx_cache::{BreakerConfig, Cache, CacheConfig};
use proxy::CutProxy;
use server::RedisServer;

/// A state whose cache reaches `redis` through `proxy`, breaker off.
async fn state(proxy: &CutProxy) -> (AppState, Cache, tempfile::TempDir) {
    let (db, dir) = http_support::seeded_db().await;
    let cache = Cache::connect(
        CacheConfig::builder()
            .url(proxy.url())
            .namespace("sd")
            .op_timeout(Duration::from_millis(200))
            .breaker(BreakerConfig::disabled())
            .build()
            .unwrap(),
    )
    .await
    .unwrap();
    let manager = NgxCacheManager::new(cache.clone(), DomainCacheSettings::default());
    (AppState::new(db, Some(manager)), cache, dir)
}

fn exists(redis: &RedisServer, key: &str) -> bool {
    redis::cmd("EXISTS")
        .arg(key)
        .query::<i64>(&mut redis.conn())
        .unwrap()
        == 1
}

/// Serves until shut down at once; returns how long `serve` took.
async fn serve_and_stop(state: AppState, drain: Duration) -> Duration {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let start = Instant::now();
    http::serve(listener, state, async {}, drain).await.unwrap();
    start.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_settles_a_pending_delete() {
    let redis = RedisServer::start();
    let proxy = CutProxy::start(redis.port()).await;
    let (state, cache, _dir) = state(&proxy).await;
    cache.set("k", &"old", None).await.unwrap();
    proxy.cut();
    assert!(cache.try_delete("k").await.is_err());
    // Long enough for the retry back-off to reach its cap.
    tokio::time::sleep(Duration::from_millis(1600)).await;
    proxy.restore();
    assert!(
        exists(&redis, "sd:k"),
        "nothing reached Redis during the cut"
    );
    let took = serve_and_stop(state, Duration::from_secs(5)).await;
    assert!(
        !exists(&redis, "sd:k"),
        "the pending delete was lost at shutdown"
    );
    assert_eq!(cache.stats().invalidations_pending, 0);
    assert!(took < Duration::from_secs(3), "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_gives_up_on_pending_work_after_its_timeout() {
    let redis = RedisServer::start();
    let proxy = CutProxy::start(redis.port()).await;
    let (state, cache, _dir) = state(&proxy).await;
    proxy.cut();
    assert!(cache.try_delete("k").await.is_err());
    assert!(cache.try_invalidate_tag("t").await.is_err());
    let took = serve_and_stop(state, Duration::from_millis(600)).await;
    assert!(
        took >= Duration::from_millis(500) && took < Duration::from_secs(2),
        "{took:?}"
    );
    assert_eq!(cache.stats().invalidations_pending, 2);
}
