//! The `Cache` handle: construction, the breaker-guarded call path,
//! statistics and health.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::backend::single::{PoolSettings, SingleBackend};
use crate::backend::{Backend, BoxFut};
use crate::breaker::CircuitBreaker;
use crate::bus::Bus;
use crate::codec::Limits;
use crate::config::CacheConfig;
use crate::error::Error;
use crate::flight::Flights;
use crate::health::{HealthReport, parse_info};
use crate::l1::L1;
use crate::stats::{CacheStats, Counters};
use crate::tag::TagVersions;

/// An async Redis cache. Cheap to clone: clones share connections, breaker
/// and statistics.
///
/// Every operation has a fail-open form (`get`, `set`, ...) that turns Redis
/// failures into a miss or a skipped write, counted in [`stats`](Self::stats),
/// and a `try_*` form that returns them.
///
/// ```no_run
/// # async fn demo() -> Result<(), ngx_cache::Error> {
/// use std::time::Duration;
/// use ngx_cache::{Cache, CacheConfig};
///
/// let cache = Cache::connect(CacheConfig::from_env()?).await?;
/// cache.set("greeting", &"hello", Some(Duration::from_secs(60))).await?;
/// let v: Option<String> = cache.get("greeting").await;
/// assert_eq!(v.as_deref(), Some("hello"));
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Cache {
    pub(crate) inner: Arc<Inner>,
}

/// Shared state behind every clone of a [`Cache`].
#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) config: CacheConfig,
    /// `None` when the cache is disabled by configuration.
    pub(crate) backend: Option<Box<dyn Backend>>,
    pub(crate) breaker: CircuitBreaker,
    pub(crate) counters: Counters,
    pub(crate) limits: Limits,
    /// The in-process tier; `None` when disabled.
    pub(crate) l1: Option<L1>,
    /// The invalidation bus; `None` when disabled or without Redis.
    pub(crate) bus: Option<Bus>,
    /// Tag versions known to this instance.
    pub(crate) tags: TagVersions,
    /// Loads in flight in this process, by key.
    pub(crate) flights: Flights,
    /// Bumped on every invalidation applied here (local or remote), so a
    /// fill that raced with one is not put into L1.
    pub(crate) inval: crate::coherence::InvalSeq,
    /// Deletes that did not reach Redis, being retried.
    pub(crate) pending: crate::pending::PendingDeletes,
    /// Dropped with the cache, which stops the subscriber task.
    pub(crate) _shutdown: tokio::sync::watch::Sender<()>,
}

impl Cache {
    /// Connects eagerly: fails if Redis cannot be reached within the connect
    /// timeout. With `enabled = false`, returns a cache that never touches
    /// the network.
    pub async fn connect(config: CacheConfig) -> Result<Self, Error> {
        Self::open(config, true).await
    }

    /// Like [`connect`](Self::connect), but never fails for an unreachable
    /// server: connections are made in the background and operations miss
    /// until they are up.
    pub async fn connect_lazy(config: CacheConfig) -> Result<Self, Error> {
        Self::open(config, false).await
    }

    /// A cache that is switched off: every read misses, writes do nothing.
    pub fn disabled() -> Self {
        Self::with_backend(
            CacheConfig {
                enabled: false,
                ..CacheConfig::default()
            },
            None,
        )
    }

    async fn open(config: CacheConfig, eager: bool) -> Result<Self, Error> {
        let config = config.validate()?;
        if !config.enabled {
            return Ok(Self::with_backend(config, None));
        }
        if config.cluster {
            return Err(Error::Config(crate::config::ConfigError::new(
                "REDIS_CLUSTER",
                "Redis Cluster is not supported yet",
            )));
        }
        let settings = PoolSettings {
            size: config.pool_size,
            op_timeout: config.op_timeout,
            connect_timeout: config.connect_timeout,
            heal_after_timeouts: config.heal_after_timeouts,
        };
        let backend = SingleBackend::connect(&config.url, settings, eager).await?;
        tracing::info!(url = %config.redacted_url(), namespace = %config.namespace, "cache connected");
        let cache = Self::with_backend(config, Some(Box::new(backend)));
        if eager {
            cache
                .wait_subscribed(cache.inner.config.connect_timeout)
                .await;
        }
        Ok(cache)
    }

