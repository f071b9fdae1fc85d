//! What a [`Cache`] reports about itself: statistics and health.

use std::time::Instant;

use super::handle::Cache;
use crate::health::{HealthReport, parse_info};
use crate::stats::{CacheStats, Gauges};

impl Cache {
    /// A snapshot of the statistics.
    pub fn stats(&self) -> CacheStats {
        let remote = &self.inner.remote;
        let coherence = &self.inner.coherence;
        let (connected, reconnects) = match remote.backend() {
            Some(b) => (b.connected(), b.reconnects()),
            None => (false, 0),
        };
        CacheStats::build(
            remote.counters(),
            remote.breaker(),
            Gauges {
                connected,
                reconnects,
                l1_entries: coherence.l1_entries(),
                l1_bytes: coherence.l1_bytes(),
                invalidations_pending: coherence.pending_len(),
                publishes_pending: coherence.publishes_pending(),
                invalidation_lag_ms: coherence.lag(),
            },
        )
    }

    /// PINGs Redis (bypassing the breaker, bounded by the operation timeout)
    /// and reads version, memory and clients from `INFO`.
    pub async fn health_check(&self) -> HealthReport {
        let stats = self.stats();
        let mut report = HealthReport {
            status: "disabled".to_owned(),
            healthy: false,
            latency_ms: 0.0,
            version: None,
            used_memory: None,
            connected_clients: None,
            hits: stats.hits,
            misses: stats.misses,
            error: None,
            nodes: Vec::new(),
        };
        let Some(backend) = self.inner.remote.backend() else {
            return report;
        };
        let start = Instant::now();
        let pinged = backend.ping().await;
        let latency = start.elapsed();
        report.nodes = backend.nodes().await;
        match pinged {
            Ok(_) => {
                report.latency_ms = latency.as_secs_f64() * 1000.0;
                report.healthy = true;
                report.status = if stats.circuit_breaker_open {
                    "circuit_open".to_owned()
                } else {
                    "connected".to_owned()
                };
                if let Ok(info) = backend.info().await {
                    let f = parse_info(&info);
                    report.version = f.version;
                    report.used_memory = f.used_memory;
                    report.connected_clients = f.connected_clients;
                }
            }
            Err(e) => {
                report.status = "disconnected".to_owned();
                report.error = Some(e.to_string());
            }
        }
        report
    }
}
