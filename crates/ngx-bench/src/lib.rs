//! The HTTP load tool behind `ngx-agent bench`: the "Performance Impact"
//! table of the design, measured.
//!
//! It sends a fixed number of requests at a fixed concurrency, with ids
//! drawn from a Zipf distribution over the seeded customers and
//! conversations, in a realistic mix (see [`mix::MIX`]): mostly
//! conversation reads and tier detections, some message appends, plus
//! predictions, recommendations and knowledge reads. After an unmeasured
//! warm-up it reports throughput, p50/p95/p99, the cache hit rate and the
//! database queries per request (both from `/cache/stats` deltas) and the
//! error count, then measures `GET /health` (the HTTP stack's ceiling) and
//! `GET /conversations/{id}` alone. To show where the tail comes from, it
//! also gives the latency of each request kind with its share of the
//! requests slower than the p99, the misses by key type, and the
//! compulsory misses (keys the measured requests read for the first time
//! in the run) with the best hit rate they allow a cache that is not
//! warmed.
//!
//! By default it starts the service twice as a child process on a free
//! port, once with `CACHE_ENABLED=false` and once with the cache on, each
//! over a fresh database, and prints a side-by-side Markdown table. With
//! `--url` it measures one already running service instead. Only loopback
//! addresses are accepted.
//!
//! With `--db-latency MS` and a PostgreSQL database, the spawned services
//! reach PostgreSQL through a [`proxy::DelayProxy`] that adds that
//! round-trip time (half each way): a database across a network. The
//! table's header names the database and the RTT; the report also gives
//! the server's resident memory and the L1 size at steady state.

#![forbid(unsafe_code)]

pub mod mix;
pub mod proxy;
pub mod report;
pub mod run;
pub mod server;

use std::path::PathBuf;
use std::time::Duration;

pub use report::{Goals, breakdown, markdown};
pub use run::{KindResult, Memory, PhaseResult, ProxyLateness, RunOptions, RunReport, Target, run};
pub use server::{DataStore, Server};

/// The options of `ngx-agent bench`.
///
/// By default it starts ngx-agent twice (`CACHE_ENABLED=false`, then
/// `true`) on free loopback ports over fresh databases, drives each with the
/// same Zipf workload and prints a Markdown table. `REDIS_URL` and the other
/// settings come from the environment.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Measure one running service instead (loopback only).
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// `sqlite` (a fresh temporary file per run) or a `postgres://` URL (a
    /// fresh schema per run, dropped after).
    #[arg(long, value_name = "DB", default_value = "sqlite", value_parser = parse_store)]
    pub database: DataStore,
    /// Measured requests of the mix.
    #[arg(long, value_name = "N", default_value_t = 20_000)]
    pub requests: usize,
    /// Unmeasured requests sent first.
    #[arg(long, value_name = "N", default_value_t = 20_000)]
    pub warmup: usize,
    /// Concurrent connections.
    #[arg(long, value_name = "N", default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: u16,
    /// Requests of the `/health` and conversation-read phases.
    #[arg(long, value_name = "N", default_value_t = 20_000)]
    pub probe_requests: usize,
    /// Zipf exponent of the id distribution.
    #[arg(long, value_name = "S", default_value_t = 1.0)]
    pub zipf: f64,
    /// Seeded customers.
    #[arg(long, value_name = "N", default_value_t = 3_000)]
    pub customers: usize,
    /// Seeded conversations.
    #[arg(long, value_name = "N", default_value_t = 1_000)]
    pub conversations: usize,
    /// RNG seed.
    #[arg(long, value_name = "N", default_value_t = 7)]
    pub seed: u64,
    /// Share of message appends in the mix, percent.
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u32).range(0..=43))]
    pub write_percent: u32,
    /// Round-trip time in milliseconds added between the service and
    /// PostgreSQL by a loopback delay proxy (half each way); 0 connects
    /// directly. PostgreSQL only.
    #[arg(long, value_name = "MS", default_value_t = 0.0, value_parser = parse_latency)]
    pub db_latency: f64,
    /// The ngx-agent to start (default: the running executable).
    #[arg(long, value_name = "PATH")]
    pub binary: Option<PathBuf>,
}

fn parse_store(value: &str) -> Result<DataStore, String> {
    if value == "sqlite" {
        Ok(DataStore::Sqlite)
    } else if value.starts_with("postgres://") || value.starts_with("postgresql://") {
        Ok(DataStore::Postgres(value.to_owned()))
    } else {
        Err("expected sqlite or a postgres:// URL".to_owned())
    }
}

fn parse_latency(value: &str) -> Result<f64, String> {
    match value.parse::<f64>() {
        Ok(ms) if ms.is_finite() && (0.0..=10_000.0).contains(&ms) => Ok(ms),
        _ => Err("expected a round-trip time in milliseconds, 0 to 10000".to_owned()),
    }
}

