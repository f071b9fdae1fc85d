//! Driving the service: a fixed number of requests at a fixed concurrency,
//! latencies per request, cache and database counters before and after.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::Serialize;

use super::mix::{Call, Generator};

/// Latency percentiles and throughput of one phase.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PhaseResult {
    /// Requests sent.
    pub requests: usize,
    /// Non-2xx answers and transport failures.
    pub errors: usize,
    /// Wall time of the phase, seconds.
    pub elapsed_secs: f64,
    /// Requests per second.
    pub throughput: f64,
    /// Median latency, milliseconds.
    pub p50_ms: f64,
    /// 95th percentile, milliseconds.
    pub p95_ms: f64,
    /// 99th percentile, milliseconds.
    pub p99_ms: f64,
    /// The first few error descriptions, for diagnosis.
    pub error_samples: Vec<String>,
    /// The same figures per request kind, most frequent first: which
    /// requests the tail is made of.
    pub by_kind: Vec<KindResult>,
}

/// Latency of one request kind within a phase.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct KindResult {
    /// The kind ([`Call::kind`]).
    pub kind: &'static str,
    /// Requests of this kind.
    pub requests: usize,
    /// Median latency, milliseconds.
    pub p50_ms: f64,
    /// 99th percentile, milliseconds.
    pub p99_ms: f64,
    /// Requests of this kind slower than the phase's p99: this kind's
    /// share of the slowest 1%.
    pub above_phase_p99: usize,
}

/// Nearest-rank percentile `p` of sorted microseconds, in milliseconds.
fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i] as f64 / 1000.0
}

/// Per-kind figures of `(latency µs, kind)` samples, given the phase's p99.
fn by_kind(samples: &[(u64, &'static str)], phase_p99_ms: f64) -> Vec<KindResult> {
    let mut kinds: Vec<&'static str> = samples.iter().map(|(_, k)| *k).collect();
    kinds.sort_unstable();
    kinds.dedup();
    let mut out: Vec<KindResult> = kinds
        .into_iter()
        .map(|kind| {
            let mut lat: Vec<u64> = samples
                .iter()
                .filter(|(_, k)| *k == kind)
                .map(|(l, _)| *l)
                .collect();
            lat.sort_unstable();
            KindResult {
                kind,
                requests: lat.len(),
                p50_ms: percentile(&lat, 0.50),
                p99_ms: percentile(&lat, 0.99),
                above_phase_p99: lat
                    .iter()
                    .filter(|l| **l as f64 / 1000.0 > phase_p99_ms)
                    .count(),
            }
        })
        .collect();
    out.sort_by(|a, b| b.requests.cmp(&a.requests).then(a.kind.cmp(b.kind)));
    out
}

/// Counters read from `GET /cache/stats`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct Counters {
    /// Cache enabled.
    #[serde(default)]
    pub enabled: bool,
    /// Cache hits.
    #[serde(default)]
    pub hits: u64,
    /// Cache misses.
    #[serde(default)]
    pub misses: u64,
    /// SQL statements.
    #[serde(default)]
    pub db_queries: u64,
    /// Entries held in L1.
    #[serde(default)]
    pub l1_entries: u64,
    /// L1's weight in bytes (each value's stored size plus key and
    /// overhead, as the cache accounts it).
    #[serde(default)]
    pub l1_bytes: u64,
}

/// Memory at steady state (right after the measured mix).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Memory {
    /// Resident set size of the service process (`VmRSS`), when its
    /// process id is known.
    pub rss_bytes: Option<u64>,
    /// Entries held in L1.
    pub l1_entries: u64,
    /// L1's weight in bytes, as the cache accounts it.
    pub l1_bytes: u64,
}

impl Memory {
    /// L1 bytes per entry (`None` with an empty L1).
    pub fn l1_bytes_per_entry(&self) -> Option<f64> {
        (self.l1_entries > 0).then(|| self.l1_bytes as f64 / self.l1_entries as f64)
    }
}

