//! Plain redis-rs connections to the Redis a [`CacheConfig`] names, for
//! tools that send their own commands (the operator CLI): the cache's URL,
//! credentials and TLS files, on one server or a Redis Cluster.

use redis::AsyncConnectionConfig;
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster_async::ClusterConnection;

use super::Settings;
use super::cluster::ClusterBackend;
use super::single::open_connection;
use crate::config::CacheConfig;
use crate::error::Error;

/// A connection for commands about one key: the server's, or on a Redis
/// Cluster one that sends each command to the node holding its key (a
/// pipeline goes where its first key lives, so its keys should share a
/// slot).
#[derive(Clone)]
pub enum KeyedConnection {
    /// One server.
    Server(MultiplexedConnection),
    /// A Redis Cluster.
    Cluster(ClusterConnection),
}

impl std::fmt::Debug for KeyedConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Server(_) => "KeyedConnection::Server",
            Self::Cluster(_) => "KeyedConnection::Cluster",
        })
    }
}

impl ConnectionLike for KeyedConnection {
    fn req_packed_command<'a>(
        &'a mut self,
        cmd: &'a redis::Cmd,
    ) -> redis::RedisFuture<'a, redis::Value> {
        match self {
            Self::Server(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        match self {
            Self::Server(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Server(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
        }
    }
}

/// What [`redis_nodes`] opens.
#[derive(Debug)]
pub struct RedisNodes {
    /// For commands about one key.
    pub keyed: KeyedConnection,
    /// A connection to each primary that answered (to the server itself
    /// when not clustered), for commands that see one node's keys: `SCAN`,
    /// `INFO`, `DBSIZE`.
    pub primaries: Vec<NodeConnection>,
    /// The primaries that did not answer within the connect timeout (on a
    /// Redis Cluster during a failover, say). Always empty on one server,
    /// where not answering is an error.
    pub unreachable: Vec<UnreachableNode>,
}

/// A connection to one node, with the address it was opened to.
#[derive(Debug, Clone)]
pub struct NodeConnection {
    /// `host:port`, without credentials.
    pub address: String,
    /// The node's connection.
    pub connection: MultiplexedConnection,
}

/// A node that could not be reached, and why.
#[derive(Debug)]
pub struct UnreachableNode {
    /// `host:port`, without credentials.
    pub address: String,
    /// Why it was not reached (without the password).
    pub error: Error,
}

/// Opens [`RedisNodes`] for `config` (`REDIS_CLUSTER` chooses how), with
/// its credentials and TLS files. Fails when Redis does not answer within
/// the connect timeout, or, on a cluster, when no node tells which
/// primaries serve the slots; a cluster's primaries that do not answer are
/// listed in [`RedisNodes::unreachable`] instead. A command on these
/// connections fails after the operation timeout (`op_timeout`) when
/// Redis does not answer. Errors never show the password.
pub async fn redis_nodes(config: &CacheConfig) -> Result<RedisNodes, Error> {
    open(config, true).await
}

/// Opens only the [`KeyedConnection`] of [`redis_nodes`], for tools that
/// read single keys: on a Redis Cluster, no connection is opened to the
/// primaries up front (one that hangs costs nothing unless a key lives
/// there).
pub async fn redis_keyed(config: &CacheConfig) -> Result<KeyedConnection, Error> {
    Ok(open(config, false).await?.keyed)
}

/// [`redis_nodes`], with the cluster's primaries opened only when
/// `primaries`.
async fn open(config: &CacheConfig, primaries: bool) -> Result<RedisNodes, Error> {
    let settings = Settings::of(config);
    let timeout = settings.connect_timeout;
    let secret = crate::redact::passwords(&config.url).into_iter().next();
    let conn_config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(settings.op_timeout));
    let connect = |client: redis::Client| {
        let (conn_config, secret) = (&conn_config, secret.as_deref());
        async move {
            let address = client.get_connection_info().addr().to_string();
            match open_connection(&client, conn_config, timeout, secret).await {
                Ok(connection) => Ok(NodeConnection {
                    address,
                    connection,
                }),
                Err(error) => Err(UnreachableNode { address, error }),
            }
        }
    };
    if config.cluster {
        let backend = ClusterBackend::connect(&config.url, settings, true).await?;
        let clients = if primaries {
            backend.primary_clients()
        } else {
            Vec::new()
        };
        let opened = futures::future::join_all(clients.into_iter().map(connect)).await;
        let (mut primaries, mut unreachable) = (Vec::new(), Vec::new());
        for node in opened {
            match node {
                Ok(node) => primaries.push(node),
                Err(node) => unreachable.push(node),
            }
        }
        return Ok(RedisNodes {
            keyed: KeyedConnection::Cluster(backend.connection()),
            primaries,
            unreachable,
        });
    }
    let client = super::tls::client(&config.url, &settings.tls, secret.as_deref())?;
    let node = connect(client).await.map_err(|node| node.error)?;
    Ok(RedisNodes {
        keyed: KeyedConnection::Server(node.connection.clone()),
        primaries: vec![node],
        unreachable: Vec::new(),
    })
}
