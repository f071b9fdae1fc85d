//! `get_or_load_many`: many keys, one L1 pass, one Redis read for the rest,
//! one loader call for what is still missing.
//!
//! Each key the batch loads is registered as a flight of its own (see
//! `flight.rs`), so single-key `get_or_load` calls for those keys join the
//! batch, and the batch joins single-key loads already running instead of
//! loading those keys again. The batch's flights share one spawned task:
//! it takes every lease concurrently (the multiplexed connection sends them
//! in one write), calls the loader once with the keys that need loading, and
//! fills each value with the same checked fill as a single key, so a write
//! or delete during the load is never overwritten by the loaded value.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};

use super::flight::{FlightFuture, FlightGuard, Joined};
use super::loader::Loader;
use crate::coherence::{L1Lookup, RedisRead};
use crate::error::log_skipped;
use crate::options::{EntryOptions, LoadError};
use crate::stats::Keyed;
use crate::telemetry::Tier;
use crate::tier::l1::L1Times;
use crate::time::Now;
use crate::value::Cacheable;

/// What the batch loader returned, shared by the batch's flights.
type BatchResult<T, E> = Result<Arc<HashMap<String, T>>, LoadError<E>>;

/// One key the batch task loads.
struct Job {
    key: String,
    /// `None` for a key that cannot be cached (invalid, or no Redis).
    full: Option<String>,
    /// Clock reading of the key before its Redis read.
    reading: u64,
    /// Removes the key's flight when the task ends.
    _guard: Option<FlightGuard>,
}

/// Where a key's value comes from once the fast paths missed.
enum Pending<T, E> {
    /// A flight: another caller's load, or this batch's own.
    Flight(FlightFuture<T, E>),
    /// This batch's load, for a key that has no flight (uncacheable).
    Direct,
}

