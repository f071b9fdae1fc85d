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

/// A held lease lives under the namespace prefix (so an ACL pattern
/// `~t:*` covers it), and `clear_prefix` and `clear_namespace` remove it: a
/// load in flight then cannot fill its old value.
#[tokio::test]
async fn leases_are_under_the_namespace_and_are_cleared_with_their_keys() {
    use std::sync::Arc;
    use std::time::Duration;

    use ngx_cache::EntryOptions;
    use support::util::{eventually, lease_keys, raw_exists};
    use tokio::sync::Notify;

    let server = RedisServer::start();
    let cache = Cache::connect(config(&server).l1(false).build().unwrap())
        .await
        .unwrap();
    for clear_all in [false, true] {
        let go = Arc::new(Notify::new());
        let load = {
            let (cache, go) = (cache.clone(), go.clone());
            tokio::spawn(async move {
                let opts = EntryOptions::new().hard_timeout(Duration::from_secs(10));
                cache
                    .get_or_load("user:{1}", &opts, || async move {
                        go.notified().await;
                        Ok::<_, std::io::Error>("old".to_owned())
                    })
                    .await
            })
        };
        let held = eventually(Duration::from_secs(5), || async {
            lease_keys(&server).len() == 1
        })
        .await;
        assert!(held.is_some(), "no lease under t:__lease:*");
        let lease = lease_keys(&server).remove(0);
        assert!(lease.ends_with(":user:{1}"), "{lease}");
        let removed = if clear_all {
            cache.clear_namespace().await.unwrap()
        } else {
            cache.clear_prefix("user:").await.unwrap()
        };
        assert_eq!(removed, 1, "the lease is the only key");
        assert!(lease_keys(&server).is_empty());
        go.notify_one();
        let got = load.await.unwrap().unwrap();
        assert_eq!(got, "old", "the caller still gets its load");
        assert!(!raw_exists(&server, "t:user:{1}"), "the fill was refused");
    }
}
