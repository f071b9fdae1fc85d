//! The [`Coherence`] component: its state, and reads and writes of L1 and
//! Redis judged against it.

use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use tokio::sync::watch;

use crate::error::{Error, log_skipped};
use crate::key::KeySpace;
use crate::stats::{Counters, LagPercentiles};
use crate::telemetry::Count;
use crate::tier::l1::{L1, L1Entry, L1Times};
use crate::tier::remote::{NotPlain, Remote, Stored};
use crate::time::{Instant, Now};
use crate::value::entry::Meta;

use super::clock::InvalidationClock;
use super::message::{Channel, Invalidation, Verdict};
use super::pending::Pending;
use super::tags::TagVersions;

/// What an L1 lookup found.
#[derive(Debug)]
pub(crate) enum L1Lookup<T> {
    /// A fresh value; `true` when an eager refresh is due.
    Fresh(T, bool),
    /// Not fresh, but usable as a fail-safe fallback (with its tags).
    Stale(T, Option<Instant>, Vec<(String, u64)>),
    /// A stale value inside its fail-safe throttle period: serve it as
    /// stale without trying the loader.
    Throttled(T),
    /// Nothing usable.
    Miss,
}

/// What Redis holds for a key, judged against tag versions.
#[derive(Debug)]
pub(crate) enum RedisRead<T> {
    /// A value within its logical TTL, with valid tags.
    Fresh(T, Meta),
    /// A value past its logical TTL but kept for fail-safe.
    Stale(T, Meta),
    /// Nothing usable: absent, corrupt, invalidated by a tag, or covered by
    /// a pending delete.
    Missing,
}

/// See the module documentation.
#[derive(Debug)]
pub(crate) struct Coherence {
    pub(super) keys: KeySpace,
    pub(super) remote: Arc<Remote>,
    /// The in-process tier; `None` when disabled.
    pub(super) l1: Option<L1>,
    /// Moves on every invalidation applied here (local or remote), so a fill
    /// that raced with one is not put into L1.
    pub(super) clock: InvalidationClock,
    /// Tag versions known to this instance.
    pub(super) tags: TagVersions,
    /// Deletes and tag invalidations that did not reach Redis yet.
    pub(super) pending: Pending,
    /// The invalidation channel; `None` when disabled or without Redis.
    pub(super) channel: Option<Arc<Channel>>,
    /// How long the subscriber waits to connect and subscribe.
    pub(super) connect_timeout: Duration,
    /// Closed when the cache is dropped: every task here then stops.
    pub(super) stopped: watch::Receiver<()>,
}

/// What [`Coherence::start`] needs.
#[derive(Debug)]
pub(crate) struct Parts {
    pub(crate) keys: KeySpace,
    pub(crate) remote: Arc<Remote>,
    pub(crate) l1: Option<L1>,
    /// Publish and apply invalidation messages.
    pub(crate) channel: bool,
    pub(crate) connect_timeout: Duration,
    /// Bound of each set of pending invalidations.
    pub(crate) max_pending: usize,
    pub(crate) stopped: watch::Receiver<()>,
}

impl Coherence {
    /// Builds the component and starts its publisher and subscriber tasks
    /// (when there is a channel and a runtime).
    pub(crate) fn start(parts: Parts) -> Arc<Self> {
        let channel = parts
            .channel
            .then(|| Arc::new(Channel::new(&parts.keys.namespace)));
        let coherence = Arc::new(Self {
            keys: parts.keys,
            remote: parts.remote,
            l1: parts.l1,
            clock: InvalidationClock::default(),
            tags: TagVersions::default(),
            pending: Pending::new(parts.max_pending),
            channel,
            connect_timeout: parts.connect_timeout,
            stopped: parts.stopped,
        });
        if coherence.channel.is_some() {
            coherence.spawn_subscriber();
            coherence.spawn_publisher();
        }
        coherence
    }

    pub(super) fn counters(&self) -> &Counters {
        self.remote.counters()
    }

    /// Whether the L1 tier is on.
    pub(crate) fn has_l1(&self) -> bool {
        self.l1.is_some()
    }

    /// Entries currently held in L1.
    pub(crate) fn l1_entries(&self) -> usize {
        self.l1.as_ref().map_or(0, |l1| l1.store.len())
    }

    /// Current weight of L1, in bytes.
    pub(crate) fn l1_bytes(&self) -> u64 {
        self.l1.as_ref().map_or(0, |l1| l1.store.weight())
    }

