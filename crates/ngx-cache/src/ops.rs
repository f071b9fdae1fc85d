//! Typed operations on [`Cache`]: reads, writes, batches, counters and key
//! management, each in a fail-open and a `try_*` form.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use std::time::Instant;

use crate::backend::Entry;
use crate::bus::Invalidation;
use crate::cache::Cache;
use crate::codec::{self, Codec};
use crate::coherence::L1Lookup;
use crate::error::Error;
use crate::fill::lease_key;
use crate::key;
use crate::load::Cacheable;
use crate::options::EntryOptions;
use crate::read::L2Read;
use crate::stats::Counters;

/// The remaining lifetime of a key, as Redis's `PTTL` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyTtl {
    /// The key does not exist.
    Missing,
    /// The key exists and never expires.
    Persistent,
    /// The key expires after this long.
    Expires(Duration),
}

impl Cache {
    /// The full Redis key for `key`: `{namespace}:{key}`, validated.
    pub fn full_key(&self, key: &str) -> Result<String, Error> {
        key::full_key(
            &self.inner.config.namespace,
            key,
            self.inner.config.max_key_bytes,
        )
    }

    /// Reads and decodes `key`: L1 first (no I/O), then Redis. Redis
    /// failures, an open breaker and corrupt values are a miss.
    pub async fn get<T: Cacheable>(&self, key: &str) -> Option<T> {
        self.try_get(key).await.unwrap_or_else(|e| {
            self.swallow("get", &e);
            None
        })
    }

    /// Reads and decodes `key`, returning Redis failures. A value that cannot
    /// be decoded is still a miss: it is deleted and counted in `errors`.
    pub async fn try_get<T: Cacheable>(&self, key: &str) -> Result<Option<T>, Error> {
        let counters = &self.inner.counters;
        if let L1Lookup::Fresh(v, _) = self.l1_lookup::<T>(key, Instant::now()) {
            // Also a hit: `stats()` adds L1 hits to `hits`.
            Counters::bump(&counters.l1_hits);
            return Ok(Some(v));
        }
        let full = self.full_key(key)?;
        let snapshot = self.inval_snapshot(key);
        match self.read_l2::<T>(&full).await {
            Ok(L2Read::Fresh(v, meta)) => {
                Counters::bump(&counters.l2_hits);
                Counters::bump(&counters.hits);
                if self.inner.l1.is_some() {
                    let times = meta.l1_times(None, self.inner.config.l1_max_ttl);
                    self.l1_put(key, v.clone(), &times, meta.tags, Some(snapshot));
                }
                Ok(Some(v))
            }
            Ok(_) => {
                Counters::bump(&counters.misses);
                Ok(None)
            }
            Err(e) => {
                Counters::bump(&counters.misses);
                Err(e)
            }
        }
    }

