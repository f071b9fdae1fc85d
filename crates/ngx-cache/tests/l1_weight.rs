//! The L1 tier is bounded by weight (bytes) as well as by entry count:
//! a few large values cannot hold gigabytes in process memory, and the
//! current weight is in the statistics.

mod support;

use std::time::Duration;

use ngx_cache::{Cache, EntryOptions};
use support::server::RedisServer;
use support::util::config;

#[tokio::test]
async fn l1_is_bounded_by_bytes_and_reports_its_weight() {
    let server = RedisServer::start();
    let limit: u64 = 1024 * 1024;
    let cache = Cache::connect(
        config(&server)
            .l1_capacity(10_000)
            .l1_max_bytes(limit)
            .build()
            .unwrap(),
    )
    .await
    .unwrap();
    let opts = EntryOptions::new().ttl(Duration::from_secs(60));
    let big = "x".repeat(32 * 1024);
    for i in 0..128 {
        let value = big.clone();
        let got: String = cache
            .get_or_load(&format!("big:{i}"), &opts, move || async move {
                Ok::<_, std::io::Error>(value)
            })
            .await
            .unwrap();
        assert_eq!(got.len(), big.len());
    }
    let stats = cache.stats();
    // 128 values of 32 KiB would be 4 MiB; the tier keeps at most 1 MiB.
    assert!(stats.l1_bytes > 0, "{stats:?}");
    assert!(stats.l1_bytes <= limit, "{} bytes held", stats.l1_bytes);
    assert!(
        (8..=32).contains(&stats.l1_entries),
        "{} entries held",
        stats.l1_entries
    );
    // Small values still fill the tier up to its entry count.
    let small = Cache::connect(
        config(&server)
            .namespace("small")
            .l1_capacity(100)
            .l1_max_bytes(limit)
            .build()
            .unwrap(),
    )
    .await
    .unwrap();
    for i in 0..1000 {
        let _: u32 = small
            .get_or_load(&format!("n:{i}"), &opts, move || async move {
                Ok::<_, std::io::Error>(i)
            })
            .await
            .unwrap();
    }
    let entries = small.stats().l1_entries;
    assert!((50..=200).contains(&entries), "{entries} entries");
}

#[test]
fn the_byte_bound_is_read_from_the_environment() {
    let c = ngx_cache::CacheConfig::from_lookup(|n| {
        (n == "CACHE_L1_MAX_BYTES").then(|| "1048576".to_owned())
    })
    .unwrap();
    assert_eq!(c.l1_max_bytes, 1_048_576);
    let err = ngx_cache::CacheConfig::from_lookup(|n| {
        (n == "CACHE_L1_MAX_BYTES").then(|| "lots".to_owned())
    })
    .unwrap_err();
    assert!(err.to_string().contains("CACHE_L1_MAX_BYTES"));
}
