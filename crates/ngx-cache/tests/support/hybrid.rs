//! Helpers for the hybrid-cache tests: several `Cache` instances connected to
//! one server act as separate application instances.

use std::sync::Arc;
use std::time::Duration;

use ngx_cache::{BreakerConfig, Cache};

use super::proxy::StallingProxy;
use super::server::RedisServer;
use super::target::Target;
use super::util::config;

/// One "application instance" on `server`, namespace `t`, jitter off.
pub async fn instance(server: &(impl Target + ?Sized)) -> Cache {
    Cache::connect(config(server).build().unwrap())
        .await
        .unwrap()
}

/// An instance on `server` that reaches it through a [`StallingProxy`]
/// (returned with it), each operation bounded by `op_timeout` and the
/// breaker off: once the proxy stalls, calls wait `op_timeout` and fail.
pub async fn behind_stalling_proxy(
    server: &RedisServer,
    op_timeout: Duration,
) -> (Cache, Arc<StallingProxy>) {
    let proxy = Arc::new(StallingProxy::start(server.port()).await);
    let cache = Cache::connect(
        config(server)
            .url(proxy.url())
            .op_timeout(op_timeout)
            .breaker(BreakerConfig::disabled())
            .build()
            .unwrap(),
    )
    .await
    .unwrap();
    (cache, proxy)
}

/// `n` instances on `server`.
pub async fn instances(server: &(impl Target + ?Sized), n: usize) -> Vec<Cache> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(instance(server).await);
    }
    out
}

/// Bound for anything that crosses the invalidation bus on a loaded 2-core box.
pub const LAG_BOUND: Duration = Duration::from_secs(2);

/// Every pub/sub connection of the server is killed; returns how many.
pub fn kill_pubsub(server: &RedisServer) -> i64 {
    redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("pubsub")
        .query(&mut server.conn())
        .expect("CLIENT KILL TYPE pubsub")
}

/// Number of subscribers of the namespace `t` invalidation channel.
pub fn subscribers(server: &RedisServer) -> i64 {
    let (_, n): (String, i64) = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg("t:__invalidation")
        .query(&mut server.conn())
        .expect("PUBSUB NUMSUB");
    n
}

/// Raw `KEYS *` of the test server (tests only; sorted).
pub fn all_keys(server: &(impl Target + ?Sized)) -> Vec<String> {
    server.keys("*")
}