    fn with_backend(config: CacheConfig, backend: Option<Box<dyn Backend>>) -> Self {
        let limits = Limits {
            max_value_bytes: config.max_value_bytes,
            compression_threshold: config.compression_threshold,
        };
        let l1 = (config.l1_enabled && backend.is_some())
            .then(|| L1::new(config.l1_capacity, config.l1_max_ttl));
        let bus = (config.invalidation && backend.is_some()).then(|| Bus::new(&config.namespace));
        let (shutdown, stopped) = tokio::sync::watch::channel(());
        let pubsub = backend.as_ref().map(|b| b.pubsub_client());
        let cache = Self {
            inner: Arc::new(Inner {
                breaker: CircuitBreaker::new(config.breaker.clone()),
                config,
                backend,
                counters: Counters::default(),
                limits,
                l1,
                bus,
                tags: TagVersions::default(),
                flights: Flights::default(),
                inval: crate::coherence::InvalSeq::default(),
                pending: crate::pending::PendingDeletes::default(),
                _shutdown: shutdown,
            }),
        };
        if let (Some(client), Some(_)) = (pubsub, &cache.inner.bus) {
            crate::coherence::spawn_subscriber(&cache, client, stopped);
            crate::coherence::spawn_publisher(&cache);
        }
        cache
    }

    /// The configuration this cache runs with.
    pub fn config(&self) -> &CacheConfig {
        &self.inner.config
    }

    /// Whether the cache is enabled by configuration.
    pub fn is_enabled(&self) -> bool {
        self.inner.backend.is_some()
    }

    /// The circuit breaker guarding Redis calls.
    pub fn breaker(&self) -> &CircuitBreaker {
        &self.inner.breaker
    }

    /// Runs one backend call through the circuit breaker.
    pub(crate) async fn call<'a, T>(
        &'a self,
        op: impl FnOnce(&'a dyn Backend) -> BoxFut<'a, T>,
    ) -> Result<T, Error> {
        let backend = self.inner.backend.as_deref().ok_or(Error::Disabled)?;
        let Some(permit) = self.inner.breaker.acquire() else {
            Counters::bump(&self.inner.counters.circuit_rejections);
            return Err(Error::CircuitOpen);
        };
        if permit.is_probe() {
            // The probe decides whether the breaker closes: give it a
            // connection if Redis is back, rather than failing on a
            // reconnect task still in back-off.
            backend.await_connection().await;
        }
        match op(backend).await {
            Ok(v) => {
                permit.success();
                Ok(v)
            }
            Err(e) => {
                permit.failure(e.is_transient());
                Counters::bump(&self.inner.counters.errors);
                Err(e)
            }
        }
    }

    /// Logs a failure that a fail-open method swallowed.
    pub(crate) fn swallow(&self, op: &'static str, err: &Error) {
        match err {
            Error::CircuitOpen | Error::Disabled => {
                tracing::trace!(op, error = %err, "cache skipped")
            }
            _ => {
                tracing::warn!(op, error = %err, "cache operation failed, continuing without cache")
            }
        }
    }

    /// Applies the configured jitter to a TTL (or the default TTL).
    pub(crate) fn effective_ttl(&self, ttl: Option<Duration>) -> Duration {
        let ttl = ttl.unwrap_or(self.inner.config.default_ttl);
        let jitter = self.inner.config.ttl_jitter;
        if jitter <= 0.0 {
            return ttl;
        }
        let cut = rand::random::<f64>() * jitter;
        ttl.mul_f64(1.0 - cut).max(Duration::from_millis(1))
    }

    /// A snapshot of the statistics.
    pub fn stats(&self) -> CacheStats {
        let (connected, reconnects) = match &self.inner.backend {
            Some(b) => (b.connected(), b.reconnects()),
            None => (false, 0),
        };
        let mut stats = CacheStats::build(
            &self.inner.counters,
            connected,
            &self.inner.breaker,
            reconnects,
            self.inner.l1.as_ref().map_or(0, |l1| l1.store.len()),
            self.inner
                .bus
                .as_ref()
                .map(Bus::lag_percentiles)
                .unwrap_or_default(),
        );
        stats.deletes_pending = self.owed();
        stats
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
        };
        let Some(backend) = self.inner.backend.as_deref() else {
            return report;
        };
        let start = Instant::now();
        let ping = redis::cmd("PING");
        match backend.query(&ping).await {
            Ok(_) => {
                report.latency_ms = start.elapsed().as_secs_f64() * 1000.0;
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
