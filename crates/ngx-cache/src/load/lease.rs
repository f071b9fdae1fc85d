//! Loading under a lease and filling both tiers without stale sets.
//!
//! The race this prevents: a reader misses and reads v1 from the database; a
//! writer commits v2 and invalidates the key; the reader then writes v1 to the
//! cache. Before loading, the reader takes a lease, `SET <lease key> token NX
//! PX`, and in the same round trip reads what the key holds (usually nothing,
//! or a stale fail-safe value). The fill is a Lua script that writes only if
//! the lease still holds the reader's token *and* the key still holds what
//! the reader saw. A `delete` removes the lease with the key; a `set` changes
//! the key. Either way the racing fill is refused, and a plain `set` stays a
//! single `SET`. The lease key (`key::lease_key`) hashes to the data key's
//! slot, so both live in one cluster slot and the script (in `backend/`) is
//! cluster-safe.
//!
//! [`EntryOptions::skip_lease`] leaves the lease out for values that are a
//! pure function of their key: the loader starts at once and the fill is a
//! plain `SET`, guarded only by the tag versions read before the loader.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::loader::Loader;
use crate::backend::Lease;
use crate::coherence::RedisRead;
use crate::error::{Error, log_skipped};
use crate::options::{EntryOptions, LoadError};
use crate::stats::Keyed;
use crate::telemetry::Count;
use crate::tier::l1::L1Times;
use crate::value::Cacheable;
use crate::value::entry::{self, Meta};

/// How often a waiter polls Redis for another instance's load.
const POLL: Duration = Duration::from_millis(25);

/// What the key held when the lease was taken.
type Observed = Option<Vec<u8>>;

/// Where a flight sends its result: the callers waiting for it.
pub(super) type Answer<T, E> = futures::channel::oneshot::Sender<Result<T, LoadError<E>>>;

