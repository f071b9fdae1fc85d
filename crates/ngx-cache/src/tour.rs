//! The README's Rust examples, doctested here with the setup lines the
//! README leaves out (`# ` lines). A unit test checks that the README shows
//! exactly these examples without those lines, so the two never drift.
//!
//! ```rust,no_run
//! use std::time::Duration;
//! use ngx_cache::{Cache, CacheConfig};
//!
//! # async fn tour() -> Result<(), ngx_cache::Error> {
//! let cache = Cache::connect(CacheConfig::from_env()?).await?;
//!
//! cache.set("key", &vec![1, 2, 3], Some(Duration::from_secs(300))).await?; // ngx:key, 300 s (minus jitter)
//! let v: Option<Vec<i32>> = cache.get("key").await;                         // a miss if Redis is down
//!
//! cache.set_many(&[("key1", "a"), ("key2", "b")], Some(Duration::from_secs(600))).await?;
//! let vs: Vec<Option<String>> = cache.get_many(&["key1", "key2"]).await;   // one round trip
//!
//! let n = cache.increment("counter", 1).await;                              // Some(1)
//! let n = cache.decrement("counter", 1).await;                              // Some(0)
//!
//! cache.exists("key").await;
//! cache.expire("key", Duration::from_secs(60)).await;
//! cache.delete("key").await;
//! cache.clear_namespace().await?;                                           // SCAN + UNLINK, never KEYS
//!
//! let strict = cache.try_get::<String>("key").await;                        // Err(..) when Redis fails
//! println!("{:?}", cache.stats());          // hits, misses, errors, hit_rate, breaker state, L1, ...
//! println!("{:?}", cache.health_check().await); // latency, version, memory, clients
//! # Ok(()) }
//! ```
//!
//! ```rust,no_run
//! use std::time::Duration;
//! use ngx_cache::{Cache, EntryOptions, Source};
//!
//! # async fn load_profile(_: &str) -> Result<String, std::io::Error> { Ok(String::new()) }
//! # async fn tour(cache: Cache) {
//! let opts = EntryOptions::new()
//!     .ttl(Duration::from_secs(3600))
//!     .tag("customer:42")                      // invalidate_tag("customer:42") drops it everywhere
//!     .fail_safe(Duration::from_secs(3600))    // serve stale for up to 1 h if the loader fails
//!     .soft_timeout(Duration::from_millis(100))// slow loader + stale value: answer now, refresh behind
//!     .eager_refresh(0.8);                     // refresh hot keys before they expire
//!
//! // 1,000 concurrent callers on a cold key run the loader once.
//! let entry = cache
//!     .get_or_load_entry("cust:v1:42", &opts, || async { load_profile("42").await })
//!     .await;
//! if let Ok(e) = entry {
//!     let stale = e.source == Source::Stale;   // flagged and counted in stats().stale_served
//! }
//! cache.invalidate_tag("customer:42").await;  // one INCR + one PUBLISH, whatever the number of keys
//! # }
//! ```
//!
//! ```rust,no_run
//! use ngx_cache::{cached, invalidate_cache};
//! # use serde::{Deserialize, Serialize};
//! # #[derive(Clone, Serialize, Deserialize)] struct UserProfile { name: String }
//! # #[derive(Clone, Serialize, Deserialize)] struct ProfileUpdate { name: String }
//! # #[derive(Debug)] struct DbError;
//! # async fn db_get_user(_: &str) -> Result<UserProfile, DbError> { Err(DbError) }
//! # async fn db_update_user(_: &str, _: ProfileUpdate) -> Result<UserProfile, DbError> { Err(DbError) }
//!
//! #[cached(ttl = 300, key_prefix = "user_data")]
//! async fn get_user_profile(user_id: &str) -> Result<UserProfile, DbError> {
//!     db_get_user(user_id).await
//! }
//!
//! #[invalidate_cache(key_prefix = "user_data", args = [user_id])]
//! async fn update_user_profile(user_id: &str, data: ProfileUpdate) -> Result<UserProfile, DbError> {
//!     db_update_user(user_id, data).await
//! }
//!
//! # async fn start() -> Result<(), Box<dyn std::error::Error>> {
//! ngx_cache::install_global(ngx_cache::Cache::connect(ngx_cache::CacheConfig::from_env()?).await?);
//! # Ok(()) }
//! ```

#[cfg(test)]
mod tests {
    /// The fenced Rust blocks of `text`, in order: their info string and
    /// their lines.
    fn rust_blocks(text: &str) -> Vec<(String, Vec<String>)> {
        let mut blocks = Vec::new();
        let mut current: Option<(String, Vec<String>)> = None;
        for line in text.lines() {
            match &mut current {
                None => {
                    if let Some(info) = line.trim().strip_prefix("```rust") {
                        current = Some((format!("rust{info}"), Vec::new()));
                    }
                }
                Some((_, lines)) => {
                    if line.trim() == "```" {
                        blocks.extend(current.take());
                    } else {
                        lines.push(line.to_owned());
                    }
                }
            }
        }
        blocks
    }

    #[test]
    fn the_readme_shows_these_examples_without_their_setup_lines() {
        let readme = rust_blocks(include_str!("../../../README.md"));
        let docs: String = include_str!("tour.rs")
            .lines()
            .filter_map(|l| l.strip_prefix("//!"))
            .map(|l| format!("{}\n", l.strip_prefix(' ').unwrap_or(l)))
            .collect();
        let shown: Vec<(String, Vec<String>)> = rust_blocks(&docs)
            .into_iter()
            .map(|(info, lines)| {
                let visible = lines
                    .into_iter()
                    .filter(|l| !(l.starts_with("# ") || l == "#"))
                    .collect();
                (info, visible)
            })
            .collect();
        assert!(!readme.is_empty(), "the README has Rust examples");
        assert_eq!(readme, shown, "README examples differ from src/tour.rs");
        for (_, lines) in &readme {
            assert!(
                !lines.iter().any(|l| l.starts_with("# ")),
                "hidden lines belong in src/tour.rs, not the README"
            );
        }
    }
}
