//! What one `get_or_load` miss costs its caller, by the loader options:
//! the default (Redis read, lease, loader, checked fill, then the answer),
//! `skip_lease` (read, loader, plain `SET`), `background_fill` (read,
//! lease, loader, answer; the fill after it) and both (read, loader,
//! answer). The loader answers at once, so the differences are Redis round
//! trips, against one local `redis-server` started here.
//!
//! Each round runs every side in rotating order, each on 100 fresh keys
//! awaited one after another; the median time per miss and the median of
//! the per-round ratios to the default are printed.

#![allow(missing_docs)]

mod common;

#[allow(dead_code, unreachable_pub, missing_docs)]
#[path = "../tests/support/server.rs"]
mod server;

use common::{median, multi_thread_runtime};
use std::time::{Duration, Instant};

use ngx_cache::{Cache, CacheConfig, EntryOptions};

const MISSES: usize = 100;
const ROUNDS: usize = 41;

/// The sides: a name and the options of its loads.
fn sides() -> [(&'static str, EntryOptions); 4] {
    let base = EntryOptions::new().ttl(Duration::from_secs(600));
    [
        ("default", base.clone()),
        ("skip_lease", base.clone().skip_lease(true)),
        ("background_fill", base.clone().background_fill(true)),
        (
            "background_fill + skip_lease",
            base.background_fill(true).skip_lease(true),
        ),
    ]
}

/// Time per miss, in microseconds, over `MISSES` fresh keys.
async fn run(cache: &Cache, opts: &EntryOptions, prefix: &str) -> f64 {
    let start = Instant::now();
    for i in 0..MISSES {
        let key = format!("{prefix}:{i}");
        let got = cache
            .get_or_load(&key, opts, move || async move {
                Ok::<_, std::io::Error>(i as u64)
            })
            .await
            .unwrap();
        assert_eq!(got, i as u64);
    }
    start.elapsed().as_secs_f64() * 1e6 / MISSES as f64
}

fn main() {
    let server = server::RedisServer::start();
    let rt = multi_thread_runtime();
    rt.block_on(async {
        let cache = Cache::connect(CacheConfig::builder().url(server.url()).build().unwrap())
            .await
            .unwrap();
        let sides = sides();
        let n = sides.len();
        let mut times: Vec<Vec<f64>> = vec![Vec::new(); n];
        let mut ratios: Vec<Vec<f64>> = vec![Vec::new(); n];
        for round in 0..ROUNDS {
            let mut t = vec![0.0; n];
            for j in 0..n {
                let s = (round + j) % n;
                t[s] = run(&cache, &sides[s].1, &format!("miss:{round}:{s}")).await;
            }
            if round == 0 {
                continue; // warm-up
            }
            for s in 0..n {
                times[s].push(t[s]);
                ratios[s].push(t[s] / t[0]);
            }
        }
        for (s, (name, _)) in sides.iter().enumerate() {
            println!(
                "MISS {name}: median {:.1} us per miss, {:.2}x the default (median of {} paired rounds)",
                median(&mut times[s]),
                median(&mut ratios[s]),
                ROUNDS - 1
            );
        }
    });
}
