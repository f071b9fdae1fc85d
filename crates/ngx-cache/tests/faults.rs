//! Fault injection with real processes: SIGKILL (the circuit breaker opens,
//! rejects without I/O, and one probe closes it after a restart), SIGSTOP (no
//! call outlives its timeout, and the pool heals after SIGCONT), a stalled
//! connection that bare redis-rs `ConnectionManager` never recovers from,
//! network cuts, and a clear cut off part-way.

mod support;

use std::time::{Duration, Instant};

use ngx_cache::{BreakerConfig, BreakerState, Cache, EntryOptions, Error};
use support::proxy::{CutProxy, StallingProxy};
use support::server::RedisServer;
use support::util::{config, dbsize, eventually, raw_get, timed};

const OP_TIMEOUT: Duration = Duration::from_millis(100);
/// Slack for a loaded 2-core machine: a call may overrun its timeout by
/// scheduling delays, but never by seconds.
const BOUND: Duration = Duration::from_millis(300);

#[tokio::test]
async fn sigkill_opens_the_breaker_and_one_probe_closes_it_after_restart() {
    let mut server = RedisServer::start();
    let open_for = Duration::from_millis(400);
    let cache = Cache::connect(
        config(&server)
            .pool_size(1)
            .op_timeout(Duration::from_millis(500))
            // A new subscription closes the breaker at once; this test
            // watches the open period and the probe.
            .invalidation(false)
            .breaker(BreakerConfig::new(3, open_for))
            .build()
            .unwrap(),
    )
    .await
    .unwrap();
    cache.set("k", &"v", None).await.unwrap();
    server.kill();

    // Failures are fast (refused / dropped, not timeouts) and open the
    // breaker after exactly three of them.
    let (got, took) = timed(cache.get::<String>("k")).await;
    assert_eq!(got, None);
    assert!(
        took < Duration::from_millis(250),
        "fail-open get took {took:?}"
    );
    assert_eq!(cache.breaker().state(), BreakerState::Closed);
    let (res, took) = timed(cache.try_get::<String>("k")).await;
    let err = res.unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert!(took < Duration::from_millis(250), "try_get took {took:?}");
    assert_eq!(cache.breaker().state(), BreakerState::Closed);
    let (res, took) = timed(cache.try_set("k", &"v2", None)).await;
    assert!(res.unwrap_err().is_transient());
    assert!(took < Duration::from_millis(250), "try_set took {took:?}");
    let opened_at = Instant::now();
    assert_eq!(cache.breaker().state(), BreakerState::Open);
    let s = cache.stats();
    assert!(s.circuit_breaker_open);
    assert_eq!(s.errors, 3, "{s:?}");

    // While open: rejected without I/O (no new errors), counted.
    for _ in 0..5 {
        let (res, took) = timed(cache.try_get::<String>("k")).await;
        assert!(matches!(res, Err(Error::CircuitOpen)), "{res:?}");
        assert!(took < Duration::from_millis(50), "rejection took {took:?}");
        assert_eq!(cache.get::<String>("k").await, None);
        cache.set("k", &"skipped", None).await.unwrap();
    }
    let s = cache.stats();
    assert_eq!(s.circuit_rejections, 15, "{s:?}");
    assert_eq!(s.errors, 3, "rejections must not touch Redis: {s:?}");
    assert_eq!(s.sets_skipped, 5);

    // Restart on the same port; wait for the pool to reconnect in the
    // background, then for the open period to end.
    server.restart();
    let reconnected =
        eventually(Duration::from_secs(5), || async { cache.stats().connected }).await;
    assert!(reconnected.is_some(), "pool never reconnected");
    // A reconnected pool does not close the breaker before its period ends.
    if opened_at.elapsed() + Duration::from_millis(50) < open_for {
        assert_ne!(cache.breaker().state(), BreakerState::Closed);
    }
    tokio::time::sleep_until((opened_at + open_for).into()).await;
    // One probe closes it: this caller's, or the background prober's when
    // that came first (a call meanwhile is rejected while it is in flight).
    let closed = eventually(Duration::from_secs(2), || async {
        matches!(cache.try_get::<String>("k").await, Ok(None))
    })
    .await;
    assert!(closed.is_some(), "{:?}", cache.stats());
    assert_eq!(cache.breaker().state(), BreakerState::Closed);
    assert_eq!(cache.stats().errors, 3, "the probe succeeded first time");
    cache.try_set("k", &"back", None).await.unwrap();
    assert_eq!(cache.get::<String>("k").await.as_deref(), Some("back"));
    assert!(cache.stats().reconnects > 0);
}