/// `VmRSS` of process `pid` from `/proc/<pid>/status`, in bytes.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line
        .trim_start_matches("VmRSS:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// A client bound to one service.
///
/// The measured phases send over raw HTTP/1.1 keep-alive connections, one
/// per worker (hyper's connection API): the load generator shares the two
/// cores with the service, so every microsecond it spends per request is
/// taken from the service under test. The counters and readiness calls use
/// `reqwest`.
#[derive(Debug, Clone)]
pub struct Target {
    client: reqwest::Client,
    base: String,
    /// `host:port` to connect to.
    authority: String,
    /// The service's process id, for its resident memory.
    pid: Option<u32>,
}

/// One worker's connection; opened on first use and again after a failure.
type Conn = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

impl Target {
    /// A client for `base` (`http://127.0.0.1:port`). Refuses anything but
    /// a loopback address: this tool must never load someone else's server.
    pub fn new(base: &str, concurrency: usize) -> Result<Self, String> {
        let url = reqwest::Url::parse(base).map_err(|e| format!("bad URL {base:?}: {e}"))?;
        let host = url.host_str().unwrap_or("");
        let loopback = host == "localhost"
            || host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if url.scheme() != "http" || !loopback {
            return Err(format!(
                "refusing {base:?}: the load tool only targets http://127.0.0.1, [::1] or localhost"
            ));
        }
        let port = url.port_or_known_default().unwrap_or(80);
        let client = reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(concurrency)
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| format!("http client: {e}"))?;
        Ok(Self {
            client,
            base: base.trim_end_matches('/').to_owned(),
            authority: format!("{host}:{port}"),
            pid: None,
        })
    }

    /// The same target, with the process id of the service (on this
    /// machine) whose resident memory the report gives.
    pub fn with_pid(mut self, pid: u32) -> Self {
        self.pid = (pid != 0).then_some(pid);
        self
    }

    async fn connect(&self) -> Result<Conn, String> {
        let stream = tokio::net::TcpStream::connect(&self.authority)
            .await
            .map_err(|e| format!("connect {}: {e}", self.authority))?;
        stream
            .set_nodelay(true)
            .map_err(|e| format!("set_nodelay: {e}"))?;
        let (sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .map_err(|e| format!("handshake: {e}"))?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(sender)
    }

    /// Sends one call over `conn` (connecting first when it is closed);
    /// `Ok` for a 2xx answer with its body read. A transport failure drops
    /// the connection, so the next call opens a new one.
    async fn send_on(&self, conn: &mut Option<Conn>, call: &Call) -> Result<(), String> {
        let sender = match conn {
            Some(sender) if !sender.is_closed() => sender,
            _ => conn.insert(self.connect().await?),
        };
        let failed = |e: hyper::Error| format!("{} {}: {e}", call.method, call.path);
        sender.ready().await.map_err(failed)?;
        let mut req = hyper::Request::builder()
            .method(call.method)
            .uri(&call.path)
            .header(hyper::header::HOST, &self.authority);
        let body = match &call.body {
            Some(body) => {
                req = req.header(hyper::header::CONTENT_TYPE, "application/json");
                Bytes::from(serde_json::to_vec(body).map_err(|e| e.to_string())?)
            }
            None => Bytes::new(),
        };
        let req = req.body(Full::new(body)).map_err(|e| e.to_string())?;
        let result = async {
            let resp = sender.send_request(req).await?;
            let status = resp.status();
            let body = resp.into_body().collect().await?.to_bytes();
            Ok::<_, hyper::Error>((status, body))
        }
        .await;
        let (status, body) = match result {
            Ok(answer) => answer,
            Err(e) => {
                *conn = None;
                return Err(failed(e));
            }
        };
        if status.is_success() {
            Ok(())
        } else {
            Err(format!(
                "{} {} -> {status}: {}",
                call.method,
                call.path,
                String::from_utf8_lossy(&body[..body.len().min(200)])
            ))
        }
    }

    /// `ngx_cache_misses_total` by `key_type`, from `GET /metrics` (empty
    /// when the service exports none, as without a cache).
    pub async fn misses_by_key_type(&self) -> Result<Vec<(String, u64)>, String> {
        let text = self
            .client
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| format!("/metrics: {e}"))?
            .text()
            .await
            .map_err(|e| format!("/metrics: {e}"))?;
        Ok(parse_misses(&text))
    }

    /// `GET /cache/stats`.
    pub async fn counters(&self) -> Result<Counters, String> {
        self.client
            .get(format!("{}/cache/stats", self.base))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| format!("/cache/stats: {e}"))?
            .json()
            .await
            .map_err(|e| format!("/cache/stats: {e}"))
    }

    /// Polls `GET /health/ready` until it answers 200 or `limit` passes.
    pub async fn wait_ready(&self, limit: Duration) -> Result<(), String> {
        let deadline = Instant::now() + limit;
        loop {
            let ok = self
                .client
                .get(format!("{}/health/ready", self.base))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ok {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("{} did not become ready in {limit:?}", self.base));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends `requests` calls from `make` with `concurrency` workers and
    /// measures them. On a terminal, a progress bar named `name` shows on
    /// standard error; elsewhere nothing is drawn.
    pub async fn phase(
        &self,
        name: &str,
        requests: usize,
        concurrency: usize,
        seed: u64,
        make: impl Fn(&mut StdRng) -> Call + Send + Sync + 'static,
    ) -> PhaseResult {
        let make = Arc::new(make);
        let next = Arc::new(AtomicUsize::new(0));
        let bar = progress_bar(name, requests);
        let start = Instant::now();
        let mut workers = Vec::with_capacity(concurrency);
        for w in 0..concurrency.max(1) {
            let (target, make, next, bar) = (self.clone(), make.clone(), next.clone(), bar.clone());
            workers.push(tokio::spawn(async move {
                let mut rng = StdRng::seed_from_u64(seed.wrapping_mul(1_000_003) + w as u64);
                let mut lat = Vec::new();
                let mut errors = Vec::new();
                let mut conn = None;
                while next.fetch_add(1, Ordering::Relaxed) < requests {
                    let call = make(&mut rng);
                    let t = Instant::now();
                    let result = target.send_on(&mut conn, &call).await;
                    lat.push((t.elapsed().as_micros() as u64, call.kind));
                    bar.inc(1);
                    if let Err(e) = result {
                        errors.push(e);
                    }
                }
                (lat, errors)
            }));
        }
        let mut lat = Vec::with_capacity(requests);
        let mut errors = Vec::new();
        for w in workers {
            match w.await {
                Ok((l, e)) => {
                    lat.extend(l);
                    errors.extend(e);
                }
                Err(e) => errors.push(format!("worker failed: {e}")),
            }
        }
        let elapsed = start.elapsed().as_secs_f64();
        bar.finish_and_clear();
        let mut sorted: Vec<u64> = lat.iter().map(|(l, _)| *l).collect();
        sorted.sort_unstable();
        let p99_ms = percentile(&sorted, 0.99);
        PhaseResult {
            requests: sorted.len(),
            errors: errors.len(),
            elapsed_secs: elapsed,
            throughput: sorted.len() as f64 / elapsed.max(1e-9),
            p50_ms: percentile(&sorted, 0.50),
            p95_ms: percentile(&sorted, 0.95),
            p99_ms,
            error_samples: errors.into_iter().take(5).collect(),
            by_kind: by_kind(&lat, p99_ms),
        }
    }
}

/// The `ngx_cache_misses_total{key_type="…"}` samples of a Prometheus
/// text exposition, by key type.
pub fn parse_misses(text: &str) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("ngx_cache_misses_total{") else {
            continue;
        };
        let Some((labels, value)) = rest.split_once("} ") else {
            continue;
        };
        let Some(kind) = labels.split(',').find_map(|l| {
            l.trim()
                .strip_prefix("key_type=\"")
                .and_then(|v| v.strip_suffix('"'))
        }) else {
            continue;
        };
        let Ok(value) = value.trim().parse::<f64>() else {
            continue;
        };
        match out.iter_mut().find(|(k, _)| k == kind) {
            Some((_, n)) => *n += value as u64,
            None => out.push((kind.to_owned(), value as u64)),
        }
    }
    out
}

