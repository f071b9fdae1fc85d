//! Helpers for the hybrid-cache tests: several `Cache` instances connected to
//! one server act as separate application instances.

use std::time::Duration;

use ngx_cache::Cache;

use super::server::RedisServer;
use super::target::Target;
use super::util::config;

/// One "application instance" on `server`, namespace `t`, jitter off.
pub async fn instance(server: &(impl Target + ?Sized)) -> Cache {
    Cache::connect(config(server).build().unwrap())
        .await
        .unwrap()
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
