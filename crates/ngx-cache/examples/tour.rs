//! The README's "30-second tour": `cargo run -p ngx-cache --example tour`
//! (with a Redis at `REDIS_URL`, default `redis://localhost:6379`).
//! `tests/readme.rs` checks that the README shows this code as it is here.
#![allow(unused_variables)]

#[tokio::main]
#[rustfmt::skip]
async fn main() -> Result<(), ngx_cache::Error> {
    use std::time::Duration;
    use ngx_cache::{Cache, CacheConfig};

    let cache = Cache::connect(CacheConfig::from_env()?).await?;

    cache.set("key", &vec![1, 2, 3], Some(Duration::from_secs(300))).await?; // ngx:key, 300 s (minus jitter)
    let v: Option<Vec<i32>> = cache.get("key").await;                         // a miss if Redis is down

    cache.set_many(&[("key1", "a"), ("key2", "b")], Some(Duration::from_secs(600))).await?;
    let vs: Vec<Option<String>> = cache.get_many(&["key1", "key2"]).await;   // one round trip

    let n = cache.increment("counter", 1).await;                              // Some(1)
    let n = cache.decrement("counter", 1).await;                              // Some(0)

    cache.exists("key").await;
    cache.expire("key", Duration::from_secs(60)).await;
    cache.delete("key").await;
    cache.clear_namespace().await?;                                           // SCAN + UNLINK, never KEYS

    let strict = cache.try_get::<String>("key").await;                        // Err(..) when Redis fails
    println!("{:?}", cache.stats());          // hits, misses, errors, hit_rate, breaker state, L1, ...
    println!("{:?}", cache.health_check().await); // latency, version, memory, clients
    Ok(())
}
