//! Keeping L1 coherent: the subscriber task, applying and publishing
//! invalidations, and the L1 read/fill helpers that respect them.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::StreamExt;
use std::time::Instant;

use crate::Cache;
use crate::bus::{Bus, Invalidation, Verdict};
use crate::cache::Inner;
use crate::l1::L1Entry;
use crate::stats::Counters;

/// What an L1 lookup found.
pub(crate) enum L1Lookup<T> {
    /// A fresh value; `true` when an eager refresh is due.
    Fresh(T, bool),
    /// Not fresh, but usable as a fail-safe fallback (with its tags).
    Stale(T, Option<Instant>, Vec<(String, u64)>),
    /// A stale value inside its fail-safe throttle period: serve it as
    /// stale without trying the loader.
    Throttled(T),
    Miss,
}

/// Lifetimes of a value being put into L1.
#[derive(Debug, Clone, Default)]
pub(crate) struct L1Times {
    pub(crate) fresh_for: Duration,
    pub(crate) stale_for: Option<Duration>,
    pub(crate) refresh_in: Option<Duration>,
    /// The value is a fail-safe answer held for the throttle period.
    pub(crate) throttled: bool,
}

impl Cache {
    /// Looks `key` up in L1. Never does I/O.
    pub(crate) fn l1_lookup<T: Clone + 'static>(&self, key: &str, now: Instant) -> L1Lookup<T> {
        let inner = &*self.inner;
        let Some(l1) = &inner.l1 else {
            return L1Lookup::Miss;
        };
        let Some(entry) = l1.store.get(key) else {
            return L1Lookup::Miss;
        };
        let Some(value) = entry.downcast::<T>() else {
            return L1Lookup::Miss;
        };
        if entry.throttled {
            // Already a stale answer: coherence cannot make it worse, and a
            // lost channel (Redis down) is when the throttle matters most.
            // Deletes and clears still remove it; tag invalidations end it.
            if !inner.tags.none_invalidated(&entry.tags) {
                return L1Lookup::Miss;
            }
            if now < entry.fresh_until {
                return L1Lookup::Throttled(value);
            }
            if entry.usable_stale(now) {
                return L1Lookup::Stale(value, entry.stale_until, entry.tags.to_vec());
            }
            return L1Lookup::Miss;
        }
        let coherent = entry.epoch == l1.epoch()
            && inner.bus.as_ref().is_none_or(Bus::is_subscribed)
            && inner.tags.all_current(&entry.tags);
        if coherent && now < entry.fresh_until {
            let refresh_due = entry.refresh_at.is_some_and(|t| now >= t);
            return L1Lookup::Fresh(value, refresh_due);
        }
        if entry.usable_stale(now) && inner.tags.none_invalidated(&entry.tags) {
            return L1Lookup::Stale(value, entry.stale_until, entry.tags.to_vec());
        }
        L1Lookup::Miss
    }

    /// Puts a value into L1, unless an invalidation was applied since
    /// `snapshot` (then the value may be older than what invalidated it).
    pub(crate) fn l1_put<T: Send + Sync + 'static>(
        &self,
        key: &str,
        value: T,
        times: &L1Times,
        tags: Vec<(String, u64)>,
        snapshot: Option<u64>,
    ) {
        let inner = &*self.inner;
        let Some(l1) = &inner.l1 else { return };
        if snapshot.is_some_and(|s| s != inner.inval_seq.load(Ordering::Acquire)) {
            return;
        }
        let now = Instant::now();
        let fresh_for = times.fresh_for.min(l1.max_ttl);
        if fresh_for.is_zero() && times.stale_for.is_none() {
            return;
        }
        l1.store.insert(
            key.to_owned(),
            Arc::new(L1Entry {
                value,
                fresh_until: now + fresh_for,
                stale_until: times.stale_for.map(|d| now + d),
                refresh_at: times.refresh_in.map(|d| now + d),
                epoch: l1.epoch(),
                tags: tags.into_boxed_slice(),
                throttled: times.throttled,
            }),
        );
    }

    /// The invalidation counter, read before a fill's Redis read or load.
    pub(crate) fn inval_snapshot(&self) -> u64 {
        self.inner.inval_seq.load(Ordering::Acquire)
    }

    /// Records an invalidation that may touch any key (tag, clear): fills
    /// in progress are not put into L1, and no new caller joins a load that
    /// began before it.
    pub(crate) fn note_invalidation(&self) {
        self.inner.inval_seq.fetch_add(1, Ordering::AcqRel);
        self.inner.flights.detach_all();
    }

    /// Drops `key` from this instance's L1 and detaches its load in flight,
    /// so a read after a write never joins a load that began before it.
    pub(crate) fn l1_evict(&self, key: &str) {
        self.inner.inval_seq.fetch_add(1, Ordering::AcqRel);
        self.inner.flights.detach(key);
        if let Some(l1) = &self.inner.l1 {
            l1.store.remove(key);
        }
    }

    /// Tells the other instances; failures are logged, never returned.
    /// Returns once the message was sent (or failed), through the in-order
    /// publisher task when it runs.
    pub(crate) async fn publish(&self, what: Invalidation) {
        let Some(bus) = &self.inner.bus else { return };
        let what = match bus.send(what) {
            Ok(sent) => {
                let _ = sent.await;
                return;
            }
            Err(what) => what,
        };
        let mut cmd = redis::cmd("PUBLISH");
        cmd.arg(&bus.channel).arg(bus.encode(&what));
        match self.call(|b| b.query(&cmd)).await {
            Ok(_) => Counters::bump(&self.inner.counters.invalidations_sent),
            Err(e) => self.swallow("publish invalidation", &e),
        }
    }

    /// Waits (bounded) until the invalidation channel is subscribed.
    pub(crate) async fn wait_subscribed(&self, limit: Duration) {
        let Some(bus) = &self.inner.bus else { return };
        let deadline = Instant::now() + limit;
        while !bus.is_subscribed() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

impl Inner {
    /// Applies a message from another instance.
    fn apply(&self, text: &str) {
        let (Some(bus), Some(msg)) = (&self.bus, Bus::parse(text)) else {
            return;
        };
        match bus.judge(&msg) {
            Verdict::Own => return,
            Verdict::Gap => {
                tracing::warn!("invalidation messages were missed, flushing L1");
                self.flush_l1();
            }
            Verdict::Apply => {}
        }
        Counters::bump(&self.counters.invalidations_received);
        self.inval_seq.fetch_add(1, Ordering::AcqRel);
        match msg.what {
            Invalidation::Key(key) => {
                self.flights.detach(&key);
                if let Some(l1) = &self.l1 {
                    l1.store.remove(&key);
                }
            }
            Invalidation::Tag { tag, version } => {
                self.flights.detach_all();
                self.tags.observe(&tag, version);
            }
            Invalidation::Clear => {
                self.flights.detach_all();
                if let Some(l1) = &self.l1 {
                    l1.store.clear();
                }
                self.tags.clear();
            }
        }
    }

    /// Marks every L1 entry stale and forgets tag versions.
    fn flush_l1(&self) {
        self.inval_seq.fetch_add(1, Ordering::AcqRel);
        self.flights.detach_all();
        if let Some(l1) = &self.l1 {
            l1.flush();
        }
        self.tags.clear();
        Counters::bump(&self.counters.l1_flushes);
    }
}

/// Most messages sent in one pipelined batch.
const PUBLISH_BATCH: usize = 256;

/// Starts the task that numbers and publishes this instance's invalidations
/// in order: one pipelined batch at a time, each acknowledged by Redis before
/// the next is sent, so receivers see sequence numbers in order.
pub(crate) fn spawn_publisher(cache: &Cache) {
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let Some(mut inbox) = cache.inner.bus.as_ref().and_then(Bus::take_inbox) else {
        return;
    };
    let weak = Arc::downgrade(&cache.inner);
    handle.spawn(async move {
        let mut batch = Vec::with_capacity(PUBLISH_BATCH);
        // Ends when the cache (and with it the sending end) is dropped.
        while inbox.recv_many(&mut batch, PUBLISH_BATCH).await > 0 {
            let Some(inner) = weak.upgrade() else { return };
            let cache = Cache { inner };
            let Some(bus) = &cache.inner.bus else { return };
            let mut pipe = redis::pipe();
            for out in &batch {
                pipe.cmd("PUBLISH")
                    .arg(&bus.channel)
                    .arg(bus.encode(&out.what))
                    .ignore();
            }
            let ok = match cache.call(|b| b.pipeline(&pipe)).await {
                Ok(_) => {
                    Counters::add(&cache.inner.counters.invalidations_sent, batch.len() as u64);
                    true
                }
                Err(e) => {
                    cache.swallow("publish invalidation", &e);
                    false
                }
            };
            for out in batch.drain(..) {
                let _ = out.done.send(ok);
            }
        }
    });
}

/// Starts the task that keeps a subscription to the invalidation channel,
/// applying messages, and re-subscribing (with L1 flushed) after a loss.
pub(crate) fn spawn_subscriber(
    cache: &Cache,
    client: redis::Client,
    mut stopped: tokio::sync::watch::Receiver<()>,
) {
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let weak = Arc::downgrade(&cache.inner);
    let channel = cache
        .inner
        .bus
        .as_ref()
        .map(|b| b.channel.clone())
        .unwrap_or_default();
    let timeout = cache.inner.config.connect_timeout;
    handle.spawn(async move {
        let mut backoff = Duration::from_millis(50);
        let mut first = true;
        loop {
            let subscribed = async {
                let mut pubsub = tokio::time::timeout(timeout, client.get_async_pubsub())
                    .await
                    .ok()?
                    .ok()?;
                tokio::time::timeout(timeout, pubsub.subscribe(&channel))
                    .await
                    .ok()?
                    .ok()?;
                Some(pubsub)
            };
            let pubsub = tokio::select! {
                p = subscribed => p,
                _ = stopped.changed() => return,
            };
            if let Some(pubsub) = pubsub {
                let Some(inner) = weak.upgrade() else { return };
                if let Some(bus) = &inner.bus {
                    // Anything published while we were away was missed.
                    bus.reset_seen();
                    if !first {
                        inner.flush_l1();
                        Counters::bump(&inner.counters.resubscribes);
                        tracing::info!("invalidation channel subscribed again");
                    }
                    bus.subscribed.store(true, Ordering::Release);
                }
                first = false;
                drop(inner);
                backoff = Duration::from_millis(50);
                let (mut sink, mut stream) = pubsub.split();
                let mut ping = tokio::time::interval(Duration::from_secs(5));
                ping.tick().await;
                loop {
                    tokio::select! {
                        msg = stream.next() => {
                            let Some(msg) = msg else { break };
                            let Some(inner) = weak.upgrade() else { return };
                            if let Ok(text) = std::str::from_utf8(msg.get_payload_bytes()) {
                                inner.apply(text);
                            }
                        }
                        _ = ping.tick() => {
                            let alive = tokio::time::timeout(timeout, sink.ping::<redis::Value>()).await;
                            if !matches!(alive, Ok(Ok(_))) {
                                break;
                            }
                        }
                        _ = stopped.changed() => return,
                    }
                }
                let Some(inner) = weak.upgrade() else { return };
                tracing::warn!("invalidation channel lost, flushing L1 and re-subscribing");
                if let Some(bus) = &inner.bus {
                    bus.subscribed.store(false, Ordering::Release);
                }
                inner.flush_l1();
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = stopped.changed() => return,
            }
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    });
}
