//! The [`Cache`] handle: construction, configuration and the components
//! every operation goes through.

use std::sync::Arc;

use tokio::sync::watch;

use crate::backend::{self, Backend};
use crate::breaker::CircuitBreaker;
use crate::coherence::{Coherence, Parts};
use crate::config::CacheConfig;
use crate::error::Error;
use crate::key::KeySpace;
use crate::load::Loader;
use crate::stats::Counters;
use crate::tier::l1::L1;
use crate::tier::remote::Remote;

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
    pub(super) inner: Arc<Inner>,
}

/// Shared state behind every clone of a [`Cache`]: one component per
/// concern, each shared with the background tasks that serve it.
#[derive(Debug)]
pub(super) struct Inner {
    pub(super) config: CacheConfig,
    pub(super) keys: KeySpace,
    /// Redis behind the circuit breaker, with the statistics.
    pub(super) remote: Arc<Remote>,
    /// L1 and what keeps it coherent: clock, tags, pending invalidations,
    /// the invalidation channel.
    pub(super) coherence: Arc<Coherence>,
    /// `get_or_load`: single-flight, lease and checked fill.
    pub(super) loader: Arc<Loader>,
    /// Dropped with the last clone of the cache, which stops every
    /// background task (they wait on the receiving ends).
    _stop: watch::Sender<()>,
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
        Self::assemble(
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
            return Ok(Self::assemble(config, None));
        }
        // The clock's one-time calibration, here rather than in a request.
        crate::time::calibrate();
        let backend = backend::connect(&config, eager).await?;
        tracing::info!(url = %config.redacted_url(), namespace = %config.namespace, "cache connected");
        let cache = Self::assemble(config, Some(backend));
        if eager {
            let limit = cache.inner.config.connect_timeout;
            cache.inner.coherence.wait_subscribed(limit).await;
        }
        Ok(cache)
    }

    /// Builds the components over `backend` (`None`: disabled) and starts
    /// their background tasks.
    fn assemble(config: CacheConfig, backend: Option<Backend>) -> Self {
        let enabled = backend.is_some();
        let counters = Arc::new(Counters::default());
        let remote = Arc::new(Remote::new(
            backend,
            config.breaker.clone(),
            counters,
            config.limits(),
        ));
        let (stop, stopped) = watch::channel(());
        remote.spawn_prober(stopped.clone());
        let coherence = Coherence::start(Parts {
            keys: config.key_space(),
            remote: Arc::clone(&remote),
            l1: (config.l1_enabled && enabled)
                .then(|| L1::new(config.l1_capacity, config.l1_max_bytes, config.l1_max_ttl)),
            channel: config.invalidation && enabled,
            connect_timeout: config.connect_timeout,
            max_pending: config.max_pending,
            stopped,
        });
        let loader = Arc::new(Loader::new(
            config.clone(),
            Arc::clone(&remote),
            Arc::clone(&coherence),
        ));
        Self {
            inner: Arc::new(Inner {
                keys: config.key_space(),
                config,
                remote,
                coherence,
                loader,
                _stop: stop,
            }),
        }
    }

    /// The configuration this cache runs with.
    pub fn config(&self) -> &CacheConfig {
        &self.inner.config
    }

    /// Whether the cache is enabled by configuration.
    pub fn is_enabled(&self) -> bool {
        self.inner.remote.backend().is_some()
    }

    /// The circuit breaker guarding Redis calls.
    pub fn breaker(&self) -> &CircuitBreaker {
        self.inner.remote.breaker()
    }

    /// The full Redis key for `key`: `{namespace}:{key}`, validated.
    pub fn full_key(&self, key: &str) -> Result<String, Error> {
        self.inner.keys.full(key)
    }

    /// The statistics every component updates.
    pub(super) fn counters(&self) -> &Counters {
        self.inner.remote.counters()
    }
}
