//! L1 hit cost through `Cache::get`, against a bare `RwLock<HashMap>` (the
//! floor), the same map holding type-erased values (`Box<dyn Any>`, one
//! pointer more: the least any cache of values of any type pays) and a bare
//! `moka::future::Cache`, on 100k keys and the same value type (the two
//! maps also with their values allocated apart from their keys); the
//! `get_or_load` hit and miss paths; a 1,000-way stampede.
//!
//! Needs `redis-server` on the PATH (a private one is started on a free port).
//! Run: `cargo bench -p ngx-cache --bench l1`

use std::any::Any;
use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use ngx_cache::{Cache, CacheConfig, EntryOptions};
use parking_lot::RwLock;

#[path = "../tests/support/server.rs"]
#[allow(dead_code, unreachable_pub, missing_docs)]
mod server;

const KEYS: usize = 100_000;

/// The value type of every contender: a 48-byte string, cloned on a hit.
fn value(i: usize) -> String {
    format!("{i:0>48}")
}

fn keys() -> Vec<String> {
    (0..KEYS).map(|i| format!("bench:{i}")).collect()
}

/// Visits the keys in a scattered order (a stride coprime with `KEYS`), so
/// no contender profits from sequential locality.
struct Cursor(usize);
impl Cursor {
    fn next(&mut self) -> usize {
        self.0 = (self.0 + 7_919) % KEYS;
        self.0
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

async fn connect(server: &server::RedisServer) -> Cache {
    let config = CacheConfig::builder()
        .url(server.url())
        .namespace("bench")
        .ttl_jitter(0.0)
        .l1_capacity(2 * KEYS)
        .l1_max_ttl(Duration::from_secs(3600))
        .default_ttl(Duration::from_secs(3600))
        .build()
        .unwrap();
    Cache::connect(config).await.unwrap()
}

/// Writes every key to Redis, then reads each once so L1 holds it.
async fn fill(cache: &Cache, keys: &[String]) {
    for chunk in keys.chunks(1_000).enumerate() {
        let (n, chunk) = chunk;
        let items: Vec<(&str, String)> = chunk
            .iter()
            .enumerate()
            .map(|(i, k)| (k.as_str(), value(n * 1_000 + i)))
            .collect();
        cache.set_many(&items, None).await.unwrap();
    }
    let reads = futures::stream::iter(keys.iter())
        .map(|k| async move { cache.get::<String>(k).await })
        .buffer_unordered(256);
    use futures::StreamExt;
    let got: Vec<_> = reads.collect().await;
    assert!(got.iter().all(Option::is_some));
    // The fills above raced with our own set_many's invalidations; read again
    // until every key is an L1 hit.
    for k in keys {
        for _ in 0..10 {
            let before = cache.stats().l1_hits;
            cache.get::<String>(k).await.unwrap();
            if cache.stats().l1_hits > before {
                break;
            }
        }
    }
}

/// The floor's map with type-erased values, each in its own allocation.
type Erased = RwLock<HashMap<String, Box<dyn Any + Send + Sync>>>;

/// The key indexes `0..KEYS` in a shuffled order (Fisher-Yates with a
/// fixed xorshift seed), for allocating values apart from their keys.
fn shuffled(seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..KEYS).collect();
    let mut x = seed;
    for i in (1..KEYS).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        order.swap(i, (x % (i as u64 + 1)) as usize);
    }
    order
}

/// Contenders whose values were allocated apart from their keys, in a
/// shuffled order, the way a cache's values are: each is allocated when
/// its key is first loaded, between other work.
struct Scattered {
    floor: RwLock<HashMap<String, String>>,
    erased: Erased,
}

impl Scattered {
    fn new(keys: &[String]) -> Self {
        let order = shuffled(0x9E37_79B9_7F4A_7C15);
        let mut values: Vec<Option<String>> = vec![None; KEYS];
        let mut strings: Vec<Option<String>> = vec![None; KEYS];
        for &i in &order {
            values[i] = Some(value(i));
            strings[i] = Some(value(i));
        }
        let mut boxes: Vec<Option<Box<dyn Any + Send + Sync>>> = (0..KEYS).map(|_| None).collect();
        for i in shuffled(0xD1B5_4A32_D192_ED03) {
            boxes[i] = Some(Box::new(strings[i].take().unwrap()));
        }
        let floor = keys
            .iter()
            .zip(values)
            .map(|(k, v)| (k.clone(), v.unwrap()))
            .collect();
        let erased = keys
            .iter()
            .zip(boxes)
            .map(|(k, v)| (k.clone(), v.unwrap()))
            .collect();
        Self {
            floor: RwLock::new(floor),
            erased: RwLock::new(erased),
        }
    }
}

