//! Metrics through the [`metrics`] facade: names, help text, units and
//! bounded labels.
//!
//! The cache records its metrics through the `metrics` crate's global
//! recorder, so any application that installs an exporter (for example
//! `metrics-exporter-prometheus`) gets them; without one, recording costs
//! next to nothing. Install the recorder **before** the cache connects:
//! the cache takes its metric handles from the recorder installed at that
//! moment.
//!
//! Histograms are best exported with buckets: see [`REDIS_COMMAND_BUCKETS`]
//! and [`INVALIDATION_LAG_BUCKETS`].
//!
//! # Labels
//! Every label takes a bounded set of values, never a key or an id:
//! - `tier`: `l1` (in process) or `l2` (Redis);
//! - `key_type`: the first segment of the key after the namespace (`conv` in
//!   `ngx:conv:v1:42`), when it is a short word; the first
//!   [`MAX_KEY_TYPES`] distinct ones per cache, anything else `other`;
//! - `kind`: the error kind ([`Error::kind`](crate::Error::kind));
//! - `command`: the Redis command, from a fixed list, else `other`;
//! - `state`, `to`: breaker states `closed`, `open`, `half_open`.

use std::time::Duration;

use metrics::{Counter, Histogram, Unit};
use std::sync::OnceLock;

use parking_lot::Mutex;

use crate::breaker::BreakerState;

/// Reads that found a value, by `tier` and `key_type`.
pub const HITS: &str = "ngx_cache_hits_total";
/// Reads that found nothing, by `key_type`.
pub const MISSES: &str = "ngx_cache_misses_total";
/// Failed cache operations and undecodable values, by `kind`.
pub const ERRORS: &str = "ngx_cache_errors_total";
/// Redis round-trip latency in seconds, by `command`.
pub const REDIS_COMMAND_DURATION: &str = "ngx_cache_redis_command_duration_seconds";
/// 1 for the breaker's current `state`, 0 for the others.
pub const BREAKER_STATE: &str = "ngx_cache_circuit_breaker_state";
/// Breaker state changes, by the state entered (`to`).
pub const BREAKER_TRANSITIONS: &str = "ngx_cache_circuit_breaker_transitions_total";
/// Stale values served by fail-safe, by `key_type`.
pub const STALE_SERVED: &str = "ngx_cache_stale_served_total";
/// Loader runs started, by `key_type`.
pub const LOADS: &str = "ngx_cache_loads_total";
/// Loader runs that failed or timed out, by `key_type`.
pub const LOAD_FAILURES: &str = "ngx_cache_load_failures_total";
/// Callers that waited for a load already in flight here, by `key_type`.
pub const COALESCED_WAITS: &str = "ngx_cache_coalesced_waits_total";
/// Invalidation lag, publish on one instance to eviction here, in seconds.
pub const INVALIDATION_LAG: &str = "ngx_cache_invalidation_lag_seconds";
/// Key deletes that could not reach Redis yet and are being retried.
pub const PENDING_DELETES: &str = "ngx_cache_pending_deletes";
/// Tag version bumps that could not reach Redis yet and are being retried.
pub const PENDING_TAG_INVALIDATIONS: &str = "ngx_cache_pending_tag_invalidations";
/// Redis connections rebuilt.
pub const RECONNECTS: &str = "ngx_cache_reconnects_total";
/// Entries held in L1.
pub const L1_ENTRIES: &str = "ngx_cache_l1_entries";
/// Weight of the entries held in L1, in bytes (as estimated by the weigher).
pub const L1_WEIGHT: &str = "ngx_cache_l1_weight_bytes";

/// Suggested histogram buckets (seconds) for [`REDIS_COMMAND_DURATION`].
pub const REDIS_COMMAND_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
];
/// Suggested histogram buckets (seconds) for [`INVALIDATION_LAG`].
pub const INVALIDATION_LAG_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Distinct `key_type` label values per cache; later ones count as `other`.
pub const MAX_KEY_TYPES: usize = 32;
/// The longest key segment used as a `key_type` label.
const MAX_KEY_TYPE_LEN: usize = 24;
/// The label of keys with no usable type segment.
const OTHER: &str = "other";

