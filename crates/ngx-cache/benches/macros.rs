//! The cost of `#[cached]` on a hit, against calling `get_or_load` by hand
//! with the same key, options and loader. Needs `redis-server` on the PATH
//! (started on a free port for the run).
//!
//! `cargo bench -p ngx-cache --bench macros`

#[path = "../tests/support/server.rs"]
#[allow(dead_code, unreachable_pub, missing_docs)]
mod server;

mod common;

use common::median;
use std::convert::Infallible;
use std::hint::black_box;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use ngx_cache::{Cache, CacheConfig, EntryOptions, cached, stable_hash};
use serde::{Deserialize, Serialize};

static CACHE: OnceLock<Cache> = OnceLock::new();

#[derive(Clone, Serialize, Deserialize)]
struct UserProfile {
    user_id: String,
    name: String,
    score: u32,
}

fn load(user_id: &str) -> UserProfile {
    UserProfile {
        user_id: user_id.to_owned(),
        name: "Ana".to_owned(),
        score: 42,
    }
}

#[cached(cache = CACHE.get(), ttl = 300, key_prefix = "user_data")]
async fn by_macro(user_id: &str) -> Result<UserProfile, Infallible> {
    Ok(load(user_id))
}

#[cached(cache = CACHE.get(), ttl = 300, key_prefix = "user_data_l2", l1 = false)]
async fn by_macro_l2(user_id: &str) -> Result<UserProfile, Infallible> {
    Ok(load(user_id))
}

/// What a careful hand-written call does: the same key derivation (stable
/// hash of the named arguments), options and owned loader.
async fn by_hand(cache: &Cache, prefix: &str, l1: bool, user_id: &str) -> UserProfile {
    #[derive(Serialize)]
    struct Args<'a> {
        user_id: &'a str,
    }
    let key = format!("{prefix}:{}", stable_hash(&Args { user_id }));
    let opts = EntryOptions::new().ttl(Duration::from_secs(300)).l1(l1);
    let owned = user_id.to_owned();
    cache
        .get_or_load(&key, &opts, move || async move {
            Ok::<_, Infallible>(load(&owned))
        })
        .await
        .unwrap()
}

fn hits(c: &mut Criterion) {
    let server = server::RedisServer::start();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let cache = rt.block_on(async {
        let config = CacheConfig::builder().url(server.url()).build().unwrap();
        Cache::connect(config).await.unwrap()
    });
    CACHE.set(cache.clone()).ok();
    rt.block_on(async {
        by_macro("42").await.unwrap();
        by_macro_l2("42").await.unwrap();
    });

    let mut g = c.benchmark_group("macros/hit_l1");
    g.bench_function("get_or_load_by_hand", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(by_hand(&cache, "user_data", true, black_box("42")).await) })
    });
    g.bench_function("cached_macro", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(by_macro(black_box("42")).await.unwrap()) })
    });
    // The floor: get_or_load with a key computed once, outside the loop.
    let fixed = format!(
        "user_data:{}",
        stable_hash(&serde_json::json!({"user_id": "42"}))
    );
    let opts = EntryOptions::new().ttl(Duration::from_secs(300));
    g.bench_function("get_or_load_fixed_key", |b| {
        b.to_async(&rt).iter(|| async {
            let v: UserProfile = cache
                .get_or_load(black_box(&fixed), &opts, || async {
                    Ok::<_, Infallible>(load("42"))
                })
                .await
                .unwrap();
            black_box(v)
        })
    });
    g.finish();

    let mut g = c.benchmark_group("macros/hit_redis");
    g.bench_function("get_or_load_by_hand", |b| {
        b.to_async(&rt).iter(|| async {
            black_box(by_hand(&cache, "user_data_l2", false, black_box("42")).await)
        })
    });
    g.bench_function("cached_macro", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(by_macro_l2(black_box("42")).await.unwrap()) })
    });
    g.finish();

    paired(&rt, &cache);
    drop(server);
}

/// Criterion measures the two sides seconds apart, and the load on a shared
/// machine changes within seconds. So both sides also run back to back for
/// 15 rounds, the order swapped every round, and the median of the
/// per-round ratios macro/by-hand is printed (`PAIRED` lines).
fn paired(rt: &tokio::runtime::Runtime, cache: &Cache) {
    const ROUNDS: usize = 15;
    for (name, prefix, l1, calls) in [
        ("hit_l1", "user_data", true, 20_000u32),
        ("hit_redis", "user_data_l2", false, 1_000),
    ] {
        let mut ratios = Vec::with_capacity(ROUNDS);
        let (mut macro_ns, mut hand_ns) = (Vec::new(), Vec::new());
        for round in 0..ROUNDS {
            let run_macro = || {
                rt.block_on(async {
                    let t = Instant::now();
                    for _ in 0..calls {
                        if l1 {
                            black_box(by_macro(black_box("42")).await.unwrap());
                        } else {
                            black_box(by_macro_l2(black_box("42")).await.unwrap());
                        }
                    }
                    t.elapsed().as_nanos() as f64 / f64::from(calls)
                })
            };
            let run_hand = || {
                rt.block_on(async {
                    let t = Instant::now();
                    for _ in 0..calls {
                        black_box(by_hand(cache, prefix, l1, black_box("42")).await);
                    }
                    t.elapsed().as_nanos() as f64 / f64::from(calls)
                })
            };
            let (m, h) = if round % 2 == 0 {
                let m = run_macro();
                (m, run_hand())
            } else {
                let h = run_hand();
                (run_macro(), h)
            };
            macro_ns.push(m);
            hand_ns.push(h);
            ratios.push(m / h);
        }
        println!(
            "PAIRED macros/{name}: macro/by-hand median ratio {:.3} (macro median {:.0} ns, by hand median {:.0} ns, {ROUNDS} rounds x {calls} calls)",
            median(&mut ratios),
            median(&mut macro_ns),
            median(&mut hand_ns),
        );
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    targets = hits
}
criterion_main!(benches);
