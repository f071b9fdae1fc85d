//! `get_or_load`: single-flight in one process and across instances,
//! negative caching, the hard timeout, eager refresh, warming, and reading
//! envelopes (tags, fail-safe metadata) and corrupt bytes.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ngx_cache::{Cache, EntryOptions, LoadError, Source, WarmEntry};
use support::hybrid::{LAG_BOUND, behind_stalling_proxy, instance, instances};
use support::server::RedisServer;
use support::target::Backing;
use support::util::{eventually, lease_keys, pttl, raw_exists, raw_get, raw_set, timed};

type Io<T> = Result<T, std::io::Error>;

fn counter() -> Arc<AtomicUsize> {
    Arc::new(AtomicUsize::new(0))
}

/// A loader that counts its calls and returns `value` after `delay`.
fn counting<T: Send + 'static>(
    calls: &Arc<AtomicUsize>,
    delay: Duration,
    value: T,
) -> impl FnOnce() -> futures::future::BoxFuture<'static, Io<T>> + Send + 'static {
    let calls = calls.clone();
    move || {
        Box::pin(async move {
            calls.fetch_add(1, Ordering::SeqCst);
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            Ok(value)
        })
    }
}

async fn stampede(cache: &Cache, key: &str, n: usize, delay: Duration) -> usize {
    let calls = counter();
    let opts = EntryOptions::new().ttl(Duration::from_secs(60));
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let (cache, opts, key) = (cache.clone(), opts.clone(), key.to_owned());
            let loader = counting(&calls, delay, "value".to_owned());
            tokio::spawn(async move { cache.get_or_load(&key, &opts, loader).await })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), "value");
    }
    calls.load(Ordering::SeqCst)
}

async fn a_thousand_concurrent_misses_run_the_loader_once(server: &Backing) {
    let cache = instance(server).await;
    assert_eq!(
        stampede(&cache, "slow", 1000, Duration::from_millis(50)).await,
        1
    );
    let s = cache.stats();
    assert_eq!(s.loads, 1, "{s:?}");
    // Every other caller joined the load in flight, or (a task that was
    // scheduled after the fill, on a loaded machine) hit what it filled.
    assert_eq!(s.coalesced_waits + s.l1_hits + s.l2_hits, 999, "{s:?}");
    assert!(s.coalesced_waits > 0, "{s:?}");
    // Everybody after the load is a hit.
    assert_eq!(stampede(&cache, "slow", 10, Duration::ZERO).await, 0);
}

/// A loader that answers at once finishes (fills and leaves the flight map)
/// while late callers are still on their way from their own Redis miss; they
/// must not start a second load.
async fn a_thousand_concurrent_misses_with_an_instant_loader_run_it_once(server: &Backing) {
    let cache = instance(server).await;
    for round in 0..5 {
        let key = format!("instant{round}");
        let calls = stampede(&cache, &key, 1000, Duration::ZERO).await;
        assert_eq!(calls, 1, "round {round}: {:?}", cache.stats());
    }
}