/// Plain counters: (name, help).
const COUNTERS: [(&str, &str); 12] = [
    ("ngx_cache_sets_total", "Values written to Redis."),
    (
        "ngx_cache_sets_skipped_total",
        "Writes skipped because Redis was unavailable.",
    ),
    (
        "ngx_cache_circuit_rejections_total",
        "Calls rejected without I/O by the open circuit breaker.",
    ),
    (
        "ngx_cache_corrupt_evicted_total",
        "Undecodable values deleted and counted as misses.",
    ),
    (
        "ngx_cache_distributed_waits_total",
        "Loads skipped because another instance held the lease and filled Redis.",
    ),
    (
        "ngx_cache_eager_refreshes_total",
        "Background refreshes started before expiry.",
    ),
    (
        "ngx_cache_fills_rejected_total",
        "Fills refused because the key was invalidated during the load.",
    ),
    (
        "ngx_cache_invalidations_sent_total",
        "Invalidation messages published to other instances.",
    ),
    (
        "ngx_cache_invalidations_received_total",
        "Invalidation messages from other instances applied here.",
    ),
    (
        "ngx_cache_l1_flushes_total",
        "Times the whole L1 was marked stale (lost channel or message gap).",
    ),
    (
        "ngx_cache_resubscribes_total",
        "Times the invalidation channel was subscribed again after a loss.",
    ),
    (
        "ngx_cache_invalidations_dropped_total",
        "Pending deletes and tag invalidations given up (refused by Redis, or over the bound).",
    ),
];

/// Index into [`Telemetry::counters`] of each plain counter.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Count {
    Sets,
    SetsSkipped,
    CircuitRejections,
    CorruptEvicted,
    DistributedWaits,
    EagerRefreshes,
    FillsRejected,
    InvalidationsSent,
    InvalidationsReceived,
    L1Flushes,
    Resubscribes,
    InvalidationsDropped,
}

/// Redis commands with their own `command` label; others are `other`.
const COMMANDS: &[&str] = &[
    "GET", "SET", "MGET", "MSET", "DEL", "UNLINK", "EXPIRE", "PEXPIRE", "TTL", "PTTL", "INCRBY",
    "DECRBY", "EXISTS", "EVAL", "EVALSHA", "SCRIPT", "PUBLISH", "SCAN", "INFO", "PING", "pipeline",
    "clear",
];

/// Lookup tiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tier {
    /// The in-process tier.
    L1,
    /// Redis.
    L2,
}

/// Registers the help text and units of every metric with the installed
/// recorder. Connecting a cache calls it; call it
/// yourself to describe the metrics before any cache exists.
pub fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        HITS,
        Unit::Count,
        "Reads that found a value, by tier (l1, l2) and key type."
    );
    describe_counter!(
        MISSES,
        Unit::Count,
        "Reads that found nothing, by key type."
    );
    describe_counter!(
        ERRORS,
        Unit::Count,
        "Failed cache operations and undecodable values, by kind."
    );
    describe_histogram!(
        REDIS_COMMAND_DURATION,
        Unit::Seconds,
        "Redis round-trip latency, by command."
    );
    describe_gauge!(
        BREAKER_STATE,
        "1 for the circuit breaker's current state, 0 for the others."
    );
    describe_counter!(
        BREAKER_TRANSITIONS,
        Unit::Count,
        "Circuit breaker state changes, by the state entered."
    );
    describe_counter!(
        STALE_SERVED,
        Unit::Count,
        "Stale values served by fail-safe, by key type."
    );
    describe_counter!(LOADS, Unit::Count, "Loader runs started, by key type.");
    describe_counter!(
        LOAD_FAILURES,
        Unit::Count,
        "Loader runs that failed or timed out, by key type."
    );
    describe_counter!(
        COALESCED_WAITS,
        Unit::Count,
        "Callers that waited for a load already in flight here, by key type."
    );
    describe_histogram!(
        INVALIDATION_LAG,
        Unit::Seconds,
        "Invalidation lag, publish on one instance to eviction here."
    );
    describe_gauge!(
        PENDING_DELETES,
        Unit::Count,
        "Key deletes that could not reach Redis yet and are being retried."
    );
    describe_gauge!(
        PENDING_TAG_INVALIDATIONS,
        Unit::Count,
        "Tag version bumps that could not reach Redis yet and are being retried."
    );
    describe_gauge!(L1_ENTRIES, Unit::Count, "Entries held in L1.");
    describe_gauge!(
        L1_WEIGHT,
        Unit::Bytes,
        "Estimated weight of the entries held in L1, in bytes."
    );
    for (name, help) in COUNTERS {
        describe_counter!(name, Unit::Count, help);
    }
    describe_counter!(
        RECONNECTS,
        Unit::Count,
        "Redis connections rebuilt after I/O errors or stuck timeouts."
    );
}

