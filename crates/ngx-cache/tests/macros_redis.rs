//! `#[cached]` and `#[invalidate_cache]` on `&self` methods, against a real
//! Redis: each test starts its own server and its own repository value.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ngx_cache::{Cache, CacheConfig, cached, invalidate_cache, stable_hash};
use serde::{Deserialize, Serialize};
use support::server::RedisServer;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Profile {
    id: String,
    name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ProfileUpdate {
    name: String,
}

#[derive(Debug, PartialEq)]
struct DbError(String);

/// A repository as an application would write it: cheap to clone, with the
/// cache in a field and a counter of body runs.
#[derive(Clone)]
struct Repo {
    cache: Cache,
    runs: Arc<AtomicUsize>,
    names: Arc<parking_lot::Mutex<std::collections::HashMap<String, String>>>,
}

impl Repo {
    fn runs(&self) -> usize {
        self.runs.load(Ordering::SeqCst)
    }

    #[cached(cache = self.cache, ttl = 300, key_prefix = "user_data")]
    async fn profile(&self, user_id: &str) -> Result<Profile, DbError> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        if user_id == "missing" {
            return Err(DbError(format!("no user {user_id}")));
        }
        let name = self
            .names
            .lock()
            .get(user_id)
            .cloned()
            .unwrap_or_else(|| "Ana".into());
        Ok(Profile {
            id: user_id.to_owned(),
            name,
        })
    }

    #[invalidate_cache(cache = self.cache, key_prefix = "user_data", args = [user_id])]
    async fn update_profile(&self, user_id: &str, data: ProfileUpdate) -> Result<(), DbError> {
        if data.name.is_empty() {
            return Err(DbError("empty name".into()));
        }
        self.names.lock().insert(user_id.to_owned(), data.name);
        Ok(())
    }

    #[cached(cache = self.cache, ttl = "1h", key_prefix = "readable", key = "{user_id}:{page}")]
    async fn readable(&self, user_id: &str, page: u32) -> String {
        self.runs.fetch_add(1, Ordering::SeqCst);
        format!("{user_id}/{page}")
    }

    #[cached(cache = self.cache, key_prefix = "find")]
    async fn find(&self, id: u64) -> Option<String> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        (id != 0).then(|| format!("item {id}"))
    }

    #[cached(cache = self.cache, key_prefix = "find_none", cache_none = true, ttl = 60)]
    async fn find_caching_none(&self, id: u64) -> Option<String> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        (id != 0).then(|| format!("item {id}"))
    }

    #[cached(cache = self.cache, key_prefix = "slow", ttl = 60)]
    async fn slow(&self, n: u32) -> u32 {
        self.runs.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(200)).await;
        n * 2
    }

    #[cached(cache = self.cache, key_prefix = "cond", condition = n < 100)]
    async fn conditional(&self, n: u32) -> u32 {
        self.runs.fetch_add(1, Ordering::SeqCst);
        n + 1
    }

    #[cached(cache = self.cache, key_prefix = "unless", unless = |v: &Vec<u32>| v.is_empty())]
    async fn listing(&self, n: u32) -> Vec<u32> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        (0..n).collect()
    }

    #[cached(cache = self.cache, key_prefix = "tagged", tags = ["user:{user_id}"], l1 = false, codec = "msgpack")]
    async fn tagged(&self, user_id: &str) -> Result<String, DbError> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        Ok(format!("orders of {user_id}"))
    }
}

async fn repo(server: &RedisServer) -> Repo {
    let config = CacheConfig::builder()
        .url(server.url())
        .ttl_jitter(0.0)
        .build()
        .unwrap();
    Repo {
        cache: Cache::connect(config).await.unwrap(),
        runs: Arc::default(),
        names: Arc::default(),
    }
}

fn redis_ttl(server: &RedisServer, key: &str) -> i64 {
    redis::cmd("TTL")
        .arg(key)
        .query(&mut server.conn())
        .unwrap()
}

fn redis_exists(server: &RedisServer, key: &str) -> bool {
    redis::cmd("EXISTS")
        .arg(key)
        .query::<i64>(&mut server.conn())
        .unwrap()
        == 1
}

/// The key the macro derives for `user_data` with the one argument `user_id`.
fn user_key(user_id: &str) -> String {
    #[derive(Serialize)]
    struct Args<'a> {
        user_id: &'a str,
    }
    format!("ngx:user_data:{}", stable_hash(&Args { user_id }))
}

#[tokio::test]
async fn a_second_call_does_not_run_the_body_and_the_ttl_is_set() {
    let server = RedisServer::start();
    let repo = repo(&server).await;
    let first = repo.profile("42").await.unwrap();
    let second = repo.profile("42").await.unwrap();
    assert_eq!(first, second);
    assert_eq!(repo.runs(), 1);
    // Other arguments are other entries.
    repo.profile("43").await.unwrap();
    assert_eq!(repo.runs(), 2);
    // The key is {namespace}:{key_prefix}:{stable hash of the named arguments}.
    let ttl = redis_ttl(&server, &user_key("42"));
    assert!((290..=300).contains(&ttl), "TTL in Redis is {ttl}");
}

#[tokio::test]
async fn the_invalidate_companion_makes_the_next_call_run_the_body() {
    let server = RedisServer::start();
    let repo = repo(&server).await;
    repo.profile("42").await.unwrap();
    assert!(repo.profile_invalidate("42").await);
    assert!(!redis_exists(&server, &user_key("42")));
    repo.profile("42").await.unwrap();
    assert_eq!(repo.runs(), 2);
}

