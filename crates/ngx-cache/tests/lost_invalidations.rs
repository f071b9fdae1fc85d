//! Invalidation messages that never reached the other instances: a
//! `PUBLISH` refused after a successful write is retried until it lands, a
//! receiver learns of lost messages from any origin (its heartbeat carries
//! its sequence, and when it last failed to publish), and a tag
//! invalidation detaches only the loads it covers.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ngx_cache::{Cache, CacheConfig, EntryOptions};
use support::hybrid::{LAG_BOUND, instance, subscribers};
use support::server::RedisServer;
use support::util::eventually;

/// Reads `key` until a read is served by L1.
async fn warm_l1(cache: &Cache, key: &str, expect: &str) {
    for _ in 0..50 {
        let before = cache.stats().l1_hits;
        assert_eq!(cache.get::<String>(key).await.as_deref(), Some(expect));
        if cache.stats().l1_hits == before + 1 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("{key} never reached L1: {:?}", cache.stats());
}

fn acl(server: &RedisServer, args: &[&str]) {
    let _: () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg(args)
        .query(&mut server.conn())
        .unwrap();
}

fn publish(server: &RedisServer, message: &str) {
    let _: i64 = redis::cmd("PUBLISH")
        .arg("t:__invalidation")
        .arg(message)
        .query(&mut server.conn())
        .unwrap();
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_publish_after_a_write_is_retried_until_it_lands() {
    let server = RedisServer::start();
    // A writer that may write keys but not publish, for now.
    acl(
        &server,
        &["writer", "on", ">pw", "~*", "&*", "+@all", "-publish"],
    );
    let a = Cache::connect(
        CacheConfig::builder()
            .url(format!("redis://writer:pw@127.0.0.1:{}", server.port()))
            .namespace("t")
            .ttl_jitter(0.0)
            .build()
            .unwrap(),
    )
    .await
    .unwrap();
    let b = instance(&server).await;
    assert!(
        eventually(LAG_BOUND, || async { subscribers(&server) == 2 })
            .await
            .is_some()
    );
    b.set("k", &"v1", None).await.unwrap();
    warm_l1(&b, "k", "v1").await;

    a.set("k", &"v2", None).await.unwrap();
    assert_eq!(a.get::<String>("k").await.as_deref(), Some("v2"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        b.get::<String>("k").await.as_deref(),
        Some("v1"),
        "nothing could tell B yet"
    );
    acl(&server, &["writer", "+publish"]);
    let told = eventually(Duration::from_secs(4), || async {
        b.get::<String>("k").await.as_deref() == Some("v2")
    })
    .await;
    assert!(told.is_some(), "B serves v1 from L1: {:?}", b.stats());
    assert!(b.stats().invalidations_received >= 1, "{:?}", b.stats());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_heartbeat_reveals_messages_lost_from_a_known_origin() {
    let server = RedisServer::start();
    let b = instance(&server).await;
    b.set("k", &"v1", None).await.unwrap();
    warm_l1(&b, "k", "v1").await;
    let origin = 4242;
    publish(&server, &format!("v1|{origin}|1|{}|k|other", now_ms()));
    let applied = eventually(LAG_BOUND, || async {
        b.stats().invalidations_received == 1
    })
    .await;
    assert!(applied.is_some(), "{:?}", b.stats());
    let flushes = b.stats().l1_flushes;
    // Messages 2 and 3 of that origin never arrived; its heartbeat says so.
    publish(&server, &format!("v1|{origin}|3|{}|h|0", now_ms()));
    let flushed = eventually(LAG_BOUND, || async { b.stats().l1_flushes == flushes + 1 }).await;
    assert!(flushed.is_some(), "{:?}", b.stats());
    // A heartbeat with nothing missed changes nothing.
    publish(&server, &format!("v1|{origin}|3|{}|h|0", now_ms()));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(b.stats().l1_flushes, flushes + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_heartbeat_of_a_new_origin_reveals_its_recent_losses() {
    let server = RedisServer::start();
    let b = instance(&server).await;
    let flushes = b.stats().l1_flushes;
    // An origin that failed to publish long ago (before B listened): fine.
    publish(&server, &format!("v1|5151|7|{}|h|1000", now_ms()));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(b.stats().l1_flushes, flushes);
    // An origin that lost messages just now, while B listened.
    publish(&server, &format!("v1|6161|7|{}|h|{}", now_ms(), now_ms()));
    let flushed = eventually(LAG_BOUND, || async { b.stats().l1_flushes == flushes + 1 }).await;
    assert!(flushed.is_some(), "{:?}", b.stats());
}

/// Starts a slow `get_or_load` of `key` tagged `tag` that counts its runs.
fn slow_load(
    cache: &Cache,
    key: &'static str,
    tag: &'static str,
    runs: &Arc<AtomicUsize>,
) -> tokio::task::JoinHandle<String> {
    let cache = cache.clone();
    let runs = Arc::clone(runs);
    tokio::spawn(async move {
        let opts = EntryOptions::new().ttl(Duration::from_secs(60)).tags([tag]);
        cache
            .get_or_load(key, &opts, move || async move {
                runs.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(300)).await;
                Ok::<_, std::io::Error>("loaded".to_owned())
            })
            .await
            .unwrap()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tag_invalidation_detaches_only_the_loads_it_covers() {
    let server = RedisServer::start();
    let cache = instance(&server).await;
    let runs = Arc::new(AtomicUsize::new(0));
    let first = slow_load(&cache, "order:1", "customer:1", &runs);
    assert!(
        eventually(LAG_BOUND, || async { runs.load(Ordering::SeqCst) == 1 })
            .await
            .is_some()
    );
    // Another customer's update: the load of order 1 is still joined.
    assert!(cache.invalidate_tag("customer:2").await);
    let second = slow_load(&cache, "order:1", "customer:1", &runs);
    assert_eq!(first.await.unwrap(), "loaded");
    assert_eq!(second.await.unwrap(), "loaded");
    assert_eq!(runs.load(Ordering::SeqCst), 1, "{:?}", cache.stats());
    // Joined in this process, not waited for through Redis.
    assert_eq!(cache.stats().coalesced_waits, 1, "{:?}", cache.stats());

    // Its own customer's update: a caller after it does not join the load
    // that began before it.
    let runs = Arc::new(AtomicUsize::new(0));
    let first = slow_load(&cache, "order:2", "customer:1", &runs);
    assert!(
        eventually(LAG_BOUND, || async { runs.load(Ordering::SeqCst) == 1 })
            .await
            .is_some()
    );
    assert!(cache.invalidate_tag("customer:1").await);
    let second = slow_load(&cache, "order:2", "customer:1", &runs);
    first.await.unwrap();
    second.await.unwrap();
    assert_eq!(cache.stats().coalesced_waits, 1, "{:?}", cache.stats());
}
