//! `get_or_load_many` of 100 keys with 10 missing against the same 100 keys
//! through single-key `get_or_load`, awaited one after another and all at
//! once (`join_all`), against one local `redis-server` started here.
//!
//! Each round uses 100 fresh keys: 90 are written beforehand through another
//! `Cache` instance (so they are in Redis, not in the reader's L1), 10 are
//! missing and come from a loader that answers at once. The three sides run
//! in every round, in rotating order, each on its own key set, and the
//! median time per side and the median of the per-round ratios are printed.

#![allow(missing_docs)]

mod common;

#[allow(dead_code, unreachable_pub, missing_docs)]
#[path = "../tests/support/server.rs"]
mod server;

use common::{median, multi_thread_runtime};
use std::collections::HashMap;
use std::time::{Duration, Instant};

use ngx_cache::{Cache, CacheConfig, EntryOptions};

const KEYS: usize = 100;
const MISSING: usize = 10;
const ROUNDS: usize = 41;

#[derive(Clone, Copy, Debug)]
enum Side {
    Many,
    Sequential,
    Concurrent,
}

async fn prepare(writer: &Cache, prefix: &str) -> Vec<String> {
    let keys: Vec<String> = (0..KEYS).map(|i| format!("{prefix}:{i}")).collect();
    let present: Vec<(String, String)> = keys
        .iter()
        .enumerate()
        .filter(|(i, _)| i % (KEYS / MISSING) != 0)
        .map(|(_, k)| (k.clone(), format!("value of {k}")))
        .collect();
    writer.set_many(&present, None).await.unwrap();
    keys
}

async fn run(reader: &Cache, side: Side, keys: &[String]) -> Duration {
    let opts = EntryOptions::new().ttl(Duration::from_secs(600));
    let start = Instant::now();
    let values: Vec<Option<String>> = match side {
        Side::Many => reader
            .get_or_load_many(keys, &opts, |missing: Vec<String>| async move {
                Ok::<_, std::io::Error>(
                    missing
                        .into_iter()
                        .map(|k| {
                            let v = format!("value of {k}");
                            (k, v)
                        })
                        .collect::<HashMap<_, _>>(),
                )
            })
            .await
            .unwrap(),
        Side::Sequential => {
            let mut out = Vec::with_capacity(keys.len());
            for k in keys {
                let v = format!("value of {k}");
                let got = reader
                    .get_or_load(k, &opts, move || async move { Ok::<_, std::io::Error>(v) })
                    .await
                    .unwrap();
                out.push(Some(got));
            }
            out
        }
        Side::Concurrent => {
            futures::future::join_all(keys.iter().map(|k| {
                let v = format!("value of {k}");
                let opts = &opts;
                async move {
                    reader
                        .get_or_load(k, opts, move || async move { Ok::<_, std::io::Error>(v) })
                        .await
                        .ok()
                }
            }))
            .await
        }
    };
    let elapsed = start.elapsed();
    assert!(values.iter().all(Option::is_some));
    elapsed
}

fn main() {
    let server = server::RedisServer::start();
    let rt = multi_thread_runtime();
    rt.block_on(async {
        let config = || CacheConfig::builder().url(server.url()).build().unwrap();
        let writer = Cache::connect(config()).await.unwrap();
        let reader = Cache::connect(config()).await.unwrap();
        let sides = [Side::Many, Side::Sequential, Side::Concurrent];
        let mut times: [Vec<f64>; 3] = Default::default();
        let (mut seq_ratio, mut conc_ratio) = (Vec::new(), Vec::new());
        for round in 0..ROUNDS {
            let mut t = [0.0; 3];
            for j in 0..3 {
                let s = (round + j) % 3;
                let keys = prepare(&writer, &format!("bl:{round}:{s}")).await;
                t[s] = run(&reader, sides[s], &keys).await.as_secs_f64() * 1e3;
            }
            if round == 0 {
                continue; // warm-up
            }
            for s in 0..3 {
                times[s].push(t[s]);
            }
            seq_ratio.push(t[1] / t[0]);
            conc_ratio.push(t[2] / t[0]);
        }
        for (s, side) in sides.iter().enumerate() {
            println!(
                "BATCH {side:?}: median {:.3} ms per 100 keys ({MISSING} missing)",
                median(&mut times[s])
            );
        }
        println!(
            "BATCH speed-up of get_or_load_many: {:.1}x over sequential get_or_load, {:.1}x over concurrent (median of {} paired rounds)",
            median(&mut seq_ratio),
            median(&mut conc_ratio),
            ROUNDS - 1
        );
    });
}
