//! Loading under a lease and filling both tiers without stale sets.
//!
//! The race this prevents: a reader misses and reads v1 from the database; a
//! writer commits v2 and invalidates the key; the reader then writes v1 to the
//! cache. Before loading, the reader takes a lease, `SET {key}:lease token NX
//! PX`, and in the same round trip reads what the key holds (usually nothing,
//! or a stale fail-safe value). The fill is a Lua script that writes only if
//! the lease still holds the reader's token *and* the key still holds what
//! the reader saw. A `delete` removes the lease with the key; a `set` changes
//! the key. Either way the racing fill is refused, and a plain `set` stays a
//! single `SET`. The lease key carries the data key as its hash tag, so both
//! live in one cluster slot and the script is cluster-safe.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::Cache;
use crate::envelope::{self, now_ms};
use crate::error::Error;
use crate::load::Cacheable;
use crate::options::{EntryOptions, LoadError};
use crate::read::{L2Read, Meta};
use crate::stats::Counters;

// KEYS: data, lease. ARGV: token, value, px, '1' if the key held ARGV[5]
// when the lease was taken ('0' if it was absent), the bytes it held.
const FILL_SCRIPT: &str = r"
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
local current = redis.call('GET', KEYS[1])
if ARGV[4] == '1' then
  if current ~= ARGV[5] then return 0 end
elseif current then
  return 0
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
redis.call('DEL', KEYS[2])
return 1";

/// What the key held when the lease was taken.
type Observed = Option<Vec<u8>>;

const RELEASE_SCRIPT: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0";

/// How often a waiter polls Redis for another instance's load.
const POLL: Duration = Duration::from_millis(25);

/// The lease key of `full`, in the same cluster slot.
pub(crate) fn lease_key(full: &str) -> String {
    let has_tag = full
        .find('{')
        .is_some_and(|open| full[open + 1..].find('}').is_some_and(|len| len > 0));
    if has_tag {
        format!("{full}:lease")
    } else {
        format!("{{{full}}}:lease")
    }
}

