//! Redis Cluster backend on redis-rs `cluster-async`, set up for a cache:
//! every call bounded by the operation timeout (per attempt and overall),
//! at most two retries with waits of 10 to 100 ms (redis-rs waits at least
//! 1.28 s by default), a bound around connection creation, reads from
//! primaries only so leases and fills read their own writes.
//!
//! What a cluster changes, and where it is handled here:
//! - batches (`mget`, `mset`, `unlink`) are grouped by the primary that
//!   serves each key's slot ([`topology`]), one pipeline per primary, the
//!   answers put back in the caller's order; a key whose slot moved
//!   meanwhile is retried alone, so no `CROSSSLOT` or `MOVED` reaches a
//!   caller;
//! - a lease key hashes to its data key's slot (`key::lease_key`), so the
//!   lease pipeline and the scripts touch one slot;
//! - `scan_unlink` scans every primary with its own cursor, and scans a
//!   shard again from 0 when its primary changed before the scan finished;
//! - the subscription is a classic `SUBSCRIBE` on a dedicated connection to
//!   one live node (classic `PUBLISH` reaches every node); when that node
//!   dies the subscriber asks again and lands on another node;
//! - a background task reads `CLUSTER SLOTS` every second and counts the
//!   changes (`reconnects` in the statistics).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::RwLock;
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::{ConnectionAddr, ConnectionInfo, IntoConnectionInfo};

use super::error::from_redis;
use super::reply::{self, px, set_cmd};
use super::{Bump, Entry, Lease, Settings, single};
use crate::error::{ClearTally, ConfigError, Error};
use crate::key::{KeyTtl, key_slot};

pub(crate) mod topology;

use topology::{Node, Topology};

/// How often the background task reads the topology.
const REFRESH_EVERY: Duration = Duration::from_secs(1);

/// A failure while some node answered within this window is confined to
/// part of the cluster (one shard down, say): it does not count toward the
/// circuit breaker, which would otherwise fail every shard fast. The
/// topology task reads the cluster every second, so this stays fresh while
/// any node answers.
const PARTIAL_WINDOW: Duration = Duration::from_millis(1500);

/// The cluster backend.
pub(crate) struct ClusterBackend {
    shared: Arc<Shared>,
}

struct Shared {
    conn: ClusterConnection,
    /// The first seed, the template of a per-node subscription client.
    seed: ConnectionInfo,
    /// The TLS files' certificates, for the per-node subscription clients
    /// too.
    certs: Option<redis::TlsCertificates>,
    settings: Settings,
    /// The password, removed from every error message.
    secret: Option<String>,
    topology: RwLock<Arc<Topology>>,
    /// Topology changes seen after the first reading.
    changes: AtomicU64,
    /// The last topology reading or call succeeded.
    connected: AtomicBool,
    /// When a call or topology reading last succeeded, in ms since `born`.
    last_success_ms: AtomicU64,
    born: Instant,
    /// Wakes the topology task early (after a redirect or a dropped
    /// connection).
    wake: Arc<tokio::sync::Notify>,
    /// Rotates the node a new subscription starts with.
    next_subscriber: AtomicUsize,
}

impl std::fmt::Debug for ClusterBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let t = self.topology();
        f.debug_struct("ClusterBackend")
            .field("primaries", &t.shards.len())
            .field("topology_changes", &self.reconnects())
            .finish()
    }
}

/// A node's answer to `PING`, for health reports.
#[derive(Debug, Clone)]
pub(crate) struct NodePing {
    pub(crate) address: String,
    pub(crate) slots: u32,
    pub(crate) replicas: usize,
    /// Round trip, or why it failed.
    pub(crate) latency: Result<Duration, String>,
}

fn config_error(e: &redis::RedisError, secret: Option<&str>) -> Error {
    Error::Config(ConfigError::new(
        "REDIS_URL",
        crate::redact::scrub(&e.to_string(), secret),
    ))
}

/// Whether a failure says the key lives elsewhere now (or will shortly):
/// worth another try key by key after the topology is read again.
fn is_redirect(e: &redis::RedisError) -> bool {
    use redis::{ErrorKind, ServerErrorKind};
    matches!(
        e.kind(),
        ErrorKind::Server(
            ServerErrorKind::Moved
                | ServerErrorKind::Ask
                | ServerErrorKind::TryAgain
                | ServerErrorKind::CrossSlot
                | ServerErrorKind::ClusterDown
        )
    )
}