    /// Pending deletes and tag invalidations.
    pub(crate) fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Pending invalidation messages.
    pub(crate) fn publishes_pending(&self) -> usize {
        self.pending.publishes_len()
    }

    /// Invalidation lag percentiles.
    pub(crate) fn lag(&self) -> LagPercentiles {
        self.channel
            .as_ref()
            .map(|c| c.lag_percentiles())
            .unwrap_or_default()
    }

    /// Whether the invalidation channel is subscribed (false without one).
    pub(super) fn is_subscribed(&self) -> bool {
        self.channel.as_ref().is_some_and(|c| c.is_subscribed())
    }

    /// The clock reading for `key`, taken before a fill's Redis read or load.
    pub(crate) fn reading(&self, key: &str) -> u64 {
        self.clock.reading(key)
    }

    /// The clock reading of a load of `key` that stores `tags`: it also
    /// moves when one of the tags is invalidated. Loads in flight are
    /// joined only at the same reading.
    pub(crate) fn flight_reading(&self, key: &str, tags: &[String]) -> u64 {
        self.clock.tagged_reading(key, tags)
    }

    /// Looks `key` up in L1. Never does I/O.
    pub(crate) fn lookup<T: Clone + 'static>(&self, key: &str, now: Now) -> L1Lookup<T> {
        let Some(l1) = &self.l1 else {
            return L1Lookup::Miss;
        };
        // An untagged entry (the usual case) is judged in place under its
        // shard's read lock: that takes no other lock. A tagged one is
        // judged after the shard's lock is released, because its tags are
        // checked under the pending and tag-version locks.
        let found = l1.store.get_with(key, |entry| {
            if entry.tags.is_empty() {
                Ok(self.judge_entry(l1, entry, now))
            } else {
                Err(Arc::clone(entry))
            }
        });
        match found {
            None => L1Lookup::Miss,
            Some(Ok(judged)) => judged,
            Some(Err(tagged)) => self.judge_entry(l1, &tagged, now),
        }
    }

    /// What an L1 entry is worth at `now`. Takes no lock for an untagged
    /// entry.
    #[inline]
    fn judge_entry<T: Clone + 'static>(&self, l1: &L1, entry: &L1Entry, now: Now) -> L1Lookup<T> {
        let Some(value) = entry.downcast::<T>() else {
            return L1Lookup::Miss;
        };
        let tagged = !entry.tags.is_empty();
        let tag_pending = tagged
            && self
                .pending
                .has_any_tag(entry.tags.iter().map(|(t, _)| t.as_str()));
        if entry.throttled {
            // Already a stale answer: coherence cannot make it worse, and a
            // lost channel (Redis down) is when the throttle matters most.
            // Deletes and clears still remove it; tag invalidations end it.
            if tag_pending || !self.tags.none_invalidated(&entry.tags) {
                return L1Lookup::Miss;
            }
            if now.before(entry.fresh_until) {
                return L1Lookup::Throttled(value);
            }
            if entry.usable_stale(now) {
                return L1Lookup::Stale(value, entry.stale_until, entry.tags.to_vec());
            }
            return L1Lookup::Miss;
        }
        let coherent = entry.epoch == l1.epoch()
            && self.channel.as_ref().is_none_or(|c| c.is_subscribed())
            && !tag_pending
            && self.tags.all_current(&entry.tags);
        if coherent && now.before(entry.fresh_until) {
            let refresh_due = entry.refresh_at.is_some_and(|t| !now.before(t));
            return L1Lookup::Fresh(value, refresh_due);
        }
        if entry.usable_stale(now) && !tag_pending && self.tags.none_invalidated(&entry.tags) {
            return L1Lookup::Stale(value, entry.stale_until, entry.tags.to_vec());
        }
        L1Lookup::Miss
    }

    /// Puts a value into L1, unless an invalidation was applied since the
    /// clock `reading` (then the value may be older than what invalidated it).
    pub(crate) fn put<T: Send + Sync + 'static>(
        &self,
        key: &str,
        value: T,
        times: &L1Times,
        tags: Vec<(String, u64)>,
        reading: Option<u64>,
    ) {
        let Some(l1) = &self.l1 else { return };
        if reading.is_some_and(|r| r != self.clock.reading(key)) {
            return;
        }
        l1.put(key, value, times, tags);
        crate::telemetry::l1_size(l1.store.len(), l1.store.weight());
    }

    /// Reads `full` (the namespaced form of `key`) from Redis and judges it.
    /// `GET` and `PTTL` go in one round trip when L1 needs the lifetime.
    pub(crate) async fn read<T: DeserializeOwned>(
        &self,
        full: &str,
    ) -> Result<RedisRead<T>, Error> {
        if self.pending.has_delete(full) {
            // A delete of this key has not reached Redis yet: what Redis
            // holds is older than a committed write.
            return Ok(RedisRead::Missing);
        }
        let Some((bytes, pttl)) = self.remote.read(full, self.l1.is_some()).await? else {
            return Ok(RedisRead::Missing);
        };
        self.judge(full, bytes, pttl).await
    }

    /// Decodes stored bytes (plain or envelope) and judges their freshness
    /// and tags. Corrupt bytes are evicted and read as `Missing`.
    pub(crate) async fn judge<T: DeserializeOwned>(
        &self,
        full: &str,
        bytes: Vec<u8>,
        physical_left: Option<Duration>,
    ) -> Result<RedisRead<T>, Error> {
        match self.judge_plain(bytes, physical_left) {
            Ok(read) => Ok(read),
            Err(rest) => self.judge_rest(full, rest, physical_left).await,
        }
    }

    /// [`judge`](Self::judge) for the common case, a plain value, without
    /// awaiting anything: no tags, fresh for as long as Redis keeps it.
    /// Anything else is handed back for [`judge_rest`](Self::judge_rest).
    /// (A loop over many values calls the two itself, so that it builds
    /// no future for the values that need none.)
    #[inline]
    pub(crate) fn judge_plain<T: DeserializeOwned>(
        &self,
        bytes: Vec<u8>,
        physical_left: Option<Duration>,
    ) -> Result<RedisRead<T>, NotPlain> {
        let size = bytes.len() as u64;
        let value = self.remote.decode_plain(bytes)?;
        let mut meta = Meta::plain(physical_left);
        meta.bytes = size;
        Ok(RedisRead::Fresh(value, meta))
    }

    /// The rest of [`judge`](Self::judge): an envelope or corrupt bytes.
    pub(crate) async fn judge_rest<T: DeserializeOwned>(
        &self,
        full: &str,
        rest: NotPlain,
        physical_left: Option<Duration>,
    ) -> Result<RedisRead<T>, Error> {
        let bytes = match rest {
            NotPlain::Envelope(bytes) => bytes,
            NotPlain::Corrupt(e) => {
                self.remote.evict_corrupt(full, &e).await;
                return Ok(RedisRead::Missing);
            }
        };
        let Some(Stored { value, meta }) =
            self.remote.decode_entry(full, &bytes, physical_left).await
        else {
            return Ok(RedisRead::Missing);
        };
        if !meta.tags.is_empty() {
            if self
                .pending
                .has_any_tag(meta.tags.iter().map(|(t, _)| t.as_str()))
            {
                // Invalidated by a write whose tag bump has not reached
                // Redis yet.
                return Ok(RedisRead::Missing);
            }
            let names: Vec<String> = meta.tags.iter().map(|(t, _)| t.clone()).collect();
            let current = self.tag_versions(&names).await?;
            if current != meta.tags {
                return Ok(RedisRead::Missing);
            }
        }
        Ok(if meta.is_fresh() {
            RedisRead::Fresh(value, meta)
        } else {
            RedisRead::Stale(value, meta)
        })
    }

    /// Whether a delete of `full` is pending (what Redis holds is older).
    pub(crate) fn has_pending_delete(&self, full: &str) -> bool {
        self.pending.has_delete(full)
    }

    /// Records an invalidation that may touch any key (a clear): fills
    /// in progress are not put into L1, and no new caller joins a load that
    /// began before it.
    pub(crate) fn note_invalidation(&self) {
        self.clock.tick_all();
    }

    /// Drops `key` from this instance's L1 and moves the clock, so a read
    /// after a write never joins a load that began before it.
    pub(crate) fn evict(&self, key: &str) {
        self.clock.tick_key(key);
        if let Some(l1) = &self.l1 {
            l1.store.remove(key);
            crate::telemetry::l1_size(l1.store.len(), l1.store.weight());
        }
    }

    /// `full` (the namespaced `key`) was written: a pending delete of it is
    /// superseded, L1 copies here and elsewhere are evicted.
    pub(crate) async fn written(&self, key: &str, full: &str) {
        self.pending.remove_delete(full);
        self.evict(key);
        self.publish(Invalidation::Key(key.to_owned())).await;
    }

    /// Like [`written`](Self::written), but returns once the message is
    /// queued for the in-order publisher task instead of once it was sent:
    /// the caller does not wait a round trip for the other instances'
    /// sake. A message the publisher fails to send is marked pending like
    /// any other.
    pub(crate) async fn written_queued(&self, key: &str, full: &str) {
        self.pending.remove_delete(full);
        self.evict(key);
        let Some(channel) = &self.channel else { return };
        if let Err(what) = channel.send(Invalidation::Key(key.to_owned())) {
            // No publisher task: sent directly.
            self.publish(what).await;
        }
    }

    /// Keys were cleared in Redis: clears this instance's L1 (and its tag
    /// versions with `tags`) and tells the other instances.
    pub(crate) async fn cleared(&self, tags: bool) {
        if let Some(l1) = &self.l1 {
            l1.store.clear();
        }
        if tags {
            self.tags.clear();
        }
        self.note_invalidation();
        self.publish(Invalidation::Clear).await;
    }

    /// Tells the other instances; failures are logged, never returned.
    /// Returns once the message was sent (or failed), through the in-order
    /// publisher task when it runs.
    pub(crate) async fn publish(&self, what: Invalidation) {
        let Some(channel) = &self.channel else { return };
        match channel.send(what) {
            Ok(sent) => {
                let _ = sent.await;
            }
            // No publisher task. Boxed: the direct send's future (kilobytes
            // on a cluster) would otherwise be part of every write's state.
            Err(what) => Box::pin(self.publish_now(channel, what)).await,
        }
    }

    /// Sends `what` on `channel` from this task.
    async fn publish_now(&self, channel: &Channel, what: Invalidation) {
        let message = [channel.encode(&what)];
        match self
            .remote
            .call(|b| b.publish(&channel.name, &message))
            .await
        {
            Ok(()) => self.counters().inc(Count::InvalidationsSent, 1),
            Err(e) => log_skipped("publish invalidation", &e),
        }
    }

    /// Publishes `messages` through the publisher task and waits until each
    /// was sent or failed (the publisher marks again what failed as pending).
    pub(crate) async fn publish_all(&self, messages: Vec<Invalidation>) {
        let Some(channel) = &self.channel else { return };
        let mut sent = Vec::with_capacity(messages.len());
        for what in messages {
            match channel.send(what) {
                Ok(done) => sent.push(done),
                Err(what) => self.publish(what).await,
            }
        }
        for done in sent {
            let _ = done.await;
        }
    }

    /// Waits (bounded) until the invalidation channel is subscribed.
    pub(crate) async fn wait_subscribed(&self, limit: Duration) {
        let Some(channel) = &self.channel else { return };
        let deadline = Instant::now() + limit;
        while !channel.is_subscribed() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Applies a message from another instance.
    pub(super) fn apply(self: &Arc<Self>, text: &str) {
        let (Some(channel), Some(msg)) = (&self.channel, Channel::parse(text)) else {
            return;
        };
        match channel.judge(&msg) {
            Verdict::Own => return,
            Verdict::Gap => {
                tracing::warn!("invalidation messages were missed, flushing L1");
                self.flush_l1();
            }
            Verdict::Apply => {}
        }
        if matches!(msg.what, Invalidation::Heartbeat { .. }) {
            return;
        }
        self.counters().inc(Count::InvalidationsReceived, 1);
        match msg.what {
            Invalidation::Key(key) => self.evict(&key),
            Invalidation::Tag { tag, version } => match self.tags.get(&tag) {
                Some(known) if version < known => self.tag_went_back(&tag, version, known),
                _ => {
                    self.tags.observe(&tag, version);
                    self.clock.tick_tag(&tag);
                }
            },
            Invalidation::Clear => {
                self.clock.tick_all();
                if let Some(l1) = &self.l1 {
                    l1.store.clear();
                }
                self.tags.clear();
            }
            Invalidation::Heartbeat { .. } => {}
        }
    }

    /// Marks every L1 entry stale and forgets tag versions, counted as a
    /// flush.
    pub(super) fn flush_l1(&self) {
        self.reset();
        self.counters().inc(Count::L1Flushes, 1);
    }

    /// Marks every L1 entry stale, forgets tag versions and detaches loads
    /// in flight: nothing learnt while no subscription listened is trusted.
    pub(super) fn reset(&self) {
        self.clock.tick_all();
        if let Some(l1) = &self.l1 {
            l1.flush();
        }
        self.tags.clear();
    }
}
