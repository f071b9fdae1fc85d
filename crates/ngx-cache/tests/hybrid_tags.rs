//! Tags: `invalidate_tag` makes every entry carrying the tag a miss on every
//! instance, in L1 and in Redis, with O(1) Redis work (one counter), while
//! entries with other tags survive.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ngx_cache::{Cache, EntryOptions, Source};
use support::hybrid::{LAG_BOUND, all_keys, instance, instances};
use support::target::Backing;
use support::util::{config, dbsize, eventually, raw_get};
use tokio::sync::Barrier;

fn tagged(tags: &[&str]) -> EntryOptions {
    EntryOptions::new()
        .ttl(Duration::from_secs(60))
        .tags(tags.iter().copied())
}

/// Where `get_or_load` finds `key` now; a load returns "reloaded".
async fn source(cache: &Cache, key: &str, opts: &EntryOptions) -> (String, Source) {
    let got = cache
        .get_or_load_entry(key, opts, || async {
            Ok::<_, std::io::Error>("reloaded".to_owned())
        })
        .await
        .unwrap();
    (got.value, got.source)
}

async fn invalidating_a_tag_misses_its_entries_everywhere_in_o1(server: &Backing) {
    let [a, b] = <[Cache; 2]>::try_from(instances(server, 2).await).unwrap();
    let entries = [
        ("order:1", vec!["customer:1"]),
        ("order:2", vec!["customer:1", "region:eu"]),
        ("order:3", vec!["customer:2"]),
        ("profile:2", vec!["customer:2", "region:eu"]),
    ];
    for (key, tags) in &entries {
        let opts = tagged(tags);
        let v = a
            .get_or_load(key, &opts, {
                let key = key.to_string();
                move || async move { Ok::<_, std::io::Error>(format!("{key} v1")) }
            })
            .await
            .unwrap();
        assert_eq!(v, format!("{key} v1"));
        // B reads it once from Redis; after that from its L1.
        let _ = source(&b, key, &opts).await;
        let (v, src) = source(&b, key, &opts).await;
        assert_eq!(
            (v.as_str(), src),
            (format!("{key} v1").as_str(), Source::L1)
        );
        let (_, src) = source(&a, key, &opts).await;
        assert_eq!(src, Source::L1);
    }
    let keys_before = all_keys(server);
    let raw_before: Vec<_> = keys_before.iter().map(|k| raw_get(server, k)).collect();
    assert_eq!(dbsize(server), 4, "{keys_before:?}");

    assert!(a.invalidate_tag("customer:1").await);
    // O(1) in Redis: one counter appeared, no entry was touched.
    let keys_after = all_keys(server);
    assert_eq!(dbsize(server), 5, "{keys_after:?}");
    assert!(
        keys_after.contains(&"t:__tag:customer:1".to_owned()),
        "{keys_after:?}"
    );
    for (k, raw) in keys_before.iter().zip(&raw_before) {
        assert_eq!(&raw_get(server, k), raw, "{k} was rewritten");
    }

    for cache in [&a, &b] {
        for (key, tags) in &entries {
            let opts = tagged(tags);
            let old = format!("{key} v1");
            if tags.contains(&"customer:1") {
                // The first instance to miss reloads and refills Redis; the
                // other may then read that refill: either way never v1.
                let gone = eventually(LAG_BOUND, || async {
                    source(cache, key, &opts).await.0 != old
                })
                .await;
                assert!(gone.is_some(), "{key} still served: {:?}", cache.stats());
                let (v, src) = source(cache, key, &opts).await;
                assert_eq!((v.as_str(), src), ("reloaded", Source::L1));
            } else {
                let (v, src) = source(cache, key, &opts).await;
                assert_eq!(v, old, "{key} lost");
                assert_ne!(src, Source::Loader);
            }
        }
    }
    // One reload per invalidated key in all.
    assert_eq!(a.stats().loads + b.stats().loads, 4 + 2, "{:?}", b.stats());
    // Plain reads agree.
    assert_eq!(
        b.get::<String>("order:3").await.as_deref(),
        Some("order:3 v1")
    );
    assert!(b.stats().invalidations_received >= 1);
}

