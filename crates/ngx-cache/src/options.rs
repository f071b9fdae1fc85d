//! Per-entry options for writes and `get_or_load`.

use std::time::Duration;

use crate::config::CacheConfig;
use crate::value::codec::Codec;
use crate::value::entry::EntrySpec;

/// How one entry is stored and loaded. Setters are bare nouns and chain.
///
/// ```
/// use std::time::Duration;
/// use ngx_cache::EntryOptions;
///
/// let opts = EntryOptions::new()
///     .ttl(Duration::from_secs(300))
///     .tag("customer:42")
///     .fail_safe(Duration::from_secs(3600))
///     .soft_timeout(Duration::from_millis(100))
///     .eager_refresh(0.8);
/// assert_eq!(opts.tags, vec!["customer:42".to_owned()]);
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct EntryOptions {
    /// Logical lifetime in Redis; the cache's default TTL when `None`.
    pub ttl: Option<Duration>,
    /// Whether the in-process L1 tier is used for this entry.
    pub l1: bool,
    /// L1 lifetime; the logical TTL when `None`. Always capped by the
    /// configured L1 maximum.
    pub l1_ttl: Option<Duration>,
    /// Tags for group invalidation with [`Cache::invalidate_tag`](crate::Cache::invalidate_tag).
    pub tags: Vec<String>,
    /// How long an entry outlives its logical TTL as a fallback for when the
    /// loader or Redis fails. `None` disables fail-safe.
    pub fail_safe: Option<Duration>,
    /// After a failed load was answered with a stale value, the stale value
    /// keeps being served for this long before the loader is tried again.
    pub fail_safe_throttle: Duration,
    /// If the loader is slower than this and a stale value exists, the stale
    /// value is returned at once and the load finishes in the background.
    pub soft_timeout: Option<Duration>,
    /// The loader is abandoned after this long, whatever else happens.
    pub hard_timeout: Option<Duration>,
    /// A hit older than this fraction of the TTL (0 < f < 1) starts one
    /// background refresh. `None` disables eager refresh.
    pub eager_refresh: Option<f64>,
    /// Cache a loaded `None` (JSON `null`) for this long. `None` (the default)
    /// does not cache absent values.
    pub negative_ttl: Option<Duration>,
    /// Codec for this entry; the cache's codec when `None`.
    pub codec: Option<Codec>,
    /// Wait for a load that another instance holds the lease for (polling
    /// Redis) instead of loading at once.
    pub distributed: bool,
    /// How long a waiter polls Redis for another instance's load before
    /// loading itself.
    pub lock_wait: Duration,
    /// Lifetime of the load lease in Redis.
    pub lease: Duration,
    /// Answer a load's callers as soon as the loader returns, and write the
    /// value to Redis and L1 afterwards in the load's task (FusionCache's
    /// background distributed operations). A miss then costs the caller one
    /// Redis round trip less. Callers in this process that arrive before
    /// the write lands join the load and get its value; another instance
    /// may miss and load once more in that window, and a `get` right after
    /// the call may not see the value yet. The fill is checked as usual:
    /// an invalidation during the load still refuses it. Applies to
    /// `get_or_load` and to each batch of `get_or_load_many`. Off by
    /// default.
    pub background_fill: bool,
    /// Load without a lease in Redis: the loader starts without the round
    /// trip that takes the lease, there is no waiting for another
    /// instance's load ([`distributed`](Self::distributed) is ignored), and
    /// the fill is a plain `SET`. Meant for values that are a pure function
    /// of their key, such as computations keyed by a hash of their input:
    /// a `delete` or `set` of the key during the load is then overwritten
    /// by a value equal to what a new load would give. Data the value
    /// depends on beyond its key belongs in tags, whose versions, read
    /// before the loader runs, still make a fill that raced an
    /// invalidation of one of them a miss. Instances that miss together
    /// each load once, and a load in this process is still shared by its
    /// callers. Applies to `get_or_load` and `get_or_load_many`. Off by
    /// default.
    pub skip_lease: bool,
    /// Test hook: fill without checking the lease, as a naive cache-aside
    /// would. Exists only to show that the stale-set test can fail; built
    /// only with the `test-util` feature.
    #[cfg(feature = "test-util")]
    #[doc(hidden)]
    pub unchecked_fill: bool,
}

impl Default for EntryOptions {
    fn default() -> Self {
        Self {
            ttl: None,
            l1: true,
            l1_ttl: None,
            tags: Vec::new(),
            fail_safe: None,
            fail_safe_throttle: Duration::from_secs(5),
            soft_timeout: None,
            hard_timeout: None,
            eager_refresh: None,
            negative_ttl: None,
            codec: None,
            distributed: true,
            lock_wait: Duration::from_secs(1),
            lease: Duration::from_secs(10),
            background_fill: false,
            skip_lease: false,
            #[cfg(feature = "test-util")]
            unchecked_fill: false,
        }
    }
}