/// After an outage long enough for the reconnect back-off to reach its 2 s
/// cap, the first half-open probe after a restart must close the breaker
/// instead of failing on a reconnect task that is still asleep (which would
/// reopen the breaker for another period).
#[tokio::test]
async fn the_first_probe_after_a_long_outage_closes_the_breaker() {
    let mut server = RedisServer::start();
    let cache = Cache::connect(
        config(&server)
            .pool_size(1)
            .breaker(BreakerConfig::new(1, Duration::from_millis(200)))
            .build()
            .unwrap(),
    )
    .await
    .unwrap();
    cache.set("k", &"v", None).await.unwrap();
    server.kill();
    assert!(cache.try_get::<String>("k").await.is_err());
    assert_eq!(cache.breaker().state(), BreakerState::Open);
    // Failed reconnects back off 50, 100, ... 1600 ms, then 2 s: after 3.3 s
    // the task sleeps until about 5.1 s.
    tokio::time::sleep(Duration::from_millis(3300)).await;
    assert!(!cache.stats().connected);
    // A probe while Redis is still down (this call, or the background
    // prober's, which then rejects this call) fails as fast as before (the
    // connection is refused), and the breaker does not close.
    let (probe, took) = timed(cache.try_get::<String>("k")).await;
    assert!(probe.is_err());
    assert!(
        took < Duration::from_millis(500),
        "failed probe took {took:?}"
    );
    assert_ne!(cache.breaker().state(), BreakerState::Closed);
    tokio::time::sleep(Duration::from_millis(250)).await;
    server.restart();
    // The first probe after the restart (the background one or a caller's)
    // closes it, instead of opening it for another period.
    let took = eventually(Duration::from_secs(1), || async {
        cache.breaker().state() == BreakerState::Closed
    })
    .await;
    assert!(took.is_some(), "still {:?}", cache.breaker().state());
    assert!(matches!(cache.try_get::<String>("k").await, Ok(None)));
}

/// A delete that cannot reach Redis (the network is cut, Redis keeps its
/// data) must not let the old entry come back with the connection: this
/// instance treats the key as missing meanwhile, and the delete is retried
/// until Redis takes it, so a second instance stops seeing the old entry
/// too.
#[tokio::test]
async fn a_delete_during_a_network_cut_lands_when_the_network_returns() {
    let server = RedisServer::start();
    let proxy = CutProxy::start(server.port()).await;
    let through_proxy = || {
        config(&server)
            .url(proxy.url())
            .pool_size(1)
            .op_timeout(OP_TIMEOUT)
            .breaker(BreakerConfig::new(2, Duration::from_millis(200)))
            .build()
            .unwrap()
    };
    let writer = Cache::connect(through_proxy()).await.unwrap();
    // A second instance with a direct path to Redis, L1 off: it reads what
    // Redis holds.
    let other = Cache::connect(config(&server).l1(false).build().unwrap())
        .await
        .unwrap();
    writer.set("k", &"old", None).await.unwrap();
    assert_eq!(other.get::<String>("k").await.as_deref(), Some("old"));

    proxy.cut();
    // The database write committed; the cache delete cannot get through.
    assert!(!writer.delete("k").await);
    assert_eq!(raw_get(&server, "t:k").as_deref(), Some(&b"\"old\""[..]));
    assert_eq!(writer.stats().invalidations_pending, 1);

    proxy.restore();
    // Never the old value again in this instance, even before the retry
    // lands, and the retry removes it from Redis for everyone. The count
    // drops once the delete's message is published too, which may take
    // one more pass when the publisher is still reconnecting.
    let gone = eventually(Duration::from_secs(5), || async {
        assert_eq!(writer.get::<String>("k").await, None);
        raw_get(&server, "t:k").is_none() && writer.stats().invalidations_pending == 0
    })
    .await;
    assert!(
        gone.is_some(),
        "the deferred delete never landed: {:?}",
        writer.stats()
    );
    assert_eq!(other.get::<String>("k").await, None);
    // A later set is served normally.
    writer.set("k", &"new", None).await.unwrap();
    assert_eq!(writer.get::<String>("k").await.as_deref(), Some("new"));
}

