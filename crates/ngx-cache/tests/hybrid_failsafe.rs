//! Fail-safe: a value past its logical TTL is served (flagged stale) when the
//! loader fails, times out or is slow, or when Redis is down, within the
//! fail-safe window; a throttle keeps the failing loader from being retried
//! at once; past the window the error reaches the caller.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ngx_cache::{BreakerConfig, Cache, EntryOptions, LoadError, Loaded, Source};
use support::hybrid::instance;
use support::server::RedisServer;
use support::util::{config, eventually, timed};

type Io<T> = Result<T, std::io::Error>;

fn ok(v: &str) -> impl FnOnce() -> std::future::Ready<Io<String>> + Send + 'static {
    let v = v.to_owned();
    move || std::future::ready(Ok(v))
}

/// A loader that counts its calls and fails.
fn failing(
    calls: &Arc<AtomicUsize>,
) -> impl FnOnce() -> std::future::Ready<Io<String>> + Send + 'static {
    let calls = calls.clone();
    move || {
        calls.fetch_add(1, Ordering::SeqCst);
        std::future::ready(Err(std::io::Error::other("database down")))
    }
}

async fn entry(
    cache: &Cache,
    opts: &EntryOptions,
    calls: &Arc<AtomicUsize>,
) -> Result<Loaded<String>, LoadError<std::io::Error>> {
    cache.get_or_load_entry("k", opts, failing(calls)).await
}

#[tokio::test]
async fn with_redis_killed_a_stale_value_is_served_inside_the_window_then_the_error() {
    let mut server = RedisServer::start();
    let cache = Cache::connect(
        config(&server)
            .breaker(BreakerConfig::new(3, Duration::from_secs(30)))
            .build()
            .unwrap(),
    )
    .await
    .unwrap();
    let ttl = Duration::from_millis(300);
    let window = Duration::from_millis(900);
    // Tagged: with Redis down, tag versions cannot be checked, and must not
    // make the fallback unusable.
    let opts = EntryOptions::new()
        .ttl(ttl)
        .tag("customer:1")
        .fail_safe(window)
        .fail_safe_throttle(Duration::from_secs(5));
    let loaded = cache.get_or_load_entry("k", &opts, ok("v1")).await.unwrap();
    assert_eq!(loaded.source, Source::Loader);
    let start = std::time::Instant::now();

    tokio::time::sleep(ttl + Duration::from_millis(100)).await;
    server.kill();
    let calls = Arc::new(AtomicUsize::new(0));
    let (got, took) = timed(entry(&cache, &opts, &calls)).await;
    let got = got.unwrap();
    assert_eq!((got.value.as_str(), got.source), ("v1", Source::Stale));
    assert!(got.is_stale());
    assert!(took < Duration::from_millis(500), "took {took:?}");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(cache.stats().stale_served, 1);

    // The throttle: the next calls are answered with the stale value without
    // calling the failing loader again.
    for _ in 0..3 {
        let got = entry(&cache, &opts, &calls).await.unwrap();
        assert_eq!((got.value.as_str(), got.source), ("v1", Source::Stale));
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "throttle ignored: {:?}",
        cache.stats()
    );
    assert_eq!(cache.stats().stale_served, 4);

    // Past the window (and although the throttle is longer) the error comes.
    let past = (ttl + window + Duration::from_millis(100)).saturating_sub(start.elapsed());
    tokio::time::sleep(past).await;
    match entry(&cache, &opts, &calls).await {
        Err(LoadError::Loader(e)) => assert_eq!(e.to_string(), "database down"),
        other => panic!("served past the fail-safe window: {other:?}"),
    }
}