impl Loader {
    /// The body of a flight: lease, wait for another instance or load, fill.
    /// `reading` is the clock reading taken before the caller's Redis read.
    /// The result goes to `answer`: after the fill, or before it with
    /// [`EntryOptions::background_fill`].
    pub(super) async fn load_and_fill<T, E, F, Fut>(
        &self,
        key: &str,
        full: &str,
        opts: &EntryOptions,
        loader: F,
        reading: u64,
        answer: Answer<T, E>,
    ) where
        T: Cacheable,
        E: Send + Sync + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        let counters = self.remote.counters();
        let token = format!("{:016x}", rand::random::<u64>());
        let (mut have_lease, mut observed) = if opts.skip_lease {
            (None, None)
        } else {
            self.take_lease(full, &token, opts.lease).await
        };
        if have_lease == Some(false) && opts.distributed {
            let deadline = Instant::now() + opts.lock_wait;
            while Instant::now() < deadline {
                tokio::time::sleep(POLL).await;
                if let Ok(RedisRead::Fresh(value, meta)) = self.coherence.read::<T>(full).await {
                    counters.inc(Count::DistributedWaits, 1);
                    self.fill_l1(key, &value, opts, meta, reading);
                    let _ = answer.send(Ok(value));
                    return;
                }
                (have_lease, observed) = self.take_lease(full, &token, opts.lease).await;
                if have_lease != Some(false) {
                    break;
                }
            }
        }
        let tags = if opts.tags.is_empty() {
            Some(Vec::new())
        } else {
            self.coherence.tag_versions(&opts.tags).await.ok()
        };
        counters.keyed(Keyed::Loads, key);
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
                // A caller that stopped waiting dropped its receiver: the
                // fill goes on regardless, so `send` errors are ignored.
                if opts.background_fill {
                    let _ = answer.send(Ok(value.clone()));
                    self.fill(key, full, &value, opts, tags, lease_held, reading)
                        .await;
                } else {
                    self.fill(key, full, &value, opts, tags, lease_held, reading)
                        .await;
                    let _ = answer.send(Ok(value));
                }
            }
            Err(e) => {
                counters.keyed(Keyed::LoadFailures, key);
                self.release_lease(full, token).await;
                let _ = answer.send(Err(e));
            }
        }
    }

    /// Tries to take the lease of `full` and reads the key, in one round
    /// trip. `Some(true)`: lease taken; `Some(false)`: someone else holds
    /// it; `None`: Redis unavailable. Also returns what the key holds.
    pub(super) async fn take_lease(
        &self,
        full: &str,
        token: &str,
        ttl: Duration,
    ) -> (Option<bool>, Observed) {
        match self.remote.call(|b| b.take_lease(full, token, ttl)).await {
            Ok(Lease { taken, observed }) => (Some(taken), observed),
            Err(e) => {
                log_skipped("acquire lease", &e);
                (None, None)
            }
        }
    }

    /// Releases the lease of `full` if this load holds it (`token`).
    pub(super) async fn release_lease(&self, full: &str, token: Option<&str>) {
        let Some(token) = token else { return };
        if let Err(e) = self.remote.call(|b| b.release_lease(full, token)).await {
            log_skipped("release lease", &e);
        }
    }

    /// Writes a loaded value to Redis (only under a valid lease, or with a
    /// plain `SET` for [`EntryOptions::skip_lease`]) and to L1 (only if no
    /// invalidation was applied since the clock `reading`).
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn fill<T: Cacheable>(
        &self,
        key: &str,
        full: &str,
        value: &T,
        opts: &EntryOptions,
        tags: Option<Vec<(String, u64)>>,
        lease_held: Option<(&str, &Observed)>,
        reading: u64,
    ) {
        let token = lease_held.map(|(t, _)| t);
        let Some(tags) = tags else {
            // Tag versions unknown (Redis unavailable): caching could outlive
            // an invalidation we cannot see.
            self.release_lease(full, token).await;
            return;
        };
        let (bytes, ttl) = match entry::encode(value, &opts.entry_spec(&self.config, &tags)) {
            Ok(Some(stored)) => stored,
            Ok(None) => {
                // A `None` without negative caching.
                self.release_lease(full, token).await;
                return;
            }
            Err(e) => {
                tracing::warn!(key, error = %e, "loaded value not cached");
                self.release_lease(full, token).await;
                return;
            }
        };
        let physical = opts.physical_ttl(ttl);
        let plain = opts.skip_lease || (lease_held.is_some() && opts.skips_fill_check());
        let filled = match lease_held {
            _ if plain => Some(self.plain_fill(full, &bytes, physical).await),
            Some((token, observed)) => Some(
                self.remote
                    .call(|b| b.checked_fill(full, token, &bytes, physical, observed.as_deref()))
                    .await,
            ),
            // No lease (Redis was unavailable when the load began): L1 only.
            None => None,
        };
        match filled {
            Some(Ok(false)) => {
                self.remote.counters().inc(Count::FillsRejected, 1);
                tracing::debug!(key, "fill refused: the key was invalidated during the load");
                return;
            }
            Some(Ok(true)) => self.remote.counters().inc(Count::Sets, 1),
            Some(Err(e)) => log_skipped("fill", &e),
            None => {}
        }
        let meta = Meta::written(ttl, physical, tags, bytes.len());
        self.fill_l1(key, value, opts, meta, reading);
    }

    /// Writes a loaded value to Redis without checking a lease.
    async fn plain_fill(&self, full: &str, bytes: &[u8], ttl: Duration) -> Result<bool, Error> {
        self.remote
            .call(|b| b.set(full, bytes, Some(ttl)))
            .await
            .map(|()| true)
    }

    /// Puts a loaded value into L1 unless an invalidation was applied since
    /// the clock `reading`.
    fn fill_l1<T: Cacheable>(
        &self,
        key: &str,
        value: &T,
        opts: &EntryOptions,
        meta: Meta,
        reading: u64,
    ) {
        if opts.l1 && self.coherence.has_l1() {
            let times = L1Times::of(&meta, Some(opts), self.config.l1_max_ttl);
            self.coherence
                .put(key, value.clone(), &times, meta.tags, Some(reading));
        }
    }
}
