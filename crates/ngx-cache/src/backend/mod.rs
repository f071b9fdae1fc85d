//! The storage backend, in cache terms: read an entry with its remaining
//! lifetime, write one, take a lease and fill under it, unlink, count,
//! scan, publish and subscribe. Callers above never build Redis commands;
//! only this folder names `redis::`.
//!
//! Backends are the variants of [`Backend`], dispatched with a `match` (no
//! boxed future per call): `single.rs`, one server, and `cluster/`, Redis
//! Cluster. Each has its variant, its arm in `dispatch!` and its case in
//! [`connect`], all in this file. Implementations apply their own timeouts
//! and connection healing; the circuit breaker and the statistics live
//! above, in `tier::remote`.

use std::time::Duration;

use crate::config::CacheConfig;
use crate::error::Error;
use crate::health::NodeHealth;
use crate::key::KeyTtl;

mod access;
mod acl;
mod cluster;
mod error;
mod reply;
mod script;
mod single;
mod tls;

use cluster::ClusterBackend;
use single::SingleBackend;

/// One entry of a batch write: full key, encoded bytes, TTL.
pub(crate) type Entry = (String, Vec<u8>, Option<Duration>);

/// What a lease attempt found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Lease {
    /// This caller holds the lease now.
    pub(crate) taken: bool,
    /// What the data key held when the lease was tried.
    pub(crate) observed: Option<Vec<u8>>,
}

/// A version counter moved by [`Backend::bump`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bump {
    /// The counter's new value.
    pub(crate) value: i64,
    /// A replica holds the new value too, or the key's server has none: a
    /// failover cannot roll it back.
    pub(crate) replicated: bool,
}

/// Settings a backend takes from [`CacheConfig`].
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) pool_size: usize,
    pub(crate) op_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) heal_after_timeouts: u32,
    pub(crate) tls: Tls,
}

/// The TLS files of a `rediss://` connection.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tls {
    pub(crate) ca_file: Option<std::path::PathBuf>,
    pub(crate) cert_file: Option<std::path::PathBuf>,
    pub(crate) key_file: Option<std::path::PathBuf>,
}

impl Tls {
    fn is_empty(&self) -> bool {
        self.ca_file.is_none() && self.cert_file.is_none() && self.key_file.is_none()
    }
}

impl Settings {
    fn of(config: &CacheConfig) -> Self {
        Self {
            pool_size: config.pool_size,
            op_timeout: config.op_timeout,
            connect_timeout: config.connect_timeout,
            heal_after_timeouts: config.heal_after_timeouts,
            tls: Tls {
                ca_file: config.tls_ca_file.clone(),
                cert_file: config.tls_cert_file.clone(),
                key_file: config.tls_key_file.clone(),
            },
        }
    }
}

/// The backends.
#[derive(Debug)]
pub(crate) enum Backend {
    /// One Redis server, a pool of multiplexed connections.
    Single(SingleBackend),
    /// A Redis Cluster.
    Cluster(ClusterBackend),
}

/// A live subscription to one channel.
#[derive(Debug)]
pub(crate) enum Subscription {
    /// On a dedicated connection to one server (the single server, or one
    /// node of the cluster).
    Single(single::Subscription),
}

/// Calls the same method on whichever backend `$self` is.
macro_rules! dispatch {
    ($self:ident, $b:ident => $call:expr) => {
        match $self {
            Backend::Single($b) => $call,
            Backend::Cluster($b) => $call,
        }
    };
}

pub use access::{
    KeyedConnection, NodeConnection, RedisNodes, UnreachableNode, redis_keyed, redis_nodes,
};
pub use acl::acl_rule;

/// A redis-rs client for `config`'s URL and TLS settings, with the rustls
/// crypto provider installed, for tools that send their own commands to
/// one server. Errors name the variable and never show the password. On a
/// Redis Cluster (a URL list), use [`redis_nodes`].
pub fn redis_client(config: &CacheConfig) -> Result<redis::Client, Error> {
    let secret = crate::redact::passwords(&config.url).into_iter().next();
    tls::client(&config.url, &Settings::of(config).tls, secret.as_deref())
}