impl Cache {
    /// The body of a flight: lease, wait for another instance or load, fill.
    pub(crate) async fn load_and_fill<T, E, F, Fut>(
        &self,
        key: &str,
        full: &str,
        opts: &EntryOptions,
        loader: F,
        snapshot: u64,
    ) -> Result<T, LoadError<E>>
    where
        T: Cacheable,
        E: Send + Sync + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        let counters = &self.inner.counters;
        let lease = lease_key(full);
        let token = format!("{:016x}", rand::random::<u64>());
        let (mut have_lease, mut observed) =
            self.acquire_lease(full, &lease, &token, opts.lease).await;
        if have_lease == Some(false) && opts.distributed {
            let deadline = Instant::now() + opts.lock_wait;
            while Instant::now() < deadline {
                tokio::time::sleep(POLL).await;
                if let Ok(L2Read::Fresh(value, meta)) = self.read_l2::<T>(full).await {
                    Counters::bump(&counters.distributed_waits);
                    self.fill_l1(key, &value, opts, meta, snapshot);
                    return Ok(value);
                }
                (have_lease, observed) = self.acquire_lease(full, &lease, &token, opts.lease).await;
                if have_lease != Some(false) {
                    break;
                }
            }
        }
        let tags = if opts.tags.is_empty() {
            Some(Vec::new())
        } else {
            self.tag_versions(&opts.tags).await.ok()
        };
        Counters::bump(&counters.loads);
        let outcome = match opts.hard_timeout {
            Some(limit) => match tokio::time::timeout(limit, loader()).await {
                Ok(outcome) => outcome.map_err(|e| LoadError::Loader(Arc::new(e))),
                Err(_) => Err(LoadError::Timeout(limit)),
            },
            None => loader().await.map_err(|e| LoadError::Loader(Arc::new(e))),
        };
        let token = (have_lease == Some(true)).then_some(token.as_str());
        match outcome {
            Ok(value) => {
                let lease_held = token.map(|t| (t, &observed));
                self.fill(key, full, &value, opts, tags, lease_held, snapshot)
                    .await;
                Ok(value)
            }
            Err(e) => {
                Counters::bump(&counters.load_failures);
                self.release_lease(&lease, token).await;
                Err(e)
            }
        }
    }

    /// Tries to take the lease and reads the key, in one round trip.
    /// `Some(true)`: lease taken; `Some(false)`: someone else holds it;
    /// `None`: Redis unavailable. Also returns what the key holds.
    async fn acquire_lease(
        &self,
        full: &str,
        lease: &str,
        token: &str,
        ttl: Duration,
    ) -> (Option<bool>, Observed) {
        let mut pipe = redis::pipe();
        pipe.cmd("SET")
            .arg(lease)
            .arg(token)
            .arg("NX")
            .arg("PX")
            .arg(ttl.as_millis().max(1) as u64)
            .cmd("GET")
            .arg(full);
        match self.call(|b| b.pipeline(&pipe)).await {
            Ok(replies) => {
                let mut replies = replies.into_iter();
                let taken = !matches!(replies.next(), Some(redis::Value::Nil) | None);
                let observed = replies
                    .next()
                    .and_then(|v| crate::backend::value_to_bytes(v).ok().flatten());
                (Some(taken), observed)
            }
            Err(e) => {
                self.swallow("acquire lease", &e);
                (None, None)
            }
        }
    }

    async fn release_lease(&self, lease: &str, token: Option<&str>) {
        let Some(token) = token else { return };
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(RELEASE_SCRIPT).arg(1).arg(lease).arg(token);
        if let Err(e) = self.call(|b| b.query(&cmd)).await {
            self.swallow("release lease", &e);
        }
    }

    /// Writes a loaded value to Redis (only under a valid lease) and to L1
    /// (only if no invalidation was applied since `snapshot`).
    #[allow(clippy::too_many_arguments)]
    async fn fill<T: Cacheable>(
        &self,
        key: &str,
        full: &str,
        value: &T,
        opts: &EntryOptions,
        tags: Option<Vec<(String, u64)>>,
        lease_held: Option<(&str, &Observed)>,
        snapshot: u64,
    ) {
        let lease = lease_key(full);
        let token = lease_held.map(|(t, _)| t);
        let Some(tags) = tags else {
            // Tag versions unknown (Redis unavailable): caching could outlive
            // an invalidation we cannot see.
            self.release_lease(&lease, token).await;
            return;
        };
        let (bytes, ttl) = match self.encode_entry(value, opts, Some(&tags)) {
            Ok(Some(stored)) => stored,
            Ok(None) => {
                // A `None` without negative caching.
                self.release_lease(&lease, token).await;
                return;
            }
            Err(e) => {
                tracing::warn!(key, error = %e, "loaded value not cached");
                self.release_lease(&lease, token).await;
                return;
            }
        };
        let physical = ttl + opts.fail_safe.unwrap_or_default();
        if let Some((token, observed)) = lease_held {
            let px = physical.as_millis().max(1) as u64;
            let cmd = if opts.unchecked_fill {
                crate::backend::set_cmd(full, &bytes, Some(physical))
            } else {
                let mut cmd = redis::cmd("EVAL");
                cmd.arg(FILL_SCRIPT)
                    .arg(2)
                    .arg(full)
                    .arg(&lease)
                    .arg(token)
                    .arg(&bytes)
                    .arg(px);
                match observed {
                    Some(held) => cmd.arg("1").arg(held.as_slice()),
                    None => cmd.arg("0").arg(""),
                };
                cmd
            };
            match self.call(|b| b.query(&cmd)).await {
                Ok(redis::Value::Int(0)) => {
                    Counters::bump(&self.inner.counters.fills_rejected);
                    tracing::debug!(key, "fill refused: the key was invalidated during the load");
                    return;
                }
                Ok(_) => Counters::bump(&self.inner.counters.sets),
                Err(e) => self.swallow("fill", &e),
            }
        }
        let meta = Meta {
            logical_left: Some(ttl),
            physical_left: Some(physical),
            ttl: Some(ttl),
            tags,
        };
        self.fill_l1(key, value, opts, meta, snapshot);
    }

    pub(crate) fn fill_l1<T: Cacheable>(
        &self,
        key: &str,
        value: &T,
        opts: &EntryOptions,
        meta: Meta,
        snapshot: u64,
    ) {
        if opts.l1 && self.inner.l1.is_some() {
            let times = meta.l1_times(Some(opts), self.inner.config.l1_max_ttl);
            self.l1_put(key, value.clone(), &times, meta.tags, Some(snapshot));
        }
    }

    /// Encodes a value for Redis under `opts`: `Ok(None)` for a `None` that
    /// must not be cached. Returns the bytes and the logical TTL (jittered).
    pub(crate) fn encode_entry<T: serde::Serialize + ?Sized>(
        &self,
        value: &T,
        opts: &EntryOptions,
        tags: Option<&[(String, u64)]>,
    ) -> Result<Option<(Vec<u8>, Duration)>, Error> {
        let codec = opts.codec.unwrap_or(self.inner.config.codec);
        let payload = codec.encode(value, self.inner.limits)?;
        let is_none = payload == b"null" || payload == [0x01, 0xc0];
        let ttl = match (is_none, opts.negative_ttl) {
            (true, None) => return Ok(None),
            (true, Some(negative)) => negative,
            (false, _) => self.effective_ttl(opts.ttl),
        };
        if !opts.needs_envelope() {
            return Ok(Some((payload, ttl)));
        }
        let ttl_ms = ttl.as_millis() as u64;
        let bytes = envelope::encode(now_ms() + ttl_ms, ttl_ms, tags.unwrap_or(&[]), &payload)?;
        if bytes.len() > self.inner.limits.max_value_bytes {
            return Err(Error::ValueTooLarge {
                size: bytes.len(),
                limit: self.inner.limits.max_value_bytes,
            });
        }
        Ok(Some((bytes, ttl)))
    }
}

#[cfg(test)]
mod tests {
    use super::lease_key;

    #[test]
    fn lease_keys_share_the_slot() {
        assert_eq!(lease_key("ngx:conv:v1:a"), "{ngx:conv:v1:a}:lease");
        assert_eq!(lease_key("ngx:{user1}:x"), "ngx:{user1}:x:lease");
        assert_eq!(lease_key("ngx:{}:x"), "{ngx:{}:x}:lease");
    }
}
