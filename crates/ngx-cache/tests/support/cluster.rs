//! A real local Redis Cluster: six `redis-server` processes in cluster mode
//! on free loopback ports (three primaries, three replicas, a node timeout
//! of one second), created with `redis-cli --cluster create`, killed on
//! drop. Faults are signals to processes we own and `CLUSTER FAILOVER`.
//!
//! Tests of one binary share one cluster through [`shared`], one test at a
//! time, each starting from an empty cluster; tests that break nodes start
//! their own with [`RedisCluster::start`].

use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use super::server::{RedisServer, free_port};
use super::target::Target;

/// `cluster-node-timeout` of every node.
pub const NODE_TIMEOUT: Duration = Duration::from_millis(1000);

/// Nodes forming one cluster (six unless started with
/// [`RedisCluster::start_shards`]).
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
    /// How many primaries the cluster was created with.
    shards: usize,
}

/// A node's role as `ROLE` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Primary,
    Replica,
    Down,
}

impl RedisCluster {
    /// Starts six nodes and creates the cluster; waits until every slot is
    /// served, every node agrees the state is ok and every replica is in
    /// sync.
    pub fn start() -> Self {
        Self::start_shards(3, 1)
    }

    /// Starts `shards` primaries with `replicas` replicas each, as
    /// [`start`](Self::start) does.
    pub fn start_shards(shards: usize, replicas: usize) -> Self {
        let timeout = NODE_TIMEOUT.as_millis().to_string();
        let nodes: Vec<RedisServer> = (0..shards * (1 + replicas))
            .map(|_| {
                let bus = free_port().to_string();
                RedisServer::start_with(
                    None,
                    &[
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        "nodes.conf",
                        "--cluster-node-timeout",
                        &timeout,
                        "--cluster-port",
                        &bus,
                        "--cluster-replica-validity-factor",
                        "0",
                        // As operations.md advises for a cache: the other
                        // shards keep answering while one fails over.
                        "--cluster-require-full-coverage",
                        "no",
                    ],
                )
            })
            .collect();
        let mut create = Command::new("redis-cli");
        create.arg("--cluster").arg("create");
        for n in &nodes {
            create.arg(format!("127.0.0.1:{}", n.port()));
        }
        let out = create
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .output()
            .expect("redis-cli must be installed");
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let cluster = Self { nodes, shards };
        cluster.wait_healthy(Duration::from_secs(30));
        cluster
    }

