//! `CacheConfig::from_env()`: the environment variables of the README's
//! configuration table, parsed into a [`CacheConfig`]. Errors name the
//! variable.

use std::fmt;
use std::time::Duration;

use super::{CacheConfig, ConfigError};

impl CacheConfig {
    /// Reads the variables listed in the README from the process environment.
    /// Unset variables keep their defaults; a malformed one is an error that
    /// names it.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Like [`from_env`](Self::from_env), reading variables through `lookup`
    /// (handy in tests, where changing the real environment is racy).
    ///
    /// ```
    /// use ngx_cache::CacheConfig;
    ///
    /// let err = CacheConfig::from_lookup(|name| {
    ///     (name == "REDIS_POOL_SIZE").then(|| "many".to_owned())
    /// })
    /// .unwrap_err();
    /// assert!(err.to_string().contains("REDIS_POOL_SIZE"));
    /// ```
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env::new(&lookup);
        let mut c = Self::default();
        env.set("REDIS_URL", &mut c.url, |e, v| Ok(e.string(v)))?;
        for (var, slot) in [
            ("REDIS_TLS_CA_FILE", &mut c.tls_ca_file),
            ("REDIS_TLS_CERT_FILE", &mut c.tls_cert_file),
            ("REDIS_TLS_KEY_FILE", &mut c.tls_key_file),
        ] {
            *slot = env.string(var).map(std::path::PathBuf::from);
        }
        env.set("REDIS_CLUSTER", &mut c.cluster, Env::boolean)?;
        env.set("REDIS_POOL_SIZE", &mut c.pool_size, Env::number)?;
        env.set(
            "REDIS_DECODE_RESPONSES",
            &mut c.decode_responses,
            Env::boolean,
        )?;
        env.set("CACHE_ENABLED", &mut c.enabled, Env::boolean)?;
        env.set("CACHE_DEFAULT_TTL", &mut c.default_ttl, Env::ttl)?;
        env.set("CACHE_NAMESPACE", &mut c.namespace, |e, v| Ok(e.string(v)))?;
        let breaker = &mut c.breaker;
        env.set(
            "CACHE_CIRCUIT_BREAKER_ENABLED",
            &mut breaker.enabled,
            Env::boolean,
        )?;
        env.set(
            "CACHE_CIRCUIT_BREAKER_FAILURES",
            &mut breaker.failure_threshold,
            Env::number,
        )?;
        env.set(
            "CACHE_CIRCUIT_BREAKER_TIMEOUT",
            &mut breaker.open_duration,
            Env::ttl,
        )?;
        env.set("CACHE_CODEC", &mut c.codec, |env, var| {
            env.parse(var, str::parse)
        })?;
        env.set("CACHE_OP_TIMEOUT_MS", &mut c.op_timeout, Env::millis)?;
        env.set(
            "CACHE_CONNECT_TIMEOUT_MS",
            &mut c.connect_timeout,
            Env::millis,
        )?;
        env.set("CACHE_MAX_VALUE_BYTES", &mut c.max_value_bytes, Env::number)?;
        env.set("CACHE_MAX_KEY_BYTES", &mut c.max_key_bytes, Env::number)?;
        env.set("CACHE_TTL_JITTER", &mut c.ttl_jitter, Env::number)?;
        if let Some(threshold) = env.number::<usize>("CACHE_COMPRESSION_THRESHOLD")? {
            c.compression_threshold = (threshold > 0).then_some(threshold);
        }
        env.set(
            "CACHE_HEAL_AFTER_TIMEOUTS",
            &mut c.heal_after_timeouts,
            Env::number,
        )?;
        env.set("CACHE_L1_ENABLED", &mut c.l1_enabled, Env::boolean)?;
        env.set("CACHE_L1_CAPACITY", &mut c.l1_capacity, Env::number)?;
        env.set("CACHE_L1_MAX_TTL", &mut c.l1_max_ttl, Env::ttl)?;
        env.set("CACHE_L1_MAX_BYTES", &mut c.l1_max_bytes, Env::number)?;
        env.set(
            "CACHE_INVALIDATION_ENABLED",
            &mut c.invalidation,
            Env::boolean,
        )?;
        env.set("CACHE_MAX_PENDING", &mut c.max_pending, Env::number)?;
        c.breaker.probe_timeout = c.op_timeout * 4;
        c.validate()
    }
}