    /// Decodes bytes read under `full`; on failure deletes the key and counts
    /// the error. Never panics.
    pub(crate) async fn decode_or_evict<T: DeserializeOwned>(
        &self,
        full: &str,
        bytes: &[u8],
    ) -> Option<T> {
        match codec::decode(bytes, self.inner.limits) {
            Ok(v) => Some(v),
            Err(e) => {
                let counters = &self.inner.counters;
                Counters::bump(&counters.errors);
                Counters::bump(&counters.corrupt_evicted);
                tracing::warn!(key = full, error = %e, "evicting undecodable cache value");
                let keys = [full.to_owned()];
                let _ = self.call(|b| b.unlink(&keys)).await;
                None
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
                Counters::bump(&self.inner.counters.sets_skipped);
                self.swallow("set", &e);
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
        let full = self.full_key(key)?;
        let tags = if options.tags.is_empty() {
            Vec::new()
        } else {
            self.tag_versions(&options.tags).await?
        };
        let mut options = options.clone();
        if options.negative_ttl.is_none() {
            // An explicit write of `None` is stored like any value.
            options.negative_ttl = Some(self.effective_ttl(options.ttl));
        }
        let Some((bytes, ttl)) = self.encode_entry(value, &options, Some(&tags))? else {
            return Ok(());
        };
        let physical = ttl + options.fail_safe.unwrap_or_default();
        // A load in flight for the key will see the key changed and not fill.
        let cmd = crate::backend::set_cmd(&full, &bytes, Some(physical));
        self.call(|b| b.query(&cmd)).await?;
        // The new value replaced whatever a deferred delete was after.
        self.inner.pending.remove(&full);
        Counters::bump(&self.inner.counters.sets);
        self.l1_evict(key);
        self.publish(Invalidation::Key(key.to_owned())).await;
        Ok(())
    }

    /// Reads several keys in one round trip; the result is in the order of
    /// `keys`, `None` for misses. Failures are misses.
    pub async fn get_many<T: DeserializeOwned, K: AsRef<str>>(&self, keys: &[K]) -> Vec<Option<T>> {
        match self.try_get_many(keys).await {
            Ok(v) => v,
            Err(e) => {
                self.swallow("get_many", &e);
                keys.iter().map(|_| None).collect()
            }
        }
    }

    /// Like [`get_many`](Self::get_many), returning Redis failures.
    pub async fn try_get_many<T: DeserializeOwned, K: AsRef<str>>(
        &self,
        keys: &[K],
    ) -> Result<Vec<Option<T>>, Error> {
        let full: Vec<String> = keys
            .iter()
            .map(|k| self.full_key(k.as_ref()))
            .collect::<Result<_, _>>()?;
        let counters = &self.inner.counters;
        let raw = match self.call(|b| b.mget(&full)).await {
            Ok(raw) => raw,
            Err(e) => {
                Counters::add(&counters.misses, full.len() as u64);
                return Err(e);
            }
        };
        let mut out = Vec::with_capacity(raw.len());
        for (k, bytes) in full.iter().zip(raw) {
            let bytes = bytes.filter(|_| !self.inner.pending.contains(k));
            let v = match bytes {
                Some(bytes) => match self.interpret(k, &bytes, None).await? {
                    L2Read::Fresh(v, _) => Some(v),
                    _ => None,
                },
                None => None,
            };
            Counters::bump(if v.is_some() {
                &counters.hits
            } else {
                &counters.misses
            });
            out.push(v);
        }
        Ok(out)
    }

    /// Stores several values with one TTL in one pipelined round trip.
    /// Errors only for caller mistakes, like [`set`](Self::set).
    pub async fn set_many<T: Serialize, K: AsRef<str>>(
        &self,
        items: &[(K, T)],
        ttl: Option<Duration>,
    ) -> Result<(), Error> {
        match self.try_set_many(items, ttl).await {
            Err(e) if !e.is_caller_error() => {
                Counters::add(&self.inner.counters.sets_skipped, items.len() as u64);
                self.swallow("set_many", &e);
                Ok(())
            }
            other => other,
        }
    }

    /// Like [`set_many`](Self::set_many), returning Redis failures.
    pub async fn try_set_many<T: Serialize, K: AsRef<str>>(
        &self,
        items: &[(K, T)],
        ttl: Option<Duration>,
    ) -> Result<(), Error> {
        let codec = self.inner.config.codec;
        let entries: Vec<Entry> = items
            .iter()
            .map(|(k, v)| {
                Ok((
                    self.full_key(k.as_ref())?,
                    codec.encode(v, self.inner.limits)?,
                    Some(self.effective_ttl(ttl)),
                ))
            })
            .collect::<Result<_, Error>>()?;
        self.call(|b| b.mset(&entries)).await?;
        for (full, _, _) in &entries {
            self.inner.pending.remove(full);
        }
        Counters::add(&self.inner.counters.sets, entries.len() as u64);
        for (key, _) in items {
            self.l1_evict(key.as_ref());
            self.publish(Invalidation::Key(key.as_ref().to_owned()))
                .await;
        }
        Ok(())
    }

    /// Adds `amount` to the integer at `key` (created at 0) and returns the
    /// new value; `None` when Redis is unavailable.
    pub async fn increment(&self, key: &str, amount: i64) -> Option<i64> {
        self.try_increment(key, amount)
            .await
            .map_err(|e| self.swallow("increment", &e))
            .ok()
    }

    /// Reads the counter at `key` straight from Redis (never from L1, since
    /// counters change without invalidations); `None` when absent or when
    /// Redis is unavailable.
    pub async fn counter(&self, key: &str) -> Option<i64> {
        let full = self.full_key(key).ok()?;
        let mut cmd = redis::cmd("GET");
        cmd.arg(&full);
        match self.call(|b| b.query(&cmd)).await {
            Ok(v) => redis::from_redis_value::<Option<i64>>(v).ok().flatten(),
            Err(e) => {
                self.swallow("counter", &e);
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
        let mut cmd = redis::cmd("INCRBY");
        cmd.arg(&full).arg(amount);
        let v = self.call(|b| b.query(&cmd)).await?;
        redis::from_redis_value(v).map_err(|e| Error::from_redis(&e.into(), None, Duration::ZERO))
    }

    /// Whether `key` exists; false when Redis is unavailable.
    pub async fn exists(&self, key: &str) -> bool {
        self.try_exists(key).await.unwrap_or_else(|e| {
            self.swallow("exists", &e);
            false
        })
    }

    /// Like [`exists`](Self::exists), returning Redis failures.
    pub async fn try_exists(&self, key: &str) -> Result<bool, Error> {
        let full = self.full_key(key)?;
        let mut cmd = redis::cmd("EXISTS");
        cmd.arg(&full);
        Ok(self.int(&cmd).await? > 0)
    }

    /// Deletes `key`; true when it existed. False when Redis is unavailable:
    /// writers that must not leave stale data should use
    /// [`try_delete`](Self::try_delete).
    pub async fn delete(&self, key: &str) -> bool {
        self.try_delete(key).await.unwrap_or_else(|e| {
            self.swallow("delete", &e);
            false
        })
    }

    /// Like [`delete`](Self::delete), returning Redis failures.
    pub async fn try_delete(&self, key: &str) -> Result<bool, Error> {
        let full = self.full_key(key)?;
        // The lease goes too, so a load in flight cannot fill an old value.
        let mut cmd = redis::cmd("UNLINK");
        cmd.arg(&full).arg(lease_key(&full));
        // Evict before and after: a concurrent read that fetched the old
        // value between the two cannot leave it in L1.
        self.l1_evict(key);
        let removed = self.int(&cmd).await;
        self.l1_evict(key);
        self.publish(Invalidation::Key(key.to_owned())).await;
        match removed {
            Ok(n) => Ok(n > 0),
            Err(e) => {
                // Redis may still hold the old entry: keep this instance
                // from reading it, and retry until Redis takes the delete.
                if crate::pending::is_owed_after(&e) {
                    self.defer_delete(&full);
                }
                Err(e)
            }
        }
    }

    /// Invalidates `key` in Redis, in this instance's L1 and in every other
    /// instance's L1. The same as [`delete`](Self::delete).
    pub async fn invalidate(&self, key: &str) -> bool {
        self.delete(key).await
    }

    /// Sets a new TTL on `key`; true when the key exists.
    pub async fn expire(&self, key: &str, ttl: Duration) -> bool {
        self.try_expire(key, ttl).await.unwrap_or_else(|e| {
            self.swallow("expire", &e);
            false
        })
    }

    /// Like [`expire`](Self::expire), returning Redis failures.
    pub async fn try_expire(&self, key: &str, ttl: Duration) -> Result<bool, Error> {
        let full = self.full_key(key)?;
        let mut cmd = redis::cmd("PEXPIRE");
        cmd.arg(&full).arg(ttl.as_millis().max(1) as u64);
        Ok(self.int(&cmd).await? == 1)
    }

    /// The remaining TTL of `key`; `None` when Redis is unavailable.
    pub async fn ttl(&self, key: &str) -> Option<KeyTtl> {
        self.try_ttl(key)
            .await
            .map_err(|e| self.swallow("ttl", &e))
            .ok()
    }

    /// Like [`ttl`](Self::ttl), returning Redis failures.
    pub async fn try_ttl(&self, key: &str) -> Result<KeyTtl, Error> {
        let full = self.full_key(key)?;
        let mut cmd = redis::cmd("PTTL");
        cmd.arg(&full);
        Ok(match self.int(&cmd).await? {
            -2 => KeyTtl::Missing,
            ms if ms < 0 => KeyTtl::Persistent,
            ms => KeyTtl::Expires(Duration::from_millis(ms as u64)),
        })
    }

    /// Removes every key of this cache's namespace with `SCAN MATCH` (the
    /// namespace glob-escaped) and `UNLINK`, in batches; never `KEYS`.
    /// Returns how many keys were removed.
    pub async fn clear_namespace(&self) -> Result<u64, Error> {
        let ns = key::escape_glob(&self.inner.config.namespace);
        let keys = format!("{ns}:*");
        // Lease keys are `{ns:...}:lease`: `{` is not a glob metacharacter.
        let leases = format!("{{{ns}:*");
        let removed = self.call(|b| b.clear(&keys, 500)).await?;
        let removed = removed + self.call(|b| b.clear(&leases, 500)).await?;
        if let Some(l1) = &self.inner.l1 {
            l1.store.clear();
        }
        self.inner.tags.clear();
        self.note_invalidation();
        self.publish(Invalidation::Clear).await;
        Ok(removed)
    }

    /// Removes every key of this namespace that starts with `prefix`
    /// (glob-escaped), with `SCAN` + `UNLINK`, and clears every instance's L1.
    pub async fn clear_prefix(&self, prefix: &str) -> Result<u64, Error> {
        let full = self.full_key(prefix)?;
        let pattern = format!("{}*", key::escape_glob(&full));
        let leases = format!("{{{}*", key::escape_glob(&full));
        let removed = self.call(|b| b.clear(&pattern, 500)).await?;
        let removed = removed + self.call(|b| b.clear(&leases, 500)).await?;
        if let Some(l1) = &self.inner.l1 {
            l1.store.clear();
        }
        self.note_invalidation();
        self.publish(Invalidation::Clear).await;
        Ok(removed)
    }

    async fn int(&self, cmd: &redis::Cmd) -> Result<i64, Error> {
        let v = self.call(|b| b.query(cmd)).await?;
        match v {
            redis::Value::Int(n) => Ok(n),
            other => Err(Error::Redis {
                category: "type error".to_owned(),
                message: format!("expected an integer reply, got {other:?}"),
                transient: false,
            }),
        }
    }
}