/// The per-key-type handles.
#[derive(Debug)]
pub(crate) struct KeyTypeMetrics {
    pub(crate) hits_l1: Counter,
    pub(crate) hits_l2: Counter,
    pub(crate) misses: Counter,
    pub(crate) stale_served: Counter,
    pub(crate) loads: Counter,
    pub(crate) load_failures: Counter,
    pub(crate) coalesced_waits: Counter,
}

impl KeyTypeMetrics {
    fn new(key_type: &str) -> Self {
        let kt = key_type.to_owned();
        Self {
            hits_l1: metrics::counter!(HITS, "tier" => "l1", "key_type" => kt.clone()),
            hits_l2: metrics::counter!(HITS, "tier" => "l2", "key_type" => kt.clone()),
            misses: metrics::counter!(MISSES, "key_type" => kt.clone()),
            stale_served: metrics::counter!(STALE_SERVED, "key_type" => kt.clone()),
            loads: metrics::counter!(LOADS, "key_type" => kt.clone()),
            load_failures: metrics::counter!(LOAD_FAILURES, "key_type" => kt.clone()),
            coalesced_waits: metrics::counter!(COALESCED_WAITS, "key_type" => kt),
        }
    }

    /// The hit counter of `tier`.
    pub(crate) fn hits(&self, tier: Tier) -> &Counter {
        match tier {
            Tier::L1 => &self.hits_l1,
            Tier::L2 => &self.hits_l2,
        }
    }
}

/// A key type's name and handles.
type KeyTypeSlot = (Box<str>, KeyTypeMetrics);

/// One cache's metric handles, taken from the recorder installed when the
/// cache was built.
#[derive(Debug)]
pub(crate) struct Telemetry {
    /// Known key types, filled front to back; a lookup scans them up to the
    /// first empty slot without taking a lock or writing shared memory
    /// (this runs on every L1 hit).
    types: Box<[OnceLock<KeyTypeSlot>]>,
    /// Serializes adding a key type.
    adding: Mutex<()>,
    other: KeyTypeMetrics,
    counters: Vec<Counter>,
}

impl Default for Telemetry {
    fn default() -> Self {
        Self::new()
    }
}

const STATES: [(BreakerState, &str); 3] = [
    (BreakerState::Closed, "closed"),
    (BreakerState::Open, "open"),
    (BreakerState::HalfOpen, "half_open"),
];

fn state_index(state: BreakerState) -> usize {
    STATES.iter().position(|(s, _)| *s == state).unwrap_or(0)
}

impl Telemetry {
    /// Describes the metrics and takes every handle from the current
    /// recorder; the unlabelled series start at zero, so they are exported
    /// before anything happens.
    pub(crate) fn new() -> Self {
        describe();
        let t = Self {
            types: (0..MAX_KEY_TYPES).map(|_| OnceLock::new()).collect(),
            adding: Mutex::new(()),
            other: KeyTypeMetrics::new(OTHER),
            counters: COUNTERS
                .iter()
                .map(|(name, _)| metrics::counter!(*name))
                .collect(),
        };
        // Zero the counters so every series exists from the start: rates
        // and alerts then see 0, not "no data".
        for c in &t.counters {
            c.increment(0);
        }
        for c in [
            &t.other.hits_l1,
            &t.other.hits_l2,
            &t.other.misses,
            &t.other.stale_served,
            &t.other.loads,
            &t.other.load_failures,
            &t.other.coalesced_waits,
        ] {
            c.increment(0);
        }
        metrics::counter!(RECONNECTS).increment(0);
        // The kinds that mean Redis trouble exist from the start.
        for kind in ["timeout", "unavailable", "io", "redis", "decode"] {
            metrics::counter!(ERRORS, "kind" => kind).increment(0);
        }
        for (_, to) in STATES {
            metrics::counter!(BREAKER_TRANSITIONS, "to" => to).increment(0);
        }
        breaker_state(BreakerState::Closed);
        pending_deletes(0);
        pending_tag_invalidations(0);
        l1_size(0, 0);
        t
    }