/// Everything measured against one configuration of the service.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RunReport {
    /// `cache off` or `cache on`.
    pub label: String,
    /// The mixed workload, measured after the warm-up.
    pub mix: PhaseResult,
    /// Cache hit rate over the measured phase (`None` without a cache).
    pub hit_rate: Option<f64>,
    /// Cache lookups (hits and misses) over the measured phase.
    pub lookups: u64,
    /// Cache keys the measured phase read for the first time in the run
    /// (compulsory misses), and all key reads, as the load tool counts
    /// them ([`Generator::take_first_reads`]).
    pub first_reads: (usize, usize),
    /// SQL statements per request over the measured phase.
    pub db_queries_per_request: f64,
    /// `GET /health` alone: the ceiling of the HTTP stack.
    pub health: PhaseResult,
    /// `GET /conversations/{id}` alone, Zipf ids.
    pub conversation_read: PhaseResult,
    /// Memory right after the measured mix.
    pub memory: Memory,
    /// Cache misses during the measured mix by key type (`conv`, `pred`,
    /// `tier`, ...), most first.
    pub misses_by_key_type: Vec<(String, u64)>,
    /// The database and its round-trip time, when the tool chose them.
    pub database: Option<String>,
    /// With `--db-latency`: how late the delay proxy forwarded chunks
    /// during the run (warm-up included).
    pub proxy_lateness: Option<ProxyLateness>,
}

