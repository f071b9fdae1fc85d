//! Shared helpers for the service tests: a real `redis-server` (the
//! launcher of `ngx-cache`'s tests), a small seeded database (SQLite, or
//! PostgreSQL with `TEST_DATABASE_URL`) and `Services` wired over both.

#![allow(dead_code, unreachable_pub, missing_docs)]

#[path = "../../../ngx-cache/tests/support/server.rs"]
pub mod server;

use std::future::Future;
use std::time::{Duration, Instant};

use ngx_agent::cache::{DomainCacheSettings, NgxCacheManager};
use ngx_agent::db::SeedSpec;
use ngx_agent::service::Services;
use ngx_cache::{Cache, CacheConfig, CacheConfigBuilder};

use super::db_support::TestDb;
pub use server::RedisServer;

/// A migrated database seeded with 50 customers and 20 conversations (plus
/// the catalog, knowledge base and agent configuration): small and fast.
pub async fn seeded_db() -> TestDb {
    let t = TestDb::new().await;
    t.db.seed_with(SeedSpec::new(50, 20)).await.expect("seed");
    t
}

/// A config pointing at `redis` in the default `ngx` namespace. Each test
/// owns its server, so the namespace is the production one.
pub fn config(redis: &RedisServer) -> CacheConfigBuilder {
    CacheConfig::builder().url(redis.url())
}

/// A connected cache over `redis` built from `config`.
pub async fn cache_with(config: CacheConfigBuilder) -> Cache {
    Cache::connect(config.build().expect("valid config"))
        .await
        .expect("connect to test redis")
}

/// Settings that make TTL arithmetic checkable: no fail-safe window.
pub fn no_fail_safe() -> DomainCacheSettings {
    let mut settings = DomainCacheSettings::default();
    settings.fail_safe = None;
    settings
}

/// The services over `db` with a manager over `cache` and `settings`.
pub fn services(
    db: &ngx_agent::db::Database,
    cache: Cache,
    settings: DomainCacheSettings,
) -> (Services, NgxCacheManager) {
    let manager = NgxCacheManager::new(cache, settings);
    (Services::new(db.clone(), Some(manager.clone())), manager)
}

/// The services over `db` with a manager over a cache on `redis`, without
/// fail-safe (see [`no_fail_safe`]).
pub async fn services_on(
    redis: &RedisServer,
    db: &ngx_agent::db::Database,
) -> (Services, NgxCacheManager) {
    services(db, cache_with(config(redis)).await, no_fail_safe())
}

/// Raw `EXISTS` of a full key.
pub fn exists(redis: &RedisServer, key: &str) -> bool {
    redis::cmd("EXISTS")
        .arg(key)
        .query::<i64>(&mut redis.conn())
        .expect("EXISTS")
        == 1
}

/// Raw `GET` of a full key, as text.
pub fn get_text(redis: &RedisServer, key: &str) -> Option<String> {
    redis::cmd("GET")
        .arg(key)
        .query(&mut redis.conn())
        .expect("GET")
}

/// Raw `PTTL` of a full key, in milliseconds.
pub fn pttl(redis: &RedisServer, key: &str) -> i64 {
    redis::cmd("PTTL")
        .arg(key)
        .query(&mut redis.conn())
        .expect("PTTL")
}

/// Every key matching `pattern` (`SCAN`, never `KEYS`).
pub fn scan(redis: &RedisServer, pattern: &str) -> Vec<String> {
    let mut conn = redis.conn();
    let mut keys = Vec::new();
    let mut cursor = 0_u64;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1000)
            .query(&mut conn)
            .expect("SCAN");
        keys.extend(batch);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    keys.sort();
    keys
}

/// Polls `check` until it returns true or `limit` passes.
pub async fn eventually<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
