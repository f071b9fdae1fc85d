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

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use parking_lot::RwLock;
use redis::AsyncConnectionConfig;
use redis::aio::MultiplexedConnection;
use tokio::sync::Notify;

use super::error::from_redis;
use super::reply::{self, px, set_cmd};
use super::{Bump, Entry, Lease, Settings};
use crate::error::{ClearTally, Error};
use crate::key::KeyTtl;
use crate::telemetry::{CommandTimers, command_index};

/// Numbers the threads that use a pool, for [`SingleBackend::pick`].
static THREADS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread's preferred slot (modulo the pool size).
    static THREAD_SLOT: usize = THREADS.fetch_add(1, Ordering::Relaxed);
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
    settings: Settings,
    /// The password, removed from every error message.
    secret: Option<String>,
    reconnects: AtomicU64,
    /// Signalled whenever a reconnect task installs a connection.
    connected: Notify,
    /// Signalled whenever a reconnect attempt fails.
    attempt_failed: Notify,
    /// Command latency histograms.
    timers: CommandTimers,
}

#[derive(Default)]
struct Slot {
    /// `None` while (re)connecting. A read lock is held only to clone the
    /// handle, which is an `Arc` inside. The number is the connection's
    /// generation: a failure seen on an older one must not drop it.
    conn: RwLock<Option<(u64, MultiplexedConnection)>>,
    /// The generation of the next connection installed in this slot.
    generation: AtomicU64,
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
    pub(super) async fn connect(url: &str, settings: Settings, eager: bool) -> Result<Self, Error> {
        let secret = crate::redact::passwords(url).into_iter().next();
        let client = super::tls::client(url, &settings.tls, secret.as_deref())?;
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
            timers: CommandTimers::new(),
        });
        let slots: Box<[Arc<Slot>]> = (0..settings.pool_size.max(1))
            .map(|_| Arc::new(Slot::default()))
            .collect();
        if eager {
            let conns = futures::future::try_join_all(slots.iter().map(|_| shared.open())).await?;
            for (slot, conn) in slots.iter().zip(conns) {
                slot.install(conn);
            }
        } else {
            for slot in slots.iter() {
                spawn_reconnect(&shared, slot, None);
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
    fn pick(&self) -> Result<(&Arc<Slot>, u64, MultiplexedConnection), Error> {
        let n = self.slots.len();
        let start = THREAD_SLOT.with(|s| *s);
        for i in 0..n {
            let slot = &self.slots[(start + i) % n];
            if let Some((generation, conn)) = slot.conn.read().as_ref() {
                return Ok((slot, *generation, conn.clone()));
            }
            spawn_reconnect(&self.shared, slot, None);
        }
        Err(Error::Unavailable(
            "no live connection, reconnecting".to_owned(),
        ))
    }

    /// Runs `f` on a connection and applies the healing rules to its
    /// outcome; its latency goes into the histogram of `command`.
    async fn run<T, F, Fut>(&self, command: usize, f: F) -> Result<T, Error>
    where
        F: FnOnce(MultiplexedConnection) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let (slot, generation, conn) = self.pick()?;
        let started = crate::time::Instant::now();
        let outcome = f(conn).await;
        self.shared.timers.record(command, started.elapsed());
        // An outcome on a connection that was replaced meanwhile says
        // nothing about the current one. (Checked only when it matters: the
        // generation is read under the slot's lock.)
        let current = || slot.generation() == Some(generation);
        match outcome {
            Ok(v) => {
                if slot.timeouts.load(Ordering::Relaxed) != 0 && current() {
                    slot.timeouts.store(0, Ordering::Relaxed);
                }
                Ok(v)
            }
            Err(e) => {
                let err = from_redis(
                    &e,
                    self.shared.secret.as_deref(),
                    self.shared.settings.op_timeout,
                );
                let stuck = if !current() {
                    false
                } else if err.is_timeout() {
                    slot.timeouts.fetch_add(1, Ordering::Relaxed) + 1
                        >= self.shared.settings.heal_after_timeouts
                } else {
                    e.is_io_error() || e.is_connection_dropped() || e.is_unrecoverable_error()
                };
                if stuck {
                    tracing::warn!(error = %err, "dropping redis connection and reconnecting");
                    spawn_reconnect(&self.shared, slot, Some(generation));
                }
                Err(err)
            }
        }
    }
}

