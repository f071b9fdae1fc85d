//! Every typed operation against a real `redis-server`: values, batches,
//! counters, key management, TTLs, limits, `try_*` forms, a disabled cache,
//! and a compile-time check that the public futures are `Send`.

mod support;

use std::time::Duration;

use ngx_cache::{Cache, CacheConfig, EntryOptions, Error, KeyTtl};
use serde::{Deserialize, Serialize};
use support::server::RedisServer;
use support::target::{Backing, Target};
use support::util::{config, dbsize, pttl, raw_exists, raw_get, raw_set, ttl_secs};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Profile {
    id: u32,
    name: String,
    tags: Vec<String>,
}

fn profile(id: u32) -> Profile {
    Profile {
        id,
        name: format!("user {id}"),
        tags: vec!["a".into(), "b".into()],
    }
}

async fn cache(server: &(impl Target + ?Sized)) -> Cache {
    Cache::connect(config(server).build().unwrap())
        .await
        .unwrap()
}

async fn get_and_set_round_trip_and_count_hits_and_misses(server: &Backing) {
    let cache = cache(server).await;

    assert_eq!(cache.get::<Profile>("p:1").await, None);
    cache.set("p:1", &profile(1), None).await.unwrap();
    assert_eq!(cache.get::<Profile>("p:1").await, Some(profile(1)));
    assert_eq!(
        cache.try_get::<Profile>("p:1").await.unwrap(),
        Some(profile(1))
    );
    assert_eq!(cache.try_get::<Profile>("p:2").await.unwrap(), None);
    // Overwrite.
    cache.try_set("p:1", &profile(7), None).await.unwrap();
    assert_eq!(cache.get::<Profile>("p:1").await, Some(profile(7)));

    let s = cache.stats();
    assert_eq!((s.hits, s.misses, s.errors), (3, 2, 0), "{s:?}");
    assert_eq!(s.total_requests, 5);
    assert!((s.hit_rate - 0.6).abs() < 1e-9);
    assert_eq!(s.sets, 2);
    assert!(s.connected);
    // Keys are namespaced.
    assert!(raw_exists(server, "t:p:1"));
    assert!(!raw_exists(server, "p:1"));
}

async fn get_many_and_set_many_keep_order_and_report_misses(server: &Backing) {
    let cache = cache(server).await;

    cache
        .set_many(&[("b", 2u64), ("a", 1), ("c", 3)], None)
        .await
        .unwrap();
    let got: Vec<Option<u64>> = cache.get_many(&["c", "missing", "a", "b", "a"]).await;
    assert_eq!(got, vec![Some(3), None, Some(1), Some(2), Some(1)]);
    let got: Vec<Option<u64>> = cache
        .try_get_many(&["nope".to_owned(), "b".to_owned()])
        .await
        .unwrap();
    assert_eq!(got, vec![None, Some(2)]);
    let empty: Vec<Option<u64>> = cache.get_many::<u64, &str>(&[]).await;
    assert!(empty.is_empty());
    cache
        .try_set_many(&[("d", 4u64)], Some(Duration::from_secs(5)))
        .await
        .unwrap();
    assert_eq!(raw_get(server, "t:d").as_deref(), Some(&b"4"[..]));
    cache.set_many::<u64, &str>(&[], None).await.unwrap();

    let s = cache.stats();
    assert_eq!((s.hits, s.misses), (5, 2), "{s:?}");
    assert_eq!(s.sets, 4);
    assert_eq!(dbsize(server), 4);
}

async fn increment_and_decrement_are_atomic_counters(server: &Backing) {
    let cache = cache(server).await;

    assert_eq!(cache.increment("hits", 1).await, Some(1));
    assert_eq!(cache.increment("hits", 5).await, Some(6));
    assert_eq!(cache.decrement("hits", 2).await, Some(4));
    assert_eq!(cache.try_increment("hits", -10).await.unwrap(), -6);
    assert_eq!(cache.decrement("fresh", 3).await, Some(-3));
    assert_eq!(raw_get(server, "t:hits").as_deref(), Some(&b"-6"[..]));
    // A counter reads back as a JSON number.
    assert_eq!(cache.get::<i64>("hits").await, Some(-6));
    // i64::MIN cannot be negated: no call is made.
    assert_eq!(cache.decrement("hits", i64::MIN).await, None);
    assert_eq!(cache.get::<i64>("hits").await, Some(-6));

    // A non-integer value is an error from Redis, not a transient failure.
    cache.set("text", &"hello", None).await.unwrap();
    let err = cache.try_increment("text", 1).await.unwrap_err();
    assert!(!err.is_transient(), "{err}");
    assert_eq!(cache.increment("text", 1).await, None);
    assert_eq!(cache.stats().failure_count, 0);
}

