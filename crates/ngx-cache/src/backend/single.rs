//! Single-node backend: a pool of multiplexed connections, one preferred per
//! thread, with active healing.
//!
//! redis-rs's `ConnectionManager` reconnects after I/O errors but treats a
//! timeout as "retry", never "reconnect". When a server merely pauses
//! (SIGSTOP, then SIGCONT) the late replies line up again and the old
//! connection recovers; but when the path to the server silently loses a
//! connection (a NAT or load balancer that dropped its state, a hung host
//! behind a virtual IP) every call on it times out for ever while a fresh
//! connection would work. Here each connection counts its consecutive
//! timeouts; past `heal_after_timeouts`, or on any I/O error, the connection
//! is dropped and a background task builds a new one with backoff. Calls
//! never wait for a reconnect: they use another live connection or fail fast.
//! `tests/faults.rs` shows both cases against real processes.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use parking_lot::RwLock;
use redis::AsyncConnectionConfig;
use redis::aio::MultiplexedConnection;
use tokio::sync::Notify;

use super::{Backend, BoxFut, Entry, set_cmd, value_to_bytes};
use crate::error::Error;

/// Numbers the threads that use a pool, for [`SingleBackend::pick`].
static THREADS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread's preferred slot (modulo the pool size).
    static THREAD_SLOT: usize = THREADS.fetch_add(1, Ordering::Relaxed);
}

/// Settings the pool needs from `CacheConfig`.
#[derive(Debug, Clone)]
pub(crate) struct PoolSettings {
    pub(crate) size: usize,
    pub(crate) op_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) heal_after_timeouts: u32,
}

/// The connection pool.
pub(crate) struct SingleBackend {
    shared: Arc<Shared>,
    slots: Box<[Arc<Slot>]>,
}

/// What a background reconnect needs, shared with the tasks.
struct Shared {
    client: redis::Client,
    conn_config: AsyncConnectionConfig,
    settings: PoolSettings,
    /// The password, removed from every error message.
    secret: Option<String>,
    reconnects: AtomicU64,
    /// Signalled whenever a reconnect task installs a connection.
    connected: Notify,
    /// Signalled whenever a reconnect attempt fails.
    attempt_failed: Notify,
}

#[derive(Default)]
struct Slot {
    /// `None` while (re)connecting. A read lock is held only to clone the
    /// handle, which is an `Arc` inside.
    conn: RwLock<Option<MultiplexedConnection>>,
    /// Consecutive timeouts on this connection.
    timeouts: AtomicU32,
    /// Set while a reconnect task runs, so only one runs per slot.
    reconnecting: AtomicBool,
    /// Ends the reconnect task's back-off sleep early.
    wake: Notify,
}

impl std::fmt::Debug for SingleBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SingleBackend")
            .field("size", &self.slots.len())
            .field("reconnects", &self.reconnects())
            .finish()
    }
}

