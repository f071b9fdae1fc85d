//! Typed configuration: [`CacheConfig`] with its defaults and checks, and
//! its builder; `from_env()` and the [`Env`] reader it shares with
//! applications.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::breaker::BreakerConfig;
use crate::key::KeySpace;
use crate::value::codec::{Codec, Limits};

mod env;

pub use crate::error::ConfigError;
pub use crate::key::MAX_TTL;

/// The error of a duration over [`MAX_TTL`].
pub(crate) const TOO_LONG: &str = "must be at most 31536000 seconds (365 days)";
pub use env::Env;

/// Everything the cache needs to run. Build it with [`CacheConfig::builder`],
/// [`CacheConfig::from_env`], or start from `Default`.
///
/// `Debug` never shows the password of [`url`](Self::url).
#[derive(Clone)]
#[non_exhaustive]
pub struct CacheConfig {
    /// `redis://`, `rediss://` (TLS) URL, with optional user and password.
    /// With [`cluster`](Self::cluster), a comma-separated list of node URLs.
    pub url: String,
    /// PEM file of the CA certificates that verify a `rediss://` server,
    /// instead of the system's roots (`REDIS_TLS_CA_FILE`).
    pub tls_ca_file: Option<PathBuf>,
    /// PEM file of the client certificate shown to a server that asks for
    /// one (mutual TLS); needs [`tls_key_file`](Self::tls_key_file)
    /// (`REDIS_TLS_CERT_FILE`).
    pub tls_cert_file: Option<PathBuf>,
    /// PEM file of the client certificate's private key
    /// (`REDIS_TLS_KEY_FILE`).
    pub tls_key_file: Option<PathBuf>,
    /// Connect to a Redis Cluster (`REDIS_CLUSTER`).
    pub cluster: bool,
    /// Multiplexed connections opened; each runtime thread prefers one and
    /// falls back to the others (`REDIS_POOL_SIZE`).
    pub pool_size: usize,
    /// Must be a boolean, and has no effect: values are always decoded into
    /// typed Rust values (`REDIS_DECODE_RESPONSES`).
    pub decode_responses: bool,
    /// When false, every read misses and nothing touches the network (`CACHE_ENABLED`).
    pub enabled: bool,
    /// TTL used when a call gives none (`CACHE_DEFAULT_TTL`, seconds).
    pub default_ttl: Duration,
    /// Prefix of every key, `{namespace}:{key}` (`CACHE_NAMESPACE`).
    pub namespace: String,
    /// Circuit breaker settings (`CACHE_CIRCUIT_BREAKER_*`).
    pub breaker: BreakerConfig,
    /// Codec used for writes; reads accept every codec (`CACHE_CODEC`: `json` or `msgpack`).
    pub codec: Codec,
    /// Timeout of one Redis operation (`CACHE_OP_TIMEOUT_MS`).
    pub op_timeout: Duration,
    /// Timeout of establishing a connection (`CACHE_CONNECT_TIMEOUT_MS`).
    pub connect_timeout: Duration,
    /// Largest encoded value accepted by `set` (`CACHE_MAX_VALUE_BYTES`).
    pub max_value_bytes: usize,
    /// Longest full key, namespace included (`CACHE_MAX_KEY_BYTES`).
    pub max_key_bytes: usize,
    /// Fraction of the TTL removed at random to spread expiries, 0 turns it
    /// off (`CACHE_TTL_JITTER`, at most 0.5).
    pub ttl_jitter: f64,
    /// Values whose encoding exceeds this many bytes are LZ4-compressed;
    /// `None` turns compression off (`CACHE_COMPRESSION_THRESHOLD`, 0 = off).
    pub compression_threshold: Option<usize>,
    /// Consecutive timeouts on one connection after which it is dropped and
    /// rebuilt (`CACHE_HEAL_AFTER_TIMEOUTS`).
    pub heal_after_timeouts: u32,
    /// Keep an in-process L1 tier in front of Redis (`CACHE_L1_ENABLED`).
    pub l1_enabled: bool,
    /// Maximum number of L1 entries (`CACHE_L1_CAPACITY`).
    pub l1_capacity: usize,
    /// Maximum weight of L1 in bytes, by the stored size of each value
    /// (`CACHE_L1_MAX_BYTES`).
    pub l1_max_bytes: u64,
    /// Upper bound of any L1 lifetime (`CACHE_L1_MAX_TTL`, seconds).
    pub l1_max_ttl: Duration,
    /// Publish and apply invalidation messages so every instance's L1 stays
    /// coherent (`CACHE_INVALIDATION_ENABLED`).
    pub invalidation: bool,
    /// Most pending key deletes, pending tag invalidations and pending invalidation
    /// messages (each) remembered at once while Redis cannot take them
    /// (`CACHE_MAX_PENDING`); past it, further deletes and tags are only
    /// logged and counted as dropped, and messages collapse into one clear.
    pub max_pending: usize,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            url: "redis://localhost:6379".to_owned(),
            tls_ca_file: None,
            tls_cert_file: None,
            tls_key_file: None,
            cluster: false,
            pool_size: 10,
            decode_responses: true,
            enabled: true,
            default_ttl: Duration::from_secs(3600),
            namespace: "ngx".to_owned(),
            breaker: BreakerConfig::default(),
            codec: Codec::Json,
            op_timeout: Duration::from_millis(250),
            connect_timeout: Duration::from_secs(1),
            max_value_bytes: 1024 * 1024,
            max_key_bytes: 1024,
            ttl_jitter: 0.1,
            compression_threshold: None,
            heal_after_timeouts: 2,
            l1_enabled: true,
            l1_capacity: 10_000,
            l1_max_bytes: 64 * 1024 * 1024,
            l1_max_ttl: Duration::from_secs(60),
            invalidation: true,
            max_pending: 10_000,
        }
    }
}