async fn exists_delete_and_expire(server: &Backing) {
    let cache = cache(server).await;

    cache.set("k", &1, None).await.unwrap();
    assert!(cache.exists("k").await);
    assert!(cache.try_exists("k").await.unwrap());
    assert!(!cache.exists("other").await);

    assert!(cache.expire("k", Duration::from_secs(50)).await);
    let ms = pttl(server, "t:k");
    assert!((49_000..=50_000).contains(&ms), "PTTL {ms}");
    assert!(!cache.expire("other", Duration::from_secs(5)).await);
    assert!(
        !cache
            .try_expire("other", Duration::from_secs(5))
            .await
            .unwrap()
    );

    assert!(cache.delete("k").await);
    assert!(!raw_exists(server, "t:k"));
    assert!(!cache.delete("k").await);
    cache.set("k2", &2, None).await.unwrap();
    assert!(cache.try_delete("k2").await.unwrap());
    assert!(!cache.try_delete("k2").await.unwrap());
    assert_eq!(dbsize(server), 0);
}

async fn versioned_writes_keep_the_newest_state(server: &Backing) {
    let cache = cache(server).await;
    let opts = EntryOptions::new().ttl(Duration::from_secs(60));

    // Out of order: version 3 lands first, the late version 2 is refused.
    assert!(
        cache
            .try_set_versioned("v", &profile(3), 3, &opts)
            .await
            .unwrap()
    );
    assert!(
        !cache
            .try_set_versioned("v", &profile(2), 2, &opts)
            .await
            .unwrap()
    );
    assert!(
        !cache
            .try_set_versioned("v", &profile(3), 3, &opts)
            .await
            .unwrap()
    );
    assert_eq!(cache.get::<Profile>("v").await, Some(profile(3)));
    // The version outlives a delete: a late older write cannot bring its
    // state back; a newer one is stored.
    assert!(cache.delete("v").await);
    assert!(
        !cache
            .try_set_versioned("v", &profile(2), 2, &opts)
            .await
            .unwrap()
    );
    assert_eq!(cache.get::<Profile>("v").await, None);
    assert!(
        cache
            .try_set_versioned("v", &profile(4), 4, &opts)
            .await
            .unwrap()
    );
    assert_eq!(cache.get::<Profile>("v").await, Some(profile(4)));
    // Plain writes neither read nor move the version.
    cache.set("v", &profile(9), None).await.unwrap();
    assert!(
        !cache
            .try_set_versioned("v", &profile(4), 4, &opts)
            .await
            .unwrap()
    );
    assert_eq!(cache.get::<Profile>("v").await, Some(profile(9)));
    assert!(
        cache
            .try_set_versioned("v", &profile(5), 5, &opts)
            .await
            .unwrap()
    );
    assert_eq!(cache.get::<Profile>("v").await, Some(profile(5)));
    // Every u64 compares as a number, not as text ("10" < "9" as text).
    assert!(cache.try_set_versioned("w", &1, 9, &opts).await.unwrap());
    assert!(cache.try_set_versioned("w", &2, 10, &opts).await.unwrap());
    assert!(
        cache
            .try_set_versioned("w", &3, u64::MAX, &opts)
            .await
            .unwrap()
    );
    assert!(
        !cache
            .try_set_versioned("w", &4, u64::MAX - 1, &opts)
            .await
            .unwrap()
    );
    assert_eq!(cache.get::<i32>("w").await, Some(3));
    // The version key lives as long as the entry, in the key's slot.
    let version_ms = pttl(server, &server.keys("t:__ver:*:v")[0]);
    assert!((59_000..=60_000).contains(&version_ms), "PTTL {version_ms}");
    // Clearing a prefix removes the versions with the keys.
    cache.clear_prefix("v").await.unwrap();
    let left = server.keys("t:*");
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(left.iter().all(|k| k.ends_with(":w")), "{left:?}");
    assert!(
        cache
            .try_set_versioned("v", &profile(1), 1, &opts)
            .await
            .unwrap()
    );
}

