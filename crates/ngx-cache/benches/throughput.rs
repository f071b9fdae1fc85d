//! Throughput of `get`, `set` and `get_many` through `ngx_cache::Cache`
//! compared with the same commands over a bare redis-rs
//! `MultiplexedConnection`, both against one local `redis-server` started by
//! this bench, on both Tokio runtime flavours.
//!
//! One criterion iteration is one batch of [`BATCH`] operations split evenly
//! over `c` tasks. Each `iter_custom` sample spawns the `c` tasks once, each
//! runs `iters * BATCH / c` operations back to back, and the whole sample is
//! timed: spawn cost is amortised away and the figure is sustained ops/s.
//!
//! Fairness:
//! - both sides read and write the same keys (`ngx:bk:{i}`, 10k of them,
//!   pre-populated through the cache) holding the same bytes: a 100-byte
//!   ASCII `String` as our cache stores it (JSON, 102 bytes with the quotes;
//!   the bare side writes back exactly the stored bytes);
//! - our `get::<String>` validates and namespaces the key, goes through the
//!   breaker and the pool, and JSON-decodes into a `String`; the bare side
//!   sends `GET` with a pre-built key and keeps the raw `Vec<u8>`;
//! - our `set` JSON-encodes and sends `SET key value PX ttl` (default TTL,
//!   10% jitter on, as a user gets by default) plus whatever the library adds
//!   (an invalidation `PUBLISH` when enabled); the bare side sends
//!   `SET key value PX 3600000`;
//! - `BENCH_CACHE=redis` (the default here) keeps every `CacheConfig`
//!   default except the in-process L1 tier and invalidation messages, which
//!   are turned off so that every `get` goes to Redis; `BENCH_CACHE=defaults`
//!   leaves the configuration untouched (then `get` is mostly an L1 hit and
//!   the ratio measures something else);
//! - our cache uses its default pool (10 multiplexed connections, 250 ms
//!   operation timeout); the bare side uses one `MultiplexedConnection` made
//!   with the default `AsyncConnectionConfig` (500 ms response timeout),
//!   cloned into every task, which is how redis-rs recommends using it.
//!
//! Environment knobs: `BENCH_CACHE` (above), `BENCH_POOL_SIZE` (diagnostic
//! pool size), `BENCH_PAIRED=0` (skip the paired-ratio summary),
//! `BENCH_ROUNDS` (rounds of the paired summary, 9 by default),
//! `BENCH_ONLY` and `BENCH_SIDE` (one case, one side: see `paired`).

#![allow(missing_docs)]

#[allow(dead_code, unreachable_pub, missing_docs)]
#[path = "../tests/support/server.rs"]
mod server;

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use ngx_cache::{Cache, CacheConfig};
use redis::AsyncConnectionConfig;
use redis::aio::MultiplexedConnection;
use tokio::runtime::Runtime;

/// Keys in the data set.
const KEYS: usize = 10_000;
/// Value length in bytes (before JSON's two quotes).
const VALUE_LEN: usize = 100;
/// Operations per criterion iteration, split over the tasks.
const BATCH: u64 = 1024;
/// Concurrency levels.
const TASKS: [u64; 4] = [1, 16, 64, 256];
/// Keys per `get_many` / `MGET`.
const MANY: usize = 100;
/// TTL the bare side sends, equal to the cache's default TTL.
const TTL_MS: u64 = 3_600_000;

struct Fixture {
    cache: Cache,
    bare: MultiplexedConnection,
    /// Keys as a cache user passes them (`bk:{i}`).
    short: Arc<Vec<String>>,
    /// The same keys as stored (`ngx:bk:{i}`).
    full: Arc<Vec<String>>,
    /// The values as `String`s (what our `set` takes).
    values: Arc<Vec<String>>,
    /// The values JSON-encoded (what the bare `SET` sends).
    encoded: Arc<Vec<Vec<u8>>>,
}