impl SingleBackend {
    /// Opens the pool. With `eager`, connects every slot now and fails if the
    /// server cannot be reached within the connect timeout; otherwise
    /// connections are made in the background.
    pub(crate) async fn connect(
        url: &str,
        settings: PoolSettings,
        eager: bool,
    ) -> Result<Self, Error> {
        let secret = crate::redact::passwords(url).into_iter().next();
        let client = redis::Client::open(url).map_err(|e| {
            Error::Config(crate::config::ConfigError::new(
                "REDIS_URL",
                crate::redact::scrub(&e.to_string(), secret.as_deref()),
            ))
        })?;
        let conn_config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(settings.connect_timeout))
            .set_response_timeout(Some(settings.op_timeout));
        let shared = Arc::new(Shared {
            client,
            conn_config,
            settings: settings.clone(),
            secret,
            reconnects: AtomicU64::new(0),
            connected: Notify::new(),
            attempt_failed: Notify::new(),
        });
        let slots: Box<[Arc<Slot>]> = (0..settings.size.max(1))
            .map(|_| Arc::new(Slot::default()))
            .collect();
        if eager {
            let conns = futures::future::try_join_all(slots.iter().map(|_| shared.open())).await?;
            for (slot, conn) in slots.iter().zip(conns) {
                *slot.conn.write() = Some(conn);
            }
        } else {
            for slot in slots.iter() {
                spawn_reconnect(&shared, slot, false);
            }
        }
        Ok(Self { shared, slots })
    }

    /// Picks a live connection: the calling thread's own slot first, then
    /// the others in order.
    ///
    /// Thread affinity instead of per-call round-robin: a multiplexed
    /// connection batches the commands queued on it into one write and one
    /// read, so spreading concurrent calls over all connections defeats the
    /// batching and costs syscalls on both ends (measured: about half the
    /// throughput of one bare connection at 16 to 64 tasks on 2 cores, see
    /// docs/benchmarks.md). With one slot per thread, a current-thread
    /// runtime uses one connection and a multi-thread runtime spreads over
    /// its workers, up to the pool size; it also avoids a shared counter
    /// bumped on every call.
    fn pick(&self) -> Result<(&Arc<Slot>, MultiplexedConnection), Error> {
        let n = self.slots.len();
        let start = THREAD_SLOT.with(|s| *s);
        for i in 0..n {
            let slot = &self.slots[(start + i) % n];
            if let Some(conn) = slot.conn.read().as_ref() {
                return Ok((slot, conn.clone()));
            }
            spawn_reconnect(&self.shared, slot, false);
        }
        Err(Error::Unavailable(
            "no live connection, reconnecting".to_owned(),
        ))
    }

    /// Runs `f` on a connection and applies the healing rules to its outcome.
    async fn run<T, F, Fut>(&self, f: F) -> Result<T, Error>
    where
        F: FnOnce(MultiplexedConnection) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let (slot, conn) = self.pick()?;
        match f(conn).await {
            Ok(v) => {
                if slot.timeouts.load(Ordering::Relaxed) != 0 {
                    slot.timeouts.store(0, Ordering::Relaxed);
                }
                Ok(v)
            }
            Err(e) => {
                let err = Error::from_redis(
                    &e,
                    self.shared.secret.as_deref(),
                    self.shared.settings.op_timeout,
                );
                let stuck = if err.is_timeout() {
                    slot.timeouts.fetch_add(1, Ordering::Relaxed) + 1
                        >= self.shared.settings.heal_after_timeouts
                } else {
                    e.is_io_error() || e.is_connection_dropped() || e.is_unrecoverable_error()
                };
                if stuck {
                    tracing::warn!(error = %err, "dropping redis connection and reconnecting");
                    spawn_reconnect(&self.shared, slot, true);
                }
                Err(err)
            }
        }
    }
}

impl Shared {
    async fn open(&self) -> Result<MultiplexedConnection, Error> {
        let timeout = self.settings.connect_timeout;
        // The client's own connection timeout covers TCP and the handshake;
        // the outer bound also covers DNS and TLS set-up.
        match tokio::time::timeout(
            timeout + Duration::from_millis(50),
            self.client
                .get_multiplexed_async_connection_with_config(&self.conn_config),
        )
        .await
        {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(e)) => Err(
                match Error::from_redis(&e, self.secret.as_deref(), timeout) {
                    Error::Timeout(_) => {
                        Error::Unavailable(format!("connect timed out after {timeout:?}"))
                    }
                    other => other,
                },
            ),
            Err(_) => Err(Error::Unavailable(format!(
                "connect timed out after {timeout:?}"
            ))),
        }
    }
}

/// Drops the slot's connection (when `drop_current`) and starts one
/// reconnect task for it, unless one is already running.
fn spawn_reconnect(shared: &Arc<Shared>, slot: &Arc<Slot>, drop_current: bool) {
    if drop_current {
        slot.conn.write().take();
        slot.timeouts.store(0, Ordering::Relaxed);
    }
    if slot.reconnecting.swap(true, Ordering::AcqRel) {
        return;
    }
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        slot.reconnecting.store(false, Ordering::Release);
        return;
    };
    let weak = Arc::downgrade(shared);
    let slot = Arc::clone(slot);
    handle.spawn(async move {
        let mut backoff = Duration::from_millis(50);
        loop {
            let Some(shared) = weak.upgrade() else { break };
            match shared.open().await {
                Ok(conn) => {
                    *slot.conn.write() = Some(conn);
                    shared.connected.notify_waiters();
                    if drop_current {
                        shared.reconnects.fetch_add(1, Ordering::Relaxed);
                        tracing::info!("redis connection re-established");
                    }
                    break;
                }
                Err(e) => {
                    tracing::debug!(error = %e, ?backoff, "redis reconnect failed");
                    shared.attempt_failed.notify_waiters();
                }
            }
            drop(shared);
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                () = slot.wake.notified() => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
        slot.reconnecting.store(false, Ordering::Release);
    });
}