impl ClusterBackend {
    /// Connects to the cluster through the comma-separated seed `urls`.
    /// With `eager`, fails unless the cluster answers within the connect
    /// timeout; otherwise connects in the background.
    pub(super) async fn connect(
        urls: &str,
        settings: Settings,
        eager: bool,
    ) -> Result<Self, Error> {
        let secret = crate::redact::passwords(urls).into_iter().next();
        let seeds: Vec<&str> = urls
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        let seed = seeds
            .first()
            .copied()
            .ok_or_else(|| Error::Config(ConfigError::new("REDIS_URL", "must not be empty")))?
            .into_connection_info()
            .map_err(|e| config_error(&e, secret.as_deref()))?;
        // The subscription clients built from it skip `CLIENT SETINFO`, as
        // single-server clients do (redis-rs's cluster connections send
        // it, and carry on when it is refused).
        let settings_of_seed = seed.redis_settings().clone().set_skip_set_lib_name();
        let seed = seed.set_redis_settings(settings_of_seed);
        let certs = super::tls::certificates(&settings.tls)?;
        let mut builder = ClusterClientBuilder::new(seeds)
            .connection_timeout(settings.connect_timeout)
            .response_timeout(settings.op_timeout)
            .overall_response_timeout(Some(settings.op_timeout))
            .retries(2)
            .min_retry_wait(10)
            .max_retry_wait(100);
        if let Some(certs) = &certs {
            builder = builder.certs(certs.clone());
        }
        let client: ClusterClient = builder.build().map_err(|e| match certs {
            Some(_) => super::tls::certificate_error(&e, &settings.tls, secret.as_deref()),
            None => config_error(&e, secret.as_deref()),
        })?;
        let conn = if eager {
            // redis-rs connects in two rounds, each waiting for its slowest
            // node up to the connect timeout: the seeds, then the nodes of
            // the slot map. A node that hangs costs both rounds, and must
            // not fail the connect while the other shards answer (the
            // margin is for the rounds' own work on a busy machine).
            let limit = settings.connect_timeout * 2 + Duration::from_millis(500);
            match tokio::time::timeout(limit, client.get_async_connection()).await {
                Ok(Ok(conn)) => conn,
                Ok(Err(e)) => {
                    return Err(match from_redis(&e, secret.as_deref(), limit) {
                        Error::Timeout(_) => {
                            Error::Unavailable(format!("connect timed out after {limit:?}"))
                        }
                        other => other,
                    });
                }
                Err(_) => {
                    return Err(Error::Unavailable(format!(
                        "connect timed out after {limit:?}"
                    )));
                }
            }
        } else {
            let config = redis::cluster::ClusterConfig::new()
                .set_connection_timeout(settings.connect_timeout)
                .set_response_timeout(settings.op_timeout);
            client.get_pending_async_connection_with_config(config)
        };
        let shared = Arc::new(Shared {
            conn,
            seed,
            certs,
            settings,
            secret,
            topology: RwLock::new(Arc::new(Topology::default())),
            changes: AtomicU64::new(0),
            connected: AtomicBool::new(false),
            last_success_ms: AtomicU64::new(0),
            born: Instant::now(),
            wake: Arc::new(tokio::sync::Notify::new()),
            // Instances spread their subscriptions over the nodes.
            next_subscriber: AtomicUsize::new(rand::random::<u16>().into()),
        });
        if eager {
            shared.refresh().await?;
        }
        spawn_refresher(&shared);
        Ok(Self { shared })
    }

    /// The topology as last read.
    pub(crate) fn topology(&self) -> Arc<Topology> {
        Arc::clone(&self.shared.topology.read())
    }

    /// The routing connection, for commands of the caller's own.
    pub(super) fn connection(&self) -> ClusterConnection {
        self.shared.conn.clone()
    }

    /// A client of each primary of the topology as last read, with the
    /// seed's credentials and TLS files.
    pub(super) fn primary_clients(&self) -> Vec<redis::Client> {
        self.topology()
            .shards
            .iter()
            .filter_map(|s| {
                self.shared
                    .node_client(node_info(&self.shared.seed, &s.primary))
            })
            .collect()
    }
}