#[tokio::test]
async fn invalidate_cache_with_matching_arguments_removes_the_entry_after_success_only() {
    let server = RedisServer::start();
    let repo = repo(&server).await;
    assert_eq!(repo.profile("42").await.unwrap().name, "Ana");
    // A failed update leaves the entry alone.
    let empty = ProfileUpdate {
        name: String::new(),
    };
    assert!(repo.update_profile("42", empty).await.is_err());
    assert!(redis_exists(&server, &user_key("42")));
    // A successful one removes it, so the next read sees the new data.
    let update = ProfileUpdate { name: "Bea".into() };
    repo.update_profile("42", update).await.unwrap();
    assert!(!redis_exists(&server, &user_key("42")));
    assert_eq!(repo.profile("42").await.unwrap().name, "Bea");
    assert_eq!(repo.runs(), 2);
}

#[tokio::test]
async fn err_is_not_cached() {
    let server = RedisServer::start();
    let repo = repo(&server).await;
    assert!(repo.profile("missing").await.is_err());
    assert!(repo.profile("missing").await.is_err());
    assert_eq!(repo.runs(), 2);
    assert!(!redis_exists(&server, &user_key("missing")));
}

#[tokio::test]
async fn none_is_cached_only_with_cache_none() {
    let server = RedisServer::start();
    let repo = repo(&server).await;
    assert_eq!(repo.find(0).await, None);
    assert_eq!(repo.find(0).await, None);
    assert_eq!(repo.runs(), 2);
    assert_eq!(repo.find(7).await.as_deref(), Some("item 7"));
    assert_eq!(repo.find(7).await.as_deref(), Some("item 7"));
    assert_eq!(repo.runs(), 3);

    assert_eq!(repo.find_caching_none(0).await, None);
    assert_eq!(repo.find_caching_none(0).await, None);
    assert_eq!(repo.runs(), 4);
}

#[tokio::test]
async fn a_key_template_gives_a_readable_key() {
    let server = RedisServer::start();
    let repo = repo(&server).await;
    assert_eq!(repo.readable("ana", 2).await, "ana/2");
    assert_eq!(repo.readable("ana", 2).await, "ana/2");
    assert_eq!(repo.runs(), 1);
    let ttl = redis_ttl(&server, "ngx:readable:ana:2");
    assert!((3590..=3600).contains(&ttl), "TTL in Redis is {ttl}");
    // The companion takes the key's arguments.
    assert!(repo.readable_invalidate("ana", 2).await);
    assert!(!redis_exists(&server, "ngx:readable:ana:2"));
}

#[tokio::test]
async fn a_hundred_concurrent_calls_run_the_body_once() {
    let server = RedisServer::start();
    let repo = repo(&server).await;
    let calls: Vec<_> = (0..100)
        .map(|_| {
            let repo = repo.clone();
            tokio::spawn(async move { repo.slow(21).await })
        })
        .collect();
    for call in calls {
        assert_eq!(call.await.unwrap(), 42);
    }
    assert_eq!(repo.runs(), 1);
}

#[tokio::test]
async fn condition_and_unless_keep_values_out_of_the_cache() {
    let server = RedisServer::start();
    let repo = repo(&server).await;
    // condition = n < 100: 5 is cached, 500 is not.
    assert_eq!(repo.conditional(5).await, 6);
    assert_eq!(repo.conditional(5).await, 6);
    assert_eq!(repo.runs(), 1);
    assert_eq!(repo.conditional(500).await, 501);
    assert_eq!(repo.conditional(500).await, 501);
    assert_eq!(repo.runs(), 3);
    // unless = empty: an empty list is returned but not stored.
    assert!(repo.listing(0).await.is_empty());
    assert!(repo.listing(0).await.is_empty());
    assert_eq!(repo.runs(), 5);
    assert_eq!(repo.listing(3).await, vec![0, 1, 2]);
    assert_eq!(repo.listing(3).await, vec![0, 1, 2]);
    assert_eq!(repo.runs(), 6);
}

#[tokio::test]
async fn tags_l1_and_codec_options_are_applied() {
    let server = RedisServer::start();
    let repo = repo(&server).await;
    assert_eq!(repo.tagged("9").await.unwrap(), "orders of 9");
    assert_eq!(repo.tagged("9").await.unwrap(), "orders of 9");
    assert_eq!(repo.runs(), 1);
    repo.cache.invalidate_tag("user:9").await;
    assert_eq!(repo.tagged("9").await.unwrap(), "orders of 9");
    assert_eq!(repo.runs(), 2);
}

#[tokio::test]
async fn the_uncached_companion_always_runs_the_body() {
    let server = RedisServer::start();
    let repo = repo(&server).await;
    repo.profile("42").await.unwrap();
    repo.profile_uncached("42").await.unwrap();
    repo.profile_uncached("42").await.unwrap();
    assert_eq!(repo.runs(), 3);
}

#[tokio::test]
async fn with_redis_killed_results_stay_correct() {
    let mut server = RedisServer::start();
    let repo = repo(&server).await;
    assert_eq!(repo.profile("42").await.unwrap().name, "Ana");
    server.kill();
    for _ in 0..3 {
        // Redis is gone: every call runs the body (L1 may still answer).
        assert_eq!(repo.profile("7").await.unwrap().id, "7");
        assert!(repo.profile("missing").await.is_err());
        assert_eq!(repo.readable("bo", 1).await, "bo/1");
        assert_eq!(repo.find(0).await, None);
    }
    assert_eq!(repo.profile("42").await.unwrap().name, "Ana");
}