fn l1_hits(c: &mut Criterion) {
    let rt = runtime();
    let server = server::RedisServer::start();
    let keys = keys();
    let cache = rt.block_on(connect(&server));
    rt.block_on(fill(&cache, &keys));
    let before = cache.stats();

    let floor: RwLock<HashMap<String, String>> = RwLock::new(
        keys.iter()
            .enumerate()
            .map(|(i, k)| (k.clone(), value(i)))
            .collect(),
    );
    let erased: Erased = RwLock::new(
        keys.iter()
            .enumerate()
            .map(|(i, k)| (k.clone(), Box::new(value(i)) as Box<dyn Any + Send + Sync>))
            .collect(),
    );
    let moka: moka::future::Cache<String, String> = moka::future::Cache::new(2 * KEYS as u64);
    rt.block_on(async {
        for (i, k) in keys.iter().enumerate() {
            moka.insert(k.clone(), value(i)).await;
        }
        moka.run_pending_tasks().await;
    });

    let scattered = Scattered::new(&keys);
    rt.block_on(paired(&cache, &floor, &erased, &scattered, &moka, &keys));

    let mut g = c.benchmark_group("l1_hit_100k");
    g.bench_function("rwlock_hashmap_floor", |b| {
        let mut cur = Cursor(0);
        b.to_async(&rt).iter(|| {
            let k = &keys[cur.next()];
            let v = floor.read().get(k.as_str()).cloned();
            async move { black_box(v) }
        })
    });
    g.bench_function("rwlock_hashmap_dyn_any", |b| {
        let mut cur = Cursor(0);
        b.to_async(&rt).iter(|| {
            let k = &keys[cur.next()];
            let v = erased
                .read()
                .get(k.as_str())
                .and_then(|v| v.downcast_ref::<String>().cloned());
            async move { black_box(v) }
        })
    });
    g.bench_function("moka_future_get", |b| {
        let mut cur = Cursor(0);
        b.to_async(&rt).iter(|| {
            let k = &keys[cur.next()];
            let moka = &moka;
            async move { black_box(moka.get(k.as_str()).await) }
        })
    });
    g.bench_function("cache_get", |b| {
        let mut cur = Cursor(0);
        b.to_async(&rt).iter(|| {
            let k = &keys[cur.next()];
            let cache = &cache;
            async move { black_box(cache.get::<String>(k).await) }
        })
    });
    let opts = EntryOptions::new().ttl(Duration::from_secs(3600));
    g.bench_function("cache_get_or_load_hit", |b| {
        let mut cur = Cursor(0);
        b.to_async(&rt).iter(|| {
            let k = &keys[cur.next()];
            let (cache, opts) = (&cache, &opts);
            async move {
                black_box(
                    cache
                        .get_or_load(k, opts, || async {
                            Err::<String, _>(std::io::Error::other("must hit"))
                        })
                        .await,
                )
            }
        })
    });
    g.finish();
    let after = cache.stats();
    assert_eq!(
        after.l2_hits, before.l2_hits,
        "every measured read was an L1 hit"
    );
    assert_eq!(after.misses, before.misses);
}

/// On-CPU time of the current thread in nanoseconds
/// (`CLOCK_THREAD_CPUTIME_ID`): unlike wall time, it leaves out the time the
/// shared machine gave to other processes. (`/proc/thread-self/schedstat`
/// advances in whole scheduler ticks on some kernels, 4 ms here, too coarse
/// for rounds of a few tens of milliseconds.)
fn thread_cpu_ns() -> u64 {
    let ts = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// The order of the contenders in round `round`, for a prime count `n`: a
/// contender finds the CPU caches as the one before it left them (the one
/// with the largest footprint evicts the others' data; one that reads the
/// same entries leaves them warm), so over every `n * (n - 1)` rounds each
/// contender follows each other one equally often. The stride changes every
/// `n` rounds and the start every round; rotating one fixed order instead
/// would keep the same neighbours in all but one round of `n`.
fn order(round: usize, n: usize) -> impl Iterator<Item = usize> {
    let stride = 1 + (round / n) % (n - 1);
    (0..n).map(move |turn| (round + turn * stride) % n)
}

/// The machine is shared, so criterion's back-to-back groups can see
/// different loads. This runs the contenders interleaved, in rounds (in a
/// balanced order, see [`order`]), on one thread, and reports the median
/// on-CPU cost per lookup and the median per-round ratio to the floor.
async fn paired(
    cache: &Cache,
    floor: &RwLock<HashMap<String, String>>,
    erased: &Erased,
    scattered: &Scattered,
    moka: &moka::future::Cache<String, String>,
    keys: &[String],
) {
    const OPS: usize = 100_000;
    const ROUNDS: usize = 42;
    const NAMES: [&str; 7] = [
        "rwlock_hashmap_floor",
        "rwlock_hashmap_dyn_any",
        "floor_values_apart",
        "dyn_any_values_apart",
        "moka_future_get",
        "cache_get",
        "cache_get_or_load_hit",
    ];
    let opts = EntryOptions::new().ttl(Duration::from_secs(3600));
    let mut ns: [Vec<f64>; 7] = Default::default();
    let mut cur = Cursor(0);
    for round in 0..ROUNDS {
        for i in order(round, NAMES.len()) {
            let start = thread_cpu_ns();
            for _ in 0..OPS {
                let k = keys[cur.next()].as_str();
                match i {
                    0 => drop(black_box(floor.read().get(k).cloned())),
                    1 => drop(black_box(
                        erased
                            .read()
                            .get(k)
                            .and_then(|v| v.downcast_ref::<String>().cloned()),
                    )),
                    2 => drop(black_box(scattered.floor.read().get(k).cloned())),
                    3 => drop(black_box(
                        scattered
                            .erased
                            .read()
                            .get(k)
                            .and_then(|v| v.downcast_ref::<String>().cloned()),
                    )),
                    4 => drop(black_box(moka.get(k).await)),
                    5 => drop(black_box(cache.get::<String>(k).await)),
                    _ => drop(black_box(
                        cache
                            .get_or_load(k, &opts, || async {
                                Err::<String, _>(std::io::Error::other("must hit"))
                            })
                            .await
                            .unwrap(),
                    )),
                }
            }
            ns[i].push((thread_cpu_ns() - start) as f64 / OPS as f64);
        }
    }
    let median = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "paired L1 hits: {ROUNDS} interleaved rounds (balanced order) of {OPS} lookups over \
         {KEYS} keys, on-CPU time, medians:"
    );
    for (i, name) in NAMES.iter().enumerate() {
        let ratios: Vec<f64> = ns[i].iter().zip(&ns[0]).map(|(x, f)| x / f).collect();
        println!(
            "  {name:<24} {:>7.1} ns/op  {:>5.2}x floor",
            median(&ns[i]),
            median(&ratios)
        );
    }
}

