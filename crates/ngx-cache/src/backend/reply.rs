//! The commands every backend sends, and their replies turned into cache
//! terms. A reply of the wrong shape is a non-transient error (the server
//! answered).

use std::time::Duration;

use super::error::unexpected;
use super::{Lease, script};
use crate::error::Error;
use crate::key::{KeyTtl, MAX_TTL, lease_key, version_key};

/// A `GET`-style reply as bytes.
pub(super) fn bytes(v: redis::Value) -> Result<Option<Vec<u8>>, Error> {
    match v {
        redis::Value::Nil => Ok(None),
        redis::Value::BulkString(b) => Ok(Some(b)),
        redis::Value::SimpleString(s) => Ok(Some(s.into_bytes())),
        other => Err(unexpected(format_args!("unexpected reply {other:?}"))),
    }
}

/// An integer reply.
pub(super) fn int(v: redis::Value) -> Result<i64, Error> {
    match v {
        redis::Value::Int(n) => Ok(n),
        other => Err(unexpected(format_args!(
            "expected an integer reply, got {other:?}"
        ))),
    }
}

/// A `PTTL` reply as the time left before Redis drops the key.
pub(super) fn time_left(v: Option<redis::Value>) -> Option<Duration> {
    match v {
        Some(redis::Value::Int(ms)) if ms > 0 => Some(Duration::from_millis(ms as u64)),
        _ => None,
    }
}

/// A `PTTL` reply as a [`KeyTtl`].
pub(super) fn key_ttl(v: redis::Value) -> Result<KeyTtl, Error> {
    Ok(match int(v)? {
        -2 => KeyTtl::Missing,
        ms if ms < 0 => KeyTtl::Persistent,
        ms => KeyTtl::Expires(Duration::from_millis(ms as u64)),
    })
}

/// Milliseconds for `PX`, at least 1 and at most twice [`MAX_TTL`] (a TTL
/// plus a fail-safe window), so Redis always accepts the expiry.
pub(super) fn px(ttl: Duration) -> u64 {
    crate::key::millis(ttl.min(MAX_TTL * 2)).max(1)
}

/// The command `name` with room for `args` more arguments of `bytes` bytes
/// in all, so building it allocates its two buffers once. (`redis::cmd`
/// starts them empty, and a command grown argument by argument reallocates
/// them as they fill: an `MGET` of 100 keys about a dozen times.)
pub(super) fn command(name: &str, args: usize, bytes: usize) -> redis::Cmd {
    let mut cmd = redis::Cmd::with_capacity(args + 1, name.len() + bytes);
    cmd.arg(name);
    cmd
}

/// Builds `name key`.
fn key_cmd(name: &str, key: &str) -> redis::Cmd {
    let mut cmd = command(name, 1, key.len());
    cmd.arg(key);
    cmd
}

/// Builds `GET key`.
pub(super) fn get_cmd(key: &str) -> redis::Cmd {
    key_cmd("GET", key)
}

/// Builds `GET key` and `PTTL key`, one round trip.
pub(super) fn get_with_pttl_pipeline(key: &str) -> redis::Pipeline {
    let mut pipe = redis::Pipeline::with_capacity(2);
    pipe.add_command(get_cmd(key))
        .add_command(key_cmd("PTTL", key));
    pipe
}

/// Builds `MGET key...`.
pub(super) fn mget_cmd(keys: &[&str]) -> redis::Cmd {
    let bytes = keys.iter().map(|k| k.len()).sum();
    let mut cmd = command("MGET", keys.len(), bytes);
    cmd.arg(keys);
    cmd
}

/// Builds `SET key value [PX ms]`.
pub(super) fn set_cmd(key: &str, value: &[u8], ttl: Option<Duration>) -> redis::Cmd {
    // "PX" and at most 20 digits.
    let mut cmd = command("SET", 4, key.len() + value.len() + 22);
    cmd.arg(key).arg(value);
    if let Some(ttl) = ttl {
        cmd.arg("PX").arg(px(ttl));
    }
    cmd
}