async fn ttl_reports_missing_persistent_and_expiring_keys(server: &Backing) {
    let cache = cache(server).await;

    assert_eq!(cache.ttl("none").await, Some(KeyTtl::Missing));
    raw_set(server, "t:forever", b"1");
    assert_eq!(cache.try_ttl("forever").await.unwrap(), KeyTtl::Persistent);
    cache
        .set("short", &1, Some(Duration::from_secs(30)))
        .await
        .unwrap();
    match cache.ttl("short").await {
        Some(KeyTtl::Expires(d)) => {
            assert!(
                d <= Duration::from_secs(30) && d > Duration::from_secs(29),
                "{d:?}"
            )
        }
        other => panic!("expected an expiring key, got {other:?}"),
    }
    // A key set with a tiny TTL really expires.
    cache
        .set("blink", &1, Some(Duration::from_millis(30)))
        .await
        .unwrap();
    let gone = support::util::eventually(Duration::from_secs(2), || async {
        !raw_exists(server, "t:blink")
    })
    .await;
    assert!(gone.is_some(), "key with a 30 ms TTL never expired");
    assert_eq!(cache.get::<i32>("blink").await, None);
}

async fn ttls_without_jitter_are_exact(server: &Backing) {
    let cache = Cache::connect(
        config(server)
            .default_ttl(Duration::from_secs(600))
            .build()
            .unwrap(),
    )
    .await
    .unwrap();

    cache
        .set("one", &1, Some(Duration::from_secs(100)))
        .await
        .unwrap();
    cache.set("default", &1, None).await.unwrap();
    cache
        .set_many(&[("m1", 1), ("m2", 2)], Some(Duration::from_secs(40)))
        .await
        .unwrap();

    let ms = pttl(server, "t:one");
    assert!((99_000..=100_000).contains(&ms), "PTTL {ms}");
    assert!((99..=100).contains(&ttl_secs(server, "t:one")));
    let ms = pttl(server, "t:default");
    assert!((599_000..=600_000).contains(&ms), "PTTL {ms}");
    for key in ["t:m1", "t:m2"] {
        let ms = pttl(server, key);
        assert!((39_000..=40_000).contains(&ms), "{key} PTTL {ms}");
    }
}

async fn ttls_with_jitter_stay_within_ten_percent_and_vary(server: &Backing) {
    let cache = Cache::connect(
        config(server)
            .ttl_jitter(0.1)
            .default_ttl(Duration::from_secs(1000))
            .build()
            .unwrap(),
    )
    .await
    .unwrap();

    let ttl = Duration::from_secs(100);
    for i in 0..20 {
        cache.set(&format!("j{i}"), &i, Some(ttl)).await.unwrap();
    }
    let items: Vec<(String, i32)> = (0..20).map(|i| (format!("m{i}"), i)).collect();
    cache.set_many(&items, Some(ttl)).await.unwrap();
    cache.set("d", &0, None).await.unwrap();

    let mut seen = std::collections::BTreeSet::new();
    for i in 0..20 {
        for key in [format!("t:j{i}"), format!("t:m{i}")] {
            let ms = pttl(server, &key);
            assert!((89_000..=100_000).contains(&ms), "{key} PTTL {ms}");
            let secs = ttl_secs(server, &key);
            assert!((89..=100).contains(&secs), "{key} TTL {secs}");
            seen.insert(ms / 100);
        }
    }
    assert!(seen.len() > 5, "jitter should spread expiries: {seen:?}");
    let ms = pttl(server, "t:d");
    assert!((899_000..=1_000_000).contains(&ms), "default TTL {ms}");
}

