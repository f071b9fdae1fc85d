//! The smallest end-to-end check: a real server, one write, one read.

mod support;

use ngx_cache::{Cache, CacheConfig};
use support::server::RedisServer;

#[tokio::test]
async fn set_then_get_on_a_real_server() {
    let server = RedisServer::start();
    let config = CacheConfig::builder().url(server.url()).build().unwrap();
    let cache = Cache::connect(config).await.unwrap();
    cache.set("smoke", &"hello", None).await.unwrap();
    assert_eq!(cache.get::<String>("smoke").await.as_deref(), Some("hello"));
    let raw: String = redis::cmd("GET")
        .arg("ngx:smoke")
        .query(&mut server.conn())
        .unwrap();
    assert_eq!(raw, "\"hello\"");
}
