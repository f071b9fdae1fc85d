//! Free functions on the process-wide cache (`ngx_cache::install_global`),
//! written as in the original design document. One test, because the global
//! cache is installed once per process and its connections belong to the
//! runtime that made them.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ngx_cache::{Cache, CacheConfig, cached, invalidate_cache, stable_hash};
use serde::{Deserialize, Serialize};
use support::server::RedisServer;

static PROFILE_RUNS: AtomicUsize = AtomicUsize::new(0);
static REPORT_RUNS: AtomicUsize = AtomicUsize::new(0);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct UserProfile {
    user_id: String,
    version: u32,
}

#[derive(Debug)]
struct DbError;

#[cached(ttl = 300, key_prefix = "user_data")]
async fn get_user_profile(user_id: &str) -> Result<UserProfile, DbError> {
    let version = PROFILE_RUNS.fetch_add(1, Ordering::SeqCst) as u32;
    Ok(UserProfile {
        user_id: user_id.to_owned(),
        version,
    })
}

/// The same argument list (name and type) as `get_user_profile`: the same key.
#[invalidate_cache(key_prefix = "user_data")]
async fn delete_user_profile(user_id: &str) -> Result<(), DbError> {
    let _ = user_id;
    Ok(())
}

/// A different argument name gives a different key: this invalidates nothing
/// that `get_user_profile` stored.
#[invalidate_cache(key_prefix = "user_data")]
async fn delete_by_other_name(id: &str) -> Result<(), DbError> {
    let _ = id;
    Ok(())
}

/// `String` instead of `&str` serializes the same: the same key.
#[invalidate_cache(key_prefix = "user_data")]
async fn delete_owned(user_id: String) {
    let _ = user_id;
}

#[cached(ttl = "10m", key_prefix = "roi:consultant")]
async fn report(metrics: Vec<u32>) -> u32 {
    REPORT_RUNS.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(200)).await;
    metrics.iter().sum()
}

fn profile_runs() -> usize {
    PROFILE_RUNS.load(Ordering::SeqCst)
}

#[tokio::test]
async fn free_functions_on_the_global_cache() {
    // No cache anywhere yet: the function runs uncached (and warns once).
    get_user_profile("1").await.unwrap();
    get_user_profile("1").await.unwrap();
    assert_eq!(profile_runs(), 2);

    let mut server = RedisServer::start();
    let config = CacheConfig::builder()
        .url(server.url())
        .ttl_jitter(0.0)
        .build()
        .unwrap();
    assert!(ngx_cache::install_global(
        Cache::connect(config).await.unwrap()
    ));

    // Cached from now on.
    let first = get_user_profile("42").await.unwrap();
    assert_eq!(get_user_profile("42").await.unwrap(), first);
    assert_eq!(profile_runs(), 3);

    // The key and its TTL, as documented.
    #[derive(Serialize)]
    struct Args<'a> {
        user_id: &'a str,
    }
    let key = format!("ngx:user_data:{}", stable_hash(&Args { user_id: "42" }));
    let ttl: i64 = redis::cmd("TTL")
        .arg(&key)
        .query(&mut server.conn())
        .unwrap();
    assert!((290..=300).contains(&ttl), "TTL {ttl}");

    // A different argument name derives another key: nothing is removed.
    delete_by_other_name("42").await.unwrap();
    assert_eq!(get_user_profile("42").await.unwrap(), first);
    assert_eq!(profile_runs(), 3);

    // The same argument list derives the same key.
    delete_user_profile("42").await.unwrap();
    let second = get_user_profile("42").await.unwrap();
    assert_ne!(second, first);
    assert_eq!(profile_runs(), 4);
    delete_owned("42".to_owned()).await;
    get_user_profile("42").await.unwrap();
    assert_eq!(profile_runs(), 5);

    // 100 concurrent calls with the same arguments: one body run.
    let calls: Vec<_> = (0..100)
        .map(|_| tokio::spawn(report(vec![1, 2, 3])))
        .collect();
    for call in calls {
        assert_eq!(call.await.unwrap(), 6);
    }
    assert_eq!(REPORT_RUNS.load(Ordering::SeqCst), 1);

    // Redis killed: results stay correct (the body runs when nothing is cached).
    server.kill();
    for n in 0..3u32 {
        assert_eq!(report(vec![n, 10]).await, n + 10);
        assert_eq!(get_user_profile("99").await.unwrap().user_id, "99");
    }
    assert!(REPORT_RUNS.load(Ordering::SeqCst) >= 4);
}
