//! Recovery after Redis restarts, loses keys or stops answering: the
//! breaker closes by itself, a vanished tag counter cannot revive old
//! entries, an invalidation once started is never forgotten, and the first
//! subscription resets what was trusted before it.

mod support;

use std::time::{Duration, Instant};

use ngx_cache::{BreakerConfig, BreakerState, Cache, CacheConfig, EntryOptions};
use support::hybrid::{LAG_BOUND, instance, subscribers};
use support::proxy::{CutProxy, StallingProxy};
use support::server::RedisServer;
use support::util::{config, eventually, raw_exists, raw_get, timed};

fn tagged(tag: &str) -> EntryOptions {
    EntryOptions::new().ttl(Duration::from_secs(60)).tags([tag])
}

/// `get_or_load` whose loader returns `fresh`.
async fn load(cache: &Cache, key: &str, opts: &EntryOptions, fresh: &str) -> String {
    let fresh = fresh.to_owned();
    cache
        .get_or_load(
            key,
            opts,
            move || async move { Ok::<_, std::io::Error>(fresh) },
        )
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn breaker_closes_after_a_restart_while_l1_answers_the_hot_key() {
    let mut server = RedisServer::start();
    let open_for = Duration::from_secs(3);
    let cache = Cache::connect(
        config(&server)
            .pool_size(1)
            .breaker(BreakerConfig::new(2, open_for))
            .build()
            .unwrap(),
    )
    .await
    .unwrap();
    let opts = EntryOptions::new().ttl(Duration::from_secs(60));
    assert_eq!(load(&cache, "hot", &opts, "v1").await, "v1");

    server.kill();
    let mut failures = 0;
    while cache.breaker().state() != BreakerState::Open {
        let _ = cache.try_get::<String>("cold").await;
        failures += 1;
        assert!(failures < 50, "breaker never opened");
    }
    let opened_at = Instant::now();
    server.restart();
    let up = eventually(Duration::from_secs(5), || async {
        cache.stats().connected && subscribers(&server) == 1
    })
    .await;
    assert!(up.is_some(), "never reconnected and resubscribed");

    // Hot-key traffic that L1 answers: nothing of it needs Redis.
    let deadline = opened_at + open_for + Duration::from_secs(1);
    while Instant::now() < deadline {
        assert_eq!(load(&cache, "hot", &opts, "v2").await.len(), 2);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let s = cache.stats();
    assert!(s.connected, "{s:?}");
    assert_eq!(s.circuit_breaker_state, BreakerState::Closed, "{s:?}");
    assert!(!s.circuit_breaker_open, "{s:?}");
    let h = cache.health_check().await;
    assert_eq!(h.status, "connected", "{h:?}");
    // Writes reach Redis again.
    cache.set("after", &"x", None).await.unwrap();
    assert!(raw_exists(&server, "t:after"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_background_probe_closes_the_breaker_without_any_traffic() {
    let server = RedisServer::start();
    let proxy = CutProxy::start(server.port()).await;
    let open_for = Duration::from_millis(500);
    let cache = Cache::connect(
        CacheConfig::builder()
            .url(proxy.url())
            .namespace("t")
            .pool_size(1)
            .invalidation(false)
            .breaker(BreakerConfig::new(2, open_for))
            .build()
            .unwrap(),
    )
    .await
    .unwrap();
    proxy.cut();
    while cache.breaker().state() != BreakerState::Open {
        let _ = cache.try_get::<String>("k").await;
    }
    let opened_at = Instant::now();
    proxy.restore();
    // No call at all from here on: only the probe can close it.
    let closed = eventually(open_for + Duration::from_secs(3), || async {
        cache.breaker().state() == BreakerState::Closed
    })
    .await;
    assert!(
        closed.is_some(),
        "breaker still {:?} {:?} after opening",
        cache.breaker().state(),
        opened_at.elapsed()
    );
    assert!(
        opened_at.elapsed() < open_for + Duration::from_secs(1) + Duration::from_millis(500),
        "closed only after {:?}",
        opened_at.elapsed()
    );
    assert_eq!(cache.stats().circuit_rejections, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vanished_tag_counter_does_not_revive_old_entries() {
    let server = RedisServer::start();
    let a = instance(&server).await;
    let b = instance(&server).await;
    for _ in 0..5 {
        assert!(a.invalidate_tag("t").await);
    }
    let opts = tagged("t");
    assert_eq!(load(&b, "k", &opts, "old").await, "old");
    assert_eq!(load(&b, "k", &opts, "unused").await, "old", "from L1");

    let _: () = redis::cmd("DEL")
        .arg("t:__tag:t")
        .query(&mut server.conn())
        .unwrap();
    assert!(a.invalidate_tag("t").await);
    let stale = eventually(LAG_BOUND, || async {
        load(&b, "k", &opts, "new").await == "new"
    })
    .await;
    assert!(
        stale.is_some(),
        "B still serves the entry of the old tag version"
    );
    // Nor does it come back as the counter climbs again.
    for _ in 0..6 {
        assert!(a.invalidate_tag("t").await);
        let c = instance(&server).await;
        let v = load(&c, "k", &opts, "newer").await;
        assert_ne!(v, "old");
    }
}

/// A server, a proxy in front of it that can stall its connections, and a
/// cache (namespace `t`) connected through the proxy.
async fn behind_stalling_proxy() -> (RedisServer, StallingProxy, Cache) {
    let server = RedisServer::start();
    let proxy = StallingProxy::start(server.port()).await;
    let cache = Cache::connect(
        CacheConfig::builder()
            .url(proxy.url())
            .namespace("t")
            .op_timeout(Duration::from_millis(500))
            .build()
            .unwrap(),
    )
    .await
    .unwrap();
    (server, proxy, cache)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_delete_is_still_pending() {
    let (server, proxy, cache) = behind_stalling_proxy().await;
    cache.set("k", &"old", None).await.unwrap();
    proxy.stall_existing();
    let res = tokio::time::timeout(Duration::from_millis(50), cache.try_delete("k")).await;
    assert!(res.is_err(), "the delete should still be waiting: {res:?}");
    assert_eq!(cache.stats().invalidations_pending, 1);
    assert_eq!(cache.get::<String>("k").await, None);
    // The pending delete lands once the pool heals.
    let landed = eventually(Duration::from_secs(10), || async {
        !raw_exists(&server, "t:k") && cache.stats().invalidations_pending == 0
    })
    .await;
    assert!(landed.is_some(), "{:?}", cache.stats());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_tag_invalidation_is_still_pending() {
    let (server, proxy, cache) = behind_stalling_proxy().await;
    proxy.stall_existing();
    let res = tokio::time::timeout(Duration::from_millis(50), cache.try_invalidate_tag("t")).await;
    assert!(res.is_err(), "{res:?}");
    assert_eq!(cache.stats().invalidations_pending, 1);
    let landed = eventually(Duration::from_secs(10), || async {
        raw_get(&server, "t:__tag:t").is_some() && cache.stats().invalidations_pending == 0
    })
    .await;
    assert!(landed.is_some(), "{:?}", cache.stats());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_subscription_resets_what_was_read_before_it() {
    let server = RedisServer::start();
    // A user that may not subscribe yet: A's reads work, its channel not.
    let _: () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg("late")
        .arg("on")
        .arg(">pw")
        .arg("~*")
        .arg("resetchannels")
        .arg("+@all")
        .query(&mut server.conn())
        .unwrap();
    let b = instance(&server).await;
    b.set("k", &"old", None).await.unwrap();
    let a = Cache::connect_lazy(
        CacheConfig::builder()
            .url(format!("redis://late:pw@127.0.0.1:{}", server.port()))
            .namespace("t")
            .ttl_jitter(0.0)
            .build()
            .unwrap(),
    )
    .await
    .unwrap();
    let read = eventually(Duration::from_secs(5), || async {
        a.get::<String>("k").await.as_deref() == Some("old")
    })
    .await;
    assert!(read.is_some());
    // B changes the key while A cannot hear about it.
    assert!(b.delete("k").await);
    let _: () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg("late")
        .arg("allchannels")
        .query(&mut server.conn())
        .unwrap();
    let subscribed = eventually(Duration::from_secs(10), || async {
        subscribers(&server) == 2
    })
    .await;
    assert!(subscribed.is_some(), "A never subscribed");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(a.get::<String>("k").await, None, "A served what B deleted");
}

/// A cache through `proxy`, breaker off (a cut must not hold retries back).
async fn through(proxy: &CutProxy, max_pending: Option<usize>) -> Cache {
    let mut builder = CacheConfig::builder()
        .url(proxy.url())
        .namespace("t")
        .op_timeout(Duration::from_millis(300))
        .breaker(BreakerConfig::disabled());
    if let Some(n) = max_pending {
        builder = builder.max_pending(n);
    }
    Cache::connect(builder.build().unwrap()).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_retry_neither_blocks_the_others_nor_stays_owed() {
    let server = RedisServer::start();
    let proxy = CutProxy::start(server.port()).await;
    let cache = through(&proxy, None).await;
    proxy.cut();
    assert!(cache.try_invalidate_tag("bad").await.is_err());
    assert!(cache.try_invalidate_tag("good").await.is_err());
    assert!(cache.try_delete("gone").await.is_err());
    assert_eq!(cache.stats().invalidations_pending, 3);
    // The bad tag's counter is now a list: INCR will be refused for ever.
    let _: () = redis::cmd("LPUSH")
        .arg("t:__tag:bad")
        .arg("x")
        .query(&mut server.conn())
        .unwrap();
    proxy.restore();
    let settled = eventually(Duration::from_secs(5), || async {
        // At least once: a command sent as the cut began may have landed.
        cache.stats().invalidations_pending == 0 && raw_exists(&server, "t:__tag:good")
    })
    .await;
    assert!(settled.is_some(), "{:?}", cache.stats());
    assert_eq!(cache.stats().invalidations_dropped, 1);
    // Entries of the refused tag are not misses for ever.
    let opts = tagged("bad");
    // A pooled connection the cut broke fails its next call once (broken
    // pipe) and is replaced; what matters here is the tag, not the pool.
    let written = eventually(Duration::from_secs(5), || async {
        cache.try_set_with("k", &"v", &opts).await.is_ok()
    })
    .await;
    assert!(written.is_some(), "{:?}", cache.stats());
    assert_eq!(
        cache.get::<String>("k").await.as_deref(),
        Some("v"),
        "{:?}",
        cache.stats()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_invalidations_are_bounded_and_the_excess_is_reported() {
    let server = RedisServer::start();
    let proxy = CutProxy::start(server.port()).await;
    let cache = through(&proxy, Some(2)).await;
    proxy.cut();
    for key in ["a", "b", "c"] {
        assert!(cache.try_delete(key).await.is_err());
    }
    for tag in ["x", "y", "z"] {
        assert!(cache.try_invalidate_tag(tag).await.is_err());
    }
    let s = cache.stats();
    assert_eq!(s.invalidations_pending, 4, "{s:?}");
    assert_eq!(s.invalidations_dropped, 2, "{s:?}");
    assert!(matches!(
        CacheConfig::builder().max_pending(0).build(),
        Err(e) if e.var == "CACHE_MAX_PENDING"
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_work_is_settled_before_a_deadline_or_counted() {
    let server = RedisServer::start();
    let proxy = CutProxy::start(server.port()).await;
    let cache = through(&proxy, None).await;
    cache.set("k", &"old", None).await.unwrap();
    proxy.cut();
    assert!(cache.try_delete("k").await.is_err());
    assert!(cache.try_invalidate_tag("t").await.is_err());
    // Redis still out of reach: nothing settles, the count comes back.
    let (left, took) = timed(cache.settle_pending(Duration::from_millis(300))).await;
    // The delete, the tag bump, and the delete's message to the others.
    assert_eq!(left, 3, "{:?}", cache.stats());
    assert_eq!(cache.stats().invalidations_pending, 2);
    assert_eq!(cache.stats().publishes_pending, 1);
    assert!(took < Duration::from_secs(1), "{took:?}");
    proxy.restore();
    let (left, took) = timed(cache.settle_pending(Duration::from_secs(5))).await;
    assert_eq!(left, 0, "{:?}", cache.stats());
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert!(!raw_exists(&server, "t:k"));
    assert!(raw_exists(&server, "t:__tag:t"), "the tag bump landed");
}
