//! The README's `get_or_load` example: `cargo run -p ngx-cache --example
//! get_or_load` (with a Redis at `REDIS_URL`). `tests/readme.rs` checks
//! that the README shows this code as it is here.
#![allow(unused_variables)]

use ngx_cache::Cache;

/// Stands in for a database query.
async fn load_profile(id: &str) -> Result<String, std::io::Error> {
    Ok(format!("profile {id}"))
}

#[rustfmt::skip]
async fn tour(cache: Cache) {
    use std::time::Duration;
    use ngx_cache::{EntryOptions, Source};

    let opts = EntryOptions::new()
        .ttl(Duration::from_secs(3600))
        .tag("customer:42")                      // invalidate_tag("customer:42") drops it everywhere
        .fail_safe(Duration::from_secs(3600))    // serve stale for up to 1 h if the loader fails
        .soft_timeout(Duration::from_millis(100))// slow loader + stale value: answer now, refresh behind
        .eager_refresh(0.8);                     // refresh hot keys before they expire

    // 1,000 concurrent callers on a cold key run the loader once.
    let entry = cache
        .get_or_load_entry("cust:v1:42", &opts, || async { load_profile("42").await })
        .await;
    if let Ok(e) = entry {
        let stale = e.source == Source::Stale;   // flagged and counted in stats().stale_served
    }
    cache.invalidate_tag("customer:42").await;  // one INCR + one PUBLISH, whatever the number of keys
}

#[tokio::main]
async fn main() -> Result<(), ngx_cache::Error> {
    let cache = Cache::connect(ngx_cache::CacheConfig::from_env()?).await?;
    tour(cache.clone()).await;
    println!("{:?}", cache.stats());
    Ok(())
}
