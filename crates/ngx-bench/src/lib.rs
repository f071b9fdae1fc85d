//! The HTTP load tool behind `ngx-agent bench`: the original document's
//! "Performance Impact" table, measured.
//!
//! It sends a fixed number of requests at a fixed concurrency, with ids
//! drawn from a Zipf distribution over the seeded customers and
//! conversations, in a realistic mix (see [`mix::MIX`]): mostly
//! conversation reads and tier detections, some message appends, plus
//! predictions, recommendations and knowledge reads. After an unmeasured
//! warm-up it reports throughput, p50/p95/p99, the cache hit rate and the
//! database queries per request (both from `/cache/stats` deltas) and the
//! error count, then measures `GET /health` (the HTTP stack's ceiling) and
//! `GET /conversations/{id}` alone.
//!
//! By default it starts the service twice as a child process on a free
//! port, once with `CACHE_ENABLED=false` and once with the cache on, each
//! over a fresh database, and prints a side-by-side Markdown table. With
//! `--url` it measures one already running service instead. Only loopback
//! addresses are accepted.

pub mod mix;
pub mod report;
pub mod run;
pub mod server;

use std::path::PathBuf;
use std::time::Duration;

pub use report::{Targets, markdown};
pub use run::{PhaseResult, RunOptions, RunReport, Target, run};
pub use server::{DataStore, Server};

const USAGE: &str = "usage: ngx-agent bench [options]

Starts ngx-agent twice (CACHE_ENABLED=false, then true) on free loopback
ports over fresh databases, drives each with the same Zipf workload and
prints a Markdown table. REDIS_URL and other settings come from the
environment.

options:
  --url URL            measure one running service instead (loopback only)
  --database DB        sqlite (default: a fresh temp file per run) or a
                       postgres:// URL (a fresh schema per run, dropped after)
  --requests N         measured requests of the mix (default 20000)
  --warmup N           unmeasured requests sent first (default 20000)
  --concurrency N      concurrent connections (default 32)
  --probe-requests N   requests of the /health and conversation-read phases (default 20000)
  --zipf S             Zipf exponent (default 1.0)
  --customers N        seeded customers (default 3000)
  --conversations N    seeded conversations (default 1000)
  --seed N             RNG seed (default 7)
  --write-percent N    share of message appends in the mix (default 2)
  --binary PATH        the ngx-agent to start (default: this executable)";

/// Entry point of `ngx-agent bench`.
pub async fn main(args: &[String]) -> anyhow::Result<()> {
    let mut opts = RunOptions::default();
    let mut url = None;
    let mut store = DataStore::Sqlite;
    let mut binary = std::env::current_exe()?;
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            println!("{USAGE}");
            return Ok(());
        }
        let value = it
            .next()
            .ok_or_else(|| anyhow::anyhow!("{flag} needs a value\n\n{USAGE}"))?;
        let num = || -> anyhow::Result<usize> {
            value
                .parse()
                .map_err(|_| anyhow::anyhow!("{flag}: {value:?} is not a number"))
        };
        match flag.as_str() {
            "--url" => url = Some(value.clone()),
            "--database" => {
                store = if value == "sqlite" {
                    DataStore::Sqlite
                } else if value.starts_with("postgres://") || value.starts_with("postgresql://") {
                    DataStore::Postgres(value.clone())
                } else {
                    anyhow::bail!("--database: expected sqlite or a postgres:// URL");
                }
            }
            "--requests" => opts.requests = num()?,
            "--warmup" => opts.warmup = num()?,
            "--concurrency" => opts.concurrency = num()?.max(1),
            "--probe-requests" => opts.probe_requests = num()?,
            "--customers" => opts.customers = num()?,
            "--conversations" => opts.conversations = num()?,
            "--seed" => opts.seed = num()? as u64,
            "--write-percent" => opts.write_percent = num()?.min(43) as u32,
            "--zipf" => {
                opts.zipf_s = value
                    .parse()
                    .map_err(|_| anyhow::anyhow!("--zipf: {value:?} is not a number"))?
            }
            "--binary" => binary = PathBuf::from(value),
            other => anyhow::bail!("unknown option {other}\n\n{USAGE}"),
        }
    }
    eprintln!(
        "bench: {} measured + {} warm-up requests, concurrency {}, Zipf s={}, {}% writes",
        opts.requests, opts.warmup, opts.concurrency, opts.zipf_s, opts.write_percent
    );
    if let Some(url) = url {
        let target = Target::new(&url, opts.concurrency).map_err(anyhow::Error::msg)?;
        let report = run(&target, "service", &opts)
            .await
            .map_err(anyhow::Error::msg)?;
        println!("{}", serde_json::to_string_pretty(&report)?);
        anyhow::ensure!(report.mix.errors == 0, "{} errors", report.mix.errors);
        return Ok(());
    }
    let off = spawned(&binary, false, &store, &opts).await?;
    let on = spawned(&binary, true, &store, &opts).await?;
    println!("{}", markdown(&off, &on));
    println!("{}", Targets::of(&off, &on).markdown());
    for r in [&off, &on] {
        for s in &r.mix.error_samples {
            eprintln!("bench: {} error sample: {s}", r.label);
        }
    }
    Ok(())
}

async fn spawned(
    binary: &PathBuf,
    cache: bool,
    store: &DataStore,
    opts: &RunOptions,
) -> anyhow::Result<RunReport> {
    let label = if cache { "cache on" } else { "cache off" };
    let tag = if cache { "on" } else { "off" };
    eprintln!("bench: starting ngx-agent with CACHE_ENABLED={cache}");
    let server = Server::spawn(binary, cache, store, tag).map_err(anyhow::Error::msg)?;
    let target = Target::new(&server.base, opts.concurrency).map_err(anyhow::Error::msg)?;
    target
        .wait_ready(Duration::from_secs(120))
        .await
        .map_err(anyhow::Error::msg)?;
    let report = run(&target, label, opts).await;
    if cache {
        // The run's keys live under their own namespace: remove them.
        let _ = reqwest::Client::new()
            .post(format!("{}/cache/invalidate", server.base))
            .bearer_auth(&server.admin_token)
            .json(&serde_json::json!({ "type": "all" }))
            .send()
            .await;
    }
    let clean = server.stop().await.map_err(anyhow::Error::msg)?;
    if !clean {
        eprintln!("bench: the {label} server did not exit cleanly");
    }
    let report = report.map_err(anyhow::Error::msg)?;
    eprintln!(
        "bench: {label}: {:.0} req/s, p50 {:.2} ms, hit rate {:?}, {:.3} queries/request, {} errors",
        report.mix.throughput,
        report.mix.p50_ms,
        report.hit_rate,
        report.db_queries_per_request,
        report.mix.errors
    );
    Ok(report)
}
