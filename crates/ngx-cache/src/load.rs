//! `get_or_load`: L1, then Redis, then the loader, with single-flight,
//! leases against stale sets, fail-safe, soft and hard timeouts, and eager
//! refresh.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::time::Instant;

use crate::Cache;
use crate::coherence::{L1Lookup, L1Times};
use crate::flight::{FlightFuture, FlightGuard, Joined};
use crate::options::{EntryOptions, LoadError, Loaded, Source};
use crate::read::L2Read;
use crate::stats::Counters;

/// What a cached value must be able to do.
pub trait Cacheable: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {}
impl<T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static> Cacheable for T {}

/// How often a caller reads the cache again because a flight for its key
/// finished during its read, before it loads regardless.
const MAX_REREADS: u32 = 3;

/// A stale fallback found on the way.
struct Fallback<T> {
    value: T,
    stale_until: Option<Instant>,
    tags: Vec<(String, u64)>,
}

impl Cache {
    /// Returns the value for `key` from L1, else Redis, else `loader`, and
    /// stores what the loader returns in both tiers.
    ///
    /// Concurrent calls for one key in this process run `loader` once; the
    /// others wait for its result (see the stampede example below). A call
    /// that starts after the key was invalidated (`delete`, `set`, a tag or
    /// a clear, here or on another instance) never joins a load that began
    /// before the invalidation, so a read after a write sees the write. Across
    /// instances a lease in Redis makes the others wait briefly for the first
    /// one's value. Redis failures only make the call slower: it then loads
    /// without caching. See [`EntryOptions`] for fail-safe, timeouts, tags
    /// and eager refresh.
    ///
    /// ```no_run
    /// # async fn demo(cache: ngx_cache::Cache) {
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::time::Duration;
    /// use ngx_cache::EntryOptions;
    ///
    /// let calls = Arc::new(AtomicUsize::new(0));
    /// let opts = EntryOptions::new().ttl(Duration::from_secs(60));
    /// let tasks: Vec<_> = (0..1000)
    ///     .map(|_| {
    ///         let (cache, calls, opts) = (cache.clone(), calls.clone(), opts.clone());
    ///         tokio::spawn(async move {
    ///             cache
    ///                 .get_or_load("report:7", &opts, move || async move {
    ///                     calls.fetch_add(1, Ordering::SeqCst);
    ///                     tokio::time::sleep(Duration::from_millis(50)).await;
    ///                     Ok::<_, std::io::Error>("expensive".to_owned())
    ///                 })
    ///                 .await
    ///         })
    ///     })
    ///     .collect();
    /// for t in tasks {
    ///     assert_eq!(t.await.unwrap().unwrap(), "expensive");
    /// }
    /// assert_eq!(calls.load(Ordering::SeqCst), 1); // one load for 1,000 callers
    /// # }
    /// ```
    pub async fn get_or_load<T, E, F, Fut>(
        &self,
        key: &str,
        options: &EntryOptions,
        loader: F,
    ) -> Result<T, LoadError<E>>
    where
        T: Cacheable,
        E: Send + Sync + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        self.get_or_load_entry(key, options, loader)
            .await
            .map(|l| l.value)
    }

    /// Like [`get_or_load`](Self::get_or_load), also telling where the value
    /// came from ([`Source::Stale`] when fail-safe served it).
    pub async fn get_or_load_entry<T, E, F, Fut>(
        &self,
        key: &str,
        opts: &EntryOptions,
        loader: F,
    ) -> Result<Loaded<T>, LoadError<E>>
    where
        T: Cacheable,
        E: Send + Sync + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        let counters = &self.inner.counters;
        let full = match self.full_key(key) {
            Ok(full) if self.is_enabled() => full,
            Ok(_) => return load_direct(loader, opts.hard_timeout, counters).await,
            Err(e) => {
                tracing::warn!(error = %e, "uncacheable key, loading without cache");
                return load_direct(loader, opts.hard_timeout, counters).await;
            }
        };
        let use_l1 = opts.l1 && self.inner.l1.is_some();
        let mut fallback = None;
        let mut loader = loader;
        let mut attempt = 0;
        let flight = loop {
            if use_l1 {
                match self.l1_lookup::<T>(key, Instant::now()) {
                    L1Lookup::Fresh(value, refresh_due) => {
                        // Also a hit: `stats()` adds L1 hits to `hits`.
                        Counters::bump(&counters.l1_hits);
                        if refresh_due {
                            self.refresh_in_background(key, &full, opts, loader);
                        }
                        return Ok(Loaded {
                            value,
                            source: Source::L1,
                        });
                    }
                    L1Lookup::Throttled(value) if opts.fail_safe.is_some() => {
                        Counters::bump(&counters.stale_served);
                        return Ok(Loaded {
                            value,
                            source: Source::Stale,
                        });
                    }
                    L1Lookup::Stale(value, stale_until, tags) => {
                        fallback = Some(Fallback {
                            value,
                            stale_until,
                            tags,
                        })
                    }
                    L1Lookup::Throttled(_) => {}
                    L1Lookup::Miss => {}
                }
            }
            let (running, generation) = self.inner.flights.get::<T, E>(key);
            if let Some(flight) = running {
                Counters::bump(&counters.coalesced_waits);
                return self.await_flight(key, flight, fallback, opts).await;
            }
            let snapshot = self.inval_snapshot();
            match self.read_l2::<T>(&full).await {
                Ok(L2Read::Fresh(value, meta)) => {
                    Counters::bump(&counters.l2_hits);
                    Counters::bump(&counters.hits);
                    if use_l1 {
                        let times = meta.l1_times(Some(opts), self.inner.config.l1_max_ttl);
                        self.l1_put(
                            key,
                            value.clone(),
                            &times,
                            meta.tags.clone(),
                            Some(snapshot),
                        );
                    }
                    if meta.refresh_due(opts) {
                        self.refresh_in_background(key, &full, opts, loader);
                    }
                    return Ok(Loaded {
                        value,
                        source: Source::L2,
                    });
                }
                Ok(L2Read::Stale(value, meta)) if opts.fail_safe.is_some() => {
                    let stale_until = meta.physical_left.map(|d| Instant::now() + d);
                    fallback = Some(Fallback {
                        value,
                        stale_until,
                        tags: meta.tags,
                    });
                }
                Ok(_) => {}
                Err(e) => self.swallow("get_or_load read", &e),
            }
            // A flight that finished after our read may have filled the
            // cache: read again (a few times at most) rather than load again.
            let seen = (attempt < MAX_REREADS).then_some(generation);
            match self.start_flight(key, full.clone(), opts, loader, snapshot, seen) {
                Joined::Existing(f) => {
                    Counters::bump(&counters.coalesced_waits);
                    break f;
                }
                Joined::Started(f) => break f,
                Joined::Finished(back) => {
                    loader = back;
                    attempt += 1;
                }
            }
        };
        Counters::bump(&counters.misses);
        self.await_flight(key, flight, fallback, opts).await
    }

    /// Waits for a flight, answering with the fallback on a soft timeout or
    /// a failure.
    async fn await_flight<T: Cacheable, E: Send + Sync + 'static>(
        &self,
        key: &str,
        flight: FlightFuture<T, E>,
        fallback: Option<Fallback<T>>,
        opts: &EntryOptions,
    ) -> Result<Loaded<T>, LoadError<E>> {
        let outcome = match (&fallback, opts.soft_timeout) {
            (Some(_), Some(soft)) => match tokio::time::timeout(soft, flight).await {
                Ok(outcome) => outcome,
                Err(_) => {
                    // The load goes on in its task and refreshes the cache.
                    return Ok(self.serve_stale(key, fallback, opts, false));
                }
            },
            _ => flight.await,
        };
        match outcome {
            Ok(value) => Ok(Loaded {
                value,
                source: Source::Loader,
            }),
            Err(e) if fallback.is_some() && opts.fail_safe.is_some() => {
                tracing::warn!(key, error = %LoadErrorKind(&e), "load failed, serving stale value");
                Ok(self.serve_stale(key, fallback, opts, true))
            }
            Err(e) => Err(e),
        }
    }

    /// Counts and returns a stale value. After a failure, the value is put
    /// back into L1 as fresh for the throttle period, so the next calls do
    /// not hammer the failing loader.
    fn serve_stale<T: Cacheable>(
        &self,
        key: &str,
        fallback: Option<Fallback<T>>,
        opts: &EntryOptions,
        throttle: bool,
    ) -> Loaded<T> {
        let Fallback {
            value,
            stale_until,
            tags,
        } = fallback.expect("fallback checked by caller");
        Counters::bump(&self.inner.counters.stale_served);
        if throttle && opts.l1 {
            let now = Instant::now();
            let stale_for = stale_until.map(|t| t.saturating_duration_since(now));
            // The throttle never stretches the fail-safe window.
            let fresh_for = stale_for.map_or(opts.fail_safe_throttle, |left| {
                left.min(opts.fail_safe_throttle)
            });
            let times = L1Times {
                fresh_for,
                stale_for,
                refresh_in: None,
                throttled: true,
            };
            self.l1_put(key, value.clone(), &times, tags, None);
        }
        Loaded {
            value,
            source: Source::Stale,
        }
    }

    /// Starts (or joins) the flight for `key`; see
    /// [`Flights::join_or_start`](crate::flight::Flights::join_or_start) for `seen`.
    fn start_flight<T, E, F, Fut>(
        &self,
        key: &str,
        full: String,
        opts: &EntryOptions,
        loader: F,
        snapshot: u64,
        seen: Option<u64>,
    ) -> Joined<T, E, F>
    where
        T: Cacheable,
        E: Send + Sync + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        self.inner
            .flights
            .join_or_start(key, seen, loader, |id, loader| {
                let guard = FlightGuard {
                    cache: self.clone(),
                    key: key.to_owned(),
                    id,
                };
                let opts = opts.clone();
                let task = tokio::spawn(async move {
                    let result = guard
                        .cache
                        .load_and_fill(&guard.key, &full, &opts, loader, snapshot)
                        .await;
                    drop(guard);
                    result
                });
                async move { task.await.unwrap_or(Err(LoadError::Panicked)) }
                    .boxed()
                    .shared()
            })
    }

    /// Starts a background refresh unless a load for the key is running.
    fn refresh_in_background<T, E, F, Fut>(
        &self,
        key: &str,
        full: &str,
        opts: &EntryOptions,
        loader: F,
    ) where
        T: Cacheable,
        E: Send + Sync + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        if self.inner.flights.contains(key) {
            return;
        }
        Counters::bump(&self.inner.counters.eager_refreshes);
        let snapshot = self.inval_snapshot();
        let _ =
            self.start_flight::<T, E, F, Fut>(key, full.to_owned(), opts, loader, snapshot, None);
    }
}

/// Runs a loader with no caching at all (cache disabled, or bad key).
async fn load_direct<T, E, F, Fut>(
    loader: F,
    hard_timeout: Option<Duration>,
    counters: &crate::stats::Counters,
) -> Result<Loaded<T>, LoadError<E>>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    Counters::bump(&counters.loads);
    let outcome = match hard_timeout {
        Some(limit) => tokio::time::timeout(limit, loader())
            .await
            .map_err(|_| LoadError::Timeout(limit))?,
        None => loader().await,
    };
    outcome
        .map(|value| Loaded {
            value,
            source: Source::Loader,
        })
        .map_err(|e| {
            Counters::bump(&counters.load_failures);
            LoadError::Loader(Arc::new(e))
        })
}

/// Displays a `LoadError` without requiring `E: Display`.
struct LoadErrorKind<'a, E>(&'a LoadError<E>);

impl<E> std::fmt::Display for LoadErrorKind<'_, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            LoadError::Loader(_) => f.write_str("loader returned an error"),
            LoadError::Timeout(d) => write!(f, "loader timed out after {d:?}"),
            LoadError::Panicked => f.write_str("loader panicked"),
        }
    }
}
