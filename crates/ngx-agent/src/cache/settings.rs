//! Per-type TTLs, fail-safe, load timeouts, negative caching and the
//! customer warm-up bound of the domain cache, from the environment.

use std::collections::HashMap;
use std::time::Duration;

use ngx_cache::ConfigError;
use ngx_cache::config::Env;

use super::KeySpace;

/// TTLs by key space, plus the fail-safe window, load timeouts and the
/// "not found" TTL applied to domain entries, and how many customers a
/// warm-up loads.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct DomainCacheSettings {
    ttls: HashMap<KeySpace, Duration>,
    /// How long an entry outlives its TTL as a fallback when the database
    /// fails (`CACHE_FAIL_SAFE`, seconds; 0 turns fail-safe off).
    pub fail_safe: Option<Duration>,
    /// A load slower than this answers with the stale value at once, when
    /// there is one, and finishes in the background
    /// (`CACHE_LOAD_SOFT_TIMEOUT_MS`; 0 turns it off).
    pub soft_timeout: Option<Duration>,
    /// A load is abandoned after this long: the caller gets the stale value,
    /// or 503 when there is none (`CACHE_LOAD_HARD_TIMEOUT_MS`; 0 turns it
    /// off). Kept below the request deadline, so a hung database cannot
    /// hold a request until the deadline.
    pub hard_timeout: Option<Duration>,
    /// How long "not found" is cached for customers, conversations,
    /// knowledge topics and agent configurations (`CACHE_NEGATIVE_TTL`,
    /// seconds; 0 turns negative caching off). Creating the id removes it.
    pub negative_ttl: Option<Duration>,
    /// How many customers a warm-up loads, the most recently active first:
    /// their profiles and program recommendations
    /// (`CACHE_WARM_CUSTOMERS`; 0 warms none).
    pub warm_customers: u32,
}

impl Default for DomainCacheSettings {
    fn default() -> Self {
        Self {
            ttls: KeySpace::ALL
                .iter()
                .map(|s| (*s, s.default_ttl()))
                .collect(),
            fail_safe: Some(Duration::from_secs(3600)),
            soft_timeout: Some(Self::DEFAULT_SOFT_TIMEOUT),
            hard_timeout: Some(Self::DEFAULT_HARD_TIMEOUT),
            negative_ttl: Some(Self::DEFAULT_NEGATIVE_TTL),
            warm_customers: Self::DEFAULT_WARM_CUSTOMERS,
        }
    }
}

impl DomainCacheSettings {
    /// Default of [`soft_timeout`](Self::soft_timeout): 250 ms.
    pub const DEFAULT_SOFT_TIMEOUT: Duration = Duration::from_millis(250);
    /// Default of [`hard_timeout`](Self::hard_timeout): 3 s, well under the
    /// default 10 s request deadline.
    pub const DEFAULT_HARD_TIMEOUT: Duration = Duration::from_secs(3);
    /// Default of [`negative_ttl`](Self::negative_ttl): 10 s.
    pub const DEFAULT_NEGATIVE_TTL: Duration = Duration::from_secs(10);
    /// Default of [`warm_customers`](Self::warm_customers): 10,000.
    pub const DEFAULT_WARM_CUSTOMERS: u32 = 10_000;