impl fmt::Debug for CacheConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheConfig")
            .field("url", &crate::redact::redact_url(&self.url))
            .field("tls_ca_file", &self.tls_ca_file)
            .field("tls_cert_file", &self.tls_cert_file)
            .field("tls_key_file", &self.tls_key_file)
            .field("cluster", &self.cluster)
            .field("pool_size", &self.pool_size)
            .field("decode_responses", &self.decode_responses)
            .field("enabled", &self.enabled)
            .field("default_ttl", &self.default_ttl)
            .field("namespace", &self.namespace)
            .field("breaker", &self.breaker)
            .field("codec", &self.codec)
            .field("op_timeout", &self.op_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("max_value_bytes", &self.max_value_bytes)
            .field("max_key_bytes", &self.max_key_bytes)
            .field("ttl_jitter", &self.ttl_jitter)
            .field("compression_threshold", &self.compression_threshold)
            .field("heal_after_timeouts", &self.heal_after_timeouts)
            .field("max_pending", &self.max_pending)
            .field("l1_enabled", &self.l1_enabled)
            .field("l1_capacity", &self.l1_capacity)
            .field("l1_max_bytes", &self.l1_max_bytes)
            .field("l1_max_ttl", &self.l1_max_ttl)
            .field("invalidation", &self.invalidation)
            .finish()
    }
}

impl CacheConfig {
    /// Starts a builder from the defaults.
    ///
    /// ```
    /// use std::time::Duration;
    /// use ngx_cache::CacheConfig;
    ///
    /// let config = CacheConfig::builder()
    ///     .url("redis://localhost:6379")
    ///     .namespace("demo")
    ///     .default_ttl(Duration::from_secs(60))
    ///     .pool_size(4)
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(config.namespace, "demo");
    /// ```
    pub fn builder() -> CacheConfigBuilder {
        CacheConfigBuilder {
            config: Self::default(),
        }
    }