async fn instances_missing_together_load_about_once(server: &Backing) {
    let caches = instances(server, 4).await;
    let calls = counter();
    let opts = EntryOptions::new().ttl(Duration::from_secs(60));
    let barrier = Arc::new(tokio::sync::Barrier::new(caches.len()));
    let tasks: Vec<_> = caches
        .iter()
        .map(|c| {
            let (c, opts, barrier) = (c.clone(), opts.clone(), barrier.clone());
            let loader = counting(&calls, Duration::from_millis(200), "shared".to_owned());
            tokio::spawn(async move {
                barrier.wait().await;
                c.get_or_load_entry("dist", &opts, loader).await.unwrap()
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().value, "shared");
    }
    let loads = calls.load(Ordering::SeqCst);
    let waits: u64 = caches.iter().map(|c| c.stats().distributed_waits).sum();
    assert!(loads <= 2, "{loads} loads for {} instances", caches.len());
    assert!(
        waits as usize >= caches.len() - loads,
        "distributed waits {waits}"
    );
    // The lease is gone after the fill.
    assert_eq!(lease_keys(server), Vec::<String>::new());
}

async fn none_is_not_cached_unless_negative_caching_is_asked_for(server: &Backing) {
    let [a, b] = <[Cache; 2]>::try_from(instances(server, 2).await).unwrap();
    let calls = counter();
    let plain = EntryOptions::new().ttl(Duration::from_secs(60));
    for _ in 0..2 {
        let got: Option<String> = a
            .get_or_load("absent", &plain, counting(&calls, Duration::ZERO, None))
            .await
            .unwrap();
        assert_eq!(got, None);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 2, "None was cached");
    assert!(!raw_exists(server, "t:absent"));

    let negative = plain.clone().negative_ttl(Duration::from_secs(2));
    let got: Option<String> = a
        .get_or_load("gone", &negative, counting(&calls, Duration::ZERO, None))
        .await
        .unwrap();
    assert_eq!(got, None);
    let ms = pttl(server, "t:gone");
    assert!((1500..=2000).contains(&ms), "negative entry PTTL {ms}");
    // Another instance gets the cached None without loading.
    let got = b
        .get_or_load_entry(
            "gone",
            &negative,
            counting(&calls, Duration::ZERO, None::<String>),
        )
        .await
        .unwrap();
    assert_eq!((got.value, got.source), (None, Source::L2));
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    // A real value still gets the normal TTL.
    let got: Option<String> = a
        .get_or_load(
            "present",
            &negative,
            counting(&calls, Duration::ZERO, Some("x".into())),
        )
        .await
        .unwrap();
    assert_eq!(got.as_deref(), Some("x"));
    assert!(pttl(server, "t:present") > 50_000);
}

async fn the_hard_timeout_bounds_a_loader_without_stale_value(server: &Backing) {
    let cache = instance(server).await;
    let opts = EntryOptions::new().hard_timeout(Duration::from_millis(100));
    let calls = counter();
    let (res, took) = timed(cache.get_or_load::<String, _, _, _>(
        "hung",
        &opts,
        counting(&calls, Duration::from_secs(2), "late".to_owned()),
    ))
    .await;
    assert!(
        matches!(res, Err(LoadError::Timeout(d)) if d == Duration::from_millis(100)),
        "{res:?}"
    );
    assert!(took < Duration::from_millis(600), "took {took:?}");
    assert_eq!(cache.stats().load_failures, 1);
    assert!(!raw_exists(server, "t:hung"));
    // The lease was released: the next call loads at once.
    assert_eq!(lease_keys(server), Vec::<String>::new());
    let v = cache
        .get_or_load(
            "hung",
            &opts,
            counting(&calls, Duration::ZERO, "ok".to_owned()),
        )
        .await
        .unwrap();
    assert_eq!(v, "ok");
}

async fn a_loader_error_reaches_every_waiter_and_is_not_cached(server: &Backing) {
    let cache = instance(server).await;
    let opts = EntryOptions::new();
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (cache, opts) = (cache.clone(), opts.clone());
            tokio::spawn(async move {
                cache
                    .get_or_load::<String, _, _, _>("bad", &opts, || async {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Err(std::io::Error::other("db down"))
                    })
                    .await
            })
        })
        .collect();
    for t in tasks {
        match t.await.unwrap() {
            Err(LoadError::Loader(e)) => assert_eq!(e.to_string(), "db down"),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(cache.stats().loads, 1);
    assert!(!raw_exists(server, "t:bad"));
}

async fn eager_refresh_reloads_a_hot_key_once_before_it_expires(server: &Backing) {
    let cache = instance(server).await;
    let ttl = Duration::from_millis(400);
    let opts = EntryOptions::new().ttl(ttl).eager_refresh(0.5);
    let calls = counter();
    let loader = |calls: &Arc<AtomicUsize>| {
        let calls = calls.clone();
        move || async move {
            let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
            tokio::time::sleep(Duration::from_millis(50)).await;
            Ok::<_, std::io::Error>(format!("v{n}"))
        }
    };
    let first = cache
        .get_or_load_entry("hot", &opts, loader(&calls))
        .await
        .unwrap();
    assert_eq!((first.value.as_str(), first.source), ("v1", Source::Loader));
    // Before the refresh point: plain L1 hits.
    let early = cache
        .get_or_load_entry("hot", &opts, loader(&calls))
        .await
        .unwrap();
    assert_eq!((early.value.as_str(), early.source), ("v1", Source::L1));
    assert_eq!(cache.stats().eager_refreshes, 0);

    tokio::time::sleep(ttl.mul_f64(0.6)).await;
    // Hits past 50% of the TTL are served at once and start one refresh.
    for _ in 0..20 {
        let hit = cache
            .get_or_load_entry("hot", &opts, loader(&calls))
            .await
            .unwrap();
        assert_eq!(hit.value, "v1", "{hit:?}");
    }
    let refreshed = eventually(Duration::from_secs(1), || async {
        cache
            .get_or_load("hot", &opts, loader(&calls))
            .await
            .unwrap()
            == "v2"
    })
    .await;
    assert!(refreshed.is_some(), "{:?}", cache.stats());
    assert_eq!(calls.load(Ordering::SeqCst), 2, "{:?}", cache.stats());
    let s = cache.stats();
    assert_eq!(s.eager_refreshes, 1, "{s:?}");
    // Redis holds the refreshed value, so another instance sees it too.
    let other = instance(server).await;
    assert_eq!(other.get::<String>("hot").await.as_deref(), Some("v2"));
}

async fn warm_loads_with_bounded_concurrency_and_reports_progress(server: &Backing) {
    let cache = instance(server).await;
    let running = counter();
    let peak = counter();
    let entries: Vec<WarmEntry<u32, std::io::Error>> = (0..50u32)
        .map(|i| {
            let (running, peak) = (running.clone(), peak.clone());
            WarmEntry::new(format!("w:{i}"), EntryOptions::new(), move || async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(5)).await;
                running.fetch_sub(1, Ordering::SeqCst);
                if i == 17 {
                    Err(std::io::Error::other("no row"))
                } else {
                    Ok(i * 10)
                }
            })
        })
        .collect();
    let calls = std::sync::Mutex::new(Vec::new());
    let report = cache
        .warm(entries, 4, |p| calls.lock().unwrap().push(*p))
        .await;
    assert_eq!((report.total, report.done, report.failed), (50, 49, 1));
    let calls = calls.into_inner().unwrap();
    assert_eq!(calls.len(), 50);
    assert!(
        calls
            .windows(2)
            .all(|w| w[1].done + w[1].failed == w[0].done + w[0].failed + 1)
    );
    assert_eq!(calls.last().copied(), Some(report));
    let peak = peak.load(Ordering::SeqCst);
    assert!((1..=4).contains(&peak), "peak concurrency {peak}");
    for i in 0..50u32 {
        let stored = raw_get(server, &format!("t:w:{i}"));
        if i == 17 {
            assert_eq!(stored, None);
        } else {
            assert_eq!(stored, Some((i * 10).to_string().into_bytes()), "w:{i}");
        }
    }
}