/// The integer stored at a key, from a `GET` reply; `None` when absent or
/// not an integer.
pub(super) fn counter(v: redis::Value) -> Option<i64> {
    redis::from_redis_value::<Option<i64>>(v).ok().flatten()
}

/// `SET lease token NX PX ttl` then `GET key`: one round trip, one slot
/// (a lease key hashes to its data key's slot).
pub(super) fn lease_pipeline(key: &str, token: &str, ttl: Duration) -> redis::Pipeline {
    let mut pipe = redis::pipe();
    pipe.cmd("SET")
        .arg(lease_key(key))
        .arg(token)
        .arg("NX")
        .arg("PX")
        .arg(px(ttl))
        .cmd("GET")
        .arg(key);
    pipe
}

/// The replies of [`lease_pipeline`] as a [`Lease`].
pub(super) fn lease(replies: Vec<redis::Value>) -> Lease {
    let mut replies = replies.into_iter();
    let taken = !matches!(replies.next(), Some(redis::Value::Nil) | None);
    let observed = replies.next().and_then(|v| bytes(v).ok().flatten());
    Lease { taken, observed }
}

/// The fill script: writes `value` only while the lease holds `token` and
/// the key still holds `observed`.
pub(super) fn fill_cmd(
    key: &str,
    token: &str,
    value: &[u8],
    ttl: Duration,
    observed: Option<&[u8]>,
) -> redis::Cmd {
    let mut cmd = redis::cmd("EVAL");
    cmd.arg(script::FILL)
        .arg(2)
        .arg(key)
        .arg(lease_key(key))
        .arg(token)
        .arg(value)
        .arg(px(ttl));
    match observed {
        Some(held) => cmd.arg("1").arg(held),
        None => cmd.arg("0").arg(""),
    };
    cmd
}

/// Whether the reply of [`fill_cmd`] says the value was written.
pub(super) fn filled(v: &redis::Value) -> bool {
    !matches!(v, redis::Value::Int(0))
}

/// The versioned write: stores `value` (and `version`) only when the key's
/// version key holds no version or a lower one. Its reply reads with
/// [`filled`].
pub(super) fn versioned_set_cmd(
    key: &str,
    value: &[u8],
    ttl: Duration,
    version: u64,
) -> redis::Cmd {
    let mut cmd = redis::cmd("EVAL");
    cmd.arg(script::VERSIONED_SET)
        .arg(2)
        .arg(key)
        .arg(version_key(key))
        .arg(value)
        .arg(px(ttl))
        .arg(format!("{version:020}"));
    cmd
}

/// The release script: drops the lease of `key` only while `token` holds it.
pub(super) fn release_cmd(key: &str, token: &str) -> redis::Cmd {
    let mut cmd = redis::cmd("EVAL");
    cmd.arg(script::RELEASE)
        .arg(1)
        .arg(lease_key(key))
        .arg(token);
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_in_cache_terms() {
        assert_eq!(bytes(redis::Value::Nil).unwrap(), None);
        assert_eq!(
            bytes(redis::Value::BulkString(b"x".to_vec())).unwrap(),
            Some(b"x".to_vec())
        );
        assert!(!bytes(redis::Value::Int(1)).unwrap_err().is_transient());
        assert_eq!(key_ttl(redis::Value::Int(-2)).unwrap(), KeyTtl::Missing);
        assert_eq!(key_ttl(redis::Value::Int(-1)).unwrap(), KeyTtl::Persistent);
        assert_eq!(
            key_ttl(redis::Value::Int(1500)).unwrap(),
            KeyTtl::Expires(Duration::from_millis(1500))
        );
        assert_eq!(time_left(Some(redis::Value::Int(-1))), None);
        assert_eq!(px(Duration::ZERO), 1);
    }
}
