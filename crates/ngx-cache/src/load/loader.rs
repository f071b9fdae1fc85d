//! The [`Loader`] component and `get_or_load`: L1, then Redis, then the
//! loader, with single-flight, fail-safe, soft and hard timeouts, and eager
//! refresh. The lease and the checked fill are in `lease.rs`.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::channel::oneshot;

use super::flight::{FlightFuture, FlightGuard, Flights, Joined};
use crate::coherence::{Coherence, L1Lookup, RedisRead};
use crate::config::CacheConfig;
use crate::error::log_skipped;
use crate::key::KeySpace;
use crate::options::{EntryOptions, LoadError, Loaded, Source};
use crate::stats::Counters;
use crate::stats::Keyed;
use crate::telemetry::{Count, Tier};
use crate::tier::l1::L1Times;
use crate::tier::remote::Remote;
use crate::time::{Instant, Now};
use crate::value::Cacheable;

/// Loads values into both tiers: single-flight per key in this process, a
/// lease in Redis across instances, and checked fills.
#[derive(Debug)]
pub(crate) struct Loader {
    pub(super) config: CacheConfig,
    pub(super) keys: KeySpace,
    pub(super) remote: Arc<Remote>,
    pub(super) coherence: Arc<Coherence>,
    /// Loads in flight in this process, by key.
    pub(super) flights: Arc<Flights>,
}

/// How often a caller reads the cache again because a flight for its key
/// finished during its read, before it loads regardless.
const MAX_REREADS: u32 = 3;

/// A stale fallback found on the way.
struct Fallback<T> {
    value: T,
    stale_until: Option<Instant>,
    tags: Vec<(String, u64)>,
}

impl Loader {
    /// A loader over these tiers.
    pub(crate) fn new(config: CacheConfig, remote: Arc<Remote>, coherence: Arc<Coherence>) -> Self {
        Self {
            keys: config.key_space(),
            config,
            remote,
            coherence,
            flights: Arc::default(),
        }
    }