    /// Checks ranges and relations between fields.
    pub fn validate(self) -> Result<Self, ConfigError> {
        if self.url.trim().is_empty() {
            return Err(ConfigError::new("REDIS_URL", "must not be empty"));
        }
        for part in self.url.split(',') {
            let part = part.trim();
            if !(part.starts_with("redis://")
                || part.starts_with("rediss://")
                || part.starts_with("unix://")
                || part.starts_with("redis+unix://"))
            {
                return Err(ConfigError::new(
                    "REDIS_URL",
                    format!(
                        "`{}` must start with redis://, rediss:// or unix://",
                        crate::redact::redact_url(part)
                    ),
                ));
            }
        }
        self.validate_tls()?;
        if !self.cluster && self.url.contains(',') {
            return Err(ConfigError::new(
                "REDIS_URL",
                "a list of URLs needs REDIS_CLUSTER=true",
            ));
        }
        if self.pool_size == 0 || self.pool_size > 1024 {
            return Err(ConfigError::new(
                "REDIS_POOL_SIZE",
                "must be between 1 and 1024",
            ));
        }
        if self.default_ttl.is_zero() {
            return Err(ConfigError::new(
                "CACHE_DEFAULT_TTL",
                "must be at least 1 second",
            ));
        }
        for (var, value) in [
            ("CACHE_DEFAULT_TTL", self.default_ttl),
            ("CACHE_L1_MAX_TTL", self.l1_max_ttl),
            ("CACHE_CIRCUIT_BREAKER_TIMEOUT", self.breaker.open_duration),
        ] {
            if value > MAX_TTL {
                return Err(ConfigError::new(var, TOO_LONG));
            }
        }
        crate::key::validate_namespace(&self.namespace)
            .map_err(|reason| ConfigError::new("CACHE_NAMESPACE", reason))?;
        if self.cluster && self.namespace.contains(['{', '}']) {
            // A `{..}` in the namespace would be every key's hash tag.
            return Err(ConfigError::new(
                "CACHE_NAMESPACE",
                "must not contain '{' or '}' with REDIS_CLUSTER=true: it would put every key in one hash slot",
            ));
        }
        if self.breaker.failure_threshold == 0 {
            return Err(ConfigError::new(
                "CACHE_CIRCUIT_BREAKER_FAILURES",
                "must be at least 1",
            ));
        }
        if self.breaker.open_duration.is_zero() {
            return Err(ConfigError::new(
                "CACHE_CIRCUIT_BREAKER_TIMEOUT",
                "must be positive",
            ));
        }
        if self.op_timeout.is_zero() {
            return Err(ConfigError::new("CACHE_OP_TIMEOUT_MS", "must be positive"));
        }
        if self.connect_timeout.is_zero() {
            return Err(ConfigError::new(
                "CACHE_CONNECT_TIMEOUT_MS",
                "must be positive",
            ));
        }
        if self.max_value_bytes == 0 {
            return Err(ConfigError::new(
                "CACHE_MAX_VALUE_BYTES",
                "must be positive",
            ));
        }
        if self.max_key_bytes <= self.namespace.len() + 1 {
            return Err(ConfigError::new(
                "CACHE_MAX_KEY_BYTES",
                "must leave room after the namespace",
            ));
        }
        if !(0.0..=0.5).contains(&self.ttl_jitter) || self.ttl_jitter.is_nan() {
            return Err(ConfigError::new(
                "CACHE_TTL_JITTER",
                "must be between 0 and 0.5",
            ));
        }
        if self.heal_after_timeouts == 0 {
            return Err(ConfigError::new(
                "CACHE_HEAL_AFTER_TIMEOUTS",
                "must be at least 1",
            ));
        }
        if self.max_pending == 0 {
            return Err(ConfigError::new("CACHE_MAX_PENDING", "must be at least 1"));
        }
        if self.l1_enabled && self.l1_capacity == 0 {
            return Err(ConfigError::new("CACHE_L1_CAPACITY", "must be at least 1"));
        }
        if self.l1_enabled && self.l1_max_bytes < 1024 {
            return Err(ConfigError::new(
                "CACHE_L1_MAX_BYTES",
                "must be at least 1024",
            ));
        }
        if self.l1_enabled && self.l1_max_ttl.is_zero() {
            return Err(ConfigError::new(
                "CACHE_L1_MAX_TTL",
                "must be at least 1 second",
            ));
        }
        Ok(self)
    }

    /// The URL with its password replaced by `***`, safe to log.
    pub fn redacted_url(&self) -> String {
        crate::redact::redact_url(&self.url)
    }

    /// The encoding limits values are written and read with.
    pub(crate) fn limits(&self) -> Limits {
        Limits {
            max_value_bytes: self.max_value_bytes,
            compression_threshold: self.compression_threshold,
        }
    }

    /// The namespace and key limit full keys are built with.
    pub(crate) fn key_space(&self) -> KeySpace {
        KeySpace {
            namespace: self.namespace.clone(),
            max_key_bytes: self.max_key_bytes,
        }
    }

    /// TLS settings: files exist and need a `rediss://` URL, and
    /// certificate verification stays on. (A certificate without its key is
    /// refused when connecting.)
    fn validate_tls(&self) -> Result<(), ConfigError> {
        if self.url.contains("#insecure") {
            return Err(ConfigError::new(
                "REDIS_URL",
                "`#insecure` (no certificate verification) is refused; \
                 trust a private CA with REDIS_TLS_CA_FILE instead",
            ));
        }
        let all_tls = self
            .url
            .split(',')
            .all(|u| u.trim().starts_with("rediss://"));
        for (var, file) in [
            ("REDIS_TLS_CA_FILE", &self.tls_ca_file),
            ("REDIS_TLS_CERT_FILE", &self.tls_cert_file),
            ("REDIS_TLS_KEY_FILE", &self.tls_key_file),
        ] {
            let Some(path) = file else { continue };
            if !all_tls {
                return Err(ConfigError::new(var, "needs a rediss:// REDIS_URL"));
            }
            if !path.is_file() {
                return Err(ConfigError::new(
                    var,
                    format!("{} is not a readable file", path.display()),
                ));
            }
        }
        Ok(())
    }

