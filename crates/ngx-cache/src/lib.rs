//! An async Redis cache with a coherent in-process L1 tier, connection
//! healing, a circuit breaker, fail-safe, stampede protection,
//! self-describing codecs, batch operations, counters, statistics and
//! health checks.
//!
//! # Layout
//! The folders are layers. A module imports only from its own layer or the
//! layers listed before it, never from a later one, so the imports form no
//! circle. Within a folder, `mod.rs` is the index: it declares the files and
//! re-exports, and no file imports it back.
//!
//! 1. Leaves, which import nothing but each other's types:
//!    - `error`: [`Error`] with `is_transient()`, and [`ConfigError`].
//!    - `redact`: removal of credentials from URLs ([`redact::redact_url`])
//!      and messages.
//!    - `key`: key validation and namespacing, lease, version and tag keys, glob
//!      escaping, [`stable_hash`], [`KeyTtl`].
//!    - `breaker`: the three-state [`CircuitBreaker`].
//!    - `stats`: the counters and the [`CacheStats`] snapshot.
//!    - `health`: the [`HealthReport`] shape (with [`NodeHealth`] per
//!      cluster primary) and `INFO` parsing.
//!    - [`telemetry`]: metric names, help text, units and bounded labels,
//!      recorded through the `metrics` facade.
//!    - `time`: the clock of L1 lifetimes and command latencies (the
//!      CPU's time-stamp counter where it is invariant).
//! 2. `value/`: [`Codec`]s, the metadata envelope, whole entries encoded
//!    and judged (pure, no I/O), [`Shared`] values, [`Cacheable`], and
//!    [`value::inspect`], which decodes a stored value of unknown type.
//! 3. Settings: `config/` ([`CacheConfig`], its builder, `from_env()`) and
//!    `options` ([`EntryOptions`] and the `get_or_load` result types).
//! 4. `backend/`: the backend in cache terms (`get_with_pttl`, `set`,
//!    `take_lease`, `checked_fill`, `versioned_set`, `mget`, `unlink`, `scan_unlink`,
//!    `publish`, `subscribe`, ...), an enum over implementations (the
//!    single-node pool, and Redis Cluster in `backend/cluster/`), the Lua
//!    scripts, TLS client set-up (`tls`), the least-privilege ACL rule
//!    ([`acl_rule`]) and [`redis_client`] for tools. The only place that
//!    uses the `redis` crate.
//! 5. `tier/`: the L1 store, and Redis reached through the breaker-guarded
//!    backend (`Remote`), without coherence.
//! 6. `coherence/`: what keeps L1 and Redis reads current across
//!    instances: the invalidation clock, tag versions, pending invalidations
//!    and their retry task, the invalidation channel's wire format and its
//!    publisher and subscriber tasks.
//! 7. `load/`: `get_or_load` and `get_or_load_many`: single-flight, lease
//!    and checked fill, fail-safe, timeouts, eager refresh.
//! 8. `cache/`: the [`Cache`] handle and its public operations (single
//!    keys, batches, tags and clears, `get_or_load`, warming, statistics and
//!    health), the process-wide [`global`] cache, and the hidden support
//!    code the macros' generated code calls (`__private`). Only this folder
//!    names `Cache`.
//!
//! Each component is one struct shared by `Arc`: `Remote` (Redis behind the
//! breaker), `Coherence` (L1 and invalidation) and `Loader` (single-flight
//! and fills). Background tasks hold the `Arc` of the component they serve
//! and stop when the last clone of the [`Cache`] is dropped.
//!
//! # Example
//! ```no_run
//! use std::time::Duration;
//! use ngx_cache::{Cache, CacheConfig};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Clone, Serialize, Deserialize)]
//! struct Profile { name: String }
//!
//! # async fn demo() -> Result<(), ngx_cache::Error> {
//! let cache = Cache::connect(CacheConfig::builder().namespace("demo").build()?).await?;
//! cache.set("user:1", &Profile { name: "Ana".into() }, Some(Duration::from_secs(300))).await?;
//! let p: Option<Profile> = cache.get("user:1").await; // a miss if Redis is down
//! cache.set_many(&[("a", 1), ("b", 2)], None).await?;
//! let counts: Vec<Option<i32>> = cache.get_many(&["a", "b", "c"]).await;
//! let visits = cache.increment("visits", 1).await;
//! println!("{:?}", cache.stats());
//! # Ok(()) }
//! ```
//!
//! # Failure behaviour
//! Every call has a timeout (250 ms by default). Transient failures count
//! toward the circuit breaker; while it is open, calls fail fast without I/O
//! and the fail-open methods miss or skip. Connections that keep timing out
//! are rebuilt in the background, because redis-rs's `ConnectionManager`
//! alone stays stuck on a connection that the network silently lost.

#![forbid(unsafe_code)]

// 1. Leaves.
pub mod breaker;
pub mod error;
pub mod health;
pub mod key;
pub mod redact;
pub mod stats;
pub mod telemetry;
mod time;
// 2. Values.
pub mod value;
// 3. Settings.
pub mod config;
pub mod options;
// 4. to 7. Storage, coherence and loading: internal.
mod backend;
mod coherence;
mod load;
mod tier;
// 8. The handle.
pub mod cache;

#[cfg(any(test, doctest))]
mod tour;

#[doc(hidden)]
pub use cache::fuzz as __fuzz;
#[doc(hidden)]
pub use cache::private as __private;

pub use backend::{
    KeyedConnection, NodeConnection, RedisNodes, UnreachableNode, acl_rule, redis_client,
    redis_keyed, redis_nodes,
};
pub use breaker::{BreakerConfig, BreakerState, CircuitBreaker};
pub use cache::{Cache, WarmEntry, WarmReport, global, install_global};
pub use config::{CacheConfig, CacheConfigBuilder};
pub use error::{ConfigError, Error, Result};
pub use health::{HealthReport, NodeHealth};
pub use key::{KeyTtl, escape_glob, stable_hash, try_stable_hash};
pub use options::{EntryOptions, LoadError, Loaded, Source};
pub use stats::{CacheStats, LagPercentiles};
pub use value::{Cacheable, Codec, Shared};

#[cfg(feature = "macros")]
pub use ngx_cache_macros::{cached, invalidate_cache};