    /// `Cache::get_or_load_entry`: the value for `key` and where it came from.
    pub(crate) async fn get_or_load_entry<T, E, F, Fut>(
        self: &Arc<Self>,
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
        let counters = self.remote.counters();
        let caching = self.remote.backend().is_some();
        let use_l1 = caching && opts.l1 && self.coherence.has_l1();
        // The usual L1 hit is answered before the full key is built (an
        // allocation and a copy): L1 holds entries only under valid keys.
        let mut looked_up = None;
        if use_l1 {
            match self.coherence.lookup::<T>(key, Now::recent()) {
                L1Lookup::Fresh(value, false) => {
                    counters.hit(Tier::L1, key);
                    return Ok(Loaded {
                        value,
                        source: Source::L1,
                    });
                }
                other => looked_up = Some(other),
            }
        }
        let full = match self.keys.full(key) {
            Ok(full) if caching => full,
            Ok(_) => return load_direct(key, loader, opts.hard_timeout, counters).await,
            Err(e) => {
                tracing::warn!(error = %e, "uncacheable key, loading without cache");
                return load_direct(key, loader, opts.hard_timeout, counters).await;
            }
        };
        let mut fallback = None;
        let mut loader = loader;
        let mut attempt = 0;
        let flight = loop {
            if use_l1 {
                let found = looked_up
                    .take()
                    .unwrap_or_else(|| self.coherence.lookup::<T>(key, Now::recent()));
                match found {
                    L1Lookup::Fresh(value, refresh_due) => {
                        counters.hit(Tier::L1, key);
                        if refresh_due {
                            self.refresh_in_background(key, &full, opts, loader);
                        }
                        return Ok(Loaded {
                            value,
                            source: Source::L1,
                        });
                    }
                    L1Lookup::Throttled(value) if opts.fail_safe.is_some() => {
                        counters.keyed(Keyed::StaleServed, key);
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
            let (running, generation) = self
                .flights
                .get::<T, E>(key, self.coherence.flight_reading(key, &opts.tags));
            if let Some(flight) = running {
                counters.keyed(Keyed::CoalescedWaits, key);
                return self.await_flight(key, flight, fallback, opts).await;
            }
            let reading = self.coherence.reading(key);
            match self.coherence.read::<T>(&full).await {
                Ok(RedisRead::Fresh(value, meta)) => {
                    counters.hit(Tier::L2, key);
                    if use_l1 {
                        let times = L1Times::of(&meta, Some(opts), self.config.l1_max_ttl);
                        self.coherence.put(
                            key,
                            value.clone(),
                            &times,
                            meta.tags.clone(),
                            Some(reading),
                        );
                    }
                    if meta.refresh_due(opts.eager_refresh) {
                        self.refresh_in_background(key, &full, opts, loader);
                    }
                    return Ok(Loaded {
                        value,
                        source: Source::L2,
                    });
                }
                Ok(RedisRead::Stale(value, meta)) if opts.fail_safe.is_some() => {
                    let stale_until = meta.physical_left.map(|d| Instant::now() + d);
                    fallback = Some(Fallback {
                        value,
                        stale_until,
                        tags: meta.tags,
                    });
                }
                Ok(_) => {}
                Err(e) => log_skipped("get_or_load read", &e),
            }
            // A flight that finished after our read may have filled the
            // cache: read again (a few times at most) rather than load again.
            let seen = (attempt < MAX_REREADS).then_some(generation);
            match self.start_flight(key, full.clone(), opts, loader, reading, seen) {
                Joined::Existing(f) => {
                    counters.keyed(Keyed::CoalescedWaits, key);
                    break f;
                }
                Joined::Started(f) => break f,
                Joined::Finished(back) => {
                    loader = back;
                    attempt += 1;
                }
            }
        };
        counters.miss(key);
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
        self.remote.counters().keyed(Keyed::StaleServed, key);
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
                // Unknown here: the tier's minimum weight.
                bytes: 0,
            };
            self.coherence.put(key, value.clone(), &times, tags, None);
        }
        Loaded {
            value,
            source: Source::Stale,
        }
    }

    /// Starts (or joins) the flight for `key`; see
    /// [`Flights::join_or_start`] for `seen`. `reading` is the clock reading
    /// taken before the caller's Redis read, which the fill checks.
    fn start_flight<T, E, F, Fut>(
        self: &Arc<Self>,
        key: &str,
        full: String,
        opts: &EntryOptions,
        loader: F,
        reading: u64,
        seen: Option<u64>,
    ) -> Joined<T, E, F>
    where
        T: Cacheable,
        E: Send + Sync + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        let now = self.coherence.flight_reading(key, &opts.tags);
        self.flights
            .join_or_start(key, now, seen, loader, |id, loader| {
                let guard = FlightGuard {
                    flights: Arc::clone(&self.flights),
                    key: key.to_owned(),
                    id,
                };
                let this = Arc::clone(self);
                let opts = opts.clone();
                let (answer, answered) = oneshot::channel();
                // The task, not the callers, drives the load; it answers
                // through the channel (before or after the fill, as the
                // options say) and leaves the map when the fill is done.
                tokio::spawn(async move {
                    this.load_and_fill(&guard.key, &full, &opts, loader, reading, answer)
                        .await;
                    drop(guard);
                });
                // A dropped sender is a task that panicked or was cancelled.
                async move { answered.await.unwrap_or(Err(LoadError::Panicked)) }
                    .boxed()
                    .shared()
            })
    }

    /// Starts a background refresh unless a load for the key is running.
    fn refresh_in_background<T, E, F, Fut>(
        self: &Arc<Self>,
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
        let reading = self.coherence.reading(key);
        if self
            .flights
            .contains(key, self.coherence.flight_reading(key, &opts.tags))
        {
            return;
        }
        self.remote.counters().inc(Count::EagerRefreshes, 1);
        let _ =
            self.start_flight::<T, E, F, Fut>(key, full.to_owned(), opts, loader, reading, None);
    }
}

/// Runs a loader with no caching at all (cache disabled, or bad key).
async fn load_direct<T, E, F, Fut>(
    key: &str,
    loader: F,
    hard_timeout: Option<Duration>,
    counters: &Counters,
) -> Result<Loaded<T>, LoadError<E>>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    counters.keyed(Keyed::Loads, key);
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
            counters.keyed(Keyed::LoadFailures, key);
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
            LoadError::NotLoaded => f.write_str("the batch loader returned no value"),
        }
    }
}