/// Same with Redis up: the stale value comes from Redis (and L1), and the
/// throttle must not stretch the fail-safe window.
#[tokio::test]
async fn with_redis_up_the_throttle_ends_with_the_window() {
    let server = RedisServer::start();
    let [a, b] = [instance(&server).await, instance(&server).await];
    let ttl = Duration::from_millis(200);
    let window = Duration::from_millis(600);
    let opts = EntryOptions::new()
        .ttl(ttl)
        .fail_safe(window)
        .fail_safe_throttle(Duration::from_secs(5));
    a.get_or_load("k", &opts, ok("v1")).await.unwrap();
    let start = std::time::Instant::now();
    tokio::time::sleep(ttl + Duration::from_millis(50)).await;

    // B never had it in L1: the stale value comes from Redis.
    let calls = Arc::new(AtomicUsize::new(0));
    for cache in [&a, &b] {
        let got = entry(cache, &opts, &calls).await.unwrap();
        assert_eq!((got.value.as_str(), got.source), ("v1", Source::Stale));
        let again = entry(cache, &opts, &calls).await.unwrap();
        assert_eq!((again.value.as_str(), again.source), ("v1", Source::Stale));
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "one failed load per instance"
    );
    // A plain read never serves a stale value.
    assert_eq!(b.get::<String>("k").await, None);

    let past = (ttl + window + Duration::from_millis(100)).saturating_sub(start.elapsed());
    tokio::time::sleep(past).await;
    for cache in [&a, &b] {
        let res = entry(cache, &opts, &calls).await;
        assert!(matches!(res, Err(LoadError::Loader(_))), "{res:?}");
    }
}

#[tokio::test]
async fn without_fail_safe_the_loader_error_goes_to_the_caller() {
    let server = RedisServer::start();
    let cache = instance(&server).await;
    let opts = EntryOptions::new().ttl(Duration::from_millis(100));
    cache.get_or_load("k", &opts, ok("v1")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    let calls = Arc::new(AtomicUsize::new(0));
    assert!(matches!(
        entry(&cache, &opts, &calls).await,
        Err(LoadError::Loader(_))
    ));
    assert!(matches!(
        entry(&cache, &opts, &calls).await,
        Err(LoadError::Loader(_))
    ));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(cache.stats().stale_served, 0);
}

#[tokio::test]
async fn a_hard_timeout_with_a_stale_value_serves_it() {
    let server = RedisServer::start();
    let cache = instance(&server).await;
    let opts = EntryOptions::new()
        .ttl(Duration::from_millis(100))
        .fail_safe(Duration::from_secs(10))
        .hard_timeout(Duration::from_millis(100));
    cache.get_or_load("k", &opts, ok("v1")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    let (got, took) = timed(cache.get_or_load_entry("k", &opts, || async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        Ok::<_, std::io::Error>("late".to_owned())
    }))
    .await;
    let got = got.unwrap();
    assert_eq!((got.value.as_str(), got.source), ("v1", Source::Stale));
    assert!(took < Duration::from_millis(600), "took {took:?}");
}

#[tokio::test]
async fn a_slow_loader_past_the_soft_timeout_gets_the_stale_value_then_refreshes() {
    let server = RedisServer::start();
    let [a, b] = [instance(&server).await, instance(&server).await];
    let ttl = Duration::from_millis(200);
    let opts = EntryOptions::new()
        .ttl(ttl)
        .fail_safe(Duration::from_secs(30))
        .soft_timeout(Duration::from_millis(100));
    a.get_or_load("k", &opts, ok("v1")).await.unwrap();
    tokio::time::sleep(ttl + Duration::from_millis(50)).await;

    let calls = Arc::new(AtomicUsize::new(0));
    let slow = {
        let calls = calls.clone();
        move || async move {
            calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_secs(2)).await;
            Ok::<_, std::io::Error>("v2".to_owned())
        }
    };
    let (got, took) = timed(a.get_or_load_entry("k", &opts, slow)).await;
    let got = got.unwrap();
    assert_eq!((got.value.as_str(), got.source), ("v1", Source::Stale));
    assert!(
        took < Duration::from_millis(500),
        "soft timeout took {took:?}"
    );
    assert_eq!(a.stats().stale_served, 1);

    // The load goes on in the background; meanwhile callers get the stale
    // value without starting another load; then the cache holds v2.
    let unexpected = Arc::new(AtomicUsize::new(0));
    let refreshed = eventually(Duration::from_secs(4), || async {
        let u = unexpected.clone();
        let got = a
            .get_or_load_entry("k", &opts, move || async move {
                u.fetch_add(1, Ordering::SeqCst);
                Ok::<_, std::io::Error>("v3".to_owned())
            })
            .await
            .unwrap();
        got.value == "v2"
    })
    .await;
    assert!(refreshed.is_some(), "{:?}", a.stats());
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(
        unexpected.load(Ordering::SeqCst),
        0,
        "a second load started"
    );
    // Redis holds it too: another instance reads v2 fresh.
    let got = b.get_or_load_entry("k", &opts, ok("v4")).await.unwrap();
    assert_eq!(got.value, "v2");
    assert_ne!(got.source, Source::Stale);
}
