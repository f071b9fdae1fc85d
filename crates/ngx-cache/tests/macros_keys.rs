//! Keys of `#[cached]` functions never let two different arguments share an
//! entry: NaN, +inf, -inf and `None` all serialize to JSON `null`, and an
//! argument that cannot be serialized at all (a map with non-string keys)
//! has no JSON. Such calls run uncached, every time, and store nothing;
//! every other argument is cached as before.

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use ngx_cache::{Cache, cached, invalidate_cache};
use serde::Serialize;
use support::server::RedisServer;
use support::util::config;

#[derive(Debug, Clone, Serialize)]
struct Point {
    x: f64,
    label: Option<String>,
}

#[derive(Clone)]
struct Repo {
    cache: Cache,
    runs: Arc<AtomicUsize>,
}

impl Repo {
    fn runs(&self) -> usize {
        self.runs.load(Ordering::SeqCst)
    }

    #[cached(cache = self.cache, key_prefix = "opt")]
    async fn optional(&self, x: Option<f64>) -> String {
        self.runs.fetch_add(1, Ordering::SeqCst);
        format!("{x:?}")
    }

    #[cached(cache = self.cache, key_prefix = "float")]
    async fn float(&self, x: f64) -> String {
        self.runs.fetch_add(1, Ordering::SeqCst);
        format!("{x:?}")
    }

    #[cached(cache = self.cache, key_prefix = "point")]
    async fn point(&self, p: Point) -> String {
        self.runs.fetch_add(1, Ordering::SeqCst);
        format!("{p:?}")
    }

    #[cached(cache = self.cache, key_prefix = "text", key = "{x}")]
    async fn text(&self, x: Option<f64>) -> String {
        self.runs.fetch_add(1, Ordering::SeqCst);
        format!("{x:?}")
    }

    #[cached(cache = self.cache, key_prefix = "tagged", tags = ["t:{x}"])]
    async fn tagged(&self, id: u32, x: Option<f64>) -> String {
        self.runs.fetch_add(1, Ordering::SeqCst);
        format!("{id}/{x:?}")
    }

    #[cached(cache = self.cache, key_prefix = "map")]
    async fn map(&self, m: HashMap<(u8, u8), u8>) -> String {
        self.runs.fetch_add(1, Ordering::SeqCst);
        format!("{:?}", m.values().collect::<Vec<_>>())
    }

    #[invalidate_cache(cache = self.cache, key_prefix = "map", tags = ["t:{x}"])]
    async fn forget(&self, m: HashMap<(u8, u8), u8>, x: Option<f64>) {
        let _ = (m, x);
    }
}

async fn repo() -> (RedisServer, Repo) {
    let server = RedisServer::start();
    let cache = Cache::connect(config(&server).build().unwrap())
        .await
        .unwrap();
    let repo = Repo {
        cache,
        runs: Arc::new(AtomicUsize::new(0)),
    };
    (server, repo)
}

fn stored_keys(server: &RedisServer, pattern: &str) -> Vec<String> {
    redis::cmd("KEYS")
        .arg(pattern)
        .query(&mut server.conn())
        .unwrap()
}

#[tokio::test]
async fn nan_infinities_and_none_never_share_an_entry() {
    let (server, repo) = repo().await;
    let specials = [
        None,
        Some(f64::NAN),
        Some(f64::INFINITY),
        Some(f64::NEG_INFINITY),
    ];
    for _ in 0..2 {
        for x in specials {
            assert_eq!(repo.optional(x).await, format!("{x:?}"));
            assert_eq!(repo.text(x).await, format!("{x:?}"));
            assert_eq!(repo.tagged(1, x).await, format!("1/{x:?}"));
        }
        for x in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert_eq!(repo.float(x).await, format!("{x:?}"));
            let p = Point { x, label: None };
            assert_eq!(repo.point(p.clone()).await, format!("{p:?}"));
        }
    }
    // `None` is an ordinary value and is cached; the non-finite floats are
    // not (2 rounds x 3 values x 5 functions), plus the first `None` calls.
    assert_eq!(repo.runs(), 2 * 3 * 5 + 3);
    for prefix in ["opt", "text", "tagged", "float", "point"] {
        let n = stored_keys(&server, &format!("t:{prefix}:*")).len();
        let want = usize::from(matches!(prefix, "opt" | "text" | "tagged"));
        assert_eq!(n, want, "{prefix}: only the None entry is stored");
    }

    // Finite values are cached as before.
    let before = repo.runs();
    for _ in 0..2 {
        assert_eq!(repo.optional(Some(1.5)).await, "Some(1.5)");
        assert_eq!(repo.float(-0.25).await, "-0.25");
        assert_eq!(repo.text(Some(2.0)).await, "Some(2.0)");
    }
    assert_eq!(repo.runs(), before + 3);
}

#[tokio::test]
async fn unserializable_arguments_bypass_the_cache() {
    let (server, repo) = repo().await;
    let one: HashMap<(u8, u8), u8> = [((1, 1), 1)].into();
    let two: HashMap<(u8, u8), u8> = [((2, 2), 2)].into();
    for _ in 0..2 {
        assert_eq!(repo.map(one.clone()).await, "[1]");
        assert_eq!(repo.map(two.clone()).await, "[2]");
    }
    assert_eq!(repo.runs(), 4, "every call runs the body");
    assert!(stored_keys(&server, "t:map*").is_empty());
    // Invalidating with such arguments has nothing to remove, and is no error.
    repo.forget(one.clone(), Some(f64::NAN)).await;
    repo.forget(two, None).await;
    assert!(!repo.map_invalidate(one).await);
}