    /// Runs `f` with the handles of `key`'s type (`key` without the
    /// namespace).
    pub(crate) fn with_key<R>(&self, key: &str, f: impl FnOnce(&KeyTypeMetrics) -> R) -> R {
        if let Some(m) = self.find(key) {
            return f(m);
        }
        let Some(kt) = key_type(key) else {
            return f(&self.other);
        };
        let _adding = self.adding.lock();
        for slot in &*self.types {
            match slot.get() {
                Some((name, m)) if &**name == kt => return f(m),
                Some(_) => {}
                None => {
                    let (_, m) = slot.get_or_init(|| (kt.into(), KeyTypeMetrics::new(kt)));
                    return f(m);
                }
            }
        }
        f(&self.other)
    }

    /// The handles of `key`'s type, if it is a known one.
    ///
    /// This runs on every hit, so it matches each known type as a prefix of
    /// `key` followed by `:`, without working out the key's type first: a
    /// known type is a valid one with no `:` in it, so a key that starts with
    /// it and a `:` is of that type.
    #[inline]
    fn find(&self, key: &str) -> Option<&KeyTypeMetrics> {
        let key = key.as_bytes();
        for slot in &*self.types {
            let (name, m) = slot.get()?;
            let name = name.as_bytes();
            if key.get(name.len()) == Some(&b':') && key.starts_with(name) {
                return Some(m);
            }
        }
        None
    }

    /// Counts a hit on `tier` for `key`.
    pub(crate) fn hit(&self, tier: Tier, key: &str) {
        self.with_key(key, |m| m.hits(tier).increment(1));
    }

    /// Counts a miss for `key`.
    pub(crate) fn miss(&self, key: &str) {
        self.with_key(key, |m| m.misses.increment(1));
    }

    /// Counts `hits` L2 hits and `misses` misses of keys of `key`'s type.
    pub(crate) fn reads(&self, key: &str, hits: u64, misses: u64) {
        self.with_key(key, |m| {
            if hits > 0 {
                m.hits_l2.increment(hits);
            }
            if misses > 0 {
                m.misses.increment(misses);
            }
        });
    }

    /// Adds `n` to a plain counter.
    pub(crate) fn count(&self, which: Count, n: u64) {
        self.counters[which as usize].increment(n);
    }

    /// Counts an error of `kind`.
    pub(crate) fn error(&self, kind: &'static str) {
        metrics::counter!(ERRORS, "kind" => kind).increment(1);
    }
}

/// Records one Redis round trip of `command` (a name from the fixed list).
pub(crate) fn redis_command(command: &'static str, elapsed: Duration) {
    metrics::histogram!(REDIS_COMMAND_DURATION, "command" => command).record(elapsed.as_secs_f64());
}