async fn plain_get_reads_envelopes_written_by_get_or_load(server: &Backing) {
    let [a, b] = <[Cache; 2]>::try_from(instances(server, 2).await).unwrap();
    let opts = EntryOptions::new()
        .ttl(Duration::from_millis(300))
        .tag("customer:1")
        .fail_safe(Duration::from_secs(10))
        .eager_refresh(0.9);
    let v = a
        .get_or_load("env", &opts, || async {
            Ok::<_, std::io::Error>(vec![1u8, 2, 3])
        })
        .await
        .unwrap();
    assert_eq!(v, vec![1, 2, 3]);
    let stored = raw_get(server, "t:env").unwrap();
    assert!(
        stored.starts_with(br#"{"ngx":1,"#),
        "stored as a JSON envelope: {}",
        String::from_utf8_lossy(&stored)
    );
    assert_eq!(b.get::<Vec<u8>>("env").await, Some(vec![1, 2, 3]));
    let many: Vec<Option<Vec<u8>>> = b.get_many(&["env", "nothing"]).await;
    assert_eq!(many, vec![Some(vec![1, 2, 3]), None]);
    // Past the logical TTL the value is only a fail-safe fallback: a plain
    // read (no loader to fall back from) is a miss, on every instance.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let fresh = instance(server).await;
    assert_eq!(fresh.get::<Vec<u8>>("env").await, None);
    assert_eq!(b.get::<Vec<u8>>("env").await, None);
    assert_eq!(a.get::<Vec<u8>>("env").await, None);
    assert!(raw_exists(server, "t:env"), "kept for fail-safe");
}

async fn corrupt_envelopes_are_a_miss_and_evicted(server: &Backing) {
    let cache = instance(server).await;
    // Truncated header.
    raw_set(server, "t:trunc", &[0x03, 0x01, 0xff]);
    assert_eq!(cache.get::<String>("trunc").await, None);
    assert!(!raw_exists(server, "t:trunc"));
    // A well-formed header around an undecodable payload.
    let opts = EntryOptions::new().tag("x");
    cache.set_with("bad", &"value", &opts).await.unwrap();
    let mut bytes = raw_get(server, "t:bad").unwrap();
    let n = bytes.len();
    bytes[n - 3..].copy_from_slice(b"\xff\xfe{");
    raw_set(server, "t:bad", &bytes);
    assert_eq!(cache.get::<String>("bad").await, None);
    assert!(!raw_exists(server, "t:bad"));
    // get_or_load treats it as a miss and repairs it.
    raw_set(server, "t:bad", &bytes);
    let v = cache
        .get_or_load("bad", &opts, || async {
            Ok::<_, std::io::Error>("fixed".to_owned())
        })
        .await
        .unwrap();
    assert_eq!(v, "fixed");
    assert_eq!(cache.get::<String>("bad").await.as_deref(), Some("fixed"));
    let s = cache.stats();
    assert_eq!(s.corrupt_evicted, 3, "{s:?}");
}

#[tokio::test]
async fn values_that_look_like_envelopes_round_trip() {
    #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
    struct LooksLikeEnvelope {
        ngx: u8,
        exp: u64,
        v: String,
    }
    let server = RedisServer::start();
    let [a, b] = <[Cache; 2]>::try_from(instances(&server, 2).await).unwrap();
    let value = LooksLikeEnvelope {
        ngx: 1,
        exp: 5,
        v: "payload".into(),
    };
    a.set("lookalike", &value, None).await.unwrap();
    assert_eq!(
        b.get::<LooksLikeEnvelope>("lookalike").await,
        Some(value.clone())
    );
    // Written by another client, unwrapped: still read as a plain value.
    raw_set(&server, "t:foreign", br#"{"ngx":1,"exp":5,"v":"payload"}"#);
    assert_eq!(b.get::<LooksLikeEnvelope>("foreign").await, Some(value));
    assert_eq!(b.stats().errors, 0);
}

/// How long the stalled fill below waits for Redis before it gives up.
const STALLED_FILL: Duration = Duration::from_secs(1);

/// One `get_or_load` whose loader stalls every Redis connection of the cache
/// (through a proxy) before returning, so the fill after it cannot finish:
/// how long the caller waited.
async fn load_while_redis_stalls(background_fill: bool) -> Duration {
    let server = RedisServer::start();
    let (cache, proxy) = behind_stalling_proxy(&server, STALLED_FILL).await;
    let opts = EntryOptions::new()
        .ttl(Duration::from_secs(60))
        .background_fill(background_fill);
    let stall = Arc::clone(&proxy);
    let (loaded, took) = timed(cache.get_or_load_entry("k", &opts, move || async move {
        stall.stall_existing();
        Ok::<_, std::io::Error>("loaded".to_owned())
    }))
    .await;
    let loaded = loaded.unwrap();
    assert_eq!(loaded.value, "loaded");
    assert_eq!(loaded.source, Source::Loader);
    took
}

/// With `background_fill` the caller has the loaded value while the write
/// to Redis still waits; without it, the caller waits for the write.
#[tokio::test]
async fn a_background_fill_answers_before_redis_does() {
    let background = load_while_redis_stalls(true).await;
    assert!(
        background < STALLED_FILL / 2,
        "answered after {background:?}, the fill waits up to {STALLED_FILL:?}"
    );
    let foreground = load_while_redis_stalls(false).await;
    assert!(
        foreground >= STALLED_FILL * 9 / 10,
        "the default answers after the fill: {foreground:?}"
    );
}

/// The value of a background fill reaches Redis and L1 after the caller
/// has it, without another load: callers that come while the fill runs
/// join the load, those after it hit.
async fn a_background_fill_lands_and_the_value_loads_once(server: &Backing) {
    let cache = instance(server).await;
    let calls = counter();
    let opts = EntryOptions::new()
        .ttl(Duration::from_secs(60))
        .background_fill(true);
    let first = cache
        .get_or_load_entry("bg", &opts, counting(&calls, Duration::ZERO, 7u32))
        .await
        .unwrap();
    assert_eq!((first.value, first.source), (7, Source::Loader));
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (cache, opts) = (cache.clone(), opts.clone());
            let loader = counting(&calls, Duration::ZERO, 8u32);
            tokio::spawn(async move { cache.get_or_load("bg", &opts, loader).await })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), 7);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1, "{:?}", cache.stats());
    let landed = eventually(LAG_BOUND, || async { raw_get(server, "t:bg").is_some() }).await;
    assert!(landed.is_some(), "the fill never reached Redis");
    assert!(
        eventually(LAG_BOUND, || async { lease_keys(server).is_empty() })
            .await
            .is_some(),
        "the lease outlived the fill: {:?}",
        lease_keys(server)
    );
    // A second instance reads what the fill wrote.
    let other = instance(server).await;
    let read = other
        .get_or_load_entry("bg", &opts, counting(&calls, Duration::ZERO, 9u32))
        .await
        .unwrap();
    assert_eq!((read.value, read.source), (7, Source::L2));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

