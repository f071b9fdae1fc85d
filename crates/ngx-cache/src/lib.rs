//! An async Redis cache with connection healing, a circuit breaker,
//! self-describing codecs, batch operations, counters, statistics and
//! health checks.
//!
//! # Layout
//! - `config`: [`CacheConfig`], its builder and `from_env()`.
//! - `cache`: the [`Cache`] handle, the breaker-guarded call path, stats and health.
//! - `ops`: typed operations (`get`, `set`, `get_many`, counters, keys), fail-open and `try_*`.
//! - `load`: [`Cache::get_or_load`]: L1, Redis, loader; fail-safe, timeouts, eager refresh.
//! - `fill`: leases and the checked fill that prevents stale sets.
//! - `flight`: single-flight per key within the process.
//! - `read`: reading an entry from Redis, envelopes and freshness.
//! - `envelope`: the metadata envelope (logical expiry, TTL, tag versions).
//! - `l1`: the in-process tier behind a small trait (quick_cache today).
//! - `coherence`: L1 lookups and fills, the invalidation subscriber.
//! - `bus`: invalidation messages, sequence gaps and lag.
//! - `tag`: tag versions and [`Cache::invalidate_tag`].
//! - `warm`: [`Cache::warm`].
//! - `backend`: the internal `Backend` trait and the pooled, self-healing single-node backend.
//! - `breaker`: the three-state [`CircuitBreaker`].
//! - `codec`: JSON, marked MessagePack and LZ4 compression ([`Codec`]).
//! - `key`: key validation, namespacing, glob escaping and [`stable_hash`].
//! - `options`: [`EntryOptions`] and the `get_or_load` result types.
//! - `shared`: [`Shared`], a value cached by reference with memoized JSON.
//! - `pending`: deletes that could not reach Redis, retried in the background.
//! - `global`: the process-wide default cache for the macros.
//! - `__private` (`private.rs`, hidden): support code the macros' generated code calls.
//! - `stats`, `health`: the [`CacheStats`] and [`HealthReport`] shapes.
//! - `error`: [`Error`] and its `is_transient()` classification.
//! - `redact`: removal of credentials from URLs and messages.
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

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;
mod backend;
pub mod breaker;
mod bus;
mod cache;
pub mod codec;
mod coherence;
pub mod config;
mod envelope;
mod error;
mod fill;
mod flight;
mod global;
mod health;
mod key;
mod l1;
mod load;
mod ops;
pub mod options;
mod pending;
mod read;
mod redact;
mod shared;
mod stats;
mod tag;
pub mod telemetry;
mod warm;

pub use breaker::{BreakerConfig, BreakerState, CircuitBreaker};
pub use bus::LagPercentiles;
pub use cache::Cache;
pub use codec::Codec;
pub use config::{CacheConfig, CacheConfigBuilder, ConfigError};
pub use error::{Error, Result};
pub use global::{global, install_global};
pub use health::HealthReport;
pub use key::{escape_glob, stable_hash, try_stable_hash};
pub use load::Cacheable;
pub use ops::KeyTtl;
pub use options::{EntryOptions, LoadError, Loaded, Source};
pub use shared::Shared;
pub use stats::CacheStats;
pub use warm::{WarmEntry, WarmReport};

#[cfg(feature = "macros")]
pub use ngx_cache_macros::{cached, invalidate_cache};