async fn set_with_tags_and_plain_get_respect_invalidation(server: &Backing) {
    let [a, b] = <[Cache; 2]>::try_from(instances(server, 2).await).unwrap();
    a.set_with("k", &"v", &tagged(&["t1"])).await.unwrap();
    // The set's message reaches B first (on a cluster it crosses the bus),
    // or it would evict what B's first read keeps in L1.
    let told = eventually(LAG_BOUND, || async {
        b.stats().invalidations_received >= 1
    })
    .await;
    assert!(told.is_some(), "{:?}", b.stats());
    assert_eq!(b.get::<String>("k").await.as_deref(), Some("v"));
    assert_eq!(b.get::<String>("k").await.as_deref(), Some("v"));
    assert_eq!(b.stats().l1_hits, 1);
    b.invalidate_tag("t1").await;
    assert_eq!(b.get::<String>("k").await, None);
    let gone = eventually(LAG_BOUND, || async { a.get::<String>("k").await.is_none() }).await;
    assert!(gone.is_some());
    // Re-tagged writes after the invalidation are valid again.
    a.set_with("k", &"v2", &tagged(&["t1"])).await.unwrap();
    let back = eventually(LAG_BOUND, || async {
        b.get::<String>("k").await.as_deref() == Some("v2")
    })
    .await;
    assert!(back.is_some());
}

/// An instance that does not listen to the bus (invalidation off, L1 off)
/// still sees tag invalidations: they live in Redis.
async fn an_instance_without_the_bus_still_honours_tag_invalidation_in_redis(server: &Backing) {
    let a = instance(server).await;
    let deaf = Cache::connect(
        config(server)
            .invalidation(false)
            .l1(false)
            .build()
            .unwrap(),
    )
    .await
    .unwrap();
    a.set_with("k", &"v", &tagged(&["t1"])).await.unwrap();
    assert_eq!(deaf.get::<String>("k").await.as_deref(), Some("v"));
    a.invalidate_tag("t1").await;
    assert_eq!(
        deaf.get::<String>("k").await,
        None,
        "tag invalidation ignored"
    );
}

/// A load that straddles a tag invalidation must not leave a valid entry:
/// its fill records the tag version read before the load.
async fn a_fill_racing_a_tag_invalidation_is_a_miss(server: &Backing) {
    let [reader, writer] = <[Cache; 2]>::try_from(instances(server, 2).await).unwrap();
    let opts = tagged(&["customer:9"]);
    let read = Arc::new(Barrier::new(2));
    let release = Arc::new(Barrier::new(2));
    let task = {
        let (reader, opts, read, release) =
            (reader.clone(), opts.clone(), read.clone(), release.clone());
        tokio::spawn(async move {
            reader
                .get_or_load("k", &opts, move || async move {
                    read.wait().await;
                    release.wait().await;
                    Ok::<_, std::io::Error>("old".to_owned())
                })
                .await
        })
    };
    read.wait().await;
    writer.invalidate_tag("customer:9").await;
    release.wait().await;
    assert_eq!(task.await.unwrap().unwrap(), "old");
    let calls = Arc::new(AtomicUsize::new(0));
    for cache in [&reader, &writer] {
        let calls = calls.clone();
        let opts = &opts;
        let v = eventually(LAG_BOUND, || {
            let calls = calls.clone();
            async move {
                cache
                    .get_or_load("k", opts, move || async move {
                        calls.fetch_add(1, Ordering::SeqCst);
                        Ok::<_, std::io::Error>("new".to_owned())
                    })
                    .await
                    .unwrap()
                    == "new"
            }
        })
        .await;
        assert!(v.is_some(), "old value kept after the tag was invalidated");
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "the new value was cached once"
    );
}

crate::on_single_and_cluster!(
    invalidating_a_tag_misses_its_entries_everywhere_in_o1,
    set_with_tags_and_plain_get_respect_invalidation,
    an_instance_without_the_bus_still_honours_tag_invalidation_in_redis,
    a_fill_racing_a_tag_invalidation_is_a_miss,
);
