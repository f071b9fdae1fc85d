//! The library's errors: [`Error`] with the classification the circuit
//! breaker uses, and [`ConfigError`] for settings that cannot be used.

use std::time::Duration;

/// A configuration value that could not be used. The message names the
/// variable (or builder setter) and the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration {var}: {reason}")]
#[non_exhaustive]
pub struct ConfigError {
    /// The environment variable or setting at fault, e.g. `REDIS_POOL_SIZE`.
    pub var: String,
    /// Why it was refused.
    pub reason: String,
}

impl ConfigError {
    pub(crate) fn new(var: &str, reason: impl Into<String>) -> Self {
        Self {
            var: var.to_owned(),
            reason: reason.into(),
        }
    }

    /// An error for the variable `var`, for applications that read more
    /// settings next to the cache's.
    pub fn invalid(var: &str, reason: impl Into<String>) -> Self {
        Self::new(var, reason)
    }
}

/// Everything that can go wrong in a cache operation.
///
/// Only the `try_*` methods of [`Cache`](crate::Cache) return Redis failures;
/// the default methods fail open and return caller errors only
/// ([`Error::InvalidKey`], [`Error::ValueTooLarge`], [`Error::Encode`]).
///
/// Messages never contain credentials: the Redis URL's password is removed
/// before an error is built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The key is empty, too long, or contains a control character.
    #[error("invalid cache key: {reason}")]
    InvalidKey {
        /// Why the key was refused.
        reason: String,
    },
    /// The encoded value exceeds the configured maximum size.
    #[error("value of {size} bytes exceeds the limit of {limit} bytes")]
    ValueTooLarge {
        /// Encoded size in bytes.
        size: usize,
        /// Configured limit in bytes.
        limit: usize,
    },
    /// The value could not be serialized.
    #[error("cannot encode value: {0}")]
    Encode(String),
    /// Bytes read from Redis could not be decoded into the requested type.
    #[error("cannot decode cached value: {0}")]
    Decode(String),
    /// The operation did not finish within its timeout.
    #[error("redis operation timed out after {0:?}")]
    Timeout(Duration),
    /// No connection is available (connecting, reconnecting or refused).
    #[error("redis is not reachable: {0}")]
    Unavailable(String),
    /// The circuit breaker is open and the call was rejected without I/O.
    #[error("circuit breaker is open")]
    CircuitOpen,
    /// The cache is disabled by configuration (`CACHE_ENABLED=false`).
    #[error("cache is disabled")]
    Disabled,
    /// An error reported by Redis or the client library.
    #[error("redis error ({category}): {message}")]
    Redis {
        /// Short category such as `I/O error` or `response error`.
        category: String,
        /// Redacted message.
        message: String,
        /// Whether the failure is transient (I/O, timeout, dropped connection).
        transient: bool,
    },
    /// A configuration value is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A clear removed the keys it could reach, then failed on the rest (a
    /// Redis Cluster shard that could not be scanned, or Redis lost after
    /// some batches). Every instance's L1 was dropped all the same.
    #[error("cleared in part, {removed} keys removed: {failed}")]
    PartlyCleared {
        /// Keys removed before the failure (on a cluster, from the shards
        /// that could be scanned).
        removed: u64,
        /// The first failure, which names the node.
        failed: Box<Error>,
    },
}