/// How late the delay proxy forwarded chunks past their due instant, over
/// one run: the RTT the service really saw is the one asked for plus this,
/// each way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct ProxyLateness {
    /// Chunks forwarded.
    pub chunks: usize,
    /// Median lateness, milliseconds.
    pub p50_ms: f64,
    /// 99th percentile, milliseconds.
    pub p99_ms: f64,
}

impl ProxyLateness {
    /// The figures of sorted lateness samples in microseconds (`None`
    /// without samples).
    pub fn of(sorted_us: &[u32]) -> Option<Self> {
        let us: Vec<u64> = sorted_us.iter().map(|v| u64::from(*v)).collect();
        (!us.is_empty()).then(|| Self {
            chunks: us.len(),
            p50_ms: percentile(&us, 0.50),
            p99_ms: percentile(&us, 0.99),
        })
    }
}

/// Options of one run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Measured requests of the mix.
    pub requests: usize,
    /// Unmeasured requests sent first (fills the cache: steady state).
    pub warmup: usize,
    /// Concurrent workers.
    pub concurrency: usize,
    /// Zipf exponent.
    pub zipf_s: f64,
    /// Seeded customers (`cust-00001`..).
    pub customers: usize,
    /// Seeded conversations (`conv-00001`..).
    pub conversations: usize,
    /// Requests of each single-endpoint phase (`/health`, conversation reads).
    pub probe_requests: usize,
    /// RNG seed.
    pub seed: u64,
    /// Share of message appends in the mix, percent.
    pub write_percent: u32,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            requests: 20_000,
            warmup: 20_000,
            concurrency: 32,
            zipf_s: 1.0,
            customers: 3_000,
            conversations: 1_000,
            probe_requests: 20_000,
            seed: 7,
            write_percent: 2,
        }
    }
}