/// The same for a tag invalidation: entries carrying the tag stop being
/// served at once by the instance that invalidated it (its L1 copy
/// included), and the version bump lands when the network returns, so
/// other instances stop serving them too.
#[tokio::test]
async fn a_tag_invalidation_during_a_network_cut_lands_when_the_network_returns() {
    let server = RedisServer::start();
    let proxy = CutProxy::start(server.port()).await;
    let writer = Cache::connect(
        config(&server)
            .url(proxy.url())
            .pool_size(1)
            .op_timeout(OP_TIMEOUT)
            .breaker(BreakerConfig::new(2, Duration::from_millis(200)))
            .build()
            .unwrap(),
    )
    .await
    .unwrap();
    let other = Cache::connect(config(&server).l1(false).build().unwrap())
        .await
        .unwrap();
    let opts = EntryOptions::new().tags(vec!["customer:1".to_owned()]);
    writer.set_with("a", &"old", &opts).await.unwrap();
    assert_eq!(writer.get::<String>("a").await.as_deref(), Some("old"));
    assert_eq!(writer.get::<String>("a").await.as_deref(), Some("old"));
    assert!(writer.stats().l1_hits > 0, "the value sits in L1");
    assert_eq!(other.get::<String>("a").await.as_deref(), Some("old"));

    proxy.cut();
    assert!(!writer.invalidate_tag("customer:1").await);
    assert_eq!(writer.get::<String>("a").await, None, "L1 kept serving it");
    assert_eq!(writer.stats().invalidations_pending, 1);

    proxy.restore();
    let landed = eventually(Duration::from_secs(5), || async {
        assert_eq!(writer.get::<String>("a").await, None);
        writer.stats().invalidations_pending == 0
    })
    .await;
    assert!(landed.is_some(), "the tag invalidation never reached Redis");
    assert_eq!(other.get::<String>("a").await, None);
    assert_eq!(writer.get::<String>("a").await, None);
}

/// A `set` after a delete that could not reach Redis replaces the pending
/// delete: the new value is served, not skipped or deleted later.
#[tokio::test]
async fn a_set_supersedes_a_pending_delete() {
    let server = RedisServer::start();
    let proxy = CutProxy::start(server.port()).await;
    let cache = Cache::connect(
        config(&server)
            .url(proxy.url())
            .pool_size(1)
            .op_timeout(OP_TIMEOUT)
            .breaker(BreakerConfig::disabled())
            .build()
            .unwrap(),
    )
    .await
    .unwrap();
    cache.set("k", &1, None).await.unwrap();
    proxy.cut();
    assert!(cache.try_delete("k").await.is_err());
    assert_eq!(cache.stats().invalidations_pending, 1);
    proxy.restore();
    let stored = eventually(Duration::from_secs(5), || async {
        cache.try_set("k", &2, None).await.is_ok()
    })
    .await;
    assert!(stored.is_some(), "set never got through");
    assert_eq!(cache.stats().invalidations_pending, 0);
    assert_eq!(cache.get::<i32>("k").await, Some(2));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(raw_get(&server, "t:k").as_deref(), Some(&b"2"[..]));
}

#[tokio::test]
async fn server_errors_do_not_open_the_breaker() {
    let server = RedisServer::start();
    let cache = Cache::connect(
        config(&server)
            .breaker(BreakerConfig::new(2, Duration::from_secs(30)))
            .build()
            .unwrap(),
    )
    .await
    .unwrap();
    let _: () = redis::cmd("LPUSH")
        .arg("t:list")
        .arg("x")
        .query(&mut server.conn())
        .unwrap();
    for _ in 0..5 {
        let err = cache.try_get::<String>("list").await.unwrap_err();
        assert!(!err.is_transient(), "WRONGTYPE is not transient: {err}");
        assert!(cache.try_increment("list", 1).await.is_err());
    }
    assert_eq!(cache.breaker().state(), BreakerState::Closed);
    assert_eq!(cache.stats().errors, 10);
    assert_eq!(cache.stats().failure_count, 0);
}

