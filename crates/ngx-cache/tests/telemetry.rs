//! The library's own metrics, seen through a real exporter: an application
//! that installs `metrics-exporter-prometheus` gets hits and misses by tier
//! and key type, loads, Redis command latency, errors by kind and breaker
//! transitions, with help text, and never a key or an id as a label.
//!
//! One test per binary: the `metrics` recorder is process-wide.

mod support;

use std::time::Duration;

use metrics_exporter_prometheus::PrometheusBuilder;
use ngx_cache::{BreakerConfig, BreakerState, Cache, EntryOptions};
use support::server::RedisServer;
use support::util::config;

/// The value of the series `name{labels}` in `text` (labels in the order
/// the exporter prints them), or 0 when absent.
fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

#[tokio::test]
async fn an_installed_exporter_sees_the_cache() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).unwrap();

    let mut server = RedisServer::start();
    let cache = Cache::connect(
        config(&server)
            .pool_size(1)
            .breaker(BreakerConfig::new(2, Duration::from_secs(30)))
            .build()
            .unwrap(),
    )
    .await
    .unwrap();
    let opts = EntryOptions::new().ttl(Duration::from_secs(60));
    for id in ["1", "2", "3"] {
        let key = format!("user:{id}");
        let v: String = cache
            .get_or_load(&key, &opts, || async {
                Ok::<_, std::io::Error>("x".to_owned())
            })
            .await
            .unwrap();
        assert_eq!(v, "x");
        // Second read: L1.
        let _: Option<String> = cache.get(&key).await;
    }
    // A key with no type segment counts as `other`.
    let _: Option<String> = cache.get("visits").await;

    let text = handle.render();
    assert_eq!(
        value(&text, r#"ngx_cache_misses_total{key_type="user"}"#),
        3.0,
        "{text}"
    );
    assert_eq!(
        value(&text, r#"ngx_cache_loads_total{key_type="user"}"#),
        3.0
    );
    assert_eq!(
        value(&text, r#"ngx_cache_hits_total{tier="l1",key_type="user"}"#),
        3.0
    );
    assert_eq!(
        value(&text, r#"ngx_cache_misses_total{key_type="other"}"#),
        1.0
    );
    assert!(text.contains("# HELP ngx_cache_hits_total"), "{text}");
    assert!(
        text.contains(r#"ngx_cache_redis_command_duration_seconds_count{command="SET"}"#)
            || text.contains(r#"ngx_cache_redis_command_duration_seconds{command="SET""#),
        "{text}"
    );
    for id in ["user:1", "user:2", "visits"] {
        assert!(
            !text.lines().any(|l| !l.starts_with('#') && l.contains(id)),
            "{id} became a label:\n{text}"
        );
    }
    let key_types: std::collections::BTreeSet<&str> = text
        .lines()
        .filter_map(|l| l.split("key_type=\"").nth(1)?.split('"').next())
        .collect();
    assert_eq!(key_types, ["other", "user"].into(), "{text}");
    assert_eq!(
        value(&text, r#"ngx_cache_circuit_breaker_state{state="closed"}"#),
        1.0
    );

    // Redis goes away: errors by kind, and the breaker opens.
    server.kill();
    for _ in 0..2 {
        assert!(cache.try_get::<String>("user:9").await.is_err());
    }
    assert_eq!(cache.breaker().state(), BreakerState::Open);
    let text = handle.render();
    assert_eq!(
        value(
            &text,
            r#"ngx_cache_circuit_breaker_transitions_total{to="open"}"#
        ),
        1.0,
        "{text}"
    );
    assert_eq!(
        value(&text, r#"ngx_cache_circuit_breaker_state{state="open"}"#),
        1.0
    );
    assert_eq!(
        value(&text, r#"ngx_cache_circuit_breaker_state{state="closed"}"#),
        0.0
    );
    let errors: f64 = text
        .lines()
        .filter(|l| l.starts_with("ngx_cache_errors_total{"))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum();
    assert_eq!(errors, 2.0, "{text}");
}
