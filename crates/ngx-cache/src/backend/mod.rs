//! The storage backend behind [`Cache`](crate::Cache): an internal trait, so a
//! Redis Cluster implementation fits beside the single-node one without
//! changing the public API.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::error::Error;

pub(crate) mod single;

/// A boxed, sendable future of a backend result.
pub(crate) type BoxFut<'a, T> = Pin<Box<dyn Future<Output = Result<T, Error>> + Send + 'a>>;

/// One entry of a batch write: full key, encoded bytes, TTL.
pub(crate) type Entry = (String, Vec<u8>, Option<Duration>);

/// Byte-level operations on full (namespaced) keys. Implementations apply
/// their own timeouts and connection healing; the circuit breaker and the
/// statistics live above, in `Cache`.
pub(crate) trait Backend: Send + Sync + fmt::Debug + 'static {
    /// Runs one command and returns its raw reply.
    fn query<'a>(&'a self, cmd: &'a redis::Cmd) -> BoxFut<'a, redis::Value>;
    /// Runs a pipeline whose commands all touch one key (one slot).
    fn pipeline<'a>(&'a self, pipe: &'a redis::Pipeline) -> BoxFut<'a, Vec<redis::Value>>;
    /// A client for a dedicated pub/sub connection.
    fn pubsub_client(&self) -> redis::Client;
    /// `GET` of several keys, in order, in as few round trips as possible.
    fn mget<'a>(&'a self, keys: &'a [String]) -> BoxFut<'a, Vec<Option<Vec<u8>>>>;
    /// `SET .. PX` of several entries, pipelined.
    fn mset<'a>(&'a self, entries: &'a [Entry]) -> BoxFut<'a, ()>;
    /// `UNLINK` of several keys; returns how many existed.
    fn unlink<'a>(&'a self, keys: &'a [String]) -> BoxFut<'a, u64>;
    /// `SCAN MATCH pattern` + `UNLINK` in batches, on every primary; returns
    /// the number of keys removed.
    fn clear<'a>(&'a self, pattern: &'a str, batch: usize) -> BoxFut<'a, u64>;
    /// `INFO` text of one node (of every primary, concatenated, in a cluster).
    fn info(&self) -> BoxFut<'_, String>;
    /// Connections rebuilt after failures or stuck timeouts, since start.
    fn reconnects(&self) -> u64;
    /// Whether at least one connection is currently established.
    fn connected(&self) -> bool;
    /// When no connection is established, cuts reconnect back-off short
    /// and waits for the next reconnect attempt's outcome, up to the connect
    /// timeout. The breaker's
    /// half-open probe calls this first, so a probe right after Redis comes
    /// back finds a connection instead of failing on a reconnect task that
    /// is still sleeping.
    fn await_connection(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

/// Converts a `GET`-style reply into bytes.
pub(crate) fn value_to_bytes(v: redis::Value) -> Result<Option<Vec<u8>>, Error> {
    match v {
        redis::Value::Nil => Ok(None),
        redis::Value::BulkString(b) => Ok(Some(b)),
        redis::Value::SimpleString(s) => Ok(Some(s.into_bytes())),
        other => Err(Error::Redis {
            category: "type error".to_owned(),
            message: format!("unexpected reply {other:?}"),
            transient: false,
        }),
    }
}

/// Builds `SET key value [PX ms]`.
pub(crate) fn set_cmd(key: &str, value: &[u8], ttl: Option<Duration>) -> redis::Cmd {
    let mut cmd = redis::cmd("SET");
    cmd.arg(key).arg(value);
    if let Some(ttl) = ttl {
        cmd.arg("PX").arg(ttl.as_millis().max(1) as u64);
    }
    cmd
}