impl Backend for SingleBackend {
    fn query<'a>(&'a self, cmd: &'a redis::Cmd) -> BoxFut<'a, redis::Value> {
        Box::pin(self.run(move |mut c| async move { cmd.query_async(&mut c).await }))
    }

    fn pipeline<'a>(&'a self, pipe: &'a redis::Pipeline) -> BoxFut<'a, Vec<redis::Value>> {
        Box::pin(self.run(move |mut c| async move { pipe.query_async(&mut c).await }))
    }

    fn pubsub_client(&self) -> redis::Client {
        self.shared.client.clone()
    }

    fn mget<'a>(&'a self, keys: &'a [String]) -> BoxFut<'a, Vec<Option<Vec<u8>>>> {
        Box::pin(async move {
            if keys.is_empty() {
                return Ok(Vec::new());
            }
            let mut cmd = redis::cmd("MGET");
            cmd.arg(keys);
            let reply: Vec<redis::Value> = self
                .run(move |mut c| async move { cmd.query_async(&mut c).await })
                .await?;
            reply.into_iter().map(value_to_bytes).collect()
        })
    }

    fn mset<'a>(&'a self, entries: &'a [Entry]) -> BoxFut<'a, ()> {
        Box::pin(async move {
            if entries.is_empty() {
                return Ok(());
            }
            let mut pipe = redis::pipe();
            for (key, value, ttl) in entries {
                pipe.add_command(set_cmd(key, value, *ttl)).ignore();
            }
            self.run(move |mut c| async move { pipe.query_async::<()>(&mut c).await })
                .await
        })
    }

    fn unlink<'a>(&'a self, keys: &'a [String]) -> BoxFut<'a, u64> {
        Box::pin(async move {
            if keys.is_empty() {
                return Ok(0);
            }
            let mut cmd = redis::cmd("UNLINK");
            cmd.arg(keys);
            self.run(move |mut c| async move { cmd.query_async(&mut c).await })
                .await
        })
    }

    fn clear<'a>(&'a self, pattern: &'a str, batch: usize) -> BoxFut<'a, u64> {
        Box::pin(async move {
            let mut cursor: u64 = 0;
            let mut removed = 0;
            loop {
                let mut scan = redis::cmd("SCAN");
                scan.arg(cursor)
                    .arg("MATCH")
                    .arg(pattern)
                    .arg("COUNT")
                    .arg(batch);
                let (next, keys): (u64, Vec<String>) = self
                    .run(move |mut c| async move { scan.query_async(&mut c).await })
                    .await?;
                removed += self.unlink(&keys).await?;
                if next == 0 {
                    return Ok(removed);
                }
                cursor = next;
            }
        })
    }

    fn info(&self) -> BoxFut<'_, String> {
        Box::pin(self.run(|mut c| async move { redis::cmd("INFO").query_async(&mut c).await }))
    }

    fn reconnects(&self) -> u64 {
        self.shared.reconnects.load(Ordering::Relaxed)
    }

    fn connected(&self) -> bool {
        self.slots.iter().any(|s| s.conn.read().is_some())
    }

    fn await_connection(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            if self.connected() {
                return;
            }
            let connected = self.shared.connected.notified();
            let failed = self.shared.attempt_failed.notified();
            tokio::pin!(connected, failed);
            // Registered before the wake-ups, so an outcome in between is
            // not missed.
            connected.as_mut().enable();
            failed.as_mut().enable();
            for slot in self.slots.iter() {
                slot.wake.notify_one();
                spawn_reconnect(&self.shared, slot, false);
            }
            // The first outcome decides: a refused connection fails the
            // probe at once, as before; an unanswered one waits for the
            // connect timeout.
            let limit = self.shared.settings.connect_timeout + Duration::from_millis(50);
            tokio::select! {
                () = connected => {}
                () = failed => {}
                () = tokio::time::sleep(limit) => {}
            }
        })
    }
}
