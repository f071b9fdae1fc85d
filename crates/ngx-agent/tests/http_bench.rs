//! A small smoke run of the load tool against an in-process server with
//! real Redis: 0 errors and a hit rate above 0. The full run is for
//! `docs/benchmarks.md`.

#[path = "../../ngx-cache/tests/support/server.rs"]
#[allow(dead_code, unreachable_pub)]
mod server;

mod http_support;

use ngx_agent::http::{self, AppState};
use ngx_bench::{Goals, RunOptions, Target, markdown, run};

async fn serve(state: AppState) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, http::app(state)).await.unwrap();
    });
    format!("http://{addr}")
}

fn small() -> RunOptions {
    RunOptions {
        requests: 300,
        warmup: 150,
        concurrency: 4,
        customers: http_support::CUSTOMERS,
        conversations: http_support::CONVERSATIONS,
        probe_requests: 100,
        ..RunOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke_run_has_no_errors_and_hits_the_cache() {
    let on = http_support::TestApp::new().await;
    let off = http_support::TestApp::without_cache().await;
    let opts = small();

    let target = Target::new(&serve(off.state.clone()).await, opts.concurrency).unwrap();
    let without = run(&target, "cache off", &opts).await.unwrap();
    let target = Target::new(&serve(on.state.clone()).await, opts.concurrency)
        .unwrap()
        .with_pid(std::process::id());
    let with = run(&target, "cache on", &opts).await.unwrap();

    for r in [&without, &with] {
        assert_eq!(r.mix.requests, 300);
        assert_eq!(r.mix.errors, 0, "{:?}", r.mix.error_samples);
        assert_eq!(r.health.errors + r.conversation_read.errors, 0);
        assert!(r.mix.p50_ms > 0.0 && r.mix.p99_ms >= r.mix.p50_ms);
    }
    assert_eq!(without.hit_rate, None);
    // Memory: this process's RSS, and the L1 of the cached run.
    assert!(
        with.memory.rss_bytes.is_some_and(|b| b > 0),
        "{:?}",
        with.memory
    );
    assert_eq!(without.memory.rss_bytes, None);
    assert!(with.memory.l1_entries > 0, "{:?}", with.memory);
    assert!(with.memory.l1_bytes_per_entry().is_some_and(|b| b > 0.0));
    assert!(with.hit_rate.unwrap() > 0.0, "{with:?}");
    assert!(
        with.db_queries_per_request < without.db_queries_per_request,
        "{} vs {}",
        with.db_queries_per_request,
        without.db_queries_per_request
    );
    let table = markdown(&without, &with);
    assert!(table.contains("| mix: cache hit rate | n/a |"), "{table}");
    assert!(table.contains("| L1 bytes per entry"), "{table}");
    assert_eq!(Goals::of(&without, &with, false).errors, 0);
}

#[test]
fn refuses_targets_other_than_loopback() {
    assert!(Target::new("http://127.0.0.1:8000", 1).is_ok());
    assert!(Target::new("http://localhost:8000", 1).is_ok());
    assert!(Target::new("http://[::1]:8000", 1).is_ok());
    assert!(Target::new("http://10.0.0.1:8000", 1).is_err());
    assert!(Target::new("http://example.com", 1).is_err());
    assert!(Target::new("https://127.0.0.1", 1).is_err());
}