fn get_or_load_miss(c: &mut Criterion) {
    let rt = runtime();
    let server = server::RedisServer::start();
    let cache = rt.block_on(connect(&server));
    let opts = EntryOptions::new().ttl(Duration::from_secs(60));
    let next = AtomicUsize::new(0);
    let mut g = c.benchmark_group("get_or_load");
    // A cold key each time: L1 miss, Redis miss, lease, loader, checked fill.
    g.bench_function("miss_load_fill", |b| {
        b.to_async(&rt).iter(|| {
            let key = format!("miss:{}", next.fetch_add(1, Ordering::Relaxed));
            let (cache, opts) = (&cache, &opts);
            async move {
                black_box(
                    cache
                        .get_or_load(&key, opts, || async { Ok::<_, std::io::Error>(value(1)) })
                        .await
                        .unwrap(),
                )
            }
        })
    });
    g.finish();
}

fn stampede(c: &mut Criterion) {
    let rt = runtime();
    let server = server::RedisServer::start();
    let cache = rt.block_on(connect(&server));
    let opts = EntryOptions::new().ttl(Duration::from_secs(60));
    let round = AtomicUsize::new(0);
    let loads = Arc::new(AtomicUsize::new(0));
    let callers = Arc::new(AtomicUsize::new(0));
    let mut g = c.benchmark_group("stampede");
    g.sample_size(20);
    g.bench_function("1000_callers_cold_key_10ms_loader", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let (cache, opts) = (cache.clone(), opts.clone());
            let (round, loads, callers) = (&round, loads.clone(), callers.clone());
            let start_round = round.fetch_add(iters as usize, Ordering::Relaxed);
            async move {
                let mut total = Duration::ZERO;
                for r in 0..iters as usize {
                    let key = format!("stampede:{}", start_round + r);
                    let start = Instant::now();
                    let tasks: Vec<_> = (0..1_000)
                        .map(|_| {
                            let (cache, opts, key) = (cache.clone(), opts.clone(), key.clone());
                            let loads = loads.clone();
                            callers.fetch_add(1, Ordering::Relaxed);
                            tokio::spawn(async move {
                                cache
                                    .get_or_load(&key, &opts, move || async move {
                                        loads.fetch_add(1, Ordering::Relaxed);
                                        tokio::time::sleep(Duration::from_millis(10)).await;
                                        Ok::<_, std::io::Error>(value(2))
                                    })
                                    .await
                                    .unwrap()
                            })
                        })
                        .collect();
                    for t in tasks {
                        black_box(t.await.unwrap());
                    }
                    total += start.elapsed();
                }
                total
            }
        })
    });
    g.finish();
    let (loads, callers) = (
        loads.load(Ordering::Relaxed),
        callers.load(Ordering::Relaxed),
    );
    let rounds = callers / 1_000;
    println!(
        "stampede: {rounds} rounds of 1,000 concurrent callers, {loads} loader calls \
         ({:.3} per round)",
        loads as f64 / rounds.max(1) as f64
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = l1_hits, get_or_load_miss, stampede
}
criterion_main!(benches);