/// The database of a spawned run and how the service reaches it.
struct Database {
    /// What the service is given.
    store: DataStore,
    /// Shown in the table's header.
    label: String,
    /// Kept alive for the run.
    _proxy: Option<proxy::DelayProxy>,
}

impl Database {
    /// `store`, behind a delay proxy of `rtt_ms` when that is above 0.
    fn new(store: DataStore, rtt_ms: f64) -> anyhow::Result<Self> {
        let url = match &store {
            DataStore::Sqlite => {
                anyhow::ensure!(
                    rtt_ms == 0.0,
                    "--db-latency needs a postgres:// --database (SQLite runs in process)"
                );
                return Ok(Self {
                    store,
                    label: "SQLite, in process".to_owned(),
                    _proxy: None,
                });
            }
            DataStore::Postgres(url) => url.clone(),
        };
        if rtt_ms == 0.0 {
            return Ok(Self {
                store,
                label: "PostgreSQL, direct (RTT 0 ms)".to_owned(),
                _proxy: None,
            });
        }
        let mut parsed = reqwest::Url::parse(&url)
            .map_err(|e| anyhow::anyhow!("--database is not a URL: {e}"))?;
        let host = parsed.host_str().unwrap_or("localhost").to_owned();
        let port = parsed.port().unwrap_or(5432);
        let upstream = std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), port))?
            .find(|a| a.ip().is_loopback())
            .ok_or_else(|| anyhow::anyhow!("--db-latency needs a loopback database, not {host}"))?;
        let rtt = Duration::from_secs_f64(rtt_ms / 1000.0);
        let proxy = proxy::DelayProxy::start(upstream, rtt)?;
        parsed
            .set_host(Some("127.0.0.1"))
            .map_err(|e| anyhow::anyhow!("--database: {e}"))?;
        parsed
            .set_port(Some(proxy.addr().port()))
            .map_err(|()| anyhow::anyhow!("--database: the URL cannot take a port"))?;
        eprintln!(
            "bench: PostgreSQL {upstream} through a delay proxy on {} (RTT {rtt_ms} ms)",
            proxy.addr()
        );
        Ok(Self {
            store: DataStore::Postgres(parsed.to_string()),
            label: format!("PostgreSQL, RTT {rtt_ms} ms"),
            _proxy: Some(proxy),
        })
    }
}

impl BenchArgs {
    /// The run options these arguments describe.
    pub fn run_options(&self) -> RunOptions {
        RunOptions {
            requests: self.requests,
            warmup: self.warmup,
            concurrency: usize::from(self.concurrency),
            zipf_s: self.zipf,
            customers: self.customers,
            conversations: self.conversations,
            probe_requests: self.probe_requests,
            seed: self.seed,
            write_percent: self.write_percent,
        }
    }
}

/// Entry point of `ngx-agent bench`.
pub async fn main(args: BenchArgs) -> anyhow::Result<()> {
    let opts = args.run_options();
    let binary = match args.binary {
        Some(path) => path,
        None => std::env::current_exe()?,
    };
    let database = Database::new(args.database.clone(), args.db_latency)?;
    eprintln!(
        "bench: {} measured + {} warm-up requests, concurrency {}, Zipf s={}, {}% writes",
        opts.requests, opts.warmup, opts.concurrency, opts.zipf_s, opts.write_percent
    );
    if let Some(url) = args.url {
        let target = Target::new(&url, opts.concurrency).map_err(anyhow::Error::msg)?;
        let report = run(&target, "service", &opts)
            .await
            .map_err(anyhow::Error::msg)?;
        println!("{}", serde_json::to_string_pretty(&report)?);
        anyhow::ensure!(report.mix.errors == 0, "{} errors", report.mix.errors);
        return Ok(());
    }
    let off = spawned(&binary, false, &database, &opts).await?;
    let on = spawned(&binary, true, &database, &opts).await?;
    println!("{}", markdown(&off, &on));
    println!("{}", Goals::of(&off, &on, args.db_latency > 0.0).markdown());
    println!("{}", breakdown(&off, &on));
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
    database: &Database,
    opts: &RunOptions,
) -> anyhow::Result<RunReport> {
    let label = if cache { "cache on" } else { "cache off" };
    let tag = if cache { "on" } else { "off" };
    eprintln!("bench: starting ngx-agent with CACHE_ENABLED={cache}");
    let server = Server::spawn(binary, cache, &database.store, tag).map_err(anyhow::Error::msg)?;
    if let Some(proxy) = &database._proxy {
        proxy.take_lateness();
    }
    let target = Target::new(&server.base, opts.concurrency)
        .map_err(anyhow::Error::msg)?
        .with_pid(server.pid());
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
    let mut report = report.map_err(anyhow::Error::msg)?;
    report.database = Some(database.label.clone());
    if let Some(proxy) = &database._proxy {
        report.proxy_lateness = ProxyLateness::of(&proxy.take_lateness());
    }
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
