//! Single-key operations on [`Cache`]: reads, writes, deletes, counters
//! and TTLs, each in a fail-open and a `try_*` form.

use std::time::Duration;

use serde::Serialize;

use super::handle::Cache;
use crate::coherence::{L1Lookup, RedisRead};
use crate::error::{Error, log_skipped};
use crate::key::KeyTtl;
use crate::options::EntryOptions;
use crate::telemetry::{Count, Tier};
use crate::tier::l1::L1Times;
use crate::time::Now;
use crate::value::Cacheable;
use crate::value::codec::Codec;
use crate::value::entry::{self, Meta};

impl Cache {
    /// Reads and decodes `key`: L1 first (no I/O), then Redis. Redis
    /// failures, an open breaker and corrupt values are a miss.
    pub async fn get<T: Cacheable>(&self, key: &str) -> Option<T> {
        self.try_get(key).await.unwrap_or_else(|e| {
            log_skipped("get", &e);
            None
        })
    }

    /// Reads and decodes `key`, returning Redis failures. A value that cannot
    /// be decoded is still a miss: it is deleted and counted in `errors`.
    pub async fn try_get<T: Cacheable>(&self, key: &str) -> Result<Option<T>, Error> {
        let counters = self.counters();
        let coherence = &self.inner.coherence;
        // Without L1 there is nothing to look up or fill: no clock read, no
        // invalidation clock reading.
        let l1 = coherence.has_l1();
        if l1 && let L1Lookup::Fresh(v, _) = coherence.lookup::<T>(key, Now::recent()) {
            counters.hit(Tier::L1, key);
            return Ok(Some(v));
        }
        let full = self.full_key(key)?;
        let reading = l1.then(|| coherence.reading(key));
        match coherence.read::<T>(&full).await {
            Ok(RedisRead::Fresh(v, meta)) => {
                counters.hit(Tier::L2, key);
                if reading.is_some() {
                    let times = L1Times::of(&meta, None, self.inner.config.l1_max_ttl);
                    coherence.put(key, v.clone(), &times, meta.tags, reading);
                }
                Ok(Some(v))
            }
            Ok(_) => {
                counters.miss(key);
                Ok(None)
            }
            Err(e) => {
                counters.miss(key);
                Err(e)
            }
        }
    }