/// Reads environment variables through a lookup function and parses them.
/// Every error is a [`ConfigError`] that names the variable. An unset or
/// blank variable reads as `None`; values are trimmed.
///
/// The library's [`CacheConfig::from_lookup`] uses it, and so can an
/// application that reads its own settings next to the cache's, so both
/// accept the same spellings (`true`/`false`, `1`/`0`, `yes`/`no`,
/// `on`/`off`, whole numbers, seconds and milliseconds).
///
/// ```
/// use std::time::Duration;
/// use ngx_cache::config::Env;
///
/// let lookup = |name: &str| match name {
///     "APP_WORKERS" => Some(" 4 ".to_owned()),
///     "APP_VERBOSE" => Some("yes".to_owned()),
///     "APP_GRACE" => Some("soon".to_owned()),
///     _ => None,
/// };
/// let env = Env::new(&lookup);
/// assert_eq!(env.number::<u32>("APP_WORKERS").unwrap(), Some(4));
/// assert_eq!(env.boolean("APP_VERBOSE").unwrap(), Some(true));
/// assert_eq!(env.string("APP_NAME"), None);
/// let err = env.seconds("APP_GRACE").unwrap_err();
/// assert_eq!(err.var, "APP_GRACE");
/// # let _: Option<Duration> = None;
/// ```
pub struct Env<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
}

impl fmt::Debug for Env<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Env").finish_non_exhaustive()
    }
}

impl<'a> Env<'a> {
    /// Reads through `lookup` (`|name| std::env::var(name).ok()` for the
    /// process environment; a map in tests).
    pub fn new(lookup: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Self { lookup }
    }