/// A `get_or_load` of `key` whose loader is held until the test lets it
/// go: the test reads Redis while the load runs.
struct HeldLoad {
    entered: tokio::sync::oneshot::Receiver<()>,
    release: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<ngx_cache::Loaded<String>, LoadError<std::io::Error>>>,
}

impl HeldLoad {
    fn start(cache: &Cache, key: &str, opts: &EntryOptions, value: &str) -> Self {
        let (entered_tx, entered) = tokio::sync::oneshot::channel();
        let (release, release_rx) = tokio::sync::oneshot::channel::<()>();
        let (cache, key, opts, value) = (
            cache.clone(),
            key.to_owned(),
            opts.clone(),
            value.to_owned(),
        );
        let task = tokio::spawn(async move {
            cache
                .get_or_load_entry(&key, &opts, move || async move {
                    let _ = entered_tx.send(());
                    let _ = release_rx.await;
                    Ok::<_, std::io::Error>(value)
                })
                .await
        });
        Self {
            entered,
            release,
            task,
        }
    }

    /// Waits until the loader runs, calls `during`, then lets the loader
    /// return and waits for the caller's answer.
    async fn run_through<F: std::future::Future<Output = ()>>(
        self,
        during: F,
    ) -> ngx_cache::Loaded<String> {
        self.entered.await.expect("the loader ran");
        during.await;
        self.release.send(()).expect("the loader waits");
        self.task.await.unwrap().unwrap()
    }
}

