//! What only a cluster can show: batches that span every slot, leases of
//! hostile keys in their data key's slot, clears on every primary, the
//! per-node health report, and settings refused in cluster mode.

mod support;

use std::time::Duration;

use ngx_cache::{Cache, CacheConfig, EntryOptions};
use support::target::Backing;
use support::util::{config, lease_keys, raw_exists};

async fn cache(target: &Backing) -> Cache {
    Cache::connect(config(target).build().unwrap())
        .await
        .unwrap()
}

#[tokio::test]
async fn get_many_of_a_thousand_keys_over_every_slot_keeps_the_order() {
    let target = Backing::cluster().await;
    let Backing::Cluster(turn) = &target else {
        unreachable!()
    };
    let cache = cache(&target).await;
    let keys: Vec<String> = (0..1000).map(|i| format!("k:{i}")).collect();
    // Every other key written: misses interleave with hits.
    let items: Vec<(String, u32)> = (0..1000u32)
        .step_by(2)
        .map(|i| (keys[i as usize].clone(), i))
        .collect();
    cache.try_set_many(&items, None).await.unwrap();
    let got: Vec<Option<u32>> = cache.try_get_many(&keys).await.unwrap();
    for (i, v) in got.iter().enumerate() {
        let want = (i % 2 == 0).then_some(i as u32);
        assert_eq!(*v, want, "position {i}");
    }
    // The keys really span the three primaries.
    let mut primaries: Vec<usize> = keys
        .iter()
        .take(50)
        .map(|k| {
            turn.cluster
                .primary_of_slot(turn.cluster.slot(&format!("t:{k}")))
        })
        .collect();
    primaries.sort_unstable();
    primaries.dedup();
    assert_eq!(primaries.len(), 3, "{primaries:?}");
    assert_eq!(cache.stats().errors, 0);
    // Deleting them all crosses every slot too.
    let removed = cache.clear_prefix("k:").await.unwrap();
    assert_eq!(removed, 500);
    assert!(
        cache
            .try_get_many::<u32, _>(&keys)
            .await
            .unwrap()
            .iter()
            .all(Option::is_none)
    );
}

#[tokio::test]
async fn hostile_keys_load_and_fill_under_a_lease_in_their_own_slot() {
    let target = Backing::cluster().await;
    let cache = cache(&target).await;
    let opts = EntryOptions::new().ttl(Duration::from_secs(60));
    for key in [
        "a}b",
        "{",
        "}",
        "{}",
        "}{",
        "{user1}:x",
        "{t}",
        "ünï{cödé}",
        "x{}{y}",
    ] {
        let v: String = cache
            .get_or_load(key, &opts, move || async move {
                Ok::<_, std::io::Error>(key.to_owned())
            })
            .await
            .unwrap_or_else(|e| panic!("{key}: {e:?}"));
        assert_eq!(v, key);
        // The checked fill (a script over the key and its lease) wrote it.
        assert!(raw_exists(&target, &format!("t:{key}")), "{key} not filled");
        assert!(cache.delete(key).await, "{key}");
    }
    let stats = cache.stats();
    assert_eq!(
        stats.errors, 0,
        "no CROSSSLOT or MOVED reached us: {stats:?}"
    );
    assert_eq!(stats.fills_rejected, 0, "{stats:?}");
    assert_eq!(lease_keys(&target), Vec::<String>::new());
}

#[tokio::test]
async fn health_lists_every_primary_with_its_slots() {
    let target = Backing::cluster().await;
    let cache = cache(&target).await;
    let health = cache.health_check().await;
    assert!(health.healthy, "{health:?}");
    assert_eq!(health.nodes.len(), 3, "{health:?}");
    assert_eq!(health.nodes.iter().map(|n| n.slots).sum::<u32>(), 16384);
    assert!(
        health.nodes.iter().all(|n| n.healthy && n.replicas == 1),
        "{:?}",
        health.nodes
    );
    assert!(health.version.is_some());
    let stats = cache.stats();
    assert!(stats.connected);
}

#[test]
fn a_namespace_with_braces_is_refused_in_cluster_mode() {
    for ns in ["{ngx}", "a{b", "c}"] {
        let err = CacheConfig::builder()
            .url("redis://127.0.0.1:7000,redis://127.0.0.1:7001")
            .cluster(true)
            .namespace(ns)
            .build()
            .unwrap_err();
        assert_eq!(err.var, "CACHE_NAMESPACE", "{err}");
        assert!(err.reason.contains("REDIS_CLUSTER"), "{err}");
        // The same namespace is fine on one server.
        assert!(CacheConfig::builder().namespace(ns).build().is_ok());
    }
}
