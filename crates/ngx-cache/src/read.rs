//! Reading one entry from Redis: plain values and envelopes, logical expiry,
//! tag validity, and the lifetimes an L1 copy may have.

use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::Cache;
use crate::backend::value_to_bytes;
use crate::coherence::L1Times;
use crate::envelope::{self, now_ms};
use crate::error::Error;
use crate::options::EntryOptions;

/// What Redis holds for a key.
pub(crate) enum L2Read<T> {
    /// A value within its logical TTL, with valid tags.
    Fresh(T, Meta),
    /// A value past its logical TTL but kept for fail-safe.
    Stale(T, Meta),
    /// Nothing usable: absent, corrupt, or invalidated by a tag.
    Missing,
}

/// What is known about a stored value's lifetime.
#[derive(Debug, Clone, Default)]
pub(crate) struct Meta {
    /// Time left of the logical TTL.
    pub(crate) logical_left: Option<Duration>,
    /// Time left before Redis drops the key (`PTTL`), when read.
    pub(crate) physical_left: Option<Duration>,
    /// The logical TTL it was written with (envelopes only).
    pub(crate) ttl: Option<Duration>,
    /// Tags and the versions it was loaded under.
    pub(crate) tags: Vec<(String, u64)>,
}

impl Meta {
    /// Lifetimes for an L1 copy under `opts`.
    pub(crate) fn l1_times(&self, opts: Option<&EntryOptions>, l1_max: Duration) -> L1Times {
        let logical = self.logical_left.or(self.physical_left).unwrap_or(l1_max);
        let mut fresh_for = logical.min(l1_max);
        if let Some(l1_ttl) = opts.and_then(|o| o.l1_ttl) {
            fresh_for = fresh_for.min(l1_ttl);
        }
        let stale_for = match (opts.and_then(|o| o.fail_safe), self.physical_left) {
            (Some(_), Some(physical)) => Some(physical),
            (Some(window), None) => Some(logical + window),
            (None, _) => None,
        };
        let refresh_in = match (opts.and_then(|o| o.eager_refresh), self.ttl) {
            (Some(f), Some(ttl)) if f > 0.0 && f < 1.0 => {
                let age = ttl.saturating_sub(logical);
                Some(ttl.mul_f64(f).saturating_sub(age))
            }
            _ => None,
        };
        L1Times {
            fresh_for,
            stale_for,
            refresh_in,
            throttled: false,
        }
    }

    /// Whether a hit now should start an eager refresh.
    pub(crate) fn refresh_due(&self, opts: &EntryOptions) -> bool {
        match (opts.eager_refresh, self.ttl, self.logical_left) {
            (Some(f), Some(ttl), Some(left)) if f > 0.0 && f < 1.0 => {
                ttl.saturating_sub(left) >= ttl.mul_f64(f)
            }
            _ => false,
        }
    }
}

impl Cache {
    /// Reads `full` (the namespaced form of `key`) from Redis. `GET` and
    /// `PTTL` go in one pipelined round trip when L1 needs the lifetime.
    pub(crate) async fn read_l2<T: DeserializeOwned>(
        &self,
        full: &str,
    ) -> Result<L2Read<T>, Error> {
        if self.inner.pending.contains(full) {
            // A delete of this key has not reached Redis yet: what Redis
            // holds is older than a committed write.
            return Ok(L2Read::Missing);
        }
        let (bytes, pttl) = if self.inner.l1.is_some() {
            let mut pipe = redis::pipe();
            pipe.cmd("GET").arg(full).cmd("PTTL").arg(full);
            let mut replies = self.call(|b| b.pipeline(&pipe)).await?.into_iter();
            let bytes = value_to_bytes(replies.next().unwrap_or(redis::Value::Nil))?;
            let pttl = match replies.next() {
                Some(redis::Value::Int(ms)) if ms > 0 => Some(Duration::from_millis(ms as u64)),
                _ => None,
            };
            (bytes, pttl)
        } else {
            let mut cmd = redis::cmd("GET");
            cmd.arg(full);
            (value_to_bytes(self.call(|b| b.query(&cmd)).await?)?, None)
        };
        let Some(bytes) = bytes else {
            return Ok(L2Read::Missing);
        };
        self.interpret(full, &bytes, pttl).await
    }

    /// Decodes stored bytes (plain or envelope) and judges their freshness.
    /// Corrupt bytes are evicted and read as `Missing`.
    pub(crate) async fn interpret<T: DeserializeOwned>(
        &self,
        full: &str,
        bytes: &[u8],
        physical_left: Option<Duration>,
    ) -> Result<L2Read<T>, Error> {
        if !envelope::is_envelope(bytes) {
            return Ok(match self.decode_or_evict(full, bytes).await {
                Some(v) => L2Read::Fresh(
                    v,
                    Meta {
                        physical_left,
                        ..Meta::default()
                    },
                ),
                None => L2Read::Missing,
            });
        }
        let env = match envelope::decode(bytes) {
            Ok(env) => env,
            Err(_) => {
                // A plain value that merely starts like an envelope (written
                // by another client) is still a value; anything else is
                // counted and evicted by the common path.
                return Ok(match self.decode_or_evict::<T>(full, bytes).await {
                    Some(v) => L2Read::Fresh(
                        v,
                        Meta {
                            physical_left,
                            ..Meta::default()
                        },
                    ),
                    None => L2Read::Missing,
                });
            }
        };
        let Some(value) = self.decode_or_evict::<T>(full, env.payload).await else {
            return Ok(L2Read::Missing);
        };
        if !env.tags.is_empty() {
            if self
                .inner
                .tags
                .any_pending(env.tags.iter().map(|(t, _)| t.as_str()))
            {
                // Invalidated by a write whose tag bump has not reached
                // Redis yet.
                return Ok(L2Read::Missing);
            }
            let names: Vec<String> = env.tags.iter().map(|(t, _)| t.clone()).collect();
            let current = self.tag_versions(&names).await?;
            if current != env.tags {
                return Ok(L2Read::Missing);
            }
        }
        let now = now_ms();
        let meta = Meta {
            logical_left: env
                .logical_expiry_ms
                .checked_sub(now)
                .filter(|ms| *ms > 0)
                .map(Duration::from_millis),
            physical_left,
            ttl: Some(Duration::from_millis(env.ttl_ms)),
            tags: env.tags,
        };
        Ok(if meta.logical_left.is_some() {
            L2Read::Fresh(value, meta)
        } else {
            L2Read::Stale(value, meta)
        })
    }
}
