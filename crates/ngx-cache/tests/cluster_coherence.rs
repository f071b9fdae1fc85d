//! Coherence on a real local cluster, each test on a cluster of its own:
//! three instances keep their L1 tiers coherent, also after the node a
//! subscriber used is killed; a tag bump survives the failover of its
//! primary; a namespace clear during a failover removes every key that
//! existed before it.

mod support;

use std::time::{Duration, Instant};

use ngx_cache::{Cache, EntryOptions};
use support::cluster::{RedisCluster, Role};
use support::hybrid::LAG_BOUND;
use support::target::Target;
use support::util::{config, eventually};

async fn instance(cluster: &RedisCluster) -> Cache {
    Cache::connect(config(cluster).build().unwrap())
        .await
        .unwrap()
}

/// Reads `key` on `cache` until L1 answers it with `want`.
async fn warm(cache: &Cache, key: &str, want: &str) {
    let ok = eventually(LAG_BOUND, || async {
        let before = cache.stats().l1_hits;
        cache.get::<String>(key).await.as_deref() == Some(want)
            && cache.stats().l1_hits == before + 1
    })
    .await;
    assert!(ok.is_some(), "{key} never reached L1: {:?}", cache.stats());
}

/// Node indices with at least one pub/sub client, by count.
fn subscriber_nodes(cluster: &RedisCluster) -> Vec<(usize, usize)> {
    (0..cluster.nodes.len())
        .filter_map(|i| {
            let list: String = cluster.try_query(
                i,
                redis::cmd("CLIENT").arg("LIST").arg("TYPE").arg("pubsub"),
            )?;
            let n = list.lines().filter(|l| l.contains("sub=1")).count();
            (n > 0).then_some((i, n))
        })
        .collect()
}