macro_rules! option_setters {
    ($($(#[$doc:meta])* $name:ident: $ty:ty => |$o:ident, $v:ident| $body:expr;)*) => {
        impl EntryOptions {
            $(
                $(#[$doc])*
                #[must_use]
                pub fn $name(mut self, $v: $ty) -> Self {
                    let $o = &mut self;
                    $body;
                    self
                }
            )*
        }
    };
}

option_setters! {
    /// Sets the logical TTL.
    ttl: Duration => |o, v| o.ttl = Some(v);
    /// Turns the L1 tier on or off for this entry.
    l1: bool => |o, v| o.l1 = v;
    /// Sets the L1 lifetime (capped by the configured maximum).
    l1_ttl: Duration => |o, v| o.l1_ttl = Some(v);
    /// Adds one tag.
    tag: impl Into<String> => |o, v| o.tags.push(v.into());
    /// Replaces the tags.
    tags: impl IntoIterator<Item = impl Into<String>> => |o, v| o.tags = v.into_iter().map(Into::into).collect();
    /// Enables fail-safe with this window past the logical TTL.
    fail_safe: Duration => |o, v| o.fail_safe = Some(v);
    /// Sets the fail-safe throttle.
    fail_safe_throttle: Duration => |o, v| o.fail_safe_throttle = v;
    /// Sets the soft timeout.
    soft_timeout: Duration => |o, v| o.soft_timeout = Some(v);
    /// Sets the hard timeout.
    hard_timeout: Duration => |o, v| o.hard_timeout = Some(v);
    /// Enables eager refresh at this fraction of the TTL.
    eager_refresh: f64 => |o, v| o.eager_refresh = Some(v);
    /// Caches loaded `None` values for this long.
    negative_ttl: Duration => |o, v| o.negative_ttl = Some(v);
    /// Sets the codec.
    codec: Codec => |o, v| o.codec = Some(v);
    /// Turns distributed single-flight waiting on or off.
    distributed: bool => |o, v| o.distributed = v;
    /// Sets how long to wait for another instance's load.
    lock_wait: Duration => |o, v| o.lock_wait = v;
    /// Sets the load lease lifetime.
    lease: Duration => |o, v| o.lease = v;
    /// Turns the background fill on or off.
    background_fill: bool => |o, v| o.background_fill = v;
    /// Turns loading without a lease on or off.
    skip_lease: bool => |o, v| o.skip_lease = v;
}

impl EntryOptions {
    /// Default options: default TTL, L1 on, no tags, no fail-safe.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether entries need the metadata envelope in Redis (tags or fail-safe).
    pub(crate) fn needs_envelope(&self) -> bool {
        !self.tags.is_empty() || self.fail_safe.is_some() || self.eager_refresh.is_some()
    }

    /// How an entry with these options is encoded under `config`, with
    /// `tags` at the versions it was loaded under.
    pub(crate) fn entry_spec<'a>(
        &self,
        config: &CacheConfig,
        tags: &'a [(String, u64)],
    ) -> EntrySpec<'a> {
        EntrySpec {
            codec: self.codec.unwrap_or(config.codec),
            limits: config.limits(),
            ttl: config.jittered_ttl(self.ttl),
            negative_ttl: self.negative_ttl,
            envelope: self.needs_envelope(),
            tags,
        }
    }

    /// How long Redis keeps an entry of logical TTL `ttl`: the TTL plus the
    /// fail-safe window, each at most [`MAX_TTL`](crate::key::MAX_TTL).
    pub(crate) fn physical_ttl(&self, ttl: Duration) -> Duration {
        let window = self.fail_safe.unwrap_or_default();
        crate::key::clamp_ttl(ttl).saturating_add(crate::key::clamp_ttl(window))
    }

    /// Whether a fill skips the lease check (the `test-util` hook).
    pub(crate) fn skips_fill_check(&self) -> bool {
        #[cfg(feature = "test-util")]
        {
            self.unchecked_fill
        }
        #[cfg(not(feature = "test-util"))]
        {
            false
        }
    }
}

/// Where a value returned by `get_or_load` came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The in-process tier.
    L1,
    /// Redis.
    L2,
    /// The loader ran (in this call or in a concurrent one it waited for).
    Loader,
    /// A stale value served because the loader or Redis failed, or was slow.
    Stale,
}

/// A value with its provenance.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded<T> {
    /// The value.
    pub value: T,
    /// Where it came from.
    pub source: Source,
}

impl<T> Loaded<T> {
    /// Whether the value is stale (served by fail-safe).
    pub fn is_stale(&self) -> bool {
        self.source == Source::Stale
    }
}

/// Why `get_or_load` produced no value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError<E> {
    /// The loader failed and no stale value was available. Shared between
    /// every caller that waited for the same load, hence the `Arc`.
    #[error("loader failed: {0}")]
    Loader(std::sync::Arc<E>),
    /// The loader exceeded the hard timeout and no stale value was available.
    #[error("loader timed out after {0:?}")]
    Timeout(Duration),
    /// The loader panicked.
    #[error("loader panicked")]
    Panicked,
    /// A batch loader (`get_or_load_many`) that this call joined returned
    /// no value for the key.
    #[error("the batch loader returned no value for this key")]
    NotLoaded,
}

impl<E> LoadError<E> {
    /// The loader's own error, when this caller is its only holder.
    pub fn into_loader_error(self) -> Option<E> {
        match self {
            LoadError::Loader(e) => std::sync::Arc::try_unwrap(e).ok(),
            _ => None,
        }
    }
}

impl<E> Clone for LoadError<E> {
    fn clone(&self) -> Self {
        match self {
            LoadError::Loader(e) => LoadError::Loader(e.clone()),
            LoadError::Timeout(d) => LoadError::Timeout(*d),
            LoadError::Panicked => LoadError::Panicked,
            LoadError::NotLoaded => LoadError::NotLoaded,
        }
    }
}