    /// Encodes `value` with the configured codec and stores it with `ttl`
    /// (the default TTL when `None`; jitter applies), then evicts the key
    /// from every instance's L1.
    ///
    /// Returns an error only for caller mistakes: an invalid key, a value
    /// that cannot be encoded or exceeds the size limit. Redis failures skip
    /// the write and are counted.
    pub async fn set<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        ttl: Option<Duration>,
    ) -> Result<(), Error> {
        let opts = EntryOptions {
            ttl,
            ..EntryOptions::default()
        };
        self.set_with(key, value, &opts).await
    }

    /// Like [`set`](Self::set), returning Redis failures too.
    pub async fn try_set<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        ttl: Option<Duration>,
    ) -> Result<(), Error> {
        let opts = EntryOptions {
            ttl,
            ..EntryOptions::default()
        };
        self.try_set_with(key, value, &opts).await
    }

    /// Like [`try_set`](Self::try_set) with an explicit codec.
    pub async fn try_set_with_codec<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        ttl: Option<Duration>,
        codec: Codec,
    ) -> Result<(), Error> {
        let opts = EntryOptions {
            ttl,
            codec: Some(codec),
            ..EntryOptions::default()
        };
        self.try_set_with(key, value, &opts).await
    }

    /// Stores `value` under `options` (TTL, tags, fail-safe window, codec).
    /// Fails open like [`set`](Self::set).
    pub async fn set_with<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        options: &EntryOptions,
    ) -> Result<(), Error> {
        match self.try_set_with(key, value, options).await {
            Err(e) if !e.is_caller_error() => {
                self.counters().inc(Count::SetsSkipped, 1);
                log_skipped("set", &e);
                Ok(())
            }
            other => other,
        }
    }

    /// Like [`set_with`](Self::set_with), returning Redis failures too.
    /// A `None` value is stored only with a `negative_ttl`.
    pub async fn try_set_with<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        options: &EntryOptions,
    ) -> Result<(), Error> {
        let Some(Encoded {
            full,
            bytes,
            physical,
            ..
        }) = self.encode_write(key, value, options).await?
        else {
            return Ok(());
        };
        // A load in flight for the key will see the key changed and not fill.
        self.inner
            .remote
            .call(|b| b.set(&full, &bytes, Some(physical)))
            .await?;
        self.counters().inc(Count::Sets, 1);
        // The new value supersedes a pending delete; every L1 drops the key.
        self.inner.coherence.written(key, &full).await;
        Ok(())
    }

    /// What an explicit write of `value` under `options` sends (see
    /// [`Encoded`]). A `None` is stored like any value. `None` when there
    /// is nothing to store.
    async fn encode_write<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        options: &EntryOptions,
    ) -> Result<Option<Encoded>, Error> {
        let full = self.full_key(key)?;
        let tags = if options.tags.is_empty() {
            Vec::new()
        } else {
            self.inner.coherence.tag_versions(&options.tags).await?
        };
        let mut spec = options.entry_spec(&self.inner.config, &tags);
        if spec.negative_ttl.is_none() {
            spec.negative_ttl = Some(spec.ttl);
        }
        let Some((bytes, ttl)) = entry::encode(value, &spec)? else {
            return Ok(None);
        };
        Ok(Some(Encoded {
            full,
            physical: options.physical_ttl(ttl),
            ttl,
            bytes,
            tags,
        }))
    }

    /// Stores `value` under `options` as version `version` of `key`, unless
    /// a versioned write of `version` or a higher one came first: true when
    /// stored, false when refused as older. For writers that know the order
    /// of their states (a database row's revision, a sequence number) and
    /// write them after the fact, possibly out of order: the last state
    /// stands whichever write arrives last, on any instance. The version
    /// outlives a [`delete`](Self::delete) of the key for as long as the
    /// entry would have lived, so a late write of an older state cannot
    /// come back after a delete either. Plain writes and fills neither read
    /// nor move the version. Every L1 drops its copy either way: this
    /// instance's before the call returns, the others' on the invalidation
    /// message, which the call queues for the in-order publisher without
    /// waiting for it to be sent (so a write-through costs its caller one
    /// round trip, not two).
    ///
    /// Returns Redis failures, like [`try_set_with`](Self::try_set_with).
    pub async fn try_set_versioned<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        version: u64,
        options: &EntryOptions,
    ) -> Result<bool, Error> {
        let Some(encoded) = self.encode_write(key, value, options).await? else {
            return Ok(false);
        };
        self.versioned_write(key, &encoded, version).await
    }

    /// Like [`try_set_versioned`](Self::try_set_versioned), and when the
    /// write is stored, this instance's L1 keeps `value` (under `options`'
    /// L1 lifetimes), so the writer's next read of `key` is an L1 hit
    /// instead of a Redis round trip. `value` must be of the type readers
    /// ask for (`get::<T>` finds an L1 copy only by its exact type).
    ///
    /// The copy is kept only if no other invalidation of the key reached
    /// this instance between the start of the call and the write's own
    /// eviction: a newer state written elsewhere in the meantime (whose
    /// message may arrive before this call's reply) is never shadowed by
    /// this older one. A refused write keeps nothing. The other instances
    /// drop their copies on the invalidation message, as for
    /// `try_set_versioned`.
    ///
    /// ```no_run
    /// # async fn demo(cache: ngx_cache::Cache) -> Result<(), ngx_cache::Error> {
    /// use ngx_cache::EntryOptions;
    ///
    /// // Revision 7 of an order, committed to the database just now.
    /// let order = Some(String::from("shipped"));
    /// let stored = cache
    ///     .try_write_through("order:42", &order, 7, &EntryOptions::new())
    ///     .await?;
    /// if stored {
    ///     // Served from this instance's L1, no Redis round trip.
    ///     assert_eq!(cache.get::<Option<String>>("order:42").await, Some(order));
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn try_write_through<T: Cacheable>(
        &self,
        key: &str,
        value: &T,
        version: u64,
        options: &EntryOptions,
    ) -> Result<bool, Error> {
        let coherence = &self.inner.coherence;
        // Before anything that could let an invalidation of the key in.
        let reading = coherence.reading(key);
        let Some(encoded) = self.encode_write(key, value, options).await? else {
            return Ok(false);
        };
        let stored = self.versioned_write(key, &encoded, version).await?;
        if stored && options.l1 && coherence.has_l1() {
            let meta = Meta::written(
                encoded.ttl,
                encoded.physical,
                encoded.tags,
                encoded.bytes.len(),
            );
            let times = L1Times::of(&meta, Some(options), self.inner.config.l1_max_ttl);
            // The write's own eviction moved the clock by exactly one: any
            // further move is another invalidation, and nothing is kept.
            coherence.put(
                key,
                value.clone(),
                &times,
                meta.tags,
                Some(reading.wrapping_add(1)),
            );
        }
        Ok(stored)
    }

    /// Sends a versioned write of `encoded` and evicts every L1 copy of
    /// `key` (this instance's at once, the others' by a queued message).
    async fn versioned_write(
        &self,
        key: &str,
        encoded: &Encoded,
        version: u64,
    ) -> Result<bool, Error> {
        let Encoded {
            full,
            bytes,
            physical,
            ..
        } = encoded;
        let stored = self
            .inner
            .remote
            .call(|b| b.versioned_set(full, bytes, *physical, version))
            .await?;
        if stored {
            self.counters().inc(Count::Sets, 1);
        }
        // Refused means a newer version was written: no L1 keeps an older one.
        self.inner.coherence.written_queued(key, full).await;
        Ok(stored)
    }

    /// Adds `amount` to the integer at `key` (created at 0) and returns the
    /// new value; `None` when Redis is unavailable.
    pub async fn increment(&self, key: &str, amount: i64) -> Option<i64> {
        self.try_increment(key, amount)
            .await
            .map_err(|e| log_skipped("increment", &e))
            .ok()
    }

    /// Reads the counter at `key` straight from Redis (never from L1, since
    /// counters change without invalidations); `None` when absent or when
    /// Redis is unavailable.
    pub async fn counter(&self, key: &str) -> Option<i64> {
        let full = self.full_key(key).ok()?;
        match self.inner.remote.call(|b| b.counter(&full)).await {
            Ok(v) => v,
            Err(e) => {
                log_skipped("counter", &e);
                None
            }
        }
    }

    /// Subtracts `amount`; see [`increment`](Self::increment).
    pub async fn decrement(&self, key: &str, amount: i64) -> Option<i64> {
        self.increment(key, amount.checked_neg()?).await
    }

    /// Like [`increment`](Self::increment), returning Redis failures (and
    /// `WRONGTYPE` when the key holds a non-integer).
    pub async fn try_increment(&self, key: &str, amount: i64) -> Result<i64, Error> {
        let full = self.full_key(key)?;
        self.inner.remote.call(|b| b.incr(&full, amount)).await
    }

    /// Whether `key` exists; false when Redis is unavailable.
    pub async fn exists(&self, key: &str) -> bool {
        self.try_exists(key).await.unwrap_or_else(|e| {
            log_skipped("exists", &e);
            false
        })
    }

    /// Like [`exists`](Self::exists), returning Redis failures.
    pub async fn try_exists(&self, key: &str) -> Result<bool, Error> {
        let full = self.full_key(key)?;
        self.inner.remote.call(|b| b.exists(&full)).await
    }

    /// Deletes `key`; true when it existed. False when Redis is unavailable:
    /// writers that must not leave stale data should use
    /// [`try_delete`](Self::try_delete).
    pub async fn delete(&self, key: &str) -> bool {
        self.try_delete(key).await.unwrap_or_else(|e| {
            log_skipped("delete", &e);
            false
        })
    }

    /// Like [`delete`](Self::delete), returning Redis failures.
    pub async fn try_delete(&self, key: &str) -> Result<bool, Error> {
        let full = self.full_key(key)?;
        self.inner.coherence.delete(key, &full).await
    }

    /// Invalidates `key` in Redis, in this instance's L1 and in every other
    /// instance's L1. The same as [`delete`](Self::delete).
    pub async fn invalidate(&self, key: &str) -> bool {
        self.delete(key).await
    }

    /// Sets a new TTL on `key` (at most [`MAX_TTL`](crate::config::MAX_TTL));
    /// true when the key exists.
    pub async fn expire(&self, key: &str, ttl: Duration) -> bool {
        self.try_expire(key, ttl).await.unwrap_or_else(|e| {
            log_skipped("expire", &e);
            false
        })
    }

    /// Like [`expire`](Self::expire), returning Redis failures.
    pub async fn try_expire(&self, key: &str, ttl: Duration) -> Result<bool, Error> {
        let full = self.full_key(key)?;
        let ttl = crate::key::clamp_ttl(ttl);
        self.inner.remote.call(|b| b.expire(&full, ttl)).await
    }

    /// The remaining TTL of `key`; `None` when Redis is unavailable.
    pub async fn ttl(&self, key: &str) -> Option<KeyTtl> {
        self.try_ttl(key)
            .await
            .map_err(|e| log_skipped("ttl", &e))
            .ok()
    }

    /// Like [`ttl`](Self::ttl), returning Redis failures.
    pub async fn try_ttl(&self, key: &str) -> Result<KeyTtl, Error> {
        let full = self.full_key(key)?;
        self.inner.remote.call(|b| b.pttl(&full)).await
    }
}

/// An explicit write, encoded: the full key, the stored bytes (with the
/// tags' current versions), the logical and physical TTLs and the tags.
struct Encoded {
    full: String,
    bytes: Vec<u8>,
    ttl: Duration,
    physical: Duration,
    tags: Vec<(String, u64)>,
}
