//! The side-by-side Markdown table and the check of the performance goals.

use std::fmt::Write as _;

use super::run::RunReport;

/// The performance goals of the cache, checked against a cache-off and a
/// cache-on run.
#[derive(Debug, Clone, PartialEq)]
pub struct Goals {
    /// p50 without cache / p50 with cache (goal: 10 or more).
    pub p50_speedup: f64,
    /// p50 without cache / p50 of `GET /health` in the cache-on run: the
    /// largest p50 speedup any cache could show, since a request answered
    /// from the cache still costs at least what `/health` costs.
    pub p50_ceiling: f64,
    /// p99 without cache / p99 with cache (goal: [`p99_goal`](Self::p99_goal)).
    pub p99_speedup: f64,
    /// The p99 goal: 5 with a database across a network (a delay proxy
    /// between the service and the database), 3 on loopback.
    pub p99_goal: f64,
    /// Database queries per request with cache (goal: 0.05 or less).
    pub db_queries_per_request: f64,
    /// Hit rate with cache (goal: 0.97 or more).
    pub hit_rate: f64,
    /// Cached conversation reads / health throughput (goal: 0.6 or more).
    pub read_to_health: f64,
    /// Errors in both runs (goal: 0).
    pub errors: usize,
}

impl Goals {
    /// Computes the figures the goals are about; `networked` when a delay
    /// proxy stood between the service and the database.
    pub fn of(off: &RunReport, on: &RunReport, networked: bool) -> Self {
        Self {
            p99_goal: if networked { 5.0 } else { 3.0 },
            p50_speedup: off.mix.p50_ms / on.mix.p50_ms.max(1e-9),
            p50_ceiling: off.mix.p50_ms / on.health.p50_ms.max(1e-9),
            p99_speedup: off.mix.p99_ms / on.mix.p99_ms.max(1e-9),
            db_queries_per_request: on.db_queries_per_request,
            hit_rate: on.hit_rate.unwrap_or(0.0),
            read_to_health: on.conversation_read.throughput / on.health.throughput.max(1e-9),
            errors: [off, on]
                .iter()
                .map(|r| r.mix.errors + r.health.errors + r.conversation_read.errors)
                .sum(),
        }
    }

    /// One line per goal: the goal, the measured value, met or not.
    pub fn markdown(&self) -> String {
        let mark = |ok: bool| if ok { "met" } else { "**missed**" };
        let mut out = String::from("| goal | measured | result |\n|---|---:|---|\n");
        let _ = writeln!(
            out,
            "| p50 with cache at least 10x lower | {:.1}x | {} |",
            self.p50_speedup,
            mark(self.p50_speedup >= 10.0)
        );
        let _ = writeln!(
            out,
            "| (ceiling: p50 without cache / p50 of GET /health) | {:.1}x | |",
            self.p50_ceiling
        );
        let _ = writeln!(
            out,
            "| p99 with cache at least {}x lower ({}) | {:.2}x | {} |",
            self.p99_goal,
            if self.p99_goal > 3.0 {
                "database across a network"
            } else {
                "database on loopback"
            },
            self.p99_speedup,
            mark(self.p99_speedup >= self.p99_goal)
        );
        let _ = writeln!(
            out,
            "| DB queries per request <= 0.05 | {:.3} | {} |",
            self.db_queries_per_request,
            mark(self.db_queries_per_request <= 0.05)
        );
        let _ = writeln!(
            out,
            "| hit rate >= 97% (Zipf s=1.0) | {:.1}% | {} |",
            self.hit_rate * 100.0,
            mark(self.hit_rate >= 0.97)
        );
        let _ = writeln!(
            out,
            "| cached GET /conversations/{{id}} >= 0.6x GET /health | {:.2}x | {} |",
            self.read_to_health,
            mark(self.read_to_health >= 0.6)
        );
        let _ = writeln!(
            out,
            "| errors = 0 | {} | {} |",
            self.errors,
            mark(self.errors == 0)
        );
        out
    }
}

fn change(off: f64, on: f64) -> String {
    if off <= 0.0 {
        return String::new();
    }
    let pct = (on - off) / off * 100.0;
    format!("{pct:+.0}%")
}