impl Loader {
    /// `Cache::get_or_load_many`: values for `keys`, in order, `None` where
    /// the loader returned nothing.
    pub(crate) async fn get_or_load_many<T, E, F, Fut>(
        self: &Arc<Self>,
        keys: &[String],
        opts: &EntryOptions,
        loader: F,
    ) -> Result<Vec<Option<T>>, LoadError<E>>
    where
        T: Cacheable,
        E: Send + Sync + 'static,
        F: FnOnce(Vec<String>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<HashMap<String, T>, E>> + Send + 'static,
    {
        let counters = self.remote.counters();
        let use_l1 = opts.l1 && self.coherence.has_l1();
        let caching = self.remote.backend().is_some();
        let mut out: Vec<Option<T>> = (0..keys.len()).map(|_| None).collect();
        // Stale values kept for fail-safe, by position.
        let mut fallback: HashMap<usize, T> = HashMap::new();

        // 1. L1, no I/O.
        let mut todo: Vec<usize> = Vec::with_capacity(keys.len());
        let now = Now::recent();
        for (i, key) in keys.iter().enumerate() {
            if use_l1 {
                match self.coherence.lookup::<T>(key, now) {
                    L1Lookup::Fresh(value, _) => {
                        counters.hit(Tier::L1, key);
                        out[i] = Some(value);
                        continue;
                    }
                    L1Lookup::Stale(value, _, _) | L1Lookup::Throttled(value) => {
                        fallback.insert(i, value);
                    }
                    L1Lookup::Miss => {}
                }
            }
            todo.push(i);
        }

        // 2. One Redis read for the keys L1 did not answer.
        let mut fulls: HashMap<usize, String> = HashMap::new();
        let mut readings: HashMap<usize, u64> = HashMap::new();
        if caching {
            for &i in &todo {
                match self.keys.full(&keys[i]) {
                    Ok(full) => {
                        readings.insert(i, self.coherence.reading(&keys[i]));
                        fulls.insert(i, full);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "uncacheable key, loading without cache");
                    }
                }
            }
        }
        let readable: Vec<usize> = todo
            .iter()
            .copied()
            .filter(|i| fulls.contains_key(i))
            .collect();
        if !readable.is_empty() {
            let names: Vec<&str> = readable.iter().map(|i| fulls[i].as_str()).collect();
            match self.remote.call(|b| b.mget(&names)).await {
                Ok(raw) => {
                    for (&i, bytes) in readable.iter().zip(raw) {
                        let full = &fulls[&i];
                        let Some(bytes) =
                            bytes.filter(|_| !self.coherence.has_pending_delete(full))
                        else {
                            continue;
                        };
                        let read = match self.coherence.judge_plain::<T>(bytes, None) {
                            Ok(read) => Ok(read),
                            Err(rest) => self.coherence.judge_rest(full, rest, None).await,
                        };
                        match read {
                            Ok(RedisRead::Fresh(value, meta)) => {
                                counters.hit(Tier::L2, &keys[i]);
                                if use_l1 {
                                    let times =
                                        L1Times::of(&meta, Some(opts), self.config.l1_max_ttl);
                                    self.coherence.put(
                                        &keys[i],
                                        value.clone(),
                                        &times,
                                        meta.tags,
                                        Some(readings[&i]),
                                    );
                                }
                                out[i] = Some(value);
                            }
                            Ok(RedisRead::Stale(value, _)) => {
                                fallback.insert(i, value);
                            }
                            Ok(RedisRead::Missing) => {}
                            Err(e) => log_skipped("get_or_load_many judge", &e),
                        }
                    }
                }
                Err(e) => log_skipped("get_or_load_many read", &e),
            }
        }
        todo.retain(|&i| out[i].is_none());
        if todo.is_empty() {
            return Ok(out);
        }

        // 3. Join running flights; register this batch's flights for the rest.
        let (send_jobs, jobs) = tokio::sync::oneshot::channel::<Vec<Job>>();
        let batch: Shared<BoxFuture<'static, BatchResult<T, E>>> = {
            let this = Arc::clone(self);
            let opts = opts.clone();
            let (answer, answered) = futures::channel::oneshot::channel();
            tokio::spawn(async move {
                let jobs = jobs.await.unwrap_or_default();
                this.load_batch(jobs, &opts, loader, answer).await;
            });
            // A dropped sender is a task that panicked or was cancelled.
            async move { answered.await.unwrap_or(Err(LoadError::Panicked)) }
                .boxed()
                .shared()
        };
        let mut pending: Vec<(usize, Pending<T, E>)> = Vec::with_capacity(todo.len());
        let mut batch_jobs: Vec<Job> = Vec::new();
        for &i in &todo {
            let key = &keys[i];
            let Some(full) = fulls.get(&i) else {
                pending.push((i, Pending::Direct));
                batch_jobs.push(Job {
                    key: key.clone(),
                    full: None,
                    reading: 0,
                    _guard: None,
                });
                continue;
            };
            counters.miss(key);
            let reading = readings[&i];
            let now = self.coherence.flight_reading(key, &opts.tags);
            let mut id = None;
            let joined = self
                .flights
                .join_or_start(key, now, None, (), |flight_id, ()| {
                    id = Some(flight_id);
                    let batch = batch.clone();
                    let key = key.clone();
                    async move {
                        let values = batch.await?;
                        values.get(&key).cloned().ok_or(LoadError::NotLoaded)
                    }
                    .boxed()
                    .shared()
                });
            match joined {
                Joined::Existing(flight) => {
                    counters.keyed(Keyed::CoalescedWaits, key);
                    pending.push((i, Pending::Flight(flight)));
                }
                Joined::Started(flight) => {
                    batch_jobs.push(Job {
                        key: key.clone(),
                        full: Some(full.clone()),
                        reading,
                        _guard: id.map(|id| FlightGuard {
                            flights: Arc::clone(&self.flights),
                            key: key.clone(),
                            id,
                        }),
                    });
                    pending.push((i, Pending::Flight(flight)));
                }
                Joined::Finished(()) => unreachable!("no generation was passed"),
            }
        }
        // Without jobs the task answers at once, and the loader is not called.
        let _ = send_jobs.send(batch_jobs);

