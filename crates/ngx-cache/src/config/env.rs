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
        let env = Env(&lookup);
        let mut c = Self::default();
        if let Some(url) = env.string("REDIS_URL") {
            c.url = url;
        }
        env.parse("REDIS_CLUSTER", &mut c.cluster, parse_bool)?;
        env.parse("REDIS_POOL_SIZE", &mut c.pool_size, parse_num)?;
        env.parse(
            "REDIS_DECODE_RESPONSES",
            &mut c.decode_responses,
            parse_bool,
        )?;
        env.parse("CACHE_ENABLED", &mut c.enabled, parse_bool)?;
        env.parse("CACHE_DEFAULT_TTL", &mut c.default_ttl, parse_secs)?;
        if let Some(ns) = env.string("CACHE_NAMESPACE") {
            c.namespace = ns;
        }
        env.parse(
            "CACHE_CIRCUIT_BREAKER_ENABLED",
            &mut c.breaker.enabled,
            parse_bool,
        )?;
        env.parse(
            "CACHE_CIRCUIT_BREAKER_FAILURES",
            &mut c.breaker.failure_threshold,
            parse_num,
        )?;
        env.parse(
            "CACHE_CIRCUIT_BREAKER_TIMEOUT",
            &mut c.breaker.open_duration,
            parse_secs,
        )?;
        env.parse("CACHE_CODEC", &mut c.codec, |s| s.parse())?;
        env.parse("CACHE_OP_TIMEOUT_MS", &mut c.op_timeout, parse_millis)?;
        env.parse(
            "CACHE_CONNECT_TIMEOUT_MS",
            &mut c.connect_timeout,
            parse_millis,
        )?;
        env.parse("CACHE_MAX_VALUE_BYTES", &mut c.max_value_bytes, parse_num)?;
        env.parse("CACHE_MAX_KEY_BYTES", &mut c.max_key_bytes, parse_num)?;
        env.parse("CACHE_TTL_JITTER", &mut c.ttl_jitter, parse_num)?;
        let mut threshold = 0usize;
        env.parse("CACHE_COMPRESSION_THRESHOLD", &mut threshold, parse_num)?;
        if threshold > 0 {
            c.compression_threshold = Some(threshold);
        }
        env.parse(
            "CACHE_HEAL_AFTER_TIMEOUTS",
            &mut c.heal_after_timeouts,
            parse_num,
        )?;
        env.parse("CACHE_L1_MAX_BYTES", &mut c.l1_max_bytes, parse_num)?;
        c.breaker.probe_timeout = c.op_timeout * 4;
        c.validate()
    }
}

struct Env<'a>(&'a dyn Fn(&str) -> Option<String>);

impl Env<'_> {
    fn string(&self, var: &str) -> Option<String> {
        (self.0)(var).filter(|v| !v.trim().is_empty())
    }

    fn parse<T>(
        &self,
        var: &str,
        slot: &mut T,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<(), ConfigError> {
        if let Some(raw) = self.string(var) {
            *slot = parse(raw.trim()).map_err(|reason| {
                ConfigError::new(var, format!("`{raw}` is not valid: {reason}"))
            })?;
        }
        Ok(())
    }
}

fn parse_bool(s: &str) -> Result<bool, String> {
    match s.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err("expected true or false".to_owned()),
    }
}

fn parse_num<T: std::str::FromStr>(s: &str) -> Result<T, String>
where
    T::Err: fmt::Display,
{
    s.parse().map_err(|e: T::Err| e.to_string())
}

fn parse_secs(s: &str) -> Result<Duration, String> {
    parse_num::<u64>(s).map(Duration::from_secs)
}

fn parse_millis(s: &str) -> Result<Duration, String> {
    parse_num::<u64>(s).map(Duration::from_millis)
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
        ]))
        .unwrap();
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