/// With `skip_lease` the loader runs with no lease in Redis (the default
/// load holds one at that point), and the fill is a plain `SET` that
/// another instance reads.
async fn a_load_without_a_lease_takes_none_and_fills_with_a_set(server: &Backing) {
    let cache = instance(server).await;
    for (skip, key) in [(false, "leased"), (true, "free")] {
        let opts = EntryOptions::new()
            .ttl(Duration::from_secs(60))
            .skip_lease(skip);
        let mut leases = Vec::new();
        let loaded = HeldLoad::start(&cache, key, &opts, "v")
            .run_through(async { leases = lease_keys(server) })
            .await;
        assert_eq!(
            (loaded.value.as_str(), loaded.source),
            ("v", Source::Loader)
        );
        assert_eq!(
            leases.len(),
            usize::from(!skip),
            "skip_lease {skip}: {leases:?}"
        );
        assert!(
            raw_get(server, &format!("t:{key}")).is_some(),
            "{key} not filled"
        );
        let read = instance(server)
            .await
            .get_or_load_entry(key, &opts, || async {
                Ok::<_, std::io::Error>("reloaded".to_owned())
            })
            .await
            .unwrap();
        assert_eq!((read.value.as_str(), read.source), ("v", Source::L2));
    }
    assert_eq!(lease_keys(server), Vec::<String>::new());
    assert_eq!(cache.stats().fills_rejected, 0, "{:?}", cache.stats());
}

