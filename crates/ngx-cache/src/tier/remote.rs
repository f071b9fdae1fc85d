//! Redis as a tier: the backend behind the circuit breaker, with the
//! statistics each call updates, and entries read and decoded from it.
//! Corrupt entries are evicted here and read as a miss.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use tokio::sync::watch;

use crate::backend::Backend;
use crate::breaker::{BreakerConfig, CircuitBreaker};
use crate::error::Error;
use crate::stats::Counters;
use crate::telemetry::Count;
use crate::value::codec::{self, Limits};
use crate::value::entry::{self, Meta};
use crate::value::envelope;

/// How often the background prober checks whether the breaker is due for
/// a probe; the breaker closes at most this long after its open period.
const PROBE_EVERY: Duration = Duration::from_millis(100);

/// Redis behind the breaker. `backend` is `None` when the cache is disabled:
/// every call then fails with [`Error::Disabled`] without I/O.
#[derive(Debug)]
pub(crate) struct Remote {
    backend: Option<Backend>,
    breaker: CircuitBreaker,
    counters: Arc<Counters>,
    limits: Limits,
}

/// A decoded entry as Redis holds it, before tag versions are checked.
#[derive(Debug)]
pub(crate) struct Stored<T> {
    pub(crate) value: T,
    pub(crate) meta: Meta,
}

/// Stored bytes [`Remote::decode_plain`] did not make a value of.
pub(crate) enum NotPlain {
    /// An envelope's bytes, handed back.
    Envelope(Vec<u8>),
    /// Plain bytes that do not decode as the value.
    Corrupt(Error),
}

impl Remote {
    pub(crate) fn new(
        backend: Option<Backend>,
        breaker: BreakerConfig,
        counters: Arc<Counters>,
        limits: Limits,
    ) -> Self {
        Self {
            backend,
            breaker: CircuitBreaker::new(breaker),
            counters,
            limits,
        }
    }

    /// The backend, for what bypasses the breaker (health checks, the
    /// subscription); `None` when the cache is disabled.
    pub(crate) fn backend(&self) -> Option<&Backend> {
        self.backend.as_ref()
    }

    /// The circuit breaker guarding every call.
    pub(crate) fn breaker(&self) -> &CircuitBreaker {
        &self.breaker
    }

    /// The statistics this tier updates.
    pub(crate) fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Runs one backend call through the circuit breaker. Transient failures
    /// count toward opening it; every failure is counted in `errors`.
    pub(crate) async fn call<'a, T, F, Fut>(&'a self, op: F) -> Result<T, Error>
    where
        F: FnOnce(&'a Backend) -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        let backend = self.backend.as_ref().ok_or(Error::Disabled)?;
        let Some(permit) = self.breaker.acquire() else {
            self.counters.inc(Count::CircuitRejections, 1);
            return Err(Error::CircuitOpen);
        };
        if permit.is_probe() {
            // The probe decides whether the breaker closes: give it a
            // connection if Redis is back, rather than failing on a
            // reconnect task still in back-off. Boxed: the wait (a cluster
            // topology refresh) is a future of kilobytes that every call's
            // state would otherwise carry, and it runs only on probes.
            Box::pin(backend.await_connection()).await;
        }
        match op(backend).await {
            Ok(v) => {
                permit.success();
                Ok(v)
            }
            Err(e) => {
                // One cluster shard down while the others answer costs
                // misses on its slots, not an open breaker for every shard.
                permit.failure(e.is_transient() && !backend.partial_failure());
                self.counters.error(e.kind());
                Err(e)
            }
        }
    }

    /// Probes Redis when the breaker is due for a probe: a `PING` through
    /// the half-open permit, which closes the breaker on success and opens
    /// it for another period on failure. Counts nothing in the statistics.
    pub(crate) async fn probe(&self) {
        let Some(backend) = self.backend.as_ref() else {
            return;
        };
        if !self.breaker.probe_due() {
            return;
        }
        let Some(permit) = self.breaker.acquire() else {
            return;
        };
        if permit.is_probe() {
            backend.await_connection().await;
        }
        match backend.ping().await {
            Ok(()) => permit.success(),
            Err(e) => permit.failure(e.is_transient()),
        }
    }

    /// Starts the task that probes Redis in the background once the
    /// breaker's open period is over, so the breaker closes after an
    /// outage even when no call reaches it (L1 answering every read, say).
    /// The task holds this component and stops with `stopped`.
    pub(crate) fn spawn_prober(self: &Arc<Self>, mut stopped: watch::Receiver<()>) {
        if self.backend.is_none() {
            return;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let remote = Arc::clone(self);
        handle.spawn(async move {
            let mut tick = tokio::time::interval(PROBE_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => remote.probe().await,
                    _ = stopped.changed() => return,
                }
            }
        });
    }

    /// Reads the bytes under `full`, with the time Redis keeps them when
    /// `with_pttl` (one round trip either way).
    pub(crate) async fn read(
        &self,
        full: &str,
        with_pttl: bool,
    ) -> Result<Option<(Vec<u8>, Option<Duration>)>, Error> {
        let (bytes, pttl) = if with_pttl {
            self.call(|b| b.get_with_pttl(full)).await?
        } else {
            (self.call(|b| b.get(full)).await?, None)
        };
        Ok(bytes.map(|b| (b, pttl)))
    }

    /// Decodes bytes read under `full`; on failure deletes the key and
    /// counts the error. Never panics.
    pub(crate) async fn decode_or_evict<T: DeserializeOwned>(
        &self,
        full: &str,
        bytes: &[u8],
    ) -> Option<T> {
        match codec::decode(bytes, self.limits) {
            Ok(v) => Some(v),
            Err(e) => {
                self.evict_corrupt(full, &e).await;
                None
            }
        }
    }

    /// Deletes the value under `full`, which failed to decode with `error`,
    /// and counts it.
    pub(crate) async fn evict_corrupt(&self, full: &str, error: &Error) {
        self.counters.error("decode");
        self.counters.inc(Count::CorruptEvicted, 1);
        tracing::warn!(key = full, error = %error, "evicting undecodable cache value");
        let keys = [full.to_owned()];
        let _ = self.call(|b| b.unlink(&keys)).await;
    }

    /// Decodes bytes that hold a plain value (no envelope), taking them
    /// over and without I/O; an envelope is handed back for
    /// [`decode_entry`](Self::decode_entry).
    pub(crate) fn decode_plain<T: DeserializeOwned>(&self, bytes: Vec<u8>) -> Result<T, NotPlain> {
        if envelope::is_envelope(&bytes) {
            return Err(NotPlain::Envelope(bytes));
        }
        codec::decode_owned(bytes, self.limits).map_err(NotPlain::Corrupt)
    }

    /// Opens and decodes stored bytes (plain or envelope). Corrupt bytes are
    /// evicted and read as `None`.
    pub(crate) async fn decode_entry<T: DeserializeOwned>(
        &self,
        full: &str,
        bytes: &[u8],
        physical_left: Option<Duration>,
    ) -> Option<Stored<T>> {
        let opened = entry::open(bytes);
        let value = self.decode_or_evict(full, opened.payload).await?;
        let mut meta = match opened.envelope {
            None => Meta::plain(physical_left),
            Some(env) => {
                Meta::of_envelope(env.logical_expiry_ms, env.ttl_ms, env.tags, physical_left)
            }
        };
        meta.bytes = bytes.len() as u64;
        Some(Stored { value, meta })
    }
}
