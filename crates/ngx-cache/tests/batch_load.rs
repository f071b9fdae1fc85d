//! `get_or_load_many`: one L1 pass, one Redis read, one loader call for the
//! keys still missing; single-flight with single-key loads in both
//! directions; no stale fill after a write during the load.

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ngx_cache::{Cache, EntryOptions, LoadError};
use redis::Commands;
use support::hybrid::{LAG_BOUND, behind_stalling_proxy, instance, instances};
use support::server::RedisServer;
use support::util::{eventually, raw_get, timed};
use tokio::sync::Notify;

type Io<T> = Result<T, std::io::Error>;

fn opts() -> EntryOptions {
    EntryOptions::new().ttl(Duration::from_secs(60))
}

fn keys(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("k{i}")).collect()
}

fn value_of(key: &str) -> String {
    format!("v-{key}")
}

/// Calls of `command` the server has run so far (`INFO commandstats`).
fn calls(server: &RedisServer, command: &str) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut server.conn())
        .unwrap();
    let prefix = format!("cmdstat_{command}:calls=");
    info.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |n| n.parse().unwrap())
}

/// A loader that records the keys it was asked for, waits for `gate` (when
/// given) and returns `value_of` for each key not in `leave_out`.
#[allow(clippy::type_complexity)]
fn recording(
    asked: &Arc<Mutex<Vec<Vec<String>>>>,
    started: Option<Arc<Notify>>,
    gate: Option<Arc<Notify>>,
    leave_out: &'static [&'static str],
) -> impl FnOnce(Vec<String>) -> futures::future::BoxFuture<'static, Io<HashMap<String, String>>>
+ Send
+ 'static {
    let asked = asked.clone();
    move |missing: Vec<String>| {
        Box::pin(async move {
            asked.lock().unwrap().push(missing.clone());
            if let Some(started) = started {
                started.notify_one();
            }
            if let Some(gate) = gate {
                gate.notified().await;
            }
            Ok(missing
                .into_iter()
                .filter(|k| !leave_out.contains(&k.as_str()))
                .map(|k| {
                    let v = value_of(&k);
                    (k, v)
                })
                .collect())
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_keys_with_ten_missing_take_one_read_and_one_loader_call() {
    let server = RedisServer::start();
    let caches = instances(&server, 2).await;
    let (writer, reader) = (&caches[0], &caches[1]);
    let all = keys(0..100);
    let present: Vec<(String, String)> = all
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 10 != 3)
        .map(|(_, k)| (k.clone(), value_of(k)))
        .collect();
    writer.set_many(&present, None).await.unwrap();
    // The writes' invalidation messages reach the reader first; one arriving
    // during the read below would rightly keep its key out of L1.
    let received = eventually(LAG_BOUND, || async {
        reader.stats().invalidations_received >= present.len() as u64
    })
    .await;
    assert!(received.is_some(), "{:?}", reader.stats());

    let asked = Arc::default();
    let mgets = calls(&server, "mget");
    let got: Vec<Option<String>> = reader
        .get_or_load_many(&all, &opts(), recording(&asked, None, None, &[]))
        .await
        .unwrap();
    assert_eq!(calls(&server, "mget") - mgets, 1, "one Redis read");
    let asked = asked.lock().unwrap().clone();
    assert_eq!(asked.len(), 1, "one loader call");
    let expected: Vec<String> = (0..100)
        .filter(|i| i % 10 == 3)
        .map(|i| format!("k{i}"))
        .collect();
    assert_eq!(asked[0], expected, "the loader gets only the missing keys");
    let want: Vec<Option<String>> = all.iter().map(|k| Some(value_of(k))).collect();
    assert_eq!(got, want, "answers in the caller's order");

    // The loaded values are in Redis for the other instance, and in L1 here.
    let from_writer: Vec<Option<String>> = writer.get_many(&expected).await;
    assert!(from_writer.iter().all(Option::is_some), "{from_writer:?}");
    let again = Arc::default();
    let mgets = calls(&server, "mget");
    let got2: Vec<Option<String>> = reader
        .get_or_load_many(&all, &opts(), recording(&again, None, None, &[]))
        .await
        .unwrap();
    assert_eq!(got2, want);
    assert!(again.lock().unwrap().is_empty(), "all hits: no loader call");
    assert_eq!(
        calls(&server, "mget"),
        mgets,
        "all L1 hits: no Redis read: {:?}",
        reader.stats()
    );
}

/// With `skip_lease` a batch takes no leases (`SET NX`) and fills with
/// plain `SET`s instead of the checked-fill script.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_without_leases_fills_with_plain_sets() {
    let server = RedisServer::start();
    let cache = instance(&server).await;
    let scripts = |server: &RedisServer| calls(server, "evalsha") + calls(server, "eval");
    for (skip, range) in [(false, 0..10), (true, 10..20)] {
        let wanted = keys(range);
        let (sets, fills) = (calls(&server, "set"), scripts(&server));
        let asked = Arc::default();
        let got: Vec<Option<String>> = cache
            .get_or_load_many(
                &wanted,
                &opts().skip_lease(skip),
                recording(&asked, None, None, &[]),
            )
            .await
            .unwrap();
        let want: Vec<Option<String>> = wanted.iter().map(|k| Some(value_of(k))).collect();
        assert_eq!(got, want);
        let (sets, fills) = (calls(&server, "set") - sets, scripts(&server) - fills);
        // Leased: ten `SET NX` leases and ten checked-fill scripts, each
        // running a `SET` of its own (counted by the server as a `SET`).
        // Without: ten plain `SET`s and no script.
        let expected = if skip { (10, 0) } else { (20, 10) };
        assert_eq!((sets, fills), expected, "skip_lease {skip}");
        for key in &wanted {
            assert!(raw_get(&server, &format!("t:{key}")).is_some(), "{key}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_the_loader_leaves_out_are_none_and_not_cached() {
    let server = RedisServer::start();
    let cache = instance(&server).await;
    let asked = Arc::default();
    let got: Vec<Option<String>> = cache
        .get_or_load_many(
            &["a", "gone", "b"],
            &opts(),
            recording(&asked, None, None, &["gone"]),
        )
        .await
        .unwrap();
    assert_eq!(got, vec![Some(value_of("a")), None, Some(value_of("b"))]);
    assert!(raw_get(&server, "t:gone").is_none());
    assert!(raw_get(&server, "t:a").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_already_loading_alone_is_awaited_not_loaded_again() {
    let server = RedisServer::start();
    let cache = instance(&server).await;
    let (started, gate) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let single = {
        let (cache, started, gate) = (cache.clone(), started.clone(), gate.clone());
        tokio::spawn(async move {
            cache
                .get_or_load("k5", &opts(), move || async move {
                    started.notify_one();
                    gate.notified().await;
                    Ok::<_, std::io::Error>("from-single".to_owned())
                })
                .await
        })
    };
    started.notified().await;
    let asked = Arc::default();
    let batch = {
        let (cache, asked) = (cache.clone(), Arc::clone(&asked));
        tokio::spawn(async move {
            cache
                .get_or_load_many(&keys(4..7), &opts(), recording(&asked, None, None, &[]))
                .await
        })
    };
    // The batch loads k4 and k6 and waits for the single load of k5.
    tokio::time::timeout(Duration::from_secs(5), async {
        while asked.lock().unwrap().is_empty() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the batch loader runs");
    assert_eq!(asked.lock().unwrap()[0], vec!["k4", "k6"]);
    gate.notify_one();
    assert_eq!(single.await.unwrap().unwrap(), "from-single");
    let got: Vec<Option<String>> = batch.await.unwrap().unwrap();
    assert_eq!(
        got,
        vec![
            Some(value_of("k4")),
            Some("from-single".to_owned()),
            Some(value_of("k6"))
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_key_load_joins_a_running_batch() {
    let server = RedisServer::start();
    let cache = instance(&server).await;
    let (started, gate) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let asked = Arc::default();
    let batch = {
        let cache = cache.clone();
        let loader = recording(&asked, Some(started.clone()), Some(gate.clone()), &["k3"]);
        tokio::spawn(async move { cache.get_or_load_many(&keys(0..4), &opts(), loader).await })
    };
    started.notified().await;
    let single = {
        let cache = cache.clone();
        tokio::spawn(async move {
            cache
                .get_or_load("k2", &opts(), || async {
                    Ok::<_, std::io::Error>("from-single".to_owned())
                })
                .await
        })
    };
    let left_out = {
        let cache = cache.clone();
        tokio::spawn(async move {
            cache
                .get_or_load("k3", &opts(), || async {
                    Ok::<_, std::io::Error>("from-single".to_owned())
                })
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    gate.notify_one();
    let got: Vec<Option<String>> = batch.await.unwrap().unwrap();
    assert_eq!(got[2], Some(value_of("k2")));
    assert_eq!(got[3], None);
    assert_eq!(
        single.await.unwrap().unwrap(),
        value_of("k2"),
        "the single-key call waited for the batch instead of loading"
    );
    assert!(
        matches!(left_out.await.unwrap(), Err(LoadError::NotLoaded)),
        "a joined key the batch loader left out is reported as not loaded"
    );
    assert_eq!(cache.stats().loads, 4, "four keys loaded by one batch");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_during_the_batch_load_is_not_overwritten() {
    let server = RedisServer::start();
    let caches = instances(&server, 2).await;
    let (loading, writer) = (caches[0].clone(), &caches[1]);
    let (started, gate) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let asked = Arc::default();
    let batch = {
        let loader = recording(&asked, Some(started.clone()), Some(gate.clone()), &[]);
        tokio::spawn(async move { loading.get_or_load_many(&keys(0..3), &opts(), loader).await })
    };
    started.notified().await;
    // While the batch loads: k0 is written anew, k1 deleted.
    writer.set("k0", &"newer".to_owned(), None).await.unwrap();
    writer.delete("k1").await;
    gate.notify_one();
    let _ = batch.await.unwrap().unwrap();
    let stored: Option<String> = writer.get("k0").await;
    assert_eq!(
        stored.as_deref(),
        Some("newer"),
        "the write survives the fill"
    );
    assert!(
        raw_get(&server, "t:k1").is_none(),
        "the delete survives the fill"
    );
    assert!(
        raw_get(&server, "t:k2").is_some(),
        "the other key is filled"
    );
    let c = caches[0].stats();
    assert!(c.fills_rejected >= 2, "{c:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loader_error_fails_the_call_and_caches_nothing() {
    let server = RedisServer::start();
    let cache = instance(&server).await;
    let r: Result<Vec<Option<String>>, _> = cache
        .get_or_load_many(&["x", "y"], &opts(), |_missing: Vec<String>| async {
            Err::<HashMap<String, String>, _>(std::io::Error::other("database down"))
        })
        .await;
    match r {
        Err(LoadError::Loader(e)) => assert_eq!(e.to_string(), "database down"),
        other => panic!("expected the loader's error, got {other:?}"),
    }
    let keys: Vec<String> = server.conn().keys("*").unwrap();
    assert!(keys.is_empty(), "nothing stored, leases released: {keys:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_every_key_is_loaded_directly() {
    let cache = Cache::connect(
        ngx_cache::CacheConfig::builder()
            .enabled(false)
            .build()
            .unwrap(),
    )
    .await
    .unwrap();
    let asked = Arc::default();
    let got: Vec<Option<String>> = cache
        .get_or_load_many(&["p", "q"], &opts(), recording(&asked, None, None, &[]))
        .await
        .unwrap();
    assert_eq!(got, vec![Some(value_of("p")), Some(value_of("q"))]);
    assert_eq!(asked.lock().unwrap().len(), 1);
}

/// One batch of two missing keys whose loader stalls every Redis
/// connection of the cache (through a proxy) before returning, so the
/// fills after it cannot finish within `fill_timeout`: how long the caller
/// waited.
async fn batch_while_redis_stalls(background_fill: bool, fill_timeout: Duration) -> Duration {
    let server = RedisServer::start();
    let (cache, proxy) = behind_stalling_proxy(&server, fill_timeout).await;
    let stall = Arc::clone(&proxy);
    let loader = move |missing: Vec<String>| async move {
        stall.stall_existing();
        Ok::<_, std::io::Error>(
            missing
                .into_iter()
                .map(|k| {
                    let v = value_of(&k);
                    (k, v)
                })
                .collect::<HashMap<_, _>>(),
        )
    };
    let opts = opts().background_fill(background_fill);
    let (got, took) = timed(cache.get_or_load_many(&["a", "b"], &opts, loader)).await;
    assert_eq!(got.unwrap(), vec![Some(value_of("a")), Some(value_of("b"))]);
    took
}

/// With `background_fill` a batch answers with the loaded values while the
/// writes to Redis still wait; without it, the batch waits for them.
#[tokio::test]
async fn a_background_fill_answers_a_batch_before_redis_does() {
    let fill_timeout = Duration::from_secs(1);
    let background = batch_while_redis_stalls(true, fill_timeout).await;
    assert!(
        background < fill_timeout / 2,
        "answered after {background:?}, the fills wait up to {fill_timeout:?}"
    );
    let foreground = batch_while_redis_stalls(false, fill_timeout).await;
    assert!(
        foreground >= fill_timeout * 9 / 10,
        "the default answers after the fills: {foreground:?}"
    );
}

/// A batch's background fills land, and single-key loads that come
/// meanwhile join the batch instead of loading again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_background_fill_lands_and_loads_once() {
    let server = RedisServer::start();
    let cache = instance(&server).await;
    let asked = Arc::default();
    let opts = opts().background_fill(true);
    let got: Vec<Option<String>> = cache
        .get_or_load_many(&["x", "y"], &opts, recording(&asked, None, None, &[]))
        .await
        .unwrap();
    assert_eq!(got, vec![Some(value_of("x")), Some(value_of("y"))]);
    let again = cache
        .get_or_load("x", &opts, || async {
            Ok::<_, std::io::Error>("reloaded".to_owned())
        })
        .await
        .unwrap();
    assert_eq!(again, value_of("x"));
    assert_eq!(asked.lock().unwrap().len(), 1);
    for key in ["t:x", "t:y"] {
        let landed = eventually(LAG_BOUND, || async { raw_get(&server, key).is_some() }).await;
        assert!(landed.is_some(), "{key} never reached Redis");
    }
}