/// The Redis latency histograms, one per `command` label, taken from the
/// recorder installed when the backend was built: recording is then a plain
/// call on a handle, with no key or label built per command.
#[derive(Debug)]
pub(crate) struct CommandTimers(Box<[(&'static str, Histogram)]>);

impl CommandTimers {
    /// Registers a histogram for every known command and for `other`.
    pub(crate) fn new() -> Self {
        Self(
            COMMANDS
                .iter()
                .chain(std::iter::once(&"other"))
                .map(|&c| {
                    (
                        c,
                        metrics::histogram!(REDIS_COMMAND_DURATION, "command" => c),
                    )
                })
                .collect(),
        )
    }

    /// Records one round trip of the command at `command` (a
    /// [`command_index`]: a plain index, no name compared per call).
    pub(crate) fn record(&self, command: usize, elapsed: Duration) {
        if let Some((_, h)) = self.0.get(command).or_else(|| self.0.last()) {
            h.record(elapsed.as_secs_f64());
        }
    }
}

/// The index of a command name in the fixed list (its timer in
/// [`CommandTimers`]); `other` (the list's length) when unknown.
pub(crate) fn command_index(name: &[u8]) -> usize {
    COMMANDS
        .iter()
        .position(|c| c.as_bytes().eq_ignore_ascii_case(name))
        .unwrap_or(COMMANDS.len())
}

/// The `command` label of a command name: itself when known, else `other`.
pub(crate) fn known_command(name: &[u8]) -> &'static str {
    COMMANDS.get(command_index(name)).copied().unwrap_or(OTHER)
}

/// Counts a rebuilt Redis connection.
pub(crate) fn reconnected() {
    metrics::counter!(RECONNECTS).increment(1);
}

/// Sets the breaker state gauges to `state`.
fn breaker_state(state: BreakerState) {
    for (s, label) in STATES {
        metrics::gauge!(BREAKER_STATE, "state" => label).set(if s == state { 1.0 } else { 0.0 });
    }
}

/// Counts a breaker transition into `to` and sets the state gauges.
pub(crate) fn breaker_transition(to: BreakerState) {
    metrics::counter!(BREAKER_TRANSITIONS, "to" => STATES[state_index(to)].1).increment(1);
    breaker_state(to);
}

/// Sets the number of key deletes Redis has not taken yet.
pub(crate) fn pending_deletes(n: usize) {
    metrics::gauge!(PENDING_DELETES).set(n as f64);
}

/// Sets the number of tag invalidations Redis has not taken yet.
pub(crate) fn pending_tag_invalidations(n: usize) {
    metrics::gauge!(PENDING_TAG_INVALIDATIONS).set(n as f64);
}

/// Sets the L1 size gauges.
pub(crate) fn l1_size(entries: usize, weight: u64) {
    metrics::gauge!(L1_ENTRIES).set(entries as f64);
    metrics::gauge!(L1_WEIGHT).set(weight as f64);
}

/// Records one invalidation lag sample.
pub(crate) fn invalidation_lag(lag: Duration) {
    metrics::histogram!(INVALIDATION_LAG).record(lag.as_secs_f64());
}

/// The `key_type` label of a key (namespace already stripped): its first
/// segment, when that is a short word starting with a letter. Segments that
/// look like ids (digits first, long, odd characters) give `None`.
///
/// ```
/// use ngx_cache::telemetry::key_type;
/// assert_eq!(key_type("conv:v1:42"), Some("conv"));
/// assert_eq!(key_type("42:conv"), None);
/// ```
pub fn key_type(key: &str) -> Option<&str> {
    // A type is at most `MAX_KEY_TYPE_LEN` bytes: look no further for `:`.
    let head = &key.as_bytes()[..key.len().min(MAX_KEY_TYPE_LEN + 1)];
    let colon = head.iter().position(|&b| b == b':')?;
    let first = &key[..colon];
    let ok = !first.is_empty()
        && first.len() <= MAX_KEY_TYPE_LEN
        && first.as_bytes()[0].is_ascii_alphabetic()
        && first
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    ok.then_some(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_types_are_words_not_ids() {
        assert_eq!(key_type("conv:v1:abc"), Some("conv"));
        assert_eq!(key_type("prog:rec:v1:0123"), Some("prog"));
        assert_eq!(key_type("user_data:42"), Some("user_data"));
        assert_eq!(key_type("visits"), None);
        assert_eq!(key_type("12345:x"), None);
        assert_eq!(key_type(":x"), None);
        assert_eq!(key_type("a*b:x"), None);
        assert_eq!(key_type(&format!("{}:x", "a".repeat(40))), None);
    }

    #[test]
    fn a_known_type_matches_only_up_to_its_colon() {
        let t = Telemetry::new();
        let of = |key: &str| t.with_key(key, std::ptr::from_ref);
        let conv = of("conv:1");
        assert!(!std::ptr::eq(conv, &t.other));
        assert!(std::ptr::eq(of("conv:v1:2"), conv));
        // Longer and shorter types with the same start are types of their own.
        let conversation = of("conversation:1");
        assert!(!std::ptr::eq(conversation, conv));
        assert!(!std::ptr::eq(of("con:1"), conv));
        assert!(!std::ptr::eq(of("con:1"), conversation));
        // No colon after the type: no type.
        assert!(std::ptr::eq(of("conv"), &t.other));
        assert!(std::ptr::eq(of("conv1"), &t.other));
        let names: Vec<&str> = t
            .types
            .iter()
            .filter_map(|s| s.get())
            .map(|(n, _)| &**n)
            .collect();
        assert_eq!(names, ["conv", "conversation", "con"]);
    }

    #[test]
    fn key_types_are_capped() {
        let t = Telemetry::new();
        for i in 0..(MAX_KEY_TYPES * 3) {
            t.hit(Tier::L1, &format!("type{i}:id"));
        }
        assert!(t.types.iter().all(|slot| slot.get().is_some()));
        // Past the cap a new type is `other`, and a known one is still itself.
        let other = std::ptr::from_ref(&t.other);
        t.with_key("fresh:id", |m| assert!(std::ptr::eq(m, other)));
        t.with_key("type0:id", |m| assert!(!std::ptr::eq(m, other)));
    }
}