    /// Reads `CACHE_TTL_*`, `CACHE_FAIL_SAFE`, `CACHE_LOAD_SOFT_TIMEOUT_MS`,
    /// `CACHE_LOAD_HARD_TIMEOUT_MS`, `CACHE_NEGATIVE_TTL` and
    /// `CACHE_WARM_CUSTOMERS` through `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env::new(&lookup);
        let mut settings = Self::default();
        for space in KeySpace::ALL {
            if let Some(ttl) = env.ttl(space.ttl_var())? {
                if ttl.is_zero() {
                    return Err(ConfigError::invalid(
                        space.ttl_var(),
                        "must be at least 1 second",
                    ));
                }
                settings.ttls.insert(space, ttl);
            }
        }
        if let Some(window) = env.ttl("CACHE_FAIL_SAFE")? {
            settings.fail_safe = (!window.is_zero()).then_some(window);
        }
        if let Some(t) = env.millis("CACHE_LOAD_SOFT_TIMEOUT_MS")? {
            settings.soft_timeout = (!t.is_zero()).then_some(t);
        }
        if let Some(t) = env.millis("CACHE_LOAD_HARD_TIMEOUT_MS")? {
            settings.hard_timeout = (!t.is_zero()).then_some(t);
        }
        if let (Some(soft), Some(hard)) = (settings.soft_timeout, settings.hard_timeout)
            && soft >= hard
        {
            return Err(ConfigError::invalid(
                "CACHE_LOAD_SOFT_TIMEOUT_MS",
                "must be below CACHE_LOAD_HARD_TIMEOUT_MS",
            ));
        }
        if let Some(t) = env.ttl("CACHE_NEGATIVE_TTL")? {
            settings.negative_ttl = (!t.is_zero()).then_some(t);
        }
        if let Some(n) = env.number::<u32>("CACHE_WARM_CUSTOMERS")? {
            settings.warm_customers = n;
        }
        Ok(settings)
    }

    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// The TTL of `space`.
    pub fn ttl(&self, space: KeySpace) -> Duration {
        self.ttls
            .get(&space)
            .copied()
            .unwrap_or_else(|| space.default_ttl())
    }

    /// Overrides the TTL of `space`.
    #[must_use]
    pub fn with_ttl(mut self, space: KeySpace, ttl: Duration) -> Self {
        self.ttls.insert(space, ttl);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_overrides_and_names_bad_variables() {
        let s = DomainCacheSettings::from_lookup(|n| match n {
            "CACHE_TTL_KNOWLEDGE" => Some("60".into()),
            "CACHE_FAIL_SAFE" => Some("0".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(s.ttl(KeySpace::Knowledge), Duration::from_secs(60));
        assert_eq!(s.ttl(KeySpace::Conversation), Duration::from_secs(1800));
        assert_eq!(s.fail_safe, None);
        let err =
            DomainCacheSettings::from_lookup(|n| (n == "CACHE_TTL_ROI").then(|| "ten".to_owned()))
                .unwrap_err();
        assert_eq!(err.var, "CACHE_TTL_ROI");
        // TTLs and windows are bounded by the library's MAX_TTL (365 days).
        for var in ["CACHE_TTL_ROI", "CACHE_FAIL_SAFE", "CACHE_NEGATIVE_TTL"] {
            let err =
                DomainCacheSettings::from_lookup(|n| (n == var).then(|| "31536001".to_owned()))
                    .unwrap_err();
            assert_eq!(err.var, var);
            assert!(err.to_string().contains("365 days"), "{err}");
            DomainCacheSettings::from_lookup(|n| (n == var).then(|| "31536000".to_owned()))
                .unwrap();
        }
    }

    #[test]
    fn reads_load_timeouts_and_the_negative_ttl() {
        let d = DomainCacheSettings::default();
        assert_eq!(d.hard_timeout, Some(Duration::from_secs(3)));
        let s = DomainCacheSettings::from_lookup(|n| match n {
            "CACHE_LOAD_SOFT_TIMEOUT_MS" => Some("100".into()),
            "CACHE_LOAD_HARD_TIMEOUT_MS" => Some("900".into()),
            "CACHE_NEGATIVE_TTL" => Some("0".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(s.soft_timeout, Some(Duration::from_millis(100)));
        assert_eq!(s.hard_timeout, Some(Duration::from_millis(900)));
        assert_eq!(s.negative_ttl, None);
        let err = DomainCacheSettings::from_lookup(|n| match n {
            "CACHE_LOAD_SOFT_TIMEOUT_MS" => Some("5000".into()),
            _ => None,
        })
        .unwrap_err();
        assert_eq!(err.var, "CACHE_LOAD_SOFT_TIMEOUT_MS");
        let err = DomainCacheSettings::from_lookup(|n| {
            (n == "CACHE_NEGATIVE_TTL").then(|| "soon".to_owned())
        })
        .unwrap_err();
        assert_eq!(err.var, "CACHE_NEGATIVE_TTL");
    }

    #[test]
    fn reads_the_customer_warm_up_bound() {
        assert_eq!(DomainCacheSettings::default().warm_customers, 10_000);
        let read = |v: &str| {
            DomainCacheSettings::from_lookup(|n| (n == "CACHE_WARM_CUSTOMERS").then(|| v.into()))
        };
        assert_eq!(read("0").unwrap().warm_customers, 0);
        assert_eq!(read("2500").unwrap().warm_customers, 2500);
        for bad in ["-1", "many", "1.5", "99999999999"] {
            let err = read(bad).unwrap_err();
            assert_eq!(err.var, "CACHE_WARM_CUSTOMERS", "{bad}");
        }
    }
}