async fn oversized_values_and_invalid_keys_never_reach_redis(server: &Backing) {
    let cache = Cache::connect(config(server).max_value_bytes(64).build().unwrap())
        .await
        .unwrap();

    let big = "x".repeat(100);
    let err = cache.set("big", &big, None).await.unwrap_err();
    assert!(
        matches!(err, Error::ValueTooLarge { limit: 64, .. }),
        "{err}"
    );
    assert!(err.is_caller_error() && !err.is_transient());
    assert!(cache.try_set("big", &big, None).await.is_err());
    let err = cache
        .set_many(&[("ok", "small".to_owned()), ("big", big.clone())], None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ValueTooLarge { .. }), "{err}");

    let too_long = "k".repeat(1100);
    for key in [
        "",
        "a\nb",
        "nul\0",
        "bell\u{7}",
        "del\u{7f}",
        too_long.as_str(),
    ] {
        let err = cache.set(key, &1, None).await.unwrap_err();
        assert!(matches!(err, Error::InvalidKey { .. }), "{key:?}: {err}");
        assert!(err.is_caller_error());
        assert!(matches!(
            cache.try_get::<i32>(key).await,
            Err(Error::InvalidKey { .. })
        ));
        assert_eq!(cache.get::<i32>(key).await, None);
        assert!(
            cache
                .set_many(&[("fine", 1), (key, 2)], None)
                .await
                .is_err()
        );
        assert!(cache.try_increment(key, 1).await.is_err());
        assert!(cache.try_exists(key).await.is_err());
        assert!(cache.try_delete(key).await.is_err());
        assert!(cache.try_expire(key, Duration::from_secs(1)).await.is_err());
        assert!(cache.try_ttl(key).await.is_err());
    }
    // Nothing reached Redis, and nothing was counted as skipped.
    assert_eq!(dbsize(server), 0);
    assert!(!raw_exists(server, "t:fine"));
    let s = cache.stats();
    assert_eq!((s.sets, s.sets_skipped), (0, 0), "{s:?}");
    // Values right at the limit are fine: 64 bytes of JSON.
    let fits = "y".repeat(62);
    cache.set("fits", &fits, None).await.unwrap();
    assert_eq!(raw_get(server, "t:fits").map(|v| v.len()), Some(64));
}

#[tokio::test]
async fn disabled_cache_misses_everything_without_network() {
    let server = RedisServer::start();
    let configured = Cache::connect(config(&server).enabled(false).build().unwrap())
        .await
        .unwrap();
    for cache in [configured, Cache::disabled()] {
        assert!(!cache.is_enabled());
        cache.set("k", &1, None).await.unwrap();
        cache.set_many(&[("a", 1)], None).await.unwrap();
        assert_eq!(cache.get::<i32>("k").await, None);
        assert_eq!(
            cache.get_many::<i32, _>(&["k", "a"]).await,
            vec![None, None]
        );
        assert_eq!(cache.increment("n", 1).await, None);
        assert!(!cache.exists("k").await);
        assert!(!cache.delete("k").await);
        assert_eq!(cache.ttl("k").await, None);
        assert!(matches!(
            cache.try_get::<i32>("k").await,
            Err(Error::Disabled)
        ));
        assert!(matches!(
            cache.try_set("k", &1, None).await,
            Err(Error::Disabled)
        ));
        assert!(matches!(
            cache.clear_namespace().await,
            Err(Error::Disabled)
        ));
        let loaded = std::sync::atomic::AtomicUsize::new(0);
        let entries = (0..3)
            .map(|i| {
                ngx_cache::WarmEntry::new(
                    format!("w{i}"),
                    ngx_cache::EntryOptions::new(),
                    || async { Ok::<_, std::io::Error>(1) },
                )
            })
            .collect();
        let report = cache
            .warm(entries, 2, |_| {
                loaded.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            })
            .await;
        assert_eq!(
            (report.total, report.done, report.skipped),
            (3, 0, 3),
            "nothing is cached, so nothing is warmed"
        );
        assert_eq!(loaded.into_inner(), 1, "one progress call, no loads");
        let health = cache.health_check().await;
        assert_eq!(health.status, "disabled");
        assert!(!health.healthy);
        assert!(!cache.stats().connected);
    }
    assert_eq!(dbsize(&server), 0);
    // In the end the server lists only the connection asking. It may
    // still list a test connection closed a moment ago (the start-up
    // probe's, or an earlier query's); a connection the cache held would
    // stay listed.
    let settled = support::util::eventually(Duration::from_secs(2), || async {
        connected_clients(&server) == 1
    })
    .await;
    assert!(
        settled.is_some(),
        "{} clients listed, only the asking one expected",
        connected_clients(&server)
    );
}

