//! Small helpers for checking what the cache did in Redis.

use std::future::Future;
use std::time::{Duration, Instant};

use ngx_cache::CacheConfig;
use ngx_cache::CacheConfigBuilder;

use super::target::Target;

/// A config builder pointing at `server`, in namespace `t`, jitter off.
pub fn config(server: &(impl Target + ?Sized)) -> CacheConfigBuilder {
    CacheConfig::builder()
        .url(server.url())
        .cluster(server.cluster())
        .namespace("t")
        .ttl_jitter(0.0)
}

/// Raw `GET` of a full key.
pub fn raw_get(server: &(impl Target + ?Sized), key: &str) -> Option<Vec<u8>> {
    redis::cmd("GET")
        .arg(key)
        .query(&mut *server.conn())
        .expect("raw GET")
}

/// Raw `SET` of a full key, no expiry.
pub fn raw_set(server: &(impl Target + ?Sized), key: &str, value: &[u8]) {
    let _: () = redis::cmd("SET")
        .arg(key)
        .arg(value)
        .query(&mut *server.conn())
        .expect("raw SET");
}

/// Raw `EXISTS` of a full key.
pub fn raw_exists(server: &(impl Target + ?Sized), key: &str) -> bool {
    redis::cmd("EXISTS")
        .arg(key)
        .query::<i64>(&mut *server.conn())
        .expect("raw EXISTS")
        == 1
}

/// The lease keys held in namespace `t` (`t:__lease:{..}:<key>`), sorted.
pub fn lease_keys(server: &(impl Target + ?Sized)) -> Vec<String> {
    server.keys("t:__lease:*")
}

/// `DBSIZE`.
pub fn dbsize(server: &(impl Target + ?Sized)) -> i64 {
    server.dbsize()
}

/// Raw `PTTL` of a full key, in milliseconds.
pub fn pttl(server: &(impl Target + ?Sized), key: &str) -> i64 {
    redis::cmd("PTTL")
        .arg(key)
        .query(&mut *server.conn())
        .expect("PTTL")
}

/// Raw `TTL` of a full key, in seconds.
pub fn ttl_secs(server: &(impl Target + ?Sized), key: &str) -> i64 {
    redis::cmd("TTL")
        .arg(key)
        .query(&mut *server.conn())
        .expect("TTL")
}

/// Polls `cond` every 10 ms until it holds or `limit` passes; returns how
/// long it took, or `None` on timeout.
pub async fn eventually<F, Fut>(limit: Duration, mut cond: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if cond().await {
            return Some(start.elapsed());
        }
        if start.elapsed() > limit {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Runs `fut` and returns its output with the wall-clock time it took.
pub async fn timed<T>(fut: impl Future<Output = T>) -> (T, Duration) {
    let start = Instant::now();
    let out = fut.await;
    (out, start.elapsed())
}