/// The side-by-side table of a cache-off and a cache-on run.
pub fn markdown(off: &RunReport, on: &RunReport) -> String {
    let mut out = String::new();
    let metric = match on.database.as_ref().or(off.database.as_ref()) {
        Some(database) => format!("metric ({database})"),
        None => "metric".to_owned(),
    };
    let _ = writeln!(out, "| {metric} | {} | {} | change |", off.label, on.label);
    let _ = writeln!(out, "|---|---:|---:|---:|");
    let row = |out: &mut String, name: &str, a: f64, b: f64, digits: usize| {
        let _ = writeln!(
            out,
            "| {name} | {a:.digits$} | {b:.digits$} | {} |",
            change(a, b)
        );
    };
    row(
        &mut out,
        "mix: throughput (req/s)",
        off.mix.throughput,
        on.mix.throughput,
        0,
    );
    row(
        &mut out,
        "mix: p50 latency (ms)",
        off.mix.p50_ms,
        on.mix.p50_ms,
        2,
    );
    row(
        &mut out,
        "mix: p95 latency (ms)",
        off.mix.p95_ms,
        on.mix.p95_ms,
        2,
    );
    row(
        &mut out,
        "mix: p99 latency (ms)",
        off.mix.p99_ms,
        on.mix.p99_ms,
        2,
    );
    let rate = |r: &RunReport| {
        r.hit_rate
            .map_or_else(|| "n/a".to_owned(), |h| format!("{:.1}%", h * 100.0))
    };
    let _ = writeln!(
        out,
        "| mix: cache hit rate | {} | {} | |",
        rate(off),
        rate(on)
    );
    row(
        &mut out,
        "mix: DB queries per request",
        off.db_queries_per_request,
        on.db_queries_per_request,
        3,
    );
    let _ = writeln!(
        out,
        "| mix: errors | {} | {} | |",
        off.mix.errors, on.mix.errors
    );
    row(
        &mut out,
        "GET /health (req/s)",
        off.health.throughput,
        on.health.throughput,
        0,
    );
    row(
        &mut out,
        "GET /health p50 (ms)",
        off.health.p50_ms,
        on.health.p50_ms,
        2,
    );
    row(
        &mut out,
        "GET /conversations/{id} (req/s)",
        off.conversation_read.throughput,
        on.conversation_read.throughput,
        0,
    );
    let ratio = |r: &RunReport| r.conversation_read.throughput / r.health.throughput.max(1e-9);
    let _ = writeln!(
        out,
        "| GET /conversations/{{id}} / GET /health | {:.2}x | {:.2}x | |",
        ratio(off),
        ratio(on)
    );
    row(
        &mut out,
        "GET /conversations/{id} p50 (ms)",
        off.conversation_read.p50_ms,
        on.conversation_read.p50_ms,
        2,
    );
    let mib = |r: &RunReport| {
        r.memory.rss_bytes.map_or_else(
            || "n/a".to_owned(),
            |b| format!("{:.1}", b as f64 / 1048576.0),
        )
    };
    let _ = writeln!(
        out,
        "| server RSS after the mix (MiB) | {} | {} | |",
        mib(off),
        mib(on)
    );
    let _ = writeln!(
        out,
        "| L1 entries after the mix | {} | {} | |",
        off.memory.l1_entries, on.memory.l1_entries
    );
    let per_entry = |r: &RunReport| {
        r.memory
            .l1_bytes_per_entry()
            .map_or_else(|| "n/a".to_owned(), |b| format!("{b:.0}"))
    };
    let _ = writeln!(
        out,
        "| L1 bytes per entry (L1 weight / entries) | {} | {} | |",
        per_entry(off),
        per_entry(on)
    );
    if let (Some(a), Some(b), true) = (
        off.memory.rss_bytes,
        on.memory.rss_bytes,
        on.memory.l1_entries > 0,
    ) {
        let _ = writeln!(
            out,
            "| RSS above cache off per L1 entry (bytes) | | {:.0} | |",
            (b as f64 - a as f64) / on.memory.l1_entries as f64
        );
    }
    out
}

/// Where the time of the mix goes: latency per request kind in both runs,
/// with each kind's count among the requests slower than the run's p99,
/// then the cache-on run's misses by key type.
pub fn breakdown(off: &RunReport, on: &RunReport) -> String {
    let mut out = String::from(
        "| mix by kind | requests | p50 off (ms) | p99 off (ms) | in slowest 1% off | \
         p50 on (ms) | p99 on (ms) | in slowest 1% on |\n|---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for k in &on.mix.by_kind {
        let o = off.mix.by_kind.iter().find(|o| o.kind == k.kind);
        let (p50, p99, slow) = o.map_or_else(
            || ("n/a".to_owned(), "n/a".to_owned(), "n/a".to_owned()),
            |o| {
                (
                    format!("{:.2}", o.p50_ms),
                    format!("{:.2}", o.p99_ms),
                    o.above_phase_p99.to_string(),
                )
            },
        );
        let _ = writeln!(
            out,
            "| {} | {} | {p50} | {p99} | {slow} | {:.2} | {:.2} | {} |",
            k.kind, k.requests, k.p50_ms, k.p99_ms, k.above_phase_p99
        );
    }
    if let (Some(a), Some(b)) = (off.proxy_lateness, on.proxy_lateness) {
        let _ = writeln!(
            out,
            "\nDelay proxy, chunks forwarded late past their due instant (each way, warm-up included): \
             cache off p50 {:.2} / p99 {:.2} ms over {} chunks; cache on p50 {:.2} / p99 {:.2} ms over {} chunks",
            a.p50_ms, a.p99_ms, a.chunks, b.p50_ms, b.p99_ms, b.chunks
        );
    }
    if !on.misses_by_key_type.is_empty() {
        let total: u64 = on.misses_by_key_type.iter().map(|(_, n)| n).sum();
        let parts: Vec<String> = on
            .misses_by_key_type
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        let _ = writeln!(
            out,
            "\nCache misses during the mix (cache on), by key type: {} (total {total}, {:.4} per request)",
            parts.join(", "),
            total as f64 / on.mix.requests.max(1) as f64
        );
        let (first, reads) = on.first_reads;
        if on.lookups > 0 {
            let _ = writeln!(
                out,
                "Keys the mix read for the first time in the run: {first} of {reads} key reads; the \
                 service made {} lookups, so a cache that only keeps what was read could hit at most \
                 {:.1}% (entries warmed at start hit on their first read)",
                on.lookups,
                (1.0 - first as f64 / on.lookups as f64) * 100.0
            );
        }
    }
    out
}