/// `redis` (default): defaults with the L1 tier and invalidation off, so
/// both sides do the same Redis work. `defaults`: `CacheConfig` untouched.
fn profile() -> String {
    std::env::var("BENCH_CACHE").unwrap_or_else(|_| "redis".to_owned())
}

fn value(i: usize) -> String {
    let mut v = format!("{i:010}-");
    while v.len() < VALUE_LEN {
        v.push((b'a' + (v.len() % 26) as u8) as char);
    }
    v
}

async fn fixture(url: &str) -> Fixture {
    let mut builder = CacheConfig::builder().url(url);
    if profile() == "redis" {
        // The Redis path only: no in-process L1 (which would answer every
        // `get` without touching Redis) and no invalidation messages.
        builder = builder.l1(false).invalidation(false);
    }
    // Diagnostic knob, not used for the published figures unless stated.
    if let Some(n) = std::env::var("BENCH_POOL_SIZE")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        builder = builder.pool_size(n);
    }
    let config = builder.build().expect("config");
    let cache = Cache::connect(config).await.expect("cache connects");
    let client = redis::Client::open(url).expect("url");
    let bare = client
        .get_multiplexed_async_connection_with_config(&AsyncConnectionConfig::default())
        .await
        .expect("bare connection");
    let short: Vec<String> = (0..KEYS).map(|i| format!("bk:{i}")).collect();
    let full: Vec<String> = short
        .iter()
        .map(|k| cache.full_key(k).expect("valid key"))
        .collect();
    let values: Vec<String> = (0..KEYS).map(value).collect();
    for chunk in short.chunks(1000).zip(values.chunks(1000)) {
        let items: Vec<(&String, &String)> = chunk.0.iter().zip(chunk.1).collect();
        cache
            .try_set_many(&items, None)
            .await
            .expect("pre-populate");
    }
    // The bare side writes back exactly the bytes our cache stored.
    let mut encoded: Vec<Vec<u8>> = Vec::with_capacity(KEYS);
    for chunk in full.chunks(1000) {
        let raw: Vec<Option<Vec<u8>>> = redis::cmd("MGET")
            .arg(chunk)
            .query_async(&mut bare.clone())
            .await
            .expect("bare MGET");
        encoded.extend(raw.into_iter().map(|v| v.expect("pre-populated")));
    }
    // Sanity: both sides see the same 100-byte values.
    let got: Option<String> = cache.get(&short[42]).await;
    assert_eq!(got.as_deref(), Some(values[42].as_str()));
    assert_eq!(values[42].len(), VALUE_LEN);
    println!(
        "profile {}: stored value = {} bytes ({:?}...)",
        profile(),
        encoded[42].len(),
        String::from_utf8_lossy(&encoded[42][..24.min(encoded[42].len())])
    );
    // The state a task holds while a call waits for Redis (the test
    // `ops::a_call_in_flight_holds_little_state` bounds ours).
    let ours_get = cache.get::<String>(&short[0]);
    let ours_set = cache.set(&short[0], &values[0], None);
    let get_cmd = redis::cmd("GET");
    let mut conn = bare.clone();
    let bare_get = get_cmd.query_async::<Option<Vec<u8>>>(&mut conn);
    println!(
        "future sizes: ours get {} B, set {} B; bare GET {} B",
        std::mem::size_of_val(&ours_get),
        std::mem::size_of_val(&ours_set),
        std::mem::size_of_val(&bare_get),
    );
    drop((ours_get, ours_set, bare_get));
    Fixture {
        cache,
        bare,
        short: Arc::new(short),
        full: Arc::new(full),
        values: Arc::new(values),
        encoded: Arc::new(encoded),
    }
}

/// A cheap per-task key sequence (LCG), different per task and per sample.
fn next_key(state: &mut u64) -> usize {
    *state = state
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    ((*state >> 33) % KEYS as u64) as usize
}

#[derive(Clone, Copy, Debug)]
enum Op {
    Get,
    Set,
    GetMany,
}

#[derive(Clone, Copy, Debug)]
enum Side {
    Ours,
    Bare,
}