    /// Waits until every live node reports `cluster_state:ok`, every slot is
    /// served and every replica's link to its primary is up.
    pub fn wait_healthy(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            if self.healthy() {
                return;
            }
            assert!(Instant::now() < deadline, "cluster did not become healthy");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn healthy(&self) -> bool {
        let mut primaries = 0;
        for (i, _) in self.nodes.iter().enumerate() {
            let Some(info) = self.try_query::<String>(i, redis::cmd("CLUSTER").arg("INFO")) else {
                continue;
            };
            if !info.contains("cluster_state:ok") || !info.contains("cluster_slots_assigned:16384")
            {
                return false;
            }
            // Every node's view lists a replica for every range (gossip
            // spreads replica links a little after the links are up).
            let Some(ranges) =
                self.try_query::<Vec<Vec<redis::Value>>>(i, redis::cmd("CLUSTER").arg("SLOTS"))
            else {
                return false;
            };
            let replicas = self.nodes.len() / self.shards - 1;
            if ranges.len() < self.shards || ranges.iter().any(|r| r.len() < 3 + replicas) {
                return false;
            }
            match self.role(i) {
                Role::Primary => primaries += 1,
                Role::Replica => {
                    let Some(repl) =
                        self.try_query::<String>(i, redis::cmd("INFO").arg("replication"))
                    else {
                        return false;
                    };
                    if !repl.contains("master_link_status:up") {
                        return false;
                    }
                }
                Role::Down => {}
            }
        }
        primaries == self.shards
    }

    /// Comma-separated seed URLs of every node (`REDIS_URL`).
    pub fn urls(&self) -> String {
        self.nodes
            .iter()
            .map(RedisServer::url)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// A query to node `i`, `None` when it does not answer.
    pub fn try_query<T: redis::FromRedisValue>(&self, i: usize, cmd: &redis::Cmd) -> Option<T> {
        let client = redis::Client::open(self.nodes[i].url()).ok()?;
        let mut conn = client
            .get_connection_with_timeout(Duration::from_millis(300))
            .ok()?;
        conn.set_read_timeout(Some(Duration::from_millis(500)))
            .ok()?;
        cmd.query(&mut conn).ok()
    }

    /// Node `i`'s role.
    pub fn role(&self, i: usize) -> Role {
        match self.try_query::<Vec<redis::Value>>(i, &redis::cmd("ROLE")) {
            Some(v) => match v.first() {
                Some(redis::Value::BulkString(b)) if b == b"master" => Role::Primary,
                Some(_) => Role::Replica,
                None => Role::Down,
            },
            None => Role::Down,
        }
    }

    /// Indices of the nodes that are primaries now.
    pub fn primaries(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.role(i) == Role::Primary)
            .collect()
    }

    /// The node index serving `slot` as a primary.
    pub fn primary_of_slot(&self, slot: u16) -> usize {
        for i in self.primaries() {
            let ranges: Vec<Vec<redis::Value>> = self
                .try_query(i, redis::cmd("CLUSTER").arg("SLOTS"))
                .unwrap_or_default();
            for r in ranges {
                let (Some(redis::Value::Int(a)), Some(redis::Value::Int(b))) =
                    (r.first(), r.get(1))
                else {
                    continue;
                };
                let port = match r.get(2) {
                    Some(redis::Value::Array(n)) => match n.get(1) {
                        Some(redis::Value::Int(p)) => *p as u16,
                        _ => continue,
                    },
                    _ => continue,
                };
                if (*a..=*b).contains(&i64::from(slot)) {
                    return self
                        .nodes
                        .iter()
                        .position(|n| n.port() == port)
                        .expect("known port");
                }
            }
        }
        panic!("no primary serves slot {slot}");
    }

    /// The slot of `key`, as the server computes it.
    pub fn slot(&self, key: &str) -> u16 {
        let i = self.primaries()[0];
        self.try_query::<u16>(i, redis::cmd("CLUSTER").arg("KEYSLOT").arg(key))
            .expect("CLUSTER KEYSLOT")
    }

    /// The replica of primary `i`.
    pub fn replica_of(&self, i: usize) -> usize {
        let port = self.nodes[i].port();
        (0..self.nodes.len())
            .find(|&j| {
                self.role(j) == Role::Replica
                    && self
                        .try_query::<String>(j, redis::cmd("INFO").arg("replication"))
                        .is_some_and(|t| t.contains(&format!("master_port:{port}")))
            })
            .expect("primary has a replica")
    }

    /// `CLUSTER FAILOVER` on replica `j`: it and its primary swap roles
    /// without losing writes.
    pub fn failover(&self, j: usize) {
        let _: String = self
            .try_query(j, redis::cmd("CLUSTER").arg("FAILOVER"))
            .expect("CLUSTER FAILOVER");
    }

    /// `FLUSHALL` on every primary.
    pub fn flush(&self) {
        for i in self.primaries() {
            let _: Option<String> = self.try_query(i, &redis::cmd("FLUSHALL"));
        }
    }

    /// A sync cluster connection that routes by key.
    pub fn cluster_conn(&self) -> redis::cluster::ClusterConnection {
        let urls: Vec<String> = self.nodes.iter().map(RedisServer::url).collect();
        redis::cluster::ClusterClient::builder(urls)
            .retries(20)
            .min_retry_wait(50)
            .max_retry_wait(200)
            .build()
            .expect("cluster client")
            .get_connection()
            .expect("cluster connection")
    }

    /// Keys matching `pattern` on every primary, sorted.
    pub fn keys(&self, pattern: &str) -> Vec<String> {
        let mut out: Vec<String> = self
            .primaries()
            .into_iter()
            .flat_map(|i| {
                self.try_query::<Vec<String>>(i, redis::cmd("KEYS").arg(pattern))
                    .unwrap_or_default()
            })
            .collect();
        out.sort();
        out
    }
}

impl Target for RedisCluster {
    fn url(&self) -> String {
        self.urls()
    }
    fn cluster(&self) -> bool {
        true
    }
    fn conn(&self) -> Box<dyn redis::ConnectionLike> {
        Box::new(self.cluster_conn())
    }
    fn dbsize(&self) -> i64 {
        self.primaries()
            .into_iter()
            .map(|i| self.try_query::<i64>(i, &redis::cmd("DBSIZE")).unwrap_or(0))
            .sum()
    }
    fn keys(&self, pattern: &str) -> Vec<String> {
        RedisCluster::keys(self, pattern)
    }
}

/// The cluster shared by the tests of one binary, flushed, held until the
/// returned guard drops. Started on first use; stopped when no test holds
/// or waits for it.
pub fn shared() -> SharedCluster {
    static CLUSTER: OnceLock<Mutex<Weak<RedisCluster>>> = OnceLock::new();
    static TURN: OnceLock<Arc<tokio::sync::Mutex<()>>> = OnceLock::new();
    let cluster = {
        let mut slot = CLUSTER
            .get_or_init(|| Mutex::new(Weak::new()))
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        match slot.upgrade() {
            Some(c) => c,
            None => {
                let c = Arc::new(RedisCluster::start());
                *slot = Arc::downgrade(&c);
                c
            }
        }
    };
    SharedCluster {
        cluster,
        turn: Arc::clone(TURN.get_or_init(|| Arc::new(tokio::sync::Mutex::new(())))),
    }
}

/// How long a turn on the shared cluster waits for the previous test's
/// messages to be delivered.
pub const SETTLE: Duration = Duration::from_millis(250);

/// A handle on the shared cluster; [`SharedCluster::lock`] takes the turn.
pub struct SharedCluster {
    pub cluster: Arc<RedisCluster>,
    turn: Arc<tokio::sync::Mutex<()>>,
}

impl SharedCluster {
    /// Waits for this test's turn and empties the cluster.
    ///
    /// A turn starts [`SETTLE`] after the last one ended: invalidation
    /// messages the previous test published cross the cluster bus for tens
    /// of milliseconds, and a subscriber of this test would count them as
    /// its own instances' (an instance that published nothing once received
    /// three, 34 to 47 ms old, in a full `cargo test` run).
    pub async fn lock(self) -> ClusterTurn {
        let guard = Arc::clone(&self.turn).lock_owned().await;
        tokio::time::sleep(SETTLE).await;
        self.cluster.wait_healthy(Duration::from_secs(30));
        self.cluster.flush();
        ClusterTurn {
            cluster: self.cluster,
            _turn: guard,
        }
    }
}

/// The shared cluster, for one test at a time.
pub struct ClusterTurn {
    pub cluster: Arc<RedisCluster>,
    _turn: tokio::sync::OwnedMutexGuard<()>,
}