fn connected_clients(server: &RedisServer) -> usize {
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query(&mut server.conn())
        .unwrap();
    list.lines().count()
}

/// The futures of the public async API can move across threads (spawned on
/// a multi-threaded runtime, held across `.await` in axum handlers).
#[test]
fn futures_are_send() {
    fn is_send<T: Send>(_: T) {}
    let cache = Cache::disabled();
    let keys = ["a", "b"];
    let items = [("a", 1u8)];
    is_send(cache.get::<Profile>("k"));
    is_send(cache.try_get::<Profile>("k"));
    is_send(cache.set("k", &profile(1), None));
    is_send(cache.try_set("k", &profile(1), None));
    is_send(cache.try_set_with_codec("k", &1, None, ngx_cache::Codec::MessagePack));
    is_send(cache.get_many::<Profile, _>(&keys));
    is_send(cache.try_get_many::<Profile, _>(&keys));
    is_send(cache.set_many(&items, None));
    is_send(cache.try_set_many(&items, None));
    is_send(cache.increment("k", 1));
    is_send(cache.try_increment("k", 1));
    is_send(cache.decrement("k", 1));
    is_send(cache.exists("k"));
    is_send(cache.try_exists("k"));
    is_send(cache.delete("k"));
    is_send(cache.try_delete("k"));
    is_send(cache.expire("k", Duration::from_secs(1)));
    is_send(cache.try_expire("k", Duration::from_secs(1)));
    is_send(cache.ttl("k"));
    is_send(cache.try_ttl("k"));
    is_send(cache.clear_namespace());
    is_send(cache.health_check());
    is_send(Cache::connect(CacheConfig::default()));
    is_send(Cache::connect_lazy(CacheConfig::default()));
    fn is_sync<T: Send + Sync + Clone + 'static>(_: &T) {}
    is_sync(&cache);
}

/// The state a task holds while a call waits for Redis stays small: work
/// that runs only on rare paths (the breaker's probe waiting for a
/// connection, an invalidation sent without the publisher task) is boxed,
/// so it does not size every call's state (about 1,200 bytes for a `get`
/// or a `set`; over 4 KB when those paths are inline).
#[test]
fn a_call_in_flight_holds_little_state() {
    const LIMIT: usize = 2_048;
    let cache = Cache::disabled();
    let value = profile(1);
    let keys = ["a", "b"];
    let opts = EntryOptions::new();
    let sizes = [
        ("get", std::mem::size_of_val(&cache.get::<Profile>("k"))),
        ("set", std::mem::size_of_val(&cache.set("k", &value, None))),
        ("delete", std::mem::size_of_val(&cache.delete("k"))),
        (
            "get_many",
            std::mem::size_of_val(&cache.get_many::<Profile, _>(&keys)),
        ),
        (
            "get_or_load",
            std::mem::size_of_val(
                &cache.get_or_load("k", &opts, || async { Ok::<_, std::io::Error>(profile(2)) }),
            ),
        ),
    ];
    for (name, size) in sizes {
        assert!(
            size <= LIMIT,
            "{name}: {size} bytes in flight (limit {LIMIT})"
        );
    }
}

crate::on_single_and_cluster!(
    get_and_set_round_trip_and_count_hits_and_misses,
    get_many_and_set_many_keep_order_and_report_misses,
    increment_and_decrement_are_atomic_counters,
    exists_delete_and_expire,
    versioned_writes_keep_the_newest_state,
    ttl_reports_missing_persistent_and_expiring_keys,
    ttls_without_jitter_are_exact,
    ttls_with_jitter_stay_within_ten_percent_and_vary,
    oversized_values_and_invalid_keys_never_reach_redis,
);
