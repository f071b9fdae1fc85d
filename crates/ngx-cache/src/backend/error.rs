//! redis-rs errors turned into the library's [`Error`], credentials removed.

use std::time::Duration;

use crate::error::Error;

/// Converts a redis-rs error, removing `secret` (the password) from its text.
pub(super) fn from_redis(
    err: &redis::RedisError,
    secret: Option<&str>,
    timeout: Duration,
) -> Error {
    if err.is_timeout() {
        return Error::Timeout(timeout);
    }
    use redis::{ErrorKind, ServerErrorKind};
    let transient = err.is_io_error()
        || err.is_connection_dropped()
        || err.is_connection_refusal()
        || matches!(
            err.kind(),
            ErrorKind::ClusterConnectionNotFound
                | ErrorKind::Server(ServerErrorKind::BusyLoading)
                | ErrorKind::Server(ServerErrorKind::TryAgain)
                | ErrorKind::Server(ServerErrorKind::ClusterDown)
                | ErrorKind::Server(ServerErrorKind::MasterDown)
        );
    Error::Redis {
        category: err.category().to_owned(),
        message: crate::redact::scrub(&err.to_string(), secret),
        transient,
    }
}

/// A reply of an unexpected shape: the server answered, so not transient.
pub(super) fn unexpected(what: impl std::fmt::Display) -> Error {
    Error::Redis {
        category: "type error".to_owned(),
        message: what.to_string(),
        transient: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_errors_are_scrubbed() {
        let err = redis::RedisError::from((
            redis::ErrorKind::AuthenticationFailed,
            "auth failed",
            "password hunter2 rejected".to_owned(),
        ));
        let ours = from_redis(&err, Some("hunter2"), Duration::from_millis(5));
        assert!(!ours.to_string().contains("hunter2"), "{ours}");
        assert!(!ours.is_transient());
    }
}