        // 4. Wait for every key; the batch's own flights resolve together.
        for (i, source) in pending {
            let outcome = match source {
                Pending::Flight(flight) => flight.await,
                Pending::Direct => batch
                    .clone()
                    .await
                    .and_then(|values| values.get(&keys[i]).cloned().ok_or(LoadError::NotLoaded)),
            };
            match outcome {
                Ok(value) => out[i] = Some(value),
                Err(LoadError::NotLoaded) => {}
                Err(e) => match fallback.remove(&i) {
                    Some(stale) if opts.fail_safe.is_some() => {
                        counters.keyed(Keyed::StaleServed, &keys[i]);
                        out[i] = Some(stale);
                    }
                    _ => return Err(e),
                },
            }
        }
        Ok(out)
    }

    /// The batch task: leases, one loader call, checked fills. The result
    /// goes to `answer`: after the fills, or before them with
    /// [`EntryOptions::background_fill`]; the batch's flights stay
    /// registered until the fills are done.
    async fn load_batch<T, E, F, Fut>(
        &self,
        jobs: Vec<Job>,
        opts: &EntryOptions,
        loader: F,
        answer: futures::channel::oneshot::Sender<BatchResult<T, E>>,
    ) where
        T: Cacheable,
        E: Send + Sync + 'static,
        F: FnOnce(Vec<String>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<HashMap<String, T>, E>> + Send + 'static,
    {
        if jobs.is_empty() {
            let _ = answer.send(Ok(Arc::new(HashMap::new())));
            return;
        }
        let counters = self.remote.counters();
        let token = format!("{:016x}", rand::random::<u64>());
        // Leases for every cacheable key, sent concurrently.
        let leases = futures::future::join_all(jobs.iter().map(|job| async {
            match &job.full {
                Some(_) if opts.skip_lease => Some((None, None)),
                Some(full) => Some(self.take_lease(full, &token, opts.lease).await),
                None => None,
            }
        }))
        .await;
        let tags = if opts.tags.is_empty() {
            Some(Vec::new())
        } else {
            self.coherence.tag_versions(&opts.tags).await.ok()
        };
        for job in &jobs {
            counters.keyed(Keyed::Loads, &job.key);
        }
        let wanted: Vec<String> = jobs.iter().map(|job| job.key.clone()).collect();
        let outcome = match opts.hard_timeout {
            Some(limit) => match tokio::time::timeout(limit, loader(wanted)).await {
                Ok(outcome) => outcome.map_err(|e| LoadError::Loader(Arc::new(e))),
                Err(_) => Err(LoadError::Timeout(limit)),
            },
            None => loader(wanted)
                .await
                .map_err(|e| LoadError::Loader(Arc::new(e))),
        };
        match outcome {
            Ok(values) => {
                let values = Arc::new(values);
                // Callers that stopped waiting dropped their receivers: the
                // fills go on regardless, so `send` errors are ignored.
                let answer = if opts.background_fill {
                    let _ = answer.send(Ok(Arc::clone(&values)));
                    None
                } else {
                    Some(answer)
                };
                futures::future::join_all(jobs.iter().zip(&leases).map(|(job, lease)| {
                    let (Some(full), Some((have_lease, observed))) = (&job.full, lease) else {
                        return async {}.boxed();
                    };
                    let token = (*have_lease == Some(true)).then_some(token.as_str());
                    match values.get(&job.key) {
                        Some(value) => {
                            let lease_held = token.map(|t| (t, observed));
                            self.fill(
                                &job.key,
                                full,
                                value,
                                opts,
                                tags.clone(),
                                lease_held,
                                job.reading,
                            )
                            .boxed()
                        }
                        None => self.release_lease(full, token).boxed(),
                    }
                }))
                .await;
                drop(jobs);
                if let Some(answer) = answer {
                    let _ = answer.send(Ok(values));
                }
            }
            Err(e) => {
                futures::future::join_all(jobs.iter().zip(&leases).map(|(job, lease)| {
                    counters.keyed(Keyed::LoadFailures, &job.key);
                    let token = match lease {
                        Some((Some(true), _)) => Some(token.as_str()),
                        _ => None,
                    };
                    async move {
                        if let Some(full) = &job.full {
                            self.release_lease(full, token).await;
                        }
                    }
                }))
                .await;
                let _ = answer.send(Err(e));
            }
        }
    }
}
