//! `clear_namespace` on look-alike namespaces: glob metacharacters in a
//! namespace are escaped, so clearing one never touches another.

mod support;

use std::collections::BTreeSet;

use ngx_cache::Cache;
use support::server::RedisServer;
use support::util::config;

/// Namespaces whose unescaped patterns would match each other: `ns*:*`
/// matches `ns:` and `nsX:`, `n?:*` matches `ns:`, `[n]s:*` matches `ns:`.
const NAMESPACES: [&str; 5] = ["ns", "ns*", "nsX", "n?", "[n]s"];

fn all_keys(server: &RedisServer) -> BTreeSet<String> {
    redis::cmd("KEYS")
        .arg("*")
        .query::<Vec<String>>(&mut server.conn())
        .unwrap()
        .into_iter()
        .collect()
}

/// Fills every namespace, plus keys outside any namespace; returns the caches
/// and the full keys written per namespace.
async fn fill(server: &RedisServer, per_ns: usize) -> Vec<(Cache, BTreeSet<String>)> {
    let mut out = Vec::new();
    for ns in NAMESPACES {
        let cache = Cache::connect(config(server).namespace(ns).build().unwrap())
            .await
            .unwrap();
        // Enough keys in one namespace for several SCAN/UNLINK batches.
        let n = if ns == "ns*" { 1200 } else { per_ns };
        let items: Vec<(String, usize)> = (0..n).map(|i| (format!("k:{i}"), i)).collect();
        for chunk in items.chunks(300) {
            cache.set_many(chunk, None).await.unwrap();
        }
        let keys = items.iter().map(|(k, _)| format!("{ns}:{k}")).collect();
        out.push((cache, keys));
    }
    let mut conn = server.conn();
    for stray in ["ns", "nsfoo", "ns*", "other:k"] {
        let _: () = redis::cmd("SET")
            .arg(stray)
            .arg(1)
            .query(&mut conn)
            .unwrap();
    }
    out
}

async fn clear_and_check(target: &str) {
    let server = RedisServer::start();
    let caches = fill(&server, 50).await;
    let before = all_keys(&server);
    let (cache, expected_gone) = caches
        .iter()
        .find(|(c, _)| c.config().namespace == target)
        .unwrap();
    let removed = cache.clear_namespace().await.unwrap();
    assert_eq!(removed, expected_gone.len() as u64, "clearing {target}");
    let after = all_keys(&server);
    let gone: BTreeSet<String> = before.difference(&after).cloned().collect();
    assert_eq!(&gone, expected_gone, "clearing {target} removed other keys");
    for (other, keys) in caches
        .iter()
        .filter(|(c, _)| c.config().namespace != target)
    {
        assert!(
            keys.is_subset(&after),
            "namespace {} lost keys",
            other.config().namespace
        );
    }
    // Clearing again finds nothing.
    assert_eq!(cache.clear_namespace().await.unwrap(), 0);
}

#[tokio::test]
async fn clearing_ns_star_leaves_ns_and_nsx_intact() {
    clear_and_check("ns*").await;
}

#[tokio::test]
async fn clearing_ns_leaves_the_look_alikes_intact() {
    clear_and_check("ns").await;
}

#[tokio::test]
async fn clearing_namespaces_with_other_metacharacters() {
    clear_and_check("n?").await;
    clear_and_check("[n]s").await;
}
