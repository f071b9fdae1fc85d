//! Batch operations on [`Cache`]: several keys in one round trip.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::handle::Cache;
use crate::backend::Entry;
use crate::coherence::RedisRead;
use crate::error::{Error, log_skipped};
use crate::telemetry::{Count, key_type};

impl Cache {
    /// Reads several keys in one round trip; the result is in the order of
    /// `keys`, `None` for misses. Failures are misses.
    pub async fn get_many<T: DeserializeOwned, K: AsRef<str>>(&self, keys: &[K]) -> Vec<Option<T>> {
        match self.try_get_many(keys).await {
            Ok(v) => v,
            Err(e) => {
                log_skipped("get_many", &e);
                keys.iter().map(|_| None).collect()
            }
        }
    }

    /// Like [`get_many`](Self::get_many), returning Redis failures.
    pub async fn try_get_many<T: DeserializeOwned, K: AsRef<str>>(
        &self,
        keys: &[K],
    ) -> Result<Vec<Option<T>>, Error> {
        let buf = self.inner.keys.full_many(keys.iter().map(AsRef::as_ref))?;
        let full: Vec<&str> = buf.iter().collect();
        let counters = self.counters();
        let coherence = &self.inner.coherence;
        let raw = match self.inner.remote.call(|b| b.mget(&full)).await {
            Ok(raw) => raw,
            Err(e) => {
                for k in keys {
                    counters.miss(k.as_ref());
                }
                return Err(e);
            }
        };
        let mut out = Vec::with_capacity(raw.len());
        // Hits and misses are counted once per run of keys of one type.
        let mut run: Option<(&str, Option<&str>, u64, u64)> = None;
        for ((k, bytes), rel) in full.iter().zip(raw).zip(keys) {
            let bytes = bytes.filter(|_| !coherence.has_pending_delete(k));
            let read = match bytes.map(|b| coherence.judge_plain(b, None)) {
                Some(Ok(read)) => Some(read),
                Some(Err(rest)) => Some(coherence.judge_rest(k, rest, None).await?),
                None => None,
            };
            let v = match read {
                Some(RedisRead::Fresh(v, _)) => Some(v),
                _ => None,
            };
            let rel = rel.as_ref();
            let kind = key_type(rel);
            let (hit, miss) = if v.is_some() { (1, 0) } else { (0, 1) };
            match &mut run {
                Some((_, run_kind, hits, misses)) if *run_kind == kind => {
                    *hits += hit;
                    *misses += miss;
                }
                _ => {
                    if let Some((first, _, hits, misses)) = run {
                        counters.l2_reads(first, hits, misses);
                    }
                    run = Some((rel, kind, hit, miss));
                }
            }
            out.push(v);
        }
        if let Some((first, _, hits, misses)) = run {
            counters.l2_reads(first, hits, misses);
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
                self.counters().inc(Count::SetsSkipped, items.len() as u64);
                log_skipped("set_many", &e);
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
        let config = &self.inner.config;
        let entries: Vec<Entry> = items
            .iter()
            .map(|(k, v)| {
                Ok((
                    self.full_key(k.as_ref())?,
                    config.codec.encode(v, config.limits())?,
                    Some(config.jittered_ttl(ttl)),
                ))
            })
            .collect::<Result<_, Error>>()?;
        self.inner.remote.call(|b| b.mset(&entries)).await?;
        self.counters().inc(Count::Sets, entries.len() as u64);
        for ((key, _), (full, _, _)) in items.iter().zip(&entries) {
            self.inner.coherence.written(key.as_ref(), full).await;
        }
        Ok(())
    }
}