/// Reads the topology every [`REFRESH_EVERY`], or sooner when woken (at
/// most every 50 ms), until the backend is dropped.
fn spawn_refresher(shared: &Arc<Shared>) {
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let weak = Arc::downgrade(shared);
    let wake = Arc::clone(&shared.wake);
    handle.spawn(async move {
        loop {
            {
                let Some(shared) = weak.upgrade() else { break };
                let _ = shared.refresh().await;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            tokio::select! {
                () = tokio::time::sleep(REFRESH_EVERY) => {}
                () = wake.notified() => {}
            }
        }
    });
}

impl Shared {
    /// Records that the cluster answered.
    fn answered(&self) {
        self.connected.store(true, Ordering::Relaxed);
        let now = self.born.elapsed().as_millis() as u64;
        if self.last_success_ms.load(Ordering::Relaxed) < now {
            self.last_success_ms.store(now, Ordering::Relaxed);
        }
    }

    /// Whether some node answered within [`PARTIAL_WINDOW`].
    fn answering(&self) -> bool {
        let last = self.last_success_ms.load(Ordering::Relaxed);
        last != 0
            && self.born.elapsed().as_millis() as u64 <= last + PARTIAL_WINDOW.as_millis() as u64
    }

    /// Converts a redis-rs error. A redirect that outlived redis-rs's
    /// retries, or a write that reached a replica, means the topology is
    /// changing (a failover in progress): transient, like a dropped
    /// connection, so pending invalidations are retried, not dropped.
    fn err(&self, e: &redis::RedisError) -> Error {
        let err = from_redis(e, self.secret.as_deref(), self.settings.op_timeout);
        let changing = is_redirect(e)
            || matches!(
                e.kind(),
                redis::ErrorKind::Server(redis::ServerErrorKind::ReadOnly)
            );
        if changing && !err.is_transient() {
            return Error::Unavailable(format!("cluster topology is changing: {err}"));
        }
        err
    }

    /// Bounds `fut` by the operation timeout (redis-rs bounds it too; this
    /// also covers the hand-over to its connection task), records its
    /// latency under `command` and converts its error.
    async fn run<T>(
        &self,
        command: &'static str,
        fut: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, Error> {
        let started = crate::time::Instant::now();
        let limit = self.settings.op_timeout + Duration::from_millis(50);
        let outcome = tokio::time::timeout(limit, fut).await;
        crate::telemetry::redis_command(command, started.elapsed());
        match outcome {
            Ok(Ok(v)) => {
                self.answered();
                Ok(v)
            }
            Ok(Err(e)) => {
                if is_redirect(&e) || e.is_io_error() || e.is_connection_dropped() {
                    self.refresh_soon();
                }
                Err(self.err(&e))
            }
            Err(_) => Err(Error::Timeout(self.settings.op_timeout)),
        }
    }

    async fn query(&self, cmd: &redis::Cmd) -> Result<redis::Value, Error> {
        let mut conn = self.conn.clone();
        self.run(command_name(cmd), async move {
            cmd.query_async(&mut conn).await
        })
        .await
    }

    async fn pipeline(&self, pipe: &redis::Pipeline) -> Result<Vec<redis::Value>, Error> {
        let mut conn = self.conn.clone();
        let command = pipe.cmd_iter().next().map_or("other", command_name);
        self.run(command, async move { pipe.query_async(&mut conn).await })
            .await
    }

    /// Sends `pipe` (`count` commands) to the primary serving `slot`, and
    /// returns each command's reply, errors included.
    async fn pipeline_at(
        &self,
        pipe: redis::Pipeline,
        count: usize,
        slot: u16,
    ) -> Result<Vec<redis::Value>, redis::RedisError> {
        let mut conn = self.conn.clone();
        let route = SingleNodeRoutingInfo::SpecificNode(Route::new(slot, SlotAddr::Master));
        conn.route_pipeline(pipe, 0, count, route).await
    }

    /// Sends `cmd` to the node at `node`.
    async fn query_node(&self, cmd: redis::Cmd, node: &Node) -> Result<redis::Value, Error> {
        let mut conn = self.conn.clone();
        let route = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
            host: node.host.clone(),
            port: node.port,
        });
        let command = command_name(&cmd);
        self.run(command, async move { conn.route_command(cmd, route).await })
            .await
    }

    /// Reads `CLUSTER SLOTS`; counts a change of topology.
    async fn refresh(&self) -> Result<Arc<Topology>, Error> {
        let mut conn = self.conn.clone();
        let mut cmd = redis::cmd("CLUSTER");
        cmd.arg("SLOTS");
        let route = RoutingInfo::SingleNode(SingleNodeRoutingInfo::RandomPrimary);
        let reply = self
            .run(
                "CLUSTER",
                async move { conn.route_command(cmd, route).await },
            )
            .await;
        let reply = match reply {
            Ok(r) => r,
            Err(e) => {
                self.connected.store(false, Ordering::Relaxed);
                return Err(e);
            }
        };
        let fresh = Topology::parse(reply, seed_host(&self.seed))?;
        let mut current = self.topology.write();
        if **current != fresh {
            if !current.shards.is_empty() {
                self.changes.fetch_add(1, Ordering::Relaxed);
                crate::telemetry::reconnected();
                tracing::info!(
                    primaries = fresh.shards.len(),
                    uncovered_slots = fresh.uncovered(),
                    "redis cluster topology changed"
                );
            }
            *current = Arc::new(fresh);
        }
        Ok(Arc::clone(&current))
    }

    /// Asks the topology task to read the topology now.
    fn refresh_soon(&self) {
        self.wake.notify_one();
    }

    /// A client of one node, `info`, with the TLS files' certificates.
    fn node_client(&self, info: ConnectionInfo) -> Option<redis::Client> {
        match &self.certs {
            Some(certs) => redis::Client::build_with_tls(info, certs.clone()).ok(),
            None => redis::Client::open(info).ok(),
        }
    }
}