#[tokio::test]
async fn sigstop_never_blocks_past_the_timeout_and_the_pool_heals_after_sigcont() {
    let server = RedisServer::start();
    let cache = Cache::connect(
        config(&server)
            .pool_size(2)
            .op_timeout(OP_TIMEOUT)
            .connect_timeout(Duration::from_millis(200))
            .heal_after_timeouts(2)
            // Isolate healing from the breaker: every call really goes out.
            .breaker(BreakerConfig::disabled())
            .build()
            .unwrap(),
    )
    .await
    .unwrap();
    cache.set("k", &"v", None).await.unwrap();

    server.pause();
    let mut timeouts = 0;
    for i in 0..4 {
        let (got, took) = timed(cache.get::<String>("k")).await;
        assert_eq!(got, None);
        assert!(took < BOUND, "fail-open get #{i} took {took:?}");
        let (res, took) = timed(cache.try_get::<String>("k")).await;
        let err = res.unwrap_err();
        assert!(err.is_transient(), "{err}");
        timeouts += usize::from(err.is_timeout());
        assert!(took < BOUND, "try_get #{i} took {took:?}");
        let (res, took) = timed(cache.try_set("k", &"w", None)).await;
        assert!(res.is_err());
        assert!(took < BOUND, "try_set #{i} took {took:?}");
        let (got, took) = timed(cache.get_many::<String, _>(&["k", "j"])).await;
        assert_eq!(got, vec![None, None]);
        assert!(took < BOUND, "get_many #{i} took {took:?}");
        let (health, took) = timed(cache.health_check()).await;
        assert!(!health.healthy);
        assert!(took < BOUND, "health_check #{i} took {took:?}");
    }
    assert!(timeouts > 0, "a stopped server must show up as timeouts");
    assert!(
        cache.stats().sets_skipped == 0,
        "try_set does not count skips"
    );

    server.resume();
    let resumed = Instant::now();
    let healed = eventually(Duration::from_secs(2), || async {
        matches!(cache.try_get::<String>("k").await, Ok(Some(_)))
    })
    .await;
    assert!(
        healed.is_some(),
        "no successful get within 2 s of SIGCONT: {:?}",
        cache.stats()
    );
    assert!(resumed.elapsed() < Duration::from_millis(2500));
    // Every connection of the pool works again, not just one.
    // A write that timed out may still have been applied: Redis ran it once
    // it resumed. Either value is fine; errors are not.
    for _ in 0..6 {
        let v = cache.try_get::<String>("k").await.unwrap();
        assert!(matches!(v.as_deref(), Some("v" | "w")), "{v:?}");
    }
    let s = cache.stats();
    assert!(s.reconnects > 0, "healing must rebuild connections: {s:?}");
    assert!(s.connected);
}

/// What bare redis-rs does in the same SIGSTOP/SIGCONT scenario, measured on
/// redis 1.8: the calls time out while the server is stopped, and once it
/// resumes the same connection answers again (late replies are matched to
/// the timed-out requests and discarded). SIGSTOP alone therefore does not
/// leave `ConnectionManager` stuck; the stalled-connection test below does.
#[tokio::test]
async fn bare_connection_manager_times_out_under_sigstop_and_resumes_after_sigcont() {
    let server = RedisServer::start();
    let client = redis::Client::open(server.url()).unwrap();
    let mut manager = client
        .get_connection_manager_with_config(
            redis::aio::ConnectionManagerConfig::new()
                .set_response_timeout(Some(OP_TIMEOUT))
                .set_connection_timeout(Some(Duration::from_millis(200))),
        )
        .await
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query_async(&mut manager)
        .await
        .unwrap();
    server.pause();
    for _ in 0..4 {
        let (res, took) = timed(
            redis::cmd("GET")
                .arg("k")
                .query_async::<Option<String>>(&mut manager),
        )
        .await;
        assert!(res.unwrap_err().is_timeout());
        assert!(took < BOUND, "{took:?}");
    }
    server.resume();
    let recovered = eventually(Duration::from_secs(2), || {
        let mut m = manager.clone();
        async move {
            redis::cmd("GET")
                .arg("k")
                .query_async::<Option<String>>(&mut m)
                .await
                .is_ok()
        }
    })
    .await;
    assert!(
        recovered.is_some(),
        "ConnectionManager did not recover after SIGCONT"
    );
}