    /// Applies the configured jitter to `ttl` (or the default TTL).
    pub(crate) fn jittered_ttl(&self, ttl: Option<Duration>) -> Duration {
        let ttl = ttl.unwrap_or(self.default_ttl);
        if self.ttl_jitter <= 0.0 {
            return ttl;
        }
        let cut = rand::random::<f64>() * self.ttl_jitter;
        ttl.mul_f64(1.0 - cut).max(Duration::from_millis(1))
    }
}

/// Builder for [`CacheConfig`]; setters are bare nouns and `build` validates.
#[derive(Debug, Clone)]
#[must_use]
pub struct CacheConfigBuilder {
    config: CacheConfig,
}

macro_rules! setters {
    ($($(#[$doc:meta])* $name:ident: $ty:ty => |$c:ident, $v:ident| $body:expr;)*) => {
        impl CacheConfigBuilder {
            $(
                $(#[$doc])*
                pub fn $name(mut self, $v: $ty) -> Self {
                    let $c = &mut self.config;
                    $body;
                    self
                }
            )*
        }
    };
}

setters! {
    /// Redis URL, or comma-separated node URLs for a cluster.
    url: impl Into<String> => |c, v| c.url = v.into();
    /// Connect to a Redis Cluster.
    cluster: bool => |c, v| c.cluster = v;
    /// Number of multiplexed connections.
    pool_size: usize => |c, v| c.pool_size = v;
    /// Turns the cache on or off.
    enabled: bool => |c, v| c.enabled = v;
    /// TTL used when a call gives none.
    default_ttl: std::time::Duration => |c, v| c.default_ttl = v;
    /// Key namespace.
    namespace: impl Into<String> => |c, v| c.namespace = v.into();
    /// Circuit breaker settings.
    breaker: BreakerConfig => |c, v| c.breaker = v;
    /// CA certificates (PEM) that verify a `rediss://` server.
    tls_ca_file: PathBuf => |c, v| c.tls_ca_file = Some(v);
    /// Client certificate (PEM) for mutual TLS.
    tls_cert_file: PathBuf => |c, v| c.tls_cert_file = Some(v);
    /// Private key (PEM) of the client certificate.
    tls_key_file: PathBuf => |c, v| c.tls_key_file = Some(v);
    /// Codec for writes.
    codec: Codec => |c, v| c.codec = v;
    /// Per-operation timeout.
    op_timeout: std::time::Duration => |c, v| c.op_timeout = v;
    /// Connection timeout.
    connect_timeout: std::time::Duration => |c, v| c.connect_timeout = v;
    /// Maximum encoded value size.
    max_value_bytes: usize => |c, v| c.max_value_bytes = v;
    /// Maximum full key length.
    max_key_bytes: usize => |c, v| c.max_key_bytes = v;
    /// TTL jitter fraction (0 to 0.5).
    ttl_jitter: f64 => |c, v| c.ttl_jitter = v;
    /// Compress values larger than this many bytes.
    compression_threshold: Option<usize> => |c, v| c.compression_threshold = v;
    /// Consecutive timeouts before a connection is rebuilt.
    heal_after_timeouts: u32 => |c, v| c.heal_after_timeouts = v;
    /// Turns the L1 tier on or off.
    l1: bool => |c, v| c.l1_enabled = v;
    /// Maximum number of L1 entries.
    l1_capacity: usize => |c, v| c.l1_capacity = v;
    /// Maximum weight of L1 in bytes.
    l1_max_bytes: u64 => |c, v| c.l1_max_bytes = v;
    /// Upper bound of L1 lifetimes.
    l1_max_ttl: std::time::Duration => |c, v| c.l1_max_ttl = v;
    /// Turns the invalidation channel on or off.
    invalidation: bool => |c, v| c.invalidation = v;
    /// Most pending deletes (and pending tag invalidations) remembered at once.
    max_pending: usize => |c, v| c.max_pending = v;
}

impl CacheConfigBuilder {
    /// Validates and returns the configuration.
    pub fn build(self) -> Result<CacheConfig, ConfigError> {
        self.config.validate()
    }
}