/// Runs `per_task` operations in each of `tasks` tasks and returns the
/// elapsed time of the whole batch.
async fn run(fx: &Fixture, side: Side, op: Op, tasks: u64, per_task: u64) -> Duration {
    let start = Instant::now();
    let mut handles = Vec::with_capacity(tasks as usize);
    for t in 0..tasks {
        let cache = fx.cache.clone();
        let mut bare = fx.bare.clone();
        let short = Arc::clone(&fx.short);
        let full = Arc::clone(&fx.full);
        let values = Arc::clone(&fx.values);
        let encoded = Arc::clone(&fx.encoded);
        let mut seed = t.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ start.elapsed().as_nanos() as u64;
        handles.push(tokio::spawn(async move {
            for _ in 0..per_task {
                let i = next_key(&mut seed);
                match (side, op) {
                    (Side::Ours, Op::Get) => {
                        let v: Option<String> = cache.get(&short[i]).await;
                        assert!(v.is_some(), "cache miss in get bench");
                    }
                    (Side::Bare, Op::Get) => {
                        let v: Option<Vec<u8>> = redis::cmd("GET")
                            .arg(&full[i])
                            .query_async(&mut bare)
                            .await
                            .expect("bare GET");
                        assert!(v.is_some(), "bare miss in get bench");
                    }
                    (Side::Ours, Op::Set) => {
                        cache.set(&short[i], &values[i], None).await.expect("set");
                    }
                    (Side::Bare, Op::Set) => {
                        let () = redis::cmd("SET")
                            .arg(&full[i])
                            .arg(&encoded[i])
                            .arg("PX")
                            .arg(TTL_MS)
                            .query_async(&mut bare)
                            .await
                            .expect("bare SET");
                    }
                    (Side::Ours, Op::GetMany) => {
                        let lo = i.min(KEYS - MANY);
                        let v: Vec<Option<String>> = cache.get_many(&short[lo..lo + MANY]).await;
                        assert!(v.iter().all(Option::is_some), "miss in get_many");
                    }
                    (Side::Bare, Op::GetMany) => {
                        let lo = i.min(KEYS - MANY);
                        let v: Vec<Option<Vec<u8>>> = redis::cmd("MGET")
                            .arg(&full[lo..lo + MANY])
                            .query_async(&mut bare)
                            .await
                            .expect("bare MGET");
                        assert!(v.iter().all(Option::is_some), "miss in MGET");
                    }
                }
            }
        }));
    }
    for h in handles {
        h.await.expect("bench task");
    }
    start.elapsed()
}

fn flavour(name: &str) -> Runtime {
    match name {
        "multi_thread" => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("runtime"),
        _ => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime"),
    }
}

fn bench_flavour(c: &mut Criterion, url: &str, name: &str) {
    let rt = flavour(name);
    let fx = rt.block_on(fixture(url));

    for (op, label) in [(Op::Get, "get"), (Op::Set, "set")] {
        let mut group = c.benchmark_group(format!("{label}/{name}"));
        group.throughput(Throughput::Elements(BATCH));
        for tasks in TASKS {
            // Ours and bare side by side at each level, so drift in machine
            // load hits both alike.
            for side in [Side::Ours, Side::Bare] {
                let id = BenchmarkId::new(format!("{side:?}").to_lowercase(), tasks);
                group.bench_function(id, |b| {
                    b.iter_custom(|iters| {
                        rt.block_on(run(&fx, side, op, tasks, iters * (BATCH / tasks)))
                    })
                });
            }
        }
        group.finish();
    }

    // get_many: one element = one key read; one iteration = 16 calls.
    let calls: u64 = 16;
    let mut group = c.benchmark_group(format!("get_many_100/{name}"));
    group.throughput(Throughput::Elements(calls * MANY as u64));
    for tasks in [1u64, 16] {
        for side in [Side::Ours, Side::Bare] {
            let id = BenchmarkId::new(format!("{side:?}").to_lowercase(), tasks);
            group.bench_function(id, |b| {
                b.iter_custom(|iters| {
                    rt.block_on(run(&fx, side, Op::GetMany, tasks, iters * (calls / tasks)))
                })
            });
        }
    }
    group.finish();

    paired(&rt, &fx, name);

    let stats = fx.cache.stats();
    assert_eq!(stats.errors, 0, "cache errors during bench: {stats:?}");
    assert_eq!(
        stats.sets_skipped, 0,
        "skipped sets during bench: {stats:?}"
    );
    drop(fx);
    rt.shutdown_timeout(Duration::from_secs(1));
}

