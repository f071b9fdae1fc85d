//! L1 coherence across instances: several `Cache` instances on one
//! `redis-server` act as separate application instances. A write on one must
//! stop every other instance's L1 from serving the old value, a lost
//! invalidation channel must flush L1 and resubscribe, and the invalidation
//! lag is measured.

mod support;

use std::time::Duration;

use ngx_cache::{Cache, EntryOptions};
use support::hybrid::{LAG_BOUND, instance, instances, kill_pubsub, subscribers};
use support::server::RedisServer;
use support::target::Backing;
use support::util::{eventually, raw_set, timed};

/// Reads `key` on `cache` until a read is served by L1. A fill is skipped
/// when any invalidation arrived during its Redis read (such as the message
/// of the write that produced `expect`), so this may take a few reads.
async fn warm_l1(cache: &Cache, key: &str, expect: &str) {
    for _ in 0..50 {
        let before = cache.stats().l1_hits;
        assert_eq!(cache.get::<String>(key).await.as_deref(), Some(expect));
        if cache.stats().l1_hits == before + 1 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("{key} never reached L1: {:?}", cache.stats());
}

async fn until_value(cache: &Cache, key: &str, want: Option<&str>) -> Option<Duration> {
    eventually(LAG_BOUND, || async {
        cache.get::<String>(key).await.as_deref() == want
    })
    .await
}

async fn set_on_one_instance_evicts_the_others_l1(server: &Backing) {
    let [a, b] = <[Cache; 2]>::try_from(instances(server, 2).await).unwrap();
    a.set("k", &"v1", None).await.unwrap();
    warm_l1(&b, "k", "v1").await;

    a.set("k", &"v2", None).await.unwrap();
    let lag = until_value(&b, "k", Some("v2")).await;
    assert!(lag.is_some(), "B kept serving v1 from L1");
    // And it stays coherent: L1 refills with v2.
    assert_eq!(b.get::<String>("k").await.as_deref(), Some("v2"));

    let sb = b.stats();
    assert!(sb.invalidations_received >= 1, "{sb:?}");
    assert!(sb.invalidation_lag_ms.samples >= 1, "{sb:?}");
    assert!(
        sb.invalidation_lag_ms.p99 < LAG_BOUND.as_millis() as f64,
        "{sb:?}"
    );
    let sa = a.stats();
    assert_eq!(sa.invalidations_sent, 2, "{sa:?}");
    // An instance does not act on its own messages.
    assert_eq!(sa.invalidations_received, 0, "{sa:?}");
    assert_eq!(sa.invalidation_lag_ms.samples, 0, "{sa:?}");
    assert_eq!(sb.l1_flushes, 0, "no message was missed: {sb:?}");
}

async fn delete_and_clear_on_one_instance_evict_the_others_l1(server: &Backing) {
    let [a, b] = <[Cache; 2]>::try_from(instances(server, 2).await).unwrap();
    a.set("k", &"v1", None).await.unwrap();
    a.set("other", &"o", None).await.unwrap();
    // The messages of both writes reach B first (tens of ms through a
    // cluster's bus); arriving later they would evict what B warms now.
    let received = eventually(LAG_BOUND, || async {
        b.stats().invalidations_received >= 2
    })
    .await;
    assert!(received.is_some(), "{:?}", b.stats());
    warm_l1(&b, "k", "v1").await;
    warm_l1(&b, "other", "o").await;

    assert!(a.delete("k").await);
    assert!(
        until_value(&b, "k", None).await.is_some(),
        "delete not seen by B"
    );
    // Only the deleted key went.
    let hits = b.stats().l1_hits;
    assert_eq!(b.get::<String>("other").await.as_deref(), Some("o"));
    let stats = b.stats();
    assert_eq!(stats.l1_hits, hits + 1, "unrelated key left L1: {stats:?}");

    a.clear_namespace().await.unwrap();
    assert!(
        until_value(&b, "other", None).await.is_some(),
        "clear not seen by B"
    );
}

#[tokio::test]
async fn an_l1_hit_does_no_io() {
    let server = RedisServer::start();
    let a = instance(&server).await;
    a.set("k", &"v1", None).await.unwrap();
    warm_l1(&a, "k", "v1").await;
    // Nothing answers now; an L1 hit must not notice.
    server.pause();
    let (got, took) = timed(a.get::<String>("k")).await;
    server.resume();
    assert_eq!(got.as_deref(), Some("v1"));
    assert!(took < Duration::from_millis(20), "L1 hit took {took:?}");
}

#[tokio::test]
async fn losing_the_channel_flushes_l1_and_resubscribes() {
    let server = RedisServer::start();
    let [a, b] = <[Cache; 2]>::try_from(instances(&server, 2).await).unwrap();
    a.set("k", &"v1", None).await.unwrap();
    warm_l1(&b, "k", "v1").await;
    assert_eq!(subscribers(&server), 2);
    let before = b.stats();

    // A write B cannot hear about: straight into Redis, no message. Then the
    // channel drops, so B may have missed messages and must not trust L1.
    raw_set(&server, "t:k", b"\"v2\"");
    assert_eq!(kill_pubsub(&server), 2);
    let flushed = eventually(LAG_BOUND, || async {
        let s = b.stats();
        s.l1_flushes > before.l1_flushes && s.resubscribes > before.resubscribes
    })
    .await;
    assert!(flushed.is_some(), "no flush/resubscribe: {:?}", b.stats());
    assert!(
        eventually(LAG_BOUND, || async { subscribers(&server) == 2 })
            .await
            .is_some()
    );
    assert_eq!(
        b.get::<String>("k").await.as_deref(),
        Some("v2"),
        "L1 was not flushed"
    );

    // Coherent again after resubscribing.
    warm_l1(&b, "k", "v2").await;
    a.set("k", &"v3", None).await.unwrap();
    assert!(
        until_value(&b, "k", Some("v3")).await.is_some(),
        "B deaf after resubscribe"
    );
}

/// Messages from one instance may arrive out of order: its publishes go over
/// a round-robin pool of connections. Reordering is not a lost message and
/// must not flush L1 (a flush costs every instance its whole L1).
async fn concurrent_writes_cause_no_spurious_flushes(server: &Backing) {
    let [a, b] = <[Cache; 2]>::try_from(instances(server, 2).await).unwrap();
    const N: u64 = 300;
    let writes: Vec<_> = (0..N)
        .map(|i| {
            let a = a.clone();
            tokio::spawn(async move { a.set(&format!("k{i}"), &i, None).await.unwrap() })
        })
        .collect();
    for w in writes {
        w.await.unwrap();
    }
    assert_eq!(a.stats().invalidations_sent, N);
    let all = eventually(LAG_BOUND, || async {
        b.stats().invalidations_received == N
    })
    .await;
    let s = b.stats();
    assert!(all.is_some(), "{s:?}");
    assert_eq!(s.l1_flushes, 0, "reordered messages flushed L1: {s:?}");
}

/// A versioned write-through stays in the writer's L1 (its next read does
/// no Redis round trip), evicts every other L1, and a refused (older) write
/// keeps nothing anywhere.
async fn a_write_through_stays_in_the_writers_l1_only(server: &Backing) {
    let [a, b] = <[Cache; 2]>::try_from(instances(server, 2).await).unwrap();
    let opts = EntryOptions::new().ttl(Duration::from_secs(60));
    let v = |s: &str| Some(s.to_owned());

    assert!(a.try_write_through("k", &v("v1"), 1, &opts).await.unwrap());
    let before = a.stats();
    assert_eq!(a.get::<Option<String>>("k").await, Some(v("v1")));
    let after = a.stats();
    assert_eq!(after.l1_hits, before.l1_hits + 1, "not kept: {after:?}");
    assert_eq!(after.l2_hits, before.l2_hits, "{after:?}");

    // B holds v1 in L1, then writes v2 through: B keeps v2, A's v1 goes.
    // (The first read fills B's L1 from Redis, a later one is served by it.)
    let read = eventually(LAG_BOUND, || async {
        let hits = b.stats().l1_hits;
        b.get::<Option<String>>("k").await == Some(v("v1")) && b.stats().l1_hits == hits + 1
    })
    .await;
    assert!(read.is_some(), "B never held v1 in L1: {:?}", b.stats());
    assert!(b.try_write_through("k", &v("v2"), 2, &opts).await.unwrap());
    let hits = b.stats().l1_hits;
    assert_eq!(b.get::<Option<String>>("k").await, Some(v("v2")));
    assert_eq!(b.stats().l1_hits, hits + 1, "{:?}", b.stats());
    let seen = eventually(LAG_BOUND, || async {
        a.get::<Option<String>>("k").await == Some(v("v2"))
    })
    .await;
    assert!(seen.is_some(), "A kept serving v1 from L1");

    // A late write of revision 1 is refused, and A's L1 does not take it.
    assert!(
        !a.try_write_through("k", &v("late"), 1, &opts)
            .await
            .unwrap()
    );
    for cache in [&a, &b] {
        assert_eq!(cache.get::<Option<String>>("k").await, Some(v("v2")));
    }
    // Without L1 in the options nothing is kept.
    let no_l1 = opts.clone().l1(false);
    assert!(a.try_write_through("n", &v("x"), 1, &no_l1).await.unwrap());
    let hits = a.stats().l1_hits;
    assert_eq!(a.get::<Option<String>>("n").await, Some(v("x")));
    assert_eq!(a.stats().l1_hits, hits, "kept despite l1(false)");
}

crate::on_single_and_cluster!(
    set_on_one_instance_evicts_the_others_l1,
    delete_and_clear_on_one_instance_evict_the_others_l1,
    concurrent_writes_cause_no_spurious_flushes,
    a_write_through_stays_in_the_writers_l1_only,
);
