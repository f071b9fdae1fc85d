//! The least-privilege ACL rule of a cache user: every command the library
//! and redis-rs send, each with its reason, the key pattern (data, tag and
//! lease keys all start with the namespace) and the invalidation channel.
//! `docs/operations.md` ("ACL user") shows the rule this writes, and
//! `tests/acl.rs` runs the library and the service as a user created with it.

use redis::IntoConnectionInfo;

use crate::config::CacheConfig;
use crate::key::{channel_name, escape_glob};

/// Commands every deployment needs, and why.
pub(crate) const COMMANDS: &[(&str, &str)] = &[
    (
        "get",
        "reads, counters; inside the fill and lease-release scripts",
    ),
    (
        "set",
        "writes, taking a lease (`SET NX PX`); inside the fill script",
    ),
    ("mget", "batch reads"),
    (
        "pttl",
        "time left of an entry (fail-safe, eager refresh, `ttl`)",
    ),
    ("pexpire", "`expire`"),
    ("exists", "`exists`"),
    ("unlink", "deletes, invalidations, `clear_namespace`"),
    ("del", "inside the fill and lease-release scripts"),
    ("incrby", "counters and tag versions"),
    (
        "eval",
        "the checked fill under a lease and the lease release",
    ),
    ("scan", "`clear_namespace` and key listings"),
    ("publish", "invalidation messages"),
    ("subscribe", "the invalidation channel"),
    ("unsubscribe", "sent when a subscription ends"),
    (
        "ping",
        "health checks, breaker probes, subscription liveness",
    ),
    (
        "info",
        "version, memory and clients in health reports (optional: without it, health still answers)",
    ),
];

/// More commands for `REDIS_CLUSTER=true`.
pub(crate) const CLUSTER_COMMANDS: &[(&str, &str)] = &[
    ("cluster|slots", "the slot map"),
    ("asking", "following an `ASK` redirect during resharding"),
];

/// `SELECT`, when `REDIS_URL` names a database other than 0.
pub(crate) const SELECT: (&str, &str) = ("select", "the database named in `REDIS_URL`");

/// The rule (everything after `ACL SETUSER <name> ><password>`) that is
/// enough for a cache with `config`: its namespace's keys, its invalidation
/// channel and exactly the commands the library sends.
///
/// ```
/// use ngx_cache::{CacheConfig, acl_rule};
///
/// let config = CacheConfig::builder().namespace("app").build().unwrap();
/// let rule = acl_rule(&config);
/// assert!(rule.starts_with("on resetkeys ~app:* resetchannels &app:__invalidation -@all +get "));
/// ```
pub fn acl_rule(config: &CacheConfig) -> String {
    let mut commands: Vec<(&str, &str)> = COMMANDS.to_vec();
    if config.cluster {
        commands.extend_from_slice(CLUSTER_COMMANDS);
    }
    let db = config
        .url
        .split(',')
        .next()
        .and_then(|u| u.trim().into_connection_info().ok())
        .map_or(0, |info| info.redis_settings().db());
    if db != 0 {
        commands.push(SELECT);
    }
    let namespace = escape_glob(&config.namespace);
    let channel = escape_glob(&channel_name(&config.namespace));
    let allowed: Vec<String> = commands.iter().map(|(c, _)| format!("+{c}")).collect();
    format!(
        "on resetkeys ~{namespace}:* resetchannels &{channel} -@all {}",
        allowed.join(" ")
    )
}