impl Shared {
    async fn open(&self) -> Result<MultiplexedConnection, Error> {
        open_connection(
            &self.client,
            &self.conn_config,
            self.settings.connect_timeout,
            self.secret.as_deref(),
        )
        .await
    }
}

/// A multiplexed connection of `client` under `config`, whose connection
/// timeout is `timeout`; `secret` is removed from errors. The client's own
/// connection timeout covers TCP and the handshake; the outer bound also
/// covers DNS and TLS set-up. Running out of time is `Unavailable`.
pub(super) async fn open_connection(
    client: &redis::Client,
    config: &AsyncConnectionConfig,
    timeout: Duration,
    secret: Option<&str>,
) -> Result<MultiplexedConnection, Error> {
    match tokio::time::timeout(
        timeout + Duration::from_millis(50),
        client.get_multiplexed_async_connection_with_config(config),
    )
    .await
    {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(match from_redis(&e, secret, timeout) {
            Error::Timeout(_) => Error::Unavailable(format!("connect timed out after {timeout:?}")),
            other => other,
        }),
        Err(_) => Err(Error::Unavailable(format!(
            "connect timed out after {timeout:?}"
        ))),
    }
}

impl Slot {
    /// The generation of the installed connection; `None` while reconnecting.
    fn generation(&self) -> Option<u64> {
        self.conn.read().as_ref().map(|(generation, _)| *generation)
    }

    /// Installs a new connection, of the next generation.
    fn install(&self, conn: MultiplexedConnection) {
        let generation = self.generation.fetch_add(1, Ordering::Relaxed);
        *self.conn.write() = Some((generation, conn));
        self.timeouts.store(0, Ordering::Relaxed);
    }

    /// Drops the connection if it is still of `generation`; false when a
    /// newer one replaced it meanwhile (it stays).
    fn drop_if(&self, generation: u64) -> bool {
        let mut conn = self.conn.write();
        if conn.as_ref().is_some_and(|(g, _)| *g == generation) {
            conn.take();
            self.timeouts.store(0, Ordering::Relaxed);
            true
        } else {
            false
        }
    }
}