/// A connection that stops answering without ever erroring, while new
/// connections to the same address work: redis-rs maps a timeout to "retry",
/// not "reconnect", so a bare `ConnectionManager` keeps the dead connection
/// and times out for ever. Our pool drops it after `heal_after_timeouts`
/// consecutive timeouts and reconnects. This test guards that fix.
#[tokio::test]
async fn stalled_connection_sticks_connection_manager_but_the_cache_heals() {
    let server = RedisServer::start();
    let proxy = StallingProxy::start(server.port()).await;
    let cache = Cache::connect(
        CacheConfigBuilderExt::for_url(&proxy.url())
            .pool_size(2)
            .op_timeout(OP_TIMEOUT)
            .heal_after_timeouts(2)
            .breaker(BreakerConfig::disabled())
            .build()
            .unwrap(),
    )
    .await
    .unwrap();
    let client = redis::Client::open(proxy.url()).unwrap();
    let mut manager = client
        .get_connection_manager_with_config(
            redis::aio::ConnectionManagerConfig::new()
                .set_response_timeout(Some(OP_TIMEOUT))
                .set_connection_timeout(Some(Duration::from_millis(200))),
        )
        .await
        .unwrap();
    cache.set("k", &"v", None).await.unwrap();
    let _: () = redis::cmd("PING").query_async(&mut manager).await.unwrap();

    proxy.stall_existing();

    // The cache: a few timeouts, each bounded, then healed connections.
    let start = Instant::now();
    let mut calls = 0;
    let mut saw_timeout = false;
    loop {
        calls += 1;
        let (res, took) = timed(cache.try_get::<String>("k")).await;
        assert!(took < BOUND, "call took {took:?}");
        match res {
            Ok(v) => {
                assert_eq!(v.as_deref(), Some("v"));
                break;
            }
            Err(e) => saw_timeout |= e.is_timeout(),
        }
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "cache never healed"
        );
        if calls > 4 {
            // Past the healing threshold on both connections: give the
            // background reconnect a moment instead of spinning.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    assert!(saw_timeout, "the stall must have been observed");
    assert!(cache.stats().reconnects > 0);

    // The bare ConnectionManager: over the same kind of window, every call
    // still times out on the stalled connection.
    let mut manager_ok = 0;
    for _ in 0..10 {
        let (res, took) = timed(redis::cmd("PING").query_async::<String>(&mut manager)).await;
        assert!(took < BOUND, "{took:?}");
        match res {
            Ok(_) => manager_ok += 1,
            Err(e) => assert!(e.is_timeout(), "{e}"),
        }
    }
    assert_eq!(manager_ok, 0, "ConnectionManager recovered on its own");
    // While a fresh connection through the same proxy works fine.
    let mut fresh = client.get_multiplexed_async_connection().await.unwrap();
    let pong: String = redis::cmd("PING").query_async(&mut fresh).await.unwrap();
    assert_eq!(pong, "PONG");
}

/// Builds a cache config for an arbitrary URL (the proxy), jitter off.
struct CacheConfigBuilderExt;

impl CacheConfigBuilderExt {
    fn for_url(url: &str) -> ngx_cache::CacheConfigBuilder {
        ngx_cache::CacheConfig::builder()
            .url(url)
            .namespace("t")
            .ttl_jitter(0.0)
    }
}

/// A clear that loses Redis part-way says how many keys it had removed.
/// The proxy cuts the network instead of forwarding the third `SCAN`, so
/// exactly two batches were scanned and unlinked: the count returned is
/// what left Redis, and the failure inside is the network's.
#[tokio::test]
async fn a_clear_cut_off_part_way_says_how_many_keys_it_removed() {
    let server = RedisServer::start();
    // Enough keys that two `SCAN COUNT 500` calls cannot reach them all.
    let total = 5_000;
    let mut pipe = redis::pipe();
    for i in 0..total {
        pipe.cmd("SET").arg(format!("t:k{i}")).arg("v").ignore();
    }
    let () = pipe.query(&mut server.conn()).unwrap();
    let proxy = CutProxy::cutting_at(server.port(), b"\r\nSCAN\r\n", 3).await;
    let cache = Cache::connect(
        config(&server)
            .url(proxy.url())
            .op_timeout(OP_TIMEOUT)
            .build()
            .unwrap(),
    )
    .await
    .unwrap();

    let err = cache.clear_namespace().await.unwrap_err();
    let left = dbsize(&server);
    println!("clear cut off at the third SCAN: {err} ({left} of {total} keys left)");
    let Error::PartlyCleared { removed, failed } = &err else {
        panic!("expected a partial clear, got {err:?}");
    };
    assert!(*removed > 0 && left > 0, "{removed} removed, {left} left");
    assert_eq!(*removed, (total - left) as u64);
    assert!(failed.is_transient(), "{failed:?}");
    assert!(err.is_transient());
    assert!(
        err.to_string()
            .starts_with(&format!("cleared in part, {removed} keys removed: ")),
        "{err}"
    );
}

/// The node connections that tools open with `redis_nodes` (`SCAN`, `INFO`
/// on each primary) answer within the configured operation timeout, long
/// or short, when Redis stops answering: not after a fixed default.
#[tokio::test]
async fn node_connections_time_out_after_the_configured_op_timeout() {
    let server = RedisServer::start();
    for op_timeout in [Duration::from_millis(100), Duration::from_millis(1_500)] {
        let nodes =
            ngx_cache::redis_nodes(&config(&server).op_timeout(op_timeout).build().unwrap())
                .await
                .unwrap();
        let mut node = nodes.primaries.into_iter().next().unwrap().connection;
        server.pause();
        let (res, took) = timed(redis::cmd("INFO").query_async::<String>(&mut node)).await;
        server.resume();
        let err = res.unwrap_err();
        assert!(err.is_timeout(), "{err}");
        assert!(
            took >= op_timeout && took < op_timeout + BOUND,
            "INFO with a {op_timeout:?} timeout gave up after {took:?}"
        );
    }
}