/// Ours and bare alternate in short rounds (order swapped every round) and
/// the median of the per-round ratios is printed: less sensitive than two
/// separate criterion runs to load that other processes put on the machine.
fn paired(rt: &Runtime, fx: &Fixture, name: &str) {
    if std::env::var("BENCH_PAIRED").as_deref() == Ok("0") {
        return;
    }
    let rounds = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or(9);
    let mut cases: Vec<(Op, &str, u64, u64)> = Vec::new();
    for tasks in TASKS {
        cases.push((Op::Get, "get", tasks, 2 * BATCH / tasks));
        cases.push((Op::Set, "set", tasks, 2 * BATCH / tasks));
    }
    for tasks in [1u64, 16] {
        cases.push((Op::GetMany, "get_many_100", tasks, 32 / tasks));
    }
    // Diagnostic: `BENCH_ONLY=get/current_thread/256` keeps one case, and
    // `BENCH_SIDE=ours|bare` runs only that side (for a profile or a CPU
    // count of one side).
    let only = std::env::var("BENCH_ONLY").ok();
    let one_side = match std::env::var("BENCH_SIDE").as_deref() {
        Ok("ours") => Some(Side::Ours),
        Ok("bare") => Some(Side::Bare),
        _ => None,
    };
    for (op, label, tasks, per_task) in cases {
        if only
            .as_deref()
            .is_some_and(|o| o != format!("{label}/{name}/{tasks}"))
        {
            continue;
        }
        let ops = (tasks * per_task) as f64;
        if let Some(side) = one_side {
            let cpu = || {
                let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
                t.tv_sec as f64 + t.tv_nsec as f64 / 1e9
            };
            let (start, cpu_start) = (Instant::now(), cpu());
            for _ in 0..rounds {
                rt.block_on(run(fx, side, op, tasks, per_task));
            }
            let total = ops * rounds as f64;
            let cpu_s = cpu() - cpu_start;
            println!(
                "SIDE {side:?} {label}/{name}/{tasks}: {total:.0} ops in {:.3} s, \
                 this process's CPU {cpu_s:.3} s ({:.2} us/op)",
                start.elapsed().as_secs_f64(),
                cpu_s / total * 1e6,
            );
            continue;
        }
        let mut ratios = Vec::new();
        let (mut ours_all, mut bare_all) = (Vec::new(), Vec::new());
        for r in 0..rounds {
            let order = if r % 2 == 0 {
                [Side::Ours, Side::Bare]
            } else {
                [Side::Bare, Side::Ours]
            };
            let mut rate = [0.0; 2];
            for side in order {
                let t = rt.block_on(run(fx, side, op, tasks, per_task));
                rate[side as usize] = ops / t.as_secs_f64();
            }
            ratios.push(rate[0] / rate[1]);
            ours_all.push(rate[0]);
            bare_all.push(rate[1]);
        }
        let med = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        println!(
            "PAIRED {label}/{name}/{tasks}: ours {:.0} op/s, bare {:.0} op/s, median ratio {:.2} (min {:.2}, max {:.2})",
            med(&mut ours_all),
            med(&mut bare_all),
            med(&mut ratios),
            ratios[0],
            ratios[ratios.len() - 1],
        );
    }
}

fn main() {
    let server = server::RedisServer::start();
    let url = server.url();
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    for name in ["multi_thread", "current_thread"] {
        bench_flavour(&mut c, &url, name);
    }
    c.final_summary();
}