fn seed_host(seed: &ConnectionInfo) -> &str {
    match seed.addr() {
        ConnectionAddr::Tcp(host, _) => host,
        ConnectionAddr::TcpTls { host, .. } => host,
        _ => "",
    }
}

/// The connection settings of `seed` (credentials, TLS) for `node`.
fn node_info(seed: &ConnectionInfo, node: &Node) -> ConnectionInfo {
    let addr = match seed.addr() {
        ConnectionAddr::TcpTls {
            insecure,
            tls_params,
            ..
        } => ConnectionAddr::TcpTls {
            host: node.host.clone(),
            port: node.port,
            insecure: *insecure,
            tls_params: tls_params.clone(),
        },
        _ => ConnectionAddr::Tcp(node.host.clone(), node.port),
    };
    seed.clone().set_addr(addr)
}

/// The `command` label of `cmd`: its name when known, else `other`.
fn command_name(cmd: &redis::Cmd) -> &'static str {
    match cmd.args_iter().next() {
        Some(redis::Arg::Simple(name)) => crate::telemetry::known_command(name),
        _ => "other",
    }
}

/// Key positions grouped by the primary serving them: the slot to route
/// each group by, and the positions.
fn group_by_primary<'a>(
    topology: &Topology,
    keys: impl Iterator<Item = &'a str>,
) -> Vec<(u16, Vec<usize>)> {
    let mut groups: Vec<(u16, Vec<usize>)> = Vec::new();
    // Group id: the shard index, or 65536 + slot for a slot no primary
    // serves in this view (each such slot on its own).
    let mut ids: Vec<usize> = Vec::new();
    for (i, key) in keys.enumerate() {
        let slot = key_slot(key.as_bytes());
        let id = topology.shard_of(slot).unwrap_or(65536 + usize::from(slot));
        match ids.iter().position(|&g| g == id) {
            Some(g) => groups[g].1.push(i),
            None => {
                ids.push(id);
                groups.push((slot, vec![i]));
            }
        }
    }
    groups
}