/// A load without a lease that raced an invalidation of one of its tags
/// still fills, but what it wrote carries the tag's old version: every
/// instance reads it as a miss and loads again.
async fn a_load_without_a_lease_that_raced_its_tag_is_a_miss(server: &Backing) {
    let [a, b] = <[Cache; 2]>::try_from(instances(server, 2).await).unwrap();
    let opts = EntryOptions::new()
        .ttl(Duration::from_secs(60))
        .tag("customer:7")
        .skip_lease(true);
    let loaded = HeldLoad::start(&a, "computed", &opts, "before")
        .run_through(async {
            assert!(b.invalidate_tag("customer:7").await);
        })
        .await;
    // The caller has what its loader returned, and Redis holds it.
    assert_eq!(loaded.value, "before");
    assert!(raw_get(server, "t:computed").is_some());
    for cache in [&b, &a] {
        let again = eventually(LAG_BOUND, || async {
            let read = cache
                .get_or_load_entry("computed", &opts, || async {
                    Ok::<_, std::io::Error>("after".to_owned())
                })
                .await
                .unwrap();
            read.value == "after"
        })
        .await;
        assert!(again.is_some(), "the raced fill was served");
    }
}

crate::on_single_and_cluster!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    a_thousand_concurrent_misses_run_the_loader_once,
    a_thousand_concurrent_misses_with_an_instant_loader_run_it_once,
    instances_missing_together_load_about_once,
    a_background_fill_lands_and_the_value_loads_once,
    a_load_without_a_lease_takes_none_and_fills_with_a_set,
    a_load_without_a_lease_that_raced_its_tag_is_a_miss,
);

crate::on_single_and_cluster!(
    none_is_not_cached_unless_negative_caching_is_asked_for,
    the_hard_timeout_bounds_a_loader_without_stale_value,
    a_loader_error_reaches_every_waiter_and_is_not_cached,
    eager_refresh_reloads_a_hot_key_once_before_it_expires,
    warm_loads_with_bounded_concurrency_and_reports_progress,
    plain_get_reads_envelopes_written_by_get_or_load,
    corrupt_envelopes_are_a_miss_and_evicted,
);