/// `a` deletes and invalidates a tag; `b` and `c` stop serving both from
/// L1 within the lag bound.
async fn invalidations_reach(a: &Cache, others: [&Cache; 2], round: u32) {
    let key = format!("k{round}");
    let tagged = format!("t{round}");
    let opts = EntryOptions::new().tag("grp").ttl(Duration::from_secs(60));
    a.set(&key, &"v1", None).await.unwrap();
    let value = "tagged".to_owned();
    for c in others {
        let v = value.clone();
        let got: String = c
            .get_or_load(
                &tagged,
                &opts,
                move || async move { Ok::<_, std::io::Error>(v) },
            )
            .await
            .unwrap();
        assert_eq!(got, "tagged");
    }
    // Every earlier message (the set's) is in before L1 is warmed.
    tokio::time::sleep(Duration::from_millis(200)).await;
    for c in others {
        warm(c, &key, "v1").await;
        warm(c, &tagged, "tagged").await;
    }
    let started = Instant::now();
    assert!(a.delete(&key).await);
    assert!(a.invalidate_tag("grp").await);
    for c in others {
        let gone = eventually(LAG_BOUND, || async {
            c.get::<String>(&key).await.is_none()
        })
        .await;
        assert!(
            gone.is_some(),
            "round {round}: delete not seen: {:?}",
            c.stats()
        );
        let reloaded = eventually(LAG_BOUND, || async {
            let v: String = c
                .get_or_load(&tagged, &opts, || async {
                    Ok::<_, std::io::Error>("fresh".to_owned())
                })
                .await
                .unwrap();
            v == "fresh"
        })
        .await;
        assert!(
            reloaded.is_some(),
            "round {round}: tag invalidation not seen: {:?}",
            c.stats()
        );
    }
    println!(
        "round {round}: invalidations seen by both peers within {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_stay_coherent_also_after_a_subscriber_node_dies() {
    let mut cluster = RedisCluster::start();
    let (a, b, c) = (
        instance(&cluster).await,
        instance(&cluster).await,
        instance(&cluster).await,
    );
    invalidations_reach(&a, [&b, &c], 1).await;

    // Kill a node that serves subscriptions (the busiest).
    let mut subs = subscriber_nodes(&cluster);
    subs.sort_by_key(|&(_, n)| std::cmp::Reverse(n));
    let (victim, n) = subs[0];
    let was_primary = cluster.role(victim) == Role::Primary;
    cluster.nodes[victim].kill();
    println!(
        "killed node {victim} ({}), which held {n} subscriptions",
        if was_primary { "primary" } else { "replica" }
    );
    // The subscribers move to live nodes.
    let moved = eventually(Duration::from_secs(15), || async {
        subscriber_nodes(&cluster)
            .iter()
            .map(|&(_, n)| n)
            .sum::<usize>()
            >= 3
    })
    .await;
    assert!(
        moved.is_some(),
        "subscribers did not come back: {:?}",
        subscriber_nodes(&cluster)
    );
    // Writes work again once a killed primary's replica took over.
    let writable = eventually(Duration::from_secs(15), || async {
        let mut ok = true;
        for i in 0..30 {
            ok &= a.try_set(&format!("probe:{i}"), &1u32, None).await.is_ok();
        }
        ok
    })
    .await;
    assert!(writable.is_some(), "the cluster did not heal");
    invalidations_reach(&a, [&b, &c], 2).await;
    assert!(
        b.stats().resubscribes + c.stats().resubscribes + a.stats().resubscribes >= 1,
        "a subscription was lost and taken again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tag_bump_lost_in_a_failover_does_not_revive_old_entries() {
    let mut cluster = RedisCluster::start();
    let writer = instance(&cluster).await;
    let tag_key = "t:__tag:grp";
    let owner = cluster.primary_of_slot(cluster.slot(tag_key));
    let replica = cluster.replica_of(owner);
    let opts = EntryOptions::new().tag("grp").ttl(Duration::from_secs(60));
    let old: String = writer
        .get_or_load("e", &opts, || async {
            Ok::<_, std::io::Error>("old".to_owned())
        })
        .await
        .unwrap();
    assert_eq!(old, "old");
    // The replica does not take the bump (paused, and its link cut, so the
    // bump stays in the primary's backlog), and the primary dies right
    // after it: asynchronous replication loses it.
    cluster.nodes[replica].pause();
    let cut: Option<i64> = cluster.try_query(
        owner,
        redis::cmd("CLIENT").arg("KILL").arg("TYPE").arg("replica"),
    );
    assert_eq!(cut, Some(1));
    let bumped = writer.try_invalidate_tag("grp").await;
    cluster.nodes[owner].kill();
    cluster.nodes[replica].resume();
    println!("tag bump with the replica paused: {bumped:?}");
    let took_over = eventually(Duration::from_secs(15), || async {
        cluster.role(replica) == Role::Primary
    })
    .await;
    assert!(took_over.is_some(), "no failover");
    // An instance that never saw the bump must not serve the entry stamped
    // before it: the bump was not acknowledged, so it is pending and lands on
    // the new primary.
    let fresh = instance(&cluster).await;
    let loads = || async { Ok::<_, std::io::Error>("new".to_owned()) };
    let current = eventually(Duration::from_secs(10), || async {
        let got: String = fresh.get_or_load("e", &opts, loads).await.unwrap();
        got == "new"
    })
    .await;
    let counter: Option<u64> = redis::cmd("GET")
        .arg(tag_key)
        .query(&mut *cluster.conn())
        .unwrap();
    assert!(
        current.is_some(),
        "the old entry came back after the failover: counter {counter:?}, writer {:?}",
        writer.stats()
    );
    let counter: Option<u64> = redis::cmd("GET")
        .arg(tag_key)
        .query(&mut *cluster.conn())
        .unwrap();
    assert!(counter.is_some_and(|v| v >= 1), "counter {counter:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_clear_during_a_failover_removes_every_earlier_key() {
    let mut cluster = RedisCluster::start();
    let cache = instance(&cluster).await;
    let items: Vec<(String, u32)> = (0..3000).map(|i| (format!("c:{i}"), i)).collect();
    for chunk in items.chunks(500) {
        cache.try_set_many(chunk, None).await.unwrap();
    }
    // Every key is on a replica too, so the failover loses none.
    let synced = eventually(Duration::from_secs(10), || async {
        cluster.primaries().into_iter().all(|p| {
            let r = cluster.replica_of(p);
            let n = |i: usize| {
                cluster
                    .try_query::<i64>(i, &redis::cmd("DBSIZE"))
                    .unwrap_or(-1)
            };
            n(p) == n(r)
        })
    })
    .await;
    assert!(synced.is_some(), "replicas did not catch up");
    let victim = cluster.primaries()[2];
    cluster.nodes[victim].kill();
    let started = Instant::now();
    let removed = cache
        .clear_namespace()
        .await
        .expect("clear during failover");
    println!(
        "clear_namespace during a failover: {removed} keys in {:?}",
        started.elapsed()
    );
    // Once the replica serves the slots, nothing of the namespace is left.
    let healed = eventually(Duration::from_secs(15), || async {
        cluster.primaries().len() == 3
    })
    .await;
    assert!(healed.is_some());
    assert_eq!(cluster.keys("t:c:*"), Vec::<String>::new());
    assert!(removed >= 3000, "removed {removed}");
}

/// A replica dying must not make tag invalidations fail: the bump lands on
/// the primary and reaches the other instances at once; it stays pending (and
/// is bumped again) only until a replica holds it or the cluster has marked
/// the dead replica failed. Public counters never wait for a replica.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_replica_does_not_fail_tag_invalidations() {
    let mut cluster = RedisCluster::start();
    let (a, b) = (instance(&cluster).await, instance(&cluster).await);
    let tag_key = "t:__tag:grp";
    let owner = cluster.primary_of_slot(cluster.slot(tag_key));
    let replica = cluster.replica_of(owner);
    let opts = EntryOptions::new().tag("grp").ttl(Duration::from_secs(60));
    let old: String = b
        .get_or_load("e", &opts, || async {
            Ok::<_, std::io::Error>("old".to_owned())
        })
        .await
        .unwrap();
    assert_eq!(old, "old");
    tokio::time::sleep(Duration::from_millis(200)).await;
    warm(&b, "e", "old").await;

    cluster.nodes[replica].kill();
    let started = Instant::now();
    let bumped = a.try_invalidate_tag("grp").await;
    println!(
        "tag bump right after the replica died: {bumped:?} in {:?}",
        started.elapsed()
    );
    assert!(bumped.is_ok(), "{bumped:?}");
    let count = a.try_increment("n", 1).await;
    assert_eq!(count.ok(), Some(1));
    // The other instance stops serving the old entry from L1.
    let reloaded = eventually(LAG_BOUND, || async {
        let v: String = b
            .get_or_load("e", &opts, || async {
                Ok::<_, std::io::Error>("new".to_owned())
            })
            .await
            .unwrap();
        v == "new"
    })
    .await;
    assert!(
        reloaded.is_some(),
        "peer kept the old entry: {:?}",
        b.stats()
    );
    // Settled once the cluster marks the replica failed.
    let settled = eventually(Duration::from_secs(15), || async {
        a.stats().invalidations_pending == 0
    })
    .await;
    assert!(settled.is_some(), "still pending: {:?}", a.stats());
    assert!(!a.stats().circuit_breaker_open, "{:?}", a.stats());
}
