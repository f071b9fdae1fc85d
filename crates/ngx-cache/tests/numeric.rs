//! Numeric edges: TTL settings have an upper bound ([`MAX_TTL`]) and an
//! error that names the variable; huge per-call TTLs and fail-safe windows
//! are clamped instead of truncated, wrapped or panicking; and a failure
//! seen on an old connection never drops the connection that replaced it.

mod support;

use std::time::Duration;

use ngx_cache::config::MAX_TTL;
use ngx_cache::{Cache, CacheConfig, EntryOptions, KeyTtl, LoadError};
use support::proxy::StallingProxy;
use support::server::RedisServer;
use support::util::config;

fn from(pairs: &[(&str, String)]) -> Result<CacheConfig, ngx_cache::ConfigError> {
    CacheConfig::from_lookup(|name| {
        pairs
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
    })
}

#[test]
fn ttl_variables_have_an_upper_bound() {
    assert_eq!(MAX_TTL, Duration::from_secs(365 * 24 * 3600));
    let max = MAX_TTL.as_secs();
    for var in [
        "CACHE_DEFAULT_TTL",
        "CACHE_L1_MAX_TTL",
        "CACHE_CIRCUIT_BREAKER_TIMEOUT",
    ] {
        for bad in [max + 1, u64::MAX] {
            let err = from(&[(var, bad.to_string())]).unwrap_err();
            assert_eq!(err.var, var, "{err}");
            assert!(err.to_string().contains("365 days"), "{err}");
        }
        from(&[(var, max.to_string())]).unwrap_or_else(|e| panic!("{var}={max}: {e}"));
    }
    // The builder checks the same bounds.
    let err = CacheConfig::builder()
        .default_ttl(Duration::MAX)
        .build()
        .unwrap_err();
    assert_eq!(err.var, "CACHE_DEFAULT_TTL");
    let err = CacheConfig::builder()
        .l1_max_ttl(MAX_TTL + Duration::from_secs(1))
        .build()
        .unwrap_err();
    assert_eq!(err.var, "CACHE_L1_MAX_TTL");
}

/// The TTL Redis holds for `key`, which must expire within `at_most`.
async fn expires_within(cache: &Cache, key: &str, at_most: Duration) {
    match cache.try_ttl(key).await.unwrap() {
        KeyTtl::Expires(left) => {
            assert!(left <= at_most, "{key}: {left:?} > {at_most:?}");
            assert!(left > MAX_TTL / 2, "{key}: {left:?} is not a long TTL");
        }
        other => panic!("{key}: {other:?}"),
    }
}

#[tokio::test]
async fn huge_ttls_are_clamped_not_wrapped() {
    let server = RedisServer::start();
    let cache = Cache::connect(config(&server).build().unwrap())
        .await
        .unwrap();
    let huge = [
        Duration::MAX,
        Duration::from_millis(u64::MAX),
        Duration::from_secs(u64::MAX / 1000 + 1),
        // 2^64 ms and a bit: truncated to a tiny PX by `as u64`.
        Duration::from_millis(u64::MAX) + Duration::from_millis(2),
    ];
    for (i, ttl) in huge.into_iter().enumerate() {
        // Plain value.
        let key = format!("plain{i}");
        cache.try_set(&key, &i, Some(ttl)).await.unwrap();
        assert_eq!(cache.get::<usize>(&key).await, Some(i), "{ttl:?}");
        expires_within(&cache, &key, MAX_TTL).await;

        // Envelope (tags), with a huge fail-safe on top.
        let key = format!("env{i}");
        let opts = EntryOptions::new().ttl(ttl).fail_safe(ttl).tag("t");
        cache.try_set_with(&key, &i, &opts).await.unwrap();
        assert_eq!(cache.get::<usize>(&key).await, Some(i));
        expires_within(&cache, &key, MAX_TTL * 2).await;

        // A load, filled under a lease.
        let key = format!("load{i}");
        let got: Result<usize, LoadError<std::io::Error>> = cache
            .get_or_load(&key, &opts, move || async move { Ok(i) })
            .await;
        assert_eq!(got.unwrap(), i);
        expires_within(&cache, &key, MAX_TTL * 2).await;

        // A negative entry and an explicit expiry.
        let key = format!("none{i}");
        let opts = EntryOptions::new().negative_ttl(ttl);
        let got: Result<Option<u8>, LoadError<std::io::Error>> =
            cache.get_or_load(&key, &opts, || async { Ok(None) }).await;
        assert_eq!(got.unwrap(), None);
        expires_within(&cache, &key, MAX_TTL).await;
        assert!(cache.try_expire(&format!("plain{i}"), ttl).await.unwrap());
        expires_within(&cache, &format!("plain{i}"), MAX_TTL).await;
    }
    assert_eq!(cache.stats().errors, 0);
}

/// One connection, stalled: two calls are in flight on it. The first one's
/// timeout drops it and a fresh connection replaces it; the second one's
/// timeout, seen later on the old connection, must leave the fresh one be.
#[tokio::test]
async fn a_failure_on_an_old_connection_keeps_the_new_one() {
    let server = RedisServer::start();
    let proxy = StallingProxy::start(server.port()).await;
    let op_timeout = Duration::from_millis(300);
    let cache = Cache::connect(
        CacheConfig::builder()
            .url(proxy.url())
            .namespace("t")
            .pool_size(1)
            .heal_after_timeouts(1)
            .op_timeout(op_timeout)
            .build()
            .unwrap(),
    )
    .await
    .unwrap();
    cache.try_set("k", &1, None).await.unwrap();
    proxy.stall_existing();

    let first = {
        let cache = cache.clone();
        tokio::spawn(async move { cache.try_get::<i32>("k").await })
    };
    tokio::time::sleep(op_timeout / 2).await;
    let second = {
        let cache = cache.clone();
        tokio::spawn(async move { cache.try_get::<i32>("k").await })
    };
    assert!(first.await.unwrap().unwrap_err().is_timeout());
    // The fresh connection works while the second call still waits.
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while cache.try_get::<i32>("k").await.ok() != Some(Some(1)) {
        assert!(std::time::Instant::now() < deadline, "never reconnected");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(cache.stats().reconnects, 1);
    assert!(second.await.unwrap().unwrap_err().is_timeout());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        cache.stats().reconnects,
        1,
        "the old connection's timeout dropped the new connection"
    );
    assert_eq!(cache.try_get::<i32>("k").await.unwrap(), Some(1));
}
