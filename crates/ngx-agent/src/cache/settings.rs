//! Per-type TTLs and fail-safe settings of the domain cache, from the
//! environment.

use std::collections::HashMap;
use std::time::Duration;

use ngx_cache::ConfigError;
use ngx_cache::config::Env;

use super::KeySpace;

/// TTLs by key space, plus the fail-safe window applied to domain entries.
#[derive(Debug, Clone, PartialEq)]
pub struct DomainCacheSettings {
    ttls: HashMap<KeySpace, Duration>,
    /// How long an entry outlives its TTL as a fallback when the database
    /// fails (`CACHE_FAIL_SAFE`, seconds; 0 turns fail-safe off).
    pub fail_safe: Option<Duration>,
}

impl Default for DomainCacheSettings {
    fn default() -> Self {
        Self {
            ttls: KeySpace::ALL
                .iter()
                .map(|s| (*s, s.default_ttl()))
                .collect(),
            fail_safe: Some(Duration::from_secs(3600)),
        }
    }
}

impl DomainCacheSettings {
    /// Reads `CACHE_TTL_*` and `CACHE_FAIL_SAFE` through `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env::new(&lookup);
        let mut settings = Self::default();
        for space in KeySpace::ALL {
            if let Some(ttl) = env.seconds(space.ttl_var())? {
                if ttl.is_zero() {
                    return Err(ConfigError::invalid(
                        space.ttl_var(),
                        "must be at least 1 second",
                    ));
                }
                settings.ttls.insert(space, ttl);
            }
        }
        if let Some(window) = env.seconds("CACHE_FAIL_SAFE")? {
            settings.fail_safe = (!window.is_zero()).then_some(window);
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
    }
}