    /// The trimmed value of `var`; `None` when unset or blank.
    pub fn string(&self, var: &str) -> Option<String> {
        (self.lookup)(var)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    /// The value of `var` parsed by `parse`, whose error says why it was
    /// refused.
    pub fn parse<T, E: fmt::Display>(
        &self,
        var: &str,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Result<Option<T>, ConfigError> {
        let Some(raw) = self.string(var) else {
            return Ok(None);
        };
        parse(&raw)
            .map(Some)
            .map_err(|reason| ConfigError::new(var, format!("`{raw}` is not valid: {reason}")))
    }

    /// A boolean: `true`, `1`, `yes`, `on` or `false`, `0`, `no`, `off`.
    pub fn boolean(&self, var: &str) -> Result<Option<bool>, ConfigError> {
        self.parse(var, |s| match s.to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(true),
            "0" | "false" | "no" | "off" => Ok(false),
            _ => Err("expected true or false"),
        })
    }

    /// A number of type `T`.
    pub fn number<T>(&self, var: &str) -> Result<Option<T>, ConfigError>
    where
        T: std::str::FromStr,
        T::Err: fmt::Display,
    {
        self.parse(var, str::parse::<T>)
    }

    /// A whole number of seconds.
    pub fn seconds(&self, var: &str) -> Result<Option<Duration>, ConfigError> {
        Ok(self.number::<u64>(var)?.map(Duration::from_secs))
    }

    /// A whole number of seconds used as a TTL: at most
    /// [`MAX_TTL`](super::MAX_TTL) (365 days).
    ///
    /// ```
    /// use ngx_cache::config::Env;
    ///
    /// let lookup = |_: &str| Some("31536001".to_owned());
    /// let err = Env::new(&lookup).ttl("APP_TTL").unwrap_err();
    /// assert!(err.to_string().contains("365 days"));
    /// ```
    pub fn ttl(&self, var: &str) -> Result<Option<Duration>, ConfigError> {
        match self.seconds(var)? {
            Some(ttl) if ttl > super::MAX_TTL => Err(ConfigError::new(var, super::TOO_LONG)),
            ttl => Ok(ttl),
        }
    }

    /// A whole number of milliseconds.
    pub fn millis(&self, var: &str) -> Result<Option<Duration>, ConfigError> {
        Ok(self.number::<u64>(var)?.map(Duration::from_millis))
    }

    /// Overwrites `slot` with `var` read by `read`, when `var` is set.
    fn set<T, R>(&self, var: &str, slot: &mut T, read: R) -> Result<(), ConfigError>
    where
        R: FnOnce(&Self, &str) -> Result<Option<T>, ConfigError>,
    {
        if let Some(v) = read(self, var)? {
            *slot = v;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::codec::Codec;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }

    #[test]
    fn defaults_match_the_design() {
        let c = CacheConfig::from_lookup(|_| None).unwrap();
        assert_eq!(c.url, "redis://localhost:6379");
        assert_eq!(c.pool_size, 10);
        assert_eq!(c.default_ttl, Duration::from_secs(3600));
        assert_eq!(c.namespace, "ngx");
        assert_eq!(c.breaker.failure_threshold, 5);
        assert_eq!(c.breaker.open_duration, Duration::from_secs(30));
        assert_eq!(c.op_timeout, Duration::from_millis(250));
        assert_eq!(c.connect_timeout, Duration::from_secs(1));
        assert!(c.enabled && c.breaker.enabled);
    }

    #[test]
    fn reads_every_variable() {
        let c = CacheConfig::from_lookup(lookup(&[
            ("REDIS_URL", "redis://:pw@10.0.0.1:7000"),
            ("REDIS_POOL_SIZE", "3"),
            ("CACHE_ENABLED", "false"),
            ("CACHE_DEFAULT_TTL", "60"),
            ("CACHE_NAMESPACE", "app"),
            ("CACHE_CIRCUIT_BREAKER_ENABLED", "no"),
            ("CACHE_CIRCUIT_BREAKER_FAILURES", "7"),
            ("CACHE_CIRCUIT_BREAKER_TIMEOUT", "9"),
            ("CACHE_CODEC", "msgpack"),
            ("CACHE_OP_TIMEOUT_MS", "100"),
            ("CACHE_COMPRESSION_THRESHOLD", "2048"),
            ("CACHE_L1_ENABLED", "off"),
            ("CACHE_L1_CAPACITY", "50"),
            ("CACHE_L1_MAX_TTL", "5"),
            ("CACHE_INVALIDATION_ENABLED", "0"),
        ]))
        .unwrap();
        assert!(!c.l1_enabled && !c.invalidation);
        assert_eq!(c.l1_capacity, 50);
        assert_eq!(c.l1_max_ttl, Duration::from_secs(5));
        assert_eq!(c.pool_size, 3);
        assert!(!c.enabled && !c.breaker.enabled);
        assert_eq!(c.default_ttl, Duration::from_secs(60));
        assert_eq!(c.namespace, "app");
        assert_eq!(c.breaker.failure_threshold, 7);
        assert_eq!(c.breaker.open_duration, Duration::from_secs(9));
        assert_eq!(c.codec, Codec::MessagePack);
        assert_eq!(c.op_timeout, Duration::from_millis(100));
        assert_eq!(c.compression_threshold, Some(2048));
    }

    #[test]
    fn errors_name_the_variable() {
        for (var, value) in [
            ("REDIS_POOL_SIZE", "ten"),
            ("REDIS_POOL_SIZE", "0"),
            ("CACHE_ENABLED", "maybe"),
            ("CACHE_DEFAULT_TTL", "-1"),
            ("CACHE_NAMESPACE", "a\nb"),
            ("CACHE_NAMESPACE", "ngx:staging"),
            ("CACHE_CODEC", "pickle"),
            ("REDIS_URL", "http://x"),
            ("CACHE_TTL_JITTER", "2"),
            ("CACHE_L1_ENABLED", "maybe"),
            ("CACHE_L1_CAPACITY", "0"),
            ("CACHE_L1_MAX_TTL", "0"),
            ("CACHE_INVALIDATION_ENABLED", "maybe"),
        ] {
            let err = CacheConfig::from_lookup(lookup(&[(var, value)])).unwrap_err();
            assert_eq!(err.var, var, "{err}");
        }
    }

    #[test]
    fn debug_hides_the_password() {
        let c = CacheConfig::builder()
            .url("redis://user:topsecret@h:1")
            .build()
            .unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("topsecret"), "{shown}");
        let err =
            CacheConfig::from_lookup(lookup(&[("REDIS_URL", "http://u:topsecret@h")])).unwrap_err();
        assert!(!err.to_string().contains("topsecret"), "{err}");
    }
}