impl Error {
    /// Returns true for failures that say the server is unreachable or slow:
    /// I/O errors, timeouts, dropped or refused connections.
    ///
    /// These, and only these, count toward opening the circuit breaker.
    /// Server replies such as `WRONGTYPE` and decode errors are not transient.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Timeout(_) | Error::Unavailable(_) => true,
            Error::Redis { transient, .. } => *transient,
            Error::PartlyCleared { failed, .. } => failed.is_transient(),
            _ => false,
        }
    }

    /// A short, stable name of the failure, used as the `kind` label of
    /// `ngx_cache_errors_total`: `invalid_key`, `value_too_large`,
    /// `encode`, `decode`, `timeout`, `unavailable`, `circuit_open`,
    /// `disabled`, `io` (a transient Redis error), `redis` (a server
    /// reply such as `WRONGTYPE`) or `config`. A partial clear is named by
    /// the failure that stopped it.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::InvalidKey { .. } => "invalid_key",
            Error::ValueTooLarge { .. } => "value_too_large",
            Error::Encode(_) => "encode",
            Error::Decode(_) => "decode",
            Error::Timeout(_) => "timeout",
            Error::Unavailable(_) => "unavailable",
            Error::CircuitOpen => "circuit_open",
            Error::Disabled => "disabled",
            Error::Redis {
                transient: true, ..
            } => "io",
            Error::Redis { .. } => "redis",
            Error::Config(_) => "config",
            Error::PartlyCleared { failed, .. } => failed.kind(),
        }
    }

    /// Returns true when the operation (or, for a partial clear, the part
    /// that failed) timed out.
    pub fn is_timeout(&self) -> bool {
        match self {
            Error::Timeout(_) => true,
            Error::PartlyCleared { failed, .. } => failed.is_timeout(),
            _ => false,
        }
    }

    /// Returns true when the error is a caller mistake (bad key, oversized
    /// or unserializable value) that never reached Redis.
    pub fn is_caller_error(&self) -> bool {
        matches!(
            self,
            Error::InvalidKey { .. } | Error::ValueTooLarge { .. } | Error::Encode(_)
        )
    }

    pub(crate) fn invalid_key(reason: impl Into<String>) -> Self {
        Error::InvalidKey {
            reason: reason.into(),
        }
    }
}

/// The results of the parts of a clear (cluster shards, or the patterns of
/// a prefix), added up: the keys removed, and the first failure, returned
/// as [`Error::PartlyCleared`] when some part was cleared and as it was when
/// none was.
#[derive(Debug, Default)]
pub(crate) struct ClearTally {
    removed: u64,
    cleared_any: bool,
    failed: Option<Error>,
}

impl ClearTally {
    /// Adds one part's result (itself possibly a partial clear).
    pub(crate) fn add(&mut self, part: Result<u64, Error>) {
        match part {
            Ok(n) => {
                self.removed += n;
                self.cleared_any = true;
            }
            Err(Error::PartlyCleared { removed, failed }) => {
                self.removed += removed;
                self.cleared_any = true;
                self.failed.get_or_insert(*failed);
            }
            Err(e) => {
                self.failed.get_or_insert(e);
            }
        }
    }

    /// The keys removed, or the first failure.
    pub(crate) fn finish(self) -> Result<u64, Error> {
        match self.failed {
            None => Ok(self.removed),
            Some(e) if self.cleared_any => Err(Error::PartlyCleared {
                removed: self.removed,
                failed: Box::new(e),
            }),
            Some(e) => Err(e),
        }
    }
}

/// Logs a failure that a fail-open method turned into a miss or a skipped
/// write: quietly when the cache is switched off or the breaker is open,
/// as a warning otherwise.
pub(crate) fn log_skipped(op: &'static str, err: &Error) {
    match err {
        Error::CircuitOpen | Error::Disabled => {
            tracing::trace!(op, error = %err, "cache skipped")
        }
        _ => {
            tracing::warn!(op, error = %err, "cache operation failed, continuing without cache")
        }
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_classification() {
        assert!(Error::Timeout(Duration::from_millis(1)).is_transient());
        assert!(Error::Unavailable("x".into()).is_transient());
        assert!(!Error::Decode("x".into()).is_transient());
        assert!(!Error::CircuitOpen.is_transient());
        let wrongtype = Error::Redis {
            category: "response error".into(),
            message: "WRONGTYPE".into(),
            transient: false,
        };
        assert!(!wrongtype.is_transient());
    }

    #[test]
    fn a_partial_clear_adds_up_and_is_classified_by_its_failure() {
        let mut inner = ClearTally::default();
        inner.add(Ok(3));
        inner.add(Err(Error::Timeout(Duration::from_secs(1))));
        let mut outer = ClearTally::default();
        outer.add(Ok(4));
        outer.add(inner.finish());
        outer.add(Err(Error::Unavailable("later".into())));
        let twice = outer.finish().unwrap_err();
        assert!(twice.is_transient());
        assert!(twice.is_timeout());
        assert_eq!(twice.kind(), "timeout");
        assert_eq!(
            twice.to_string(),
            "cleared in part, 7 keys removed: redis operation timed out after 1s"
        );
        let mut none = ClearTally::default();
        none.add(Err(Error::CircuitOpen));
        assert!(matches!(none.finish(), Err(Error::CircuitOpen)));
    }
}
