//! Batch operations on [`Cache`]: several keys in one round trip.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::handle::Cache;
use crate::backend::Entry;
use crate::coherence::RedisRead;
use crate::error::{Error, log_skipped};
use crate::stats::Counters;

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
        let full: Vec<String> = keys
            .iter()
            .map(|k| self.full_key(k.as_ref()))
            .collect::<Result<_, _>>()?;
        let counters = self.counters();
        let coherence = &self.inner.coherence;
        let raw = match self.inner.remote.call(|b| b.mget(&full)).await {
            Ok(raw) => raw,
            Err(e) => {
                Counters::add(&counters.misses, full.len() as u64);
                return Err(e);
            }
        };
        let mut out = Vec::with_capacity(raw.len());
        for (k, bytes) in full.iter().zip(raw) {
            let bytes = bytes.filter(|_| !coherence.has_pending_delete(k));
            let v = match bytes {
                Some(bytes) => match coherence.judge(k, &bytes, None).await? {
                    RedisRead::Fresh(v, _) => Some(v),
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
                Counters::add(&self.counters().sets_skipped, items.len() as u64);
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
        Counters::add(&self.counters().sets, entries.len() as u64);
        for ((key, _), (full, _, _)) in items.iter().zip(&entries) {
            self.inner.coherence.written(key.as_ref(), full).await;
        }
        Ok(())
    }
}