/// Runs warm-up, the measured mix, then the two probe phases.
pub async fn run(target: &Target, label: &str, opts: &RunOptions) -> Result<RunReport, String> {
    let generator = Arc::new(Generator::new(
        opts.customers,
        opts.conversations,
        opts.zipf_s,
    )?);
    if opts.warmup > 0 {
        let g = generator.clone();
        let warm = target
            .phase(
                &format!("{label}: warm-up"),
                opts.warmup,
                opts.concurrency,
                opts.seed ^ 0xABCD,
                move |r| g.next(r),
            )
            .await;
        if warm.errors > 0 {
            return Err(format!(
                "{label}: {} errors during warm-up, e.g. {:?}",
                warm.errors, warm.error_samples
            ));
        }
    }
    generator.take_first_reads();
    let before = target.counters().await?;
    let misses_before = target.misses_by_key_type().await.unwrap_or_default();
    let g = generator.clone();
    let mix = target
        .phase(
            &format!("{label}: mix"),
            opts.requests,
            opts.concurrency,
            opts.seed,
            move |r| g.next(r),
        )
        .await;
    let after = target.counters().await?;
    let first_reads = generator.take_first_reads();
    let mut misses_by_key_type: Vec<(String, u64)> = target
        .misses_by_key_type()
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|(kind, n)| {
            let was = misses_before
                .iter()
                .find(|(k, _)| *k == kind)
                .map_or(0, |(_, n)| *n);
            (kind, n.saturating_sub(was))
        })
        .filter(|(_, n)| *n > 0)
        .collect();
    misses_by_key_type.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let memory = Memory {
        rss_bytes: target.pid.and_then(rss_bytes),
        l1_entries: after.l1_entries,
        l1_bytes: after.l1_bytes,
    };
    let hits = after.hits.saturating_sub(before.hits);
    let misses = after.misses.saturating_sub(before.misses);
    let hit_rate =
        (after.enabled && hits + misses > 0).then(|| hits as f64 / (hits + misses) as f64);
    let db_queries_per_request =
        after.db_queries.saturating_sub(before.db_queries) as f64 / mix.requests.max(1) as f64;
    let health = target
        .phase(
            &format!("{label}: GET /health"),
            opts.probe_requests,
            opts.concurrency,
            opts.seed + 1,
            |_| Call {
                method: "GET",
                path: "/health".into(),
                body: None,
                kind: "health",
            },
        )
        .await;
    let g = generator.clone();
    let conversation_read = target
        .phase(
            &format!("{label}: GET /conversations/{{id}}"),
            opts.probe_requests,
            opts.concurrency,
            opts.seed + 2,
            move |r| g.conversation_read(r),
        )
        .await;
    Ok(RunReport {
        label: label.to_owned(),
        mix,
        hit_rate,
        lookups: hits + misses,
        first_reads,
        db_queries_per_request,
        health,
        conversation_read,
        memory,
        misses_by_key_type,
        database: None,
        proxy_lateness: None,
    })
}

/// A progress bar on standard error, drawn only when it is a terminal
/// (indicatif hides a bar whose target is not one).
fn progress_bar(name: &str, len: usize) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len as u64);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{msg:>32} [{bar:30}] {pos}/{len} {per_sec} eta {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(name.to_owned());
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn misses_are_summed_by_key_type() {
        let text = "# HELP ngx_cache_misses_total Reads that found nothing.\n\
            ngx_cache_misses_total{key_type=\"pred\"} 12\n\
            ngx_cache_misses_total{key_type=\"tier\",cache=\"b\"} 3\n\
            ngx_cache_misses_total{cache=\"a\",key_type=\"tier\"} 4\n\
            ngx_cache_hits_total{key_type=\"pred\",tier=\"l1\"} 99\n";
        assert_eq!(
            parse_misses(text),
            [("pred".to_owned(), 12), ("tier".to_owned(), 7)]
        );
    }

    #[test]
    fn the_tail_is_attributed_to_its_kinds() {
        let mut samples: Vec<(u64, &'static str)> = (0..98).map(|i| (100 + i, "read")).collect();
        samples.push((9_000, "append"));
        samples.push((8_000, "append"));
        let kinds = by_kind(&samples, 0.5);
        assert_eq!(kinds[0].kind, "read");
        assert_eq!(kinds[0].requests, 98);
        assert_eq!(kinds[0].above_phase_p99, 0);
        assert_eq!(kinds[1].kind, "append");
        assert_eq!((kinds[1].p50_ms, kinds[1].p99_ms), (8.0, 9.0));
        assert_eq!(kinds[1].above_phase_p99, 2);
    }
}
