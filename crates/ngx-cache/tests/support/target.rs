//! What a test runs against: one `redis-server` or a cluster, behind one
//! trait, so a suite is written once and runs on both
//! ([`on_single_and_cluster!`](crate::on_single_and_cluster)).

use super::cluster::{self, ClusterTurn};
use super::server::RedisServer;

/// A Redis deployment a test talks to directly.
pub trait Target {
    /// `REDIS_URL` for it.
    fn url(&self) -> String;
    /// `REDIS_CLUSTER` for it.
    fn cluster(&self) -> bool {
        false
    }
    /// A synchronous connection (routed by key on a cluster).
    fn conn(&self) -> Box<dyn redis::ConnectionLike>;
    /// Keys in the whole deployment.
    fn dbsize(&self) -> i64;
    /// Keys matching `pattern`, sorted (`KEYS`, tests only).
    fn keys(&self, pattern: &str) -> Vec<String>;
}

impl Target for RedisServer {
    fn url(&self) -> String {
        RedisServer::url(self)
    }
    fn conn(&self) -> Box<dyn redis::ConnectionLike> {
        Box::new(RedisServer::conn(self))
    }
    fn dbsize(&self) -> i64 {
        redis::cmd("DBSIZE")
            .query(&mut RedisServer::conn(self))
            .expect("DBSIZE")
    }
    fn keys(&self, pattern: &str) -> Vec<String> {
        let mut keys: Vec<String> = redis::cmd("KEYS")
            .arg(pattern)
            .query(&mut RedisServer::conn(self))
            .expect("KEYS");
        keys.sort();
        keys
    }
}

/// One server of its own, or a turn on the binary's shared cluster.
pub enum Backing {
    Single(RedisServer),
    Cluster(ClusterTurn),
}

impl Backing {
    /// A fresh single server.
    pub fn single() -> Self {
        Backing::Single(RedisServer::start())
    }

    /// The shared cluster, emptied, for this test alone.
    pub async fn cluster() -> Self {
        Backing::Cluster(cluster::shared().lock().await)
    }

    fn target(&self) -> &dyn Target {
        match self {
            Backing::Single(s) => s,
            Backing::Cluster(c) => &*c.cluster,
        }
    }
}

impl Target for Backing {
    fn url(&self) -> String {
        self.target().url()
    }
    fn cluster(&self) -> bool {
        self.target().cluster()
    }
    fn conn(&self) -> Box<dyn redis::ConnectionLike> {
        self.target().conn()
    }
    fn dbsize(&self) -> i64 {
        self.target().dbsize()
    }
    fn keys(&self, pattern: &str) -> Vec<String> {
        self.target().keys(pattern)
    }
}

/// Generates, for each named `async fn name(target: &Backing)`, a test
/// `name::single` on a server of its own and a test `name::cluster` on the
/// shared cluster: one body, two deployments. An optional leading
/// `#[tokio::test(..)]` attribute applies to both.
#[macro_export]
macro_rules! on_single_and_cluster {
    (#[$attr:meta] $($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[$attr]
                async fn single() {
                    super::$name(&$crate::support::target::Backing::single()).await
                }
                #[$attr]
                async fn cluster() {
                    super::$name(&$crate::support::target::Backing::cluster().await).await
                }
            }
        )*
    };
    ($($name:ident),* $(,)?) => {
        $crate::on_single_and_cluster!(#[tokio::test] $($name),*);
    };
}