/// Opens the backend `config` asks for. With `eager`, fails if Redis cannot
/// be reached within the connect timeout; otherwise connects in the
/// background.
pub(crate) async fn connect(config: &CacheConfig, eager: bool) -> Result<Backend, Error> {
    let settings = Settings::of(config);
    tls::install_provider();
    if config.cluster {
        return Ok(Backend::Cluster(
            ClusterBackend::connect(&config.url, settings, eager).await?,
        ));
    }
    Ok(Backend::Single(
        SingleBackend::connect(&config.url, settings, eager).await?,
    ))
}

impl Backend {
    /// `GET` of one key.
    pub(crate) async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        dispatch!(self, b => b.get(key).await)
    }

    /// `GET` and `PTTL` of one key in one round trip: the bytes and the time
    /// left before Redis drops the key (`None` without an expiry).
    pub(crate) async fn get_with_pttl(
        &self,
        key: &str,
    ) -> Result<(Option<Vec<u8>>, Option<Duration>), Error> {
        dispatch!(self, b => b.get_with_pttl(key).await)
    }

    /// `SET key value [PX ttl]`.
    pub(crate) async fn set(
        &self,
        key: &str,
        value: &[u8],
        ttl: Option<Duration>,
    ) -> Result<(), Error> {
        dispatch!(self, b => b.set(key, value, ttl).await)
    }

    /// `GET` of several keys, in order, in as few round trips as possible.
    pub(crate) async fn mget(&self, keys: &[&str]) -> Result<Vec<Option<Vec<u8>>>, Error> {
        dispatch!(self, b => b.mget(keys).await)
    }

    /// `SET .. PX` of several entries, pipelined.
    pub(crate) async fn mset(&self, entries: &[Entry]) -> Result<(), Error> {
        dispatch!(self, b => b.mset(entries).await)
    }

    /// `UNLINK` of several keys; returns how many existed.
    pub(crate) async fn unlink(&self, keys: &[String]) -> Result<u64, Error> {
        dispatch!(self, b => b.unlink(keys).await)
    }

    /// Whether `key` exists.
    pub(crate) async fn exists(&self, key: &str) -> Result<bool, Error> {
        dispatch!(self, b => b.exists(key).await)
    }

    /// Sets a new TTL on `key`; true when the key exists.
    pub(crate) async fn expire(&self, key: &str, ttl: Duration) -> Result<bool, Error> {
        dispatch!(self, b => b.expire(key, ttl).await)
    }

    /// The remaining lifetime of `key`.
    pub(crate) async fn pttl(&self, key: &str) -> Result<KeyTtl, Error> {
        dispatch!(self, b => b.pttl(key).await)
    }

    /// `INCRBY key amount`; returns the new value.
    pub(crate) async fn incr(&self, key: &str, amount: i64) -> Result<i64, Error> {
        dispatch!(self, b => b.incr(key, amount).await)
    }

    /// `INCRBY key amount` for a version that must survive a failover (a
    /// tag's): also tells whether a replica holds the new value.
    pub(crate) async fn bump(&self, key: &str, amount: i64) -> Result<Bump, Error> {
        dispatch!(self, b => b.bump(key, amount).await)
    }

    /// The integer stored at `key`; `None` when absent or not an integer.
    pub(crate) async fn counter(&self, key: &str) -> Result<Option<i64>, Error> {
        dispatch!(self, b => b.counter(key).await)
    }

    /// Tries to take the load lease of `key` (held by `token` for `ttl`)
    /// and reads what `key` holds, in one round trip.
    pub(crate) async fn take_lease(
        &self,
        key: &str,
        token: &str,
        ttl: Duration,
    ) -> Result<Lease, Error> {
        dispatch!(self, b => b.take_lease(key, token, ttl).await)
    }

    /// Writes `value` to `key` only if the lease still holds `token` and the
    /// key still holds `observed`; releases the lease. False when refused.
    pub(crate) async fn checked_fill(
        &self,
        key: &str,
        token: &str,
        value: &[u8],
        ttl: Duration,
        observed: Option<&[u8]>,
    ) -> Result<bool, Error> {
        dispatch!(self, b => b.checked_fill(key, token, value, ttl, observed).await)
    }

    /// Writes `value` to `key` with `version`, unless a versioned write of
    /// `version` or a higher one came first (the version outlives deletes of
    /// `key` for `ttl`). False when refused.
    pub(crate) async fn versioned_set(
        &self,
        key: &str,
        value: &[u8],
        ttl: Duration,
        version: u64,
    ) -> Result<bool, Error> {
        dispatch!(self, b => b.versioned_set(key, value, ttl, version).await)
    }

    /// Deletes the lease of `key` if it still holds `token`.
    pub(crate) async fn release_lease(&self, key: &str, token: &str) -> Result<(), Error> {
        dispatch!(self, b => b.release_lease(key, token).await)
    }

    /// `SCAN MATCH pattern` + `UNLINK` in batches, on every primary; returns
    /// the number of keys removed.
    pub(crate) async fn scan_unlink(&self, pattern: &str, batch: usize) -> Result<u64, Error> {
        dispatch!(self, b => b.scan_unlink(pattern, batch).await)
    }

    /// Publishes `messages` on `channel`, in order, in one round trip.
    pub(crate) async fn publish(&self, channel: &str, messages: &[String]) -> Result<(), Error> {
        dispatch!(self, b => b.publish(channel, messages).await)
    }

    /// Subscribes to `channel` on a dedicated connection, within `timeout`.
    pub(crate) async fn subscribe(&self, channel: &str, timeout: Duration) -> Option<Subscription> {
        dispatch!(self, b => b.subscribe(channel, timeout).await.map(Subscription::Single))
    }

    /// `PING`.
    pub(crate) async fn ping(&self) -> Result<(), Error> {
        dispatch!(self, b => b.ping().await)
    }

    /// `INFO` text of one node (of every primary, concatenated, in a cluster).
    pub(crate) async fn info(&self) -> Result<String, Error> {
        dispatch!(self, b => b.info().await)
    }

    /// Each primary of a cluster: address, slots, replicas and `PING`
    /// latency; empty for a single server.
    pub(crate) async fn nodes(&self) -> Vec<NodeHealth> {
        match self {
            Backend::Single(_) => Vec::new(),
            Backend::Cluster(b) => b
                .ping_nodes()
                .await
                .into_iter()
                .map(|p| NodeHealth {
                    address: p.address,
                    role: "primary".to_owned(),
                    slots: p.slots,
                    replicas: p.replicas as u32,
                    healthy: p.latency.is_ok(),
                    latency_ms: p.latency.as_ref().map_or(0.0, |d| d.as_secs_f64() * 1000.0),
                    error: p.latency.err(),
                })
                .collect(),
        }
    }

    /// Connections rebuilt after failures or stuck timeouts, since start;
    /// on a cluster, topology changes seen (failovers, slot moves).
    pub(crate) fn reconnects(&self) -> u64 {
        dispatch!(self, b => b.reconnects())
    }

    /// Whether a failure now is confined to part of the deployment (on a
    /// cluster, one shard down while others answer), so it must not open
    /// the circuit breaker for all of it. Always false for a single server.
    pub(crate) fn partial_failure(&self) -> bool {
        match self {
            Backend::Single(_) => false,
            Backend::Cluster(b) => b.partial_failure(),
        }
    }

    /// Whether at least one connection is currently established.
    pub(crate) fn connected(&self) -> bool {
        dispatch!(self, b => b.connected())
    }

    /// When no connection is established, cuts reconnect back-off short and
    /// waits for the next reconnect attempt's outcome, up to the connect
    /// timeout. The breaker's half-open probe calls this first, so a probe
    /// right after Redis comes back finds a connection instead of failing on
    /// a reconnect task that is still sleeping.
    pub(crate) async fn await_connection(&self) {
        dispatch!(self, b => b.await_connection().await)
    }
}

impl Subscription {
    /// The next message's payload; `None` when the connection ended.
    pub(crate) async fn recv(&mut self) -> Option<Vec<u8>> {
        match self {
            Subscription::Single(s) => s.recv().await,
        }
    }

    /// Whether the connection still answers a `PING` within `timeout`.
    pub(crate) async fn ping(&mut self, timeout: Duration) -> bool {
        match self {
            Subscription::Single(s) => s.ping(timeout).await,
        }
    }
}