impl ClusterBackend {
    pub(super) async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        reply::bytes(self.shared.query(&reply::get_cmd(key)).await?)
    }

    pub(super) async fn get_with_pttl(
        &self,
        key: &str,
    ) -> Result<(Option<Vec<u8>>, Option<Duration>), Error> {
        let pipe = reply::get_with_pttl_pipeline(key);
        let mut replies = self.shared.pipeline(&pipe).await?.into_iter();
        let bytes = reply::bytes(replies.next().unwrap_or(redis::Value::Nil))?;
        Ok((bytes, reply::time_left(replies.next())))
    }

    pub(super) async fn set(
        &self,
        key: &str,
        value: &[u8],
        ttl: Option<Duration>,
    ) -> Result<(), Error> {
        self.shared.query(&set_cmd(key, value, ttl)).await.map(drop)
    }

    /// Runs one pipeline per primary (`build` adds the commands of the
    /// given positions), all at once, and returns every position's reply in
    /// order. A group refused as a whole with a redirect, and any single
    /// reply that is an error, are retried position by position with
    /// `single`, which redis-rs routes and redirects on its own.
    async fn per_primary<'k, B, S, Fut>(
        &self,
        command: &'static str,
        keys: impl Iterator<Item = &'k str>,
        len: usize,
        build: B,
        single: S,
    ) -> Result<Vec<redis::Value>, Error>
    where
        B: Fn(&mut redis::Pipeline, usize),
        S: Fn(usize) -> Fut,
        Fut: std::future::Future<Output = Result<redis::Value, Error>>,
    {
        let groups = group_by_primary(&self.topology(), keys);
        let shared = &self.shared;
        let build = &build;
        let single = &single;
        let work =
            futures::future::try_join_all(groups.into_iter().map(|(slot, positions)| async move {
                let mut pipe = redis::pipe();
                for &i in &positions {
                    build(&mut pipe, i);
                }
                let replies = match shared.pipeline_at(pipe, positions.len(), slot).await {
                    Ok(replies) if replies.len() == positions.len() => replies,
                    Ok(_) => return Err(super::error::unexpected("short pipeline reply")),
                    Err(e) if is_redirect(&e) => {
                        shared.refresh_soon();
                        vec![redis::Value::Nil; 0]
                    }
                    Err(e) => {
                        if e.is_io_error() || e.is_connection_dropped() {
                            shared.refresh_soon();
                        }
                        return Err(shared.err(&e));
                    }
                };
                let mut out = Vec::with_capacity(positions.len());
                if replies.is_empty() {
                    for &i in &positions {
                        out.push((i, single(i).await?));
                    }
                    return Ok(out);
                }
                for (&i, reply) in positions.iter().zip(replies) {
                    let reply = match reply {
                        redis::Value::ServerError(_) => single(i).await?,
                        ok => ok,
                    };
                    out.push((i, reply));
                }
                Ok(out)
            }));
        let limit = shared.settings.op_timeout + Duration::from_millis(50);
        let started = crate::time::Instant::now();
        let groups = tokio::time::timeout(limit, work).await;
        crate::telemetry::redis_command(command, started.elapsed());
        let groups = match groups {
            Ok(groups) => groups?,
            Err(_) => return Err(Error::Timeout(shared.settings.op_timeout)),
        };
        shared.answered();
        let mut out = vec![redis::Value::Nil; len];
        for (i, reply) in groups.into_iter().flatten() {
            out[i] = reply;
        }
        Ok(out)
    }

    pub(super) async fn mget(&self, keys: &[&str]) -> Result<Vec<Option<Vec<u8>>>, Error> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let replies = self
            .per_primary(
                "MGET",
                keys.iter().copied(),
                keys.len(),
                |pipe, i| {
                    pipe.add_command(reply::get_cmd(keys[i]));
                },
                |i| async move { self.shared.query(&reply::get_cmd(keys[i])).await },
            )
            .await?;
        replies.into_iter().map(reply::bytes).collect()
    }

    pub(super) async fn mset(&self, entries: &[Entry]) -> Result<(), Error> {
        if entries.is_empty() {
            return Ok(());
        }
        self.per_primary(
            "MSET",
            entries.iter().map(|(k, _, _)| k.as_str()),
            entries.len(),
            |pipe, i| {
                let (key, value, ttl) = &entries[i];
                pipe.add_command(set_cmd(key, value, *ttl));
            },
            |i| async move {
                let (key, value, ttl) = &entries[i];
                self.shared.query(&set_cmd(key, value, *ttl)).await
            },
        )
        .await
        .map(drop)
    }

    pub(super) async fn unlink(&self, keys: &[String]) -> Result<u64, Error> {
        if keys.is_empty() {
            return Ok(0);
        }
        // One `UNLINK` per key, pipelined per primary: a multi-key `UNLINK`
        // must stay within one slot.
        let replies = self
            .per_primary(
                "UNLINK",
                keys.iter().map(String::as_str),
                keys.len(),
                |pipe, i| {
                    pipe.cmd("UNLINK").arg(&keys[i]);
                },
                |i| async move {
                    let mut cmd = redis::cmd("UNLINK");
                    cmd.arg(&keys[i]);
                    self.shared.query(&cmd).await
                },
            )
            .await?;
        let mut removed = 0;
        for r in replies {
            removed += reply::int(r)?.max(0) as u64;
        }
        Ok(removed)
    }

    pub(super) async fn exists(&self, key: &str) -> Result<bool, Error> {
        let mut cmd = redis::cmd("EXISTS");
        cmd.arg(key);
        Ok(reply::int(self.shared.query(&cmd).await?)? > 0)
    }

    pub(super) async fn expire(&self, key: &str, ttl: Duration) -> Result<bool, Error> {
        let mut cmd = redis::cmd("PEXPIRE");
        cmd.arg(key).arg(px(ttl));
        Ok(reply::int(self.shared.query(&cmd).await?)? == 1)
    }

    pub(super) async fn pttl(&self, key: &str) -> Result<KeyTtl, Error> {
        let mut cmd = redis::cmd("PTTL");
        cmd.arg(key);
        reply::key_ttl(self.shared.query(&cmd).await?)
    }

    pub(super) async fn incr(&self, key: &str, amount: i64) -> Result<i64, Error> {
        let mut cmd = redis::cmd("INCRBY");
        cmd.arg(key).arg(amount);
        reply::int(self.shared.query(&cmd).await?)
    }

    /// `INCRBY`, then `WAIT 1` on the same connection when the shard has a
    /// replica: a version (a tag's) is known to be on a replica before the
    /// caller counts it as settled, so a failover cannot roll it back and
    /// make entries stamped with the old version current again. No
    /// acknowledgement within half the operation timeout (a replica that
    /// died, or is cut off) is not an error: the new value is returned as
    /// not replicated, and the topology is read again at once, so a replica
    /// the cluster has marked failed stops being waited for.
    pub(super) async fn bump(&self, key: &str, amount: i64) -> Result<Bump, Error> {
        let slot = key_slot(key.as_bytes());
        let topology = self.topology();
        let has_replica = topology
            .shard_of(slot)
            .is_some_and(|i| !topology.shards[i].replicas.is_empty());
        let mut pipe = redis::pipe();
        pipe.cmd("INCRBY").arg(key).arg(amount);
        let wait = self.shared.settings.op_timeout / 2;
        if has_replica {
            pipe.cmd("WAIT").arg(1).arg(wait.as_millis().max(1) as u64);
        }
        let mut replies = self.shared.pipeline(&pipe).await?.into_iter();
        let value = reply::int(replies.next().unwrap_or(redis::Value::Nil))?;
        let replicated = match replies.next() {
            Some(acks) => reply::int(acks)? >= 1,
            None => true,
        };
        if !replicated {
            tracing::warn!(
                slot,
                "a version bump was not acknowledged by a replica within {wait:?}; it stays pending"
            );
            self.shared.refresh_soon();
        }
        Ok(Bump { value, replicated })
    }

    pub(super) async fn counter(&self, key: &str) -> Result<Option<i64>, Error> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(key);
        let v = self.shared.query(&cmd).await?;
        Ok(reply::counter(v))
    }

    pub(super) async fn take_lease(
        &self,
        key: &str,
        token: &str,
        ttl: Duration,
    ) -> Result<Lease, Error> {
        let pipe = reply::lease_pipeline(key, token, ttl);
        Ok(reply::lease(self.shared.pipeline(&pipe).await?))
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
        Ok(reply::filled(&self.shared.query(&cmd).await?))
    }

    pub(super) async fn versioned_set(
        &self,
        key: &str,
        value: &[u8],
        ttl: Duration,
        version: u64,
    ) -> Result<bool, Error> {
        let cmd = reply::versioned_set_cmd(key, value, ttl, version);
        Ok(reply::filled(&self.shared.query(&cmd).await?))
    }

    pub(super) async fn release_lease(&self, key: &str, token: &str) -> Result<(), Error> {
        self.shared
            .query(&reply::release_cmd(key, token))
            .await
            .map(drop)
    }

    pub(super) async fn scan_unlink(&self, pattern: &str, batch: usize) -> Result<u64, Error> {
        let topology = match self.shared.refresh().await {
            Ok(t) => t,
            Err(_) => self.topology(),
        };
        if topology.shards.is_empty() {
            return Err(Error::Unavailable("cluster topology unknown".to_owned()));
        }
        let slots: Vec<u16> = topology
            .shards
            .iter()
            .filter_map(|s| s.any_slot())
            .collect();
        // The shards are scanned side by side: a dead shard's wait for a
        // replica to take over overlaps the others' scans and waits. A
        // shard that cannot be scanned does not stop the others: what can
        // be removed is, and the first failure (in slot order) is returned,
        // with the count when some shard was scanned.
        let scans = slots
            .iter()
            .map(|&slot| self.scan_shard(slot, pattern, batch));
        let mut tally = ClearTally::default();
        for (slot, scanned) in slots.iter().zip(futures::future::join_all(scans).await) {
            if let Err(e) = &scanned {
                tracing::warn!(slot, error = %e, "a shard could not be scanned; the others were");
            }
            tally.add(scanned);
        }
        tally.finish()
    }

    /// `SCAN` + `UNLINK` on the primary serving `slot`, with that node's own
    /// cursor. When a step fails or the shard's primary changed before the
    /// scan finished, the topology is read again and the shard's (new)
    /// primary is scanned from 0; up to a deadline of ten connect timeouts.
    async fn scan_shard(&self, slot: u16, pattern: &str, batch: usize) -> Result<u64, Error> {
        let deadline = Instant::now()
            + self
                .shared
                .settings
                .connect_timeout
                .max(Duration::from_secs(1))
                * 10;
        let mut removed = 0;
        let mut node = self.topology().primary_of(slot).cloned();
        let mut cursor: u64 = 0;
        loop {
            let step = match &node {
                Some(n) => self.scan_step(n, cursor, pattern, batch).await,
                None => Err(Error::Unavailable(format!("no primary serves slot {slot}"))),
            };
            match step {
                Ok((next, n)) => {
                    removed += n;
                    if next != 0 {
                        cursor = next;
                        continue;
                    }
                    let now = self
                        .shared
                        .refresh()
                        .await
                        .unwrap_or_else(|_| self.topology());
                    let primary = now.primary_of(slot).cloned();
                    if primary == node {
                        return Ok(removed);
                    }
                    tracing::info!(
                        slot,
                        "primary changed during SCAN, scanning the shard again"
                    );
                    node = primary;
                    cursor = 0;
                }
                Err(e) => {
                    if Instant::now() > deadline {
                        return Err(e);
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    let now = self
                        .shared
                        .refresh()
                        .await
                        .unwrap_or_else(|_| self.topology());
                    node = now.primary_of(slot).cloned();
                    cursor = 0;
                }
            }
        }
    }

    async fn scan_step(
        &self,
        node: &Node,
        cursor: u64,
        pattern: &str,
        batch: usize,
    ) -> Result<(u64, u64), Error> {
        let mut scan = redis::cmd("SCAN");
        scan.arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(batch);
        let reply = self.shared.query_node(scan, node).await?;
        let (next, keys): (u64, Vec<String>) = redis::from_redis_value(reply)
            .map_err(|e| super::error::unexpected(format_args!("SCAN reply: {e}")))?;
        let removed = self.unlink(&keys).await?;
        Ok((next, removed))
    }

    pub(super) async fn publish(&self, channel: &str, messages: &[String]) -> Result<(), Error> {
        // Classic PUBLISH: the cluster bus relays it to every node. Always
        // through the primary of the channel name's slot, so one instance's
        // messages travel one path and arrive in order (through random
        // nodes they overtake each other, and receivers see gaps).
        if messages.is_empty() {
            return Ok(());
        }
        let slot = key_slot(channel.as_bytes());
        let mut pipe = redis::pipe();
        for message in messages {
            pipe.cmd("PUBLISH").arg(channel).arg(message);
        }
        let shared = &self.shared;
        let replies = shared
            .run("PUBLISH", async {
                shared.pipeline_at(pipe, messages.len(), slot).await
            })
            .await?;
        match replies
            .into_iter()
            .find(|r| matches!(r, redis::Value::ServerError(_)))
        {
            Some(failed) => Err(super::error::unexpected(format_args!(
                "PUBLISH: {failed:?}"
            ))),
            None => Ok(()),
        }
    }

    /// Subscribes on a dedicated connection to one live node, trying the
    /// known nodes in turn (each new subscription starts one further on,
    /// so after a node dies the next attempt begins elsewhere).
    pub(super) async fn subscribe(
        &self,
        channel: &str,
        timeout: Duration,
    ) -> Option<single::Subscription> {
        let mut nodes = self.topology().nodes();
        if nodes.is_empty() {
            nodes = match self.shared.refresh().await {
                Ok(t) => t.nodes(),
                Err(_) => Vec::new(),
            };
        }
        if nodes.is_empty() {
            // No topology yet: the seed itself.
            let client = self.shared.node_client(self.shared.seed.clone())?;
            return single::subscribe_with(&client, channel, timeout).await;
        }
        let start = self.shared.next_subscriber.fetch_add(1, Ordering::Relaxed);
        for i in 0..nodes.len() {
            let node = &nodes[(start + i) % nodes.len()];
            let Some(client) = self.shared.node_client(node_info(&self.shared.seed, node)) else {
                continue;
            };
            if let Some(sub) = single::subscribe_with(&client, channel, timeout).await {
                tracing::debug!(node = %node, "invalidation channel subscribed");
                return Some(sub);
            }
        }
        None
    }

    /// `PING` of every primary, at once.
    pub(crate) async fn ping_nodes(&self) -> Vec<NodePing> {
        let topology = self.topology();
        futures::future::join_all(topology.shards.iter().map(|shard| async move {
            let started = Instant::now();
            let latency = self
                .shared
                .query_node(redis::cmd("PING"), &shard.primary)
                .await
                .map(|_| started.elapsed())
                .map_err(|e| e.to_string());
            NodePing {
                address: shard.primary.to_string(),
                slots: shard.slot_count(),
                replicas: shard.replicas.len(),
                latency,
            }
        }))
        .await
    }

    pub(super) async fn ping(&self) -> Result<(), Error> {
        if self.topology().shards.is_empty() {
            self.shared.refresh().await?;
        }
        let pings = self.ping_nodes().await;
        if let Some(failed) = pings.iter().find_map(|p| p.latency.as_ref().err()) {
            return Err(Error::Unavailable(failed.clone()));
        }
        let uncovered = self.topology().uncovered();
        if uncovered > 0 {
            return Err(Error::Unavailable(format!(
                "{uncovered} slots have no primary"
            )));
        }
        Ok(())
    }

    pub(super) async fn info(&self) -> Result<String, Error> {
        let topology = self.topology();
        let texts = futures::future::try_join_all(topology.shards.iter().map(|s| async move {
            let reply = self
                .shared
                .query_node(redis::cmd("INFO"), &s.primary)
                .await?;
            redis::from_redis_value::<String>(reply)
                .map_err(|e| super::error::unexpected(format_args!("INFO reply: {e}")))
        }))
        .await?;
        Ok(texts.join("\r\n"))
    }

    pub(super) fn reconnects(&self) -> u64 {
        self.shared.changes.load(Ordering::Relaxed)
    }

    /// Whether a failure now is confined to part of the cluster: some node
    /// answered within the last [`PARTIAL_WINDOW`].
    pub(super) fn partial_failure(&self) -> bool {
        self.shared.answering()
    }

    pub(super) fn connected(&self) -> bool {
        self.shared.connected.load(Ordering::Relaxed)
    }

    pub(super) async fn await_connection(&self) {
        if self.connected() {
            return;
        }
        let limit = self.shared.settings.connect_timeout + Duration::from_millis(50);
        let _ = tokio::time::timeout(limit, self.shared.refresh()).await;
    }
}
