//! `health_check()`: PING latency plus fields parsed from `INFO`.

use serde::Serialize;

/// The result of [`Cache::health_check`](crate::Cache::health_check), in the
/// shape of the original service. It never contains credentials.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct HealthReport {
    /// `connected`, `disconnected`, `circuit_open` or `disabled`.
    pub status: String,
    /// PING succeeded.
    pub healthy: bool,
    /// PING round trip in milliseconds.
    pub latency_ms: f64,
    /// `redis_version` from INFO.
    pub version: Option<String>,
    /// `used_memory_human` from INFO, e.g. `1.05M`.
    pub used_memory: Option<String>,
    /// `connected_clients` from INFO.
    pub connected_clients: Option<u64>,
    /// Cache hits so far.
    pub hits: u64,
    /// Cache misses so far.
    pub misses: u64,
    /// Why the check failed, redacted; absent when healthy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// On a Redis Cluster, every primary; absent for a single server.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<NodeHealth>,
}

/// One primary of a Redis Cluster, as [`HealthReport::nodes`] lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct NodeHealth {
    /// `host:port` the cluster announces.
    pub address: String,
    /// `primary`.
    pub role: String,
    /// Hash slots it serves.
    pub slots: u32,
    /// Its replicas.
    pub replicas: u32,
    /// It answered `PING`.
    pub healthy: bool,
    /// `PING` round trip in milliseconds (0 when it failed).
    pub latency_ms: f64,
    /// Why `PING` failed, redacted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The fields of `INFO` the health report uses.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct InfoFields {
    pub(crate) version: Option<String>,
    pub(crate) used_memory: Option<String>,
    pub(crate) connected_clients: Option<u64>,
}

/// Parses `INFO` text (`key:value` lines; cluster output may repeat keys, the
/// first wins except `connected_clients`, which is summed).
pub(crate) fn parse_info(text: &str) -> InfoFields {
    let mut f = InfoFields::default();
    for line in text.lines() {
        let Some((k, v)) = line.trim().split_once(':') else {
            continue;
        };
        match k {
            "redis_version" if f.version.is_none() => f.version = Some(v.to_owned()),
            "used_memory_human" if f.used_memory.is_none() => f.used_memory = Some(v.to_owned()),
            "connected_clients" => {
                if let Ok(n) = v.parse::<u64>() {
                    *f.connected_clients.get_or_insert(0) += n;
                }
            }
            _ => {}
        }
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_info() {
        let text = "# Server\r\nredis_version:7.0.15\r\n# Clients\r\nconnected_clients:3\r\n# Memory\r\nused_memory:1000\r\nused_memory_human:1.05M\r\n";
        assert_eq!(
            parse_info(text),
            InfoFields {
                version: Some("7.0.15".into()),
                used_memory: Some("1.05M".into()),
                connected_clients: Some(3),
            }
        );
        assert_eq!(parse_info("garbage"), InfoFields::default());
    }
}