/// Drops the slot's connection of generation `stale` (when given and still
/// installed) and starts one reconnect task for it, unless one is already
/// running.
fn spawn_reconnect(shared: &Arc<Shared>, slot: &Arc<Slot>, stale: Option<u64>) {
    let drop_current = match stale {
        Some(generation) => slot.drop_if(generation),
        None => false,
    };
    if stale.is_some() && !drop_current {
        return;
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
                    slot.install(conn);
                    shared.connected.notify_waiters();
                    if drop_current {
                        shared.reconnects.fetch_add(1, Ordering::Relaxed);
                        crate::telemetry::reconnected();
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

/// The timer of `cmd`: its command's index, `other` when unknown.
fn command_name(cmd: &redis::Cmd) -> usize {
    match cmd.args_iter().next() {
        Some(redis::Arg::Simple(name)) => command_index(name),
        _ => command_index(b"other"),
    }
}

impl SingleBackend {
    async fn query(&self, cmd: &redis::Cmd) -> Result<redis::Value, Error> {
        self.run(command_name(cmd), move |mut c| async move {
            cmd.query_async(&mut c).await
        })
        .await
    }

    /// Labelled by its first command (`GET` for `GET` + `PTTL`).
    async fn pipeline(&self, pipe: &redis::Pipeline) -> Result<Vec<redis::Value>, Error> {
        let command = pipe
            .cmd_iter()
            .next()
            .map_or_else(|| command_index(b"other"), command_name);
        self.run(command, move |mut c| async move {
            pipe.query_async(&mut c).await
        })
        .await
    }

    pub(super) async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        reply::bytes(self.query(&reply::get_cmd(key)).await?)
    }

    pub(super) async fn get_with_pttl(
        &self,
        key: &str,
    ) -> Result<(Option<Vec<u8>>, Option<Duration>), Error> {
        let pipe = reply::get_with_pttl_pipeline(key);
        let mut replies = self.pipeline(&pipe).await?.into_iter();
        let bytes = reply::bytes(replies.next().unwrap_or(redis::Value::Nil))?;
        Ok((bytes, reply::time_left(replies.next())))
    }

    pub(super) async fn set(
        &self,
        key: &str,
        value: &[u8],
        ttl: Option<Duration>,
    ) -> Result<(), Error> {
        self.query(&set_cmd(key, value, ttl)).await.map(drop)
    }

    pub(super) async fn mget(&self, keys: &[&str]) -> Result<Vec<Option<Vec<u8>>>, Error> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let cmd = reply::mget_cmd(keys);
        let reply: Vec<redis::Value> = self
            .run(command_index(b"MGET"), move |mut c| async move {
                cmd.query_async(&mut c).await
            })
            .await?;
        reply.into_iter().map(reply::bytes).collect()
    }

    pub(super) async fn mset(&self, entries: &[Entry]) -> Result<(), Error> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for (key, value, ttl) in entries {
            pipe.add_command(set_cmd(key, value, *ttl)).ignore();
        }
        self.run(command_index(b"MSET"), move |mut c| async move {
            pipe.query_async::<()>(&mut c).await
        })
        .await
    }

    pub(super) async fn unlink(&self, keys: &[String]) -> Result<u64, Error> {
        if keys.is_empty() {
            return Ok(0);
        }
        let mut cmd = redis::cmd("UNLINK");
        cmd.arg(keys);
        Ok(reply::int(self.query(&cmd).await?)?.max(0) as u64)
    }

    pub(super) async fn exists(&self, key: &str) -> Result<bool, Error> {
        let mut cmd = redis::cmd("EXISTS");
        cmd.arg(key);
        Ok(reply::int(self.query(&cmd).await?)? > 0)
    }

    pub(super) async fn expire(&self, key: &str, ttl: Duration) -> Result<bool, Error> {
        let mut cmd = redis::cmd("PEXPIRE");
        cmd.arg(key).arg(px(ttl));
        Ok(reply::int(self.query(&cmd).await?)? == 1)
    }

    pub(super) async fn pttl(&self, key: &str) -> Result<KeyTtl, Error> {
        let mut cmd = redis::cmd("PTTL");
        cmd.arg(key);
        reply::key_ttl(self.query(&cmd).await?)
    }

    pub(super) async fn incr(&self, key: &str, amount: i64) -> Result<i64, Error> {
        let mut cmd = redis::cmd("INCRBY");
        cmd.arg(key).arg(amount);
        reply::int(self.query(&cmd).await?)
    }

    /// A single server's replicas (if any) are not tracked: the bump
    /// counts as replicated.
    pub(super) async fn bump(&self, key: &str, amount: i64) -> Result<Bump, Error> {
        let value = self.incr(key, amount).await?;
        Ok(Bump {
            value,
            replicated: true,
        })
    }

    pub(super) async fn counter(&self, key: &str) -> Result<Option<i64>, Error> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(key);
        let v = self.query(&cmd).await?;
        Ok(reply::counter(v))
    }

    pub(super) async fn take_lease(
        &self,
        key: &str,
        token: &str,
        ttl: Duration,
    ) -> Result<Lease, Error> {
        let pipe = reply::lease_pipeline(key, token, ttl);
        Ok(reply::lease(self.pipeline(&pipe).await?))
    }

    pub(super) async fn checked_fill(
        &self,
        key: &str,
        token: &str,
        value: &[u8],
        ttl: Duration,
        observed: Option<&[u8]>,
    ) -> Result<bool, Error> {
        let cmd = reply::fill_cmd(key, token, value, ttl, observed);
        Ok(reply::filled(&self.query(&cmd).await?))
    }

    pub(super) async fn versioned_set(
        &self,
        key: &str,
        value: &[u8],
        ttl: Duration,
        version: u64,
    ) -> Result<bool, Error> {
        let cmd = reply::versioned_set_cmd(key, value, ttl, version);
        Ok(reply::filled(&self.query(&cmd).await?))
    }

    pub(super) async fn release_lease(&self, key: &str, token: &str) -> Result<(), Error> {
        self.query(&reply::release_cmd(key, token)).await.map(drop)
    }

    /// Each batch is a part of the clear: a failure after some batches were
    /// unlinked is returned as [`Error::PartlyCleared`], with their count.
    pub(super) async fn scan_unlink(&self, pattern: &str, batch: usize) -> Result<u64, Error> {
        let mut tally = ClearTally::default();
        let mut cursor: u64 = 0;
        loop {
            let mut scan = redis::cmd("SCAN");
            scan.arg(cursor)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(batch);
            let part = async {
                let (next, keys): (u64, Vec<String>) = self
                    .run(command_index(b"SCAN"), move |mut c| async move {
                        scan.query_async(&mut c).await
                    })
                    .await?;
                Ok::<_, Error>((next, self.unlink(&keys).await?))
            };
            match part.await {
                Ok((next, removed)) => {
                    tally.add(Ok(removed));
                    if next == 0 {
                        return tally.finish();
                    }
                    cursor = next;
                }
                Err(e) => {
                    tally.add(Err(e));
                    return tally.finish();
                }
            }
        }
    }

    pub(super) async fn publish(&self, channel: &str, messages: &[String]) -> Result<(), Error> {
        match messages {
            [] => Ok(()),
            [one] => {
                let mut cmd = redis::cmd("PUBLISH");
                cmd.arg(channel).arg(one);
                self.query(&cmd).await.map(drop)
            }
            many => {
                let mut pipe = redis::pipe();
                for message in many {
                    pipe.cmd("PUBLISH").arg(channel).arg(message).ignore();
                }
                self.pipeline(&pipe).await.map(drop)
            }
        }
    }

    pub(super) async fn subscribe(&self, channel: &str, timeout: Duration) -> Option<Subscription> {
        subscribe_with(&self.shared.client, channel, timeout).await
    }

    pub(super) async fn ping(&self) -> Result<(), Error> {
        self.query(&redis::cmd("PING")).await.map(drop)
    }

    pub(super) async fn info(&self) -> Result<String, Error> {
        self.run(command_index(b"INFO"), |mut c| async move {
            redis::cmd("INFO").query_async(&mut c).await
        })
        .await
    }

    pub(super) fn reconnects(&self) -> u64 {
        self.shared.reconnects.load(Ordering::Relaxed)
    }

    pub(super) fn connected(&self) -> bool {
        self.slots.iter().any(|s| s.conn.read().is_some())
    }

    pub(super) async fn await_connection(&self) {
        if self.connected() {
            return;
        }
        let connected = self.shared.connected.notified();
        let failed = self.shared.attempt_failed.notified();
        tokio::pin!(connected, failed);
        // Registered before the wake-ups, so an outcome in between is not
        // missed.
        connected.as_mut().enable();
        failed.as_mut().enable();
        for slot in self.slots.iter() {
            slot.wake.notify_one();
            spawn_reconnect(&self.shared, slot, None);
        }
        // The first outcome decides: a refused connection fails the probe at
        // once; an unanswered one waits for the connect timeout.
        let limit = self.shared.settings.connect_timeout + Duration::from_millis(50);
        tokio::select! {
            () = connected => {}
            () = failed => {}
            () = tokio::time::sleep(limit) => {}
        }
    }
}

/// Subscribes to `channel` on a new dedicated connection of `client`, each
/// step within `timeout`.
pub(super) async fn subscribe_with(
    client: &redis::Client,
    channel: &str,
    timeout: Duration,
) -> Option<Subscription> {
    let mut pubsub = tokio::time::timeout(timeout, client.get_async_pubsub())
        .await
        .ok()?
        .ok()?;
    tokio::time::timeout(timeout, pubsub.subscribe(channel))
        .await
        .ok()?
        .ok()?;
    let (sink, stream) = pubsub.split();
    Some(Subscription { sink, stream })
}

/// A subscription on its own connection to the server.
pub(crate) struct Subscription {
    sink: redis::aio::PubSubSink,
    stream: redis::aio::PubSubStream,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription").finish_non_exhaustive()
    }
}

impl Subscription {
    pub(super) async fn recv(&mut self) -> Option<Vec<u8>> {
        use futures::StreamExt;
        let msg = self.stream.next().await?;
        Some(msg.get_payload_bytes().to_vec())
    }

    pub(super) async fn ping(&mut self, timeout: Duration) -> bool {
        let alive = tokio::time::timeout(timeout, self.sink.ping::<redis::Value>()).await;
        matches!(alive, Ok(Ok(_)))
    }
}
