//! `/metrics` as Prometheus sees it: a running service is scraped over TCP
//! and the scrape goes through `promtool check metrics`; every metric that
//! the alert rules and the Grafana dashboard in `deploy/` query is present;
//! labels that come from requests take a bounded set of values.

#[path = "../../ngx-cache/tests/support/server.rs"]
#[allow(dead_code, unreachable_pub)]
mod server;

mod http_support;

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request};
use http_support::{CONVERSATIONS, TestApp};
use ngx_agent::cache::{DomainCacheSettings, NgxCacheManager};
use ngx_agent::db::Database;
use ngx_agent::http::{self, AppState};
use ngx_cache::{Cache, CacheConfig};
use serde_json::json;
use server::RedisServer;
use tower::ServiceExt;

/// A service on a real TCP port; returns its base URL.
async fn serve(app: &Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = app.clone();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

/// Traffic that touches every family of metric: L1 and L2 hits, misses,
/// loads, invalidations, a 404 and a 4xx.
async fn exercise(base: &str) {
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    for i in 1..=CONVERSATIONS.min(5) {
        let url = format!("{base}/conversations/conv-{i:05}");
        for _ in 0..3 {
            assert_eq!(client.get(&url).send().await.unwrap().status(), 200);
        }
    }
    let cust = format!("{base}/customers/cust-00001");
    assert_eq!(client.get(&cust).send().await.unwrap().status(), 200);
    let update = json!({"name": "Renamed Customer", "email": "renamed@example.com"});
    let put = client.put(&cust).json(&update).send().await.unwrap();
    assert!(put.status().is_success(), "{}", put.status());
    assert_eq!(client.get(&cust).send().await.unwrap().status(), 200);
    let missing = client
        .get(format!("{base}/conversations/no-such-conversation"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let unknown = client
        .get(format!("{base}/no/such/route"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
}

async fn scrape(base: &str) -> String {
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let resp = client.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    resp.text().await.unwrap()
}

/// Runs `promtool check metrics` over `text`; panics with its output on a
/// lint finding.
fn promtool_check(text: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool not found: apt-get install -y prometheus (.ci/run installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && report.trim().is_empty(),
        "promtool check metrics found problems:\n{report}"
    );
}

/// Metric families in a scrape: the names on `# TYPE` lines.
fn families(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// Metric names referenced in PromQL inside `text` (rules YAML or dashboard
/// JSON): identifiers starting with one of our prefixes, with the histogram
/// suffixes mapped to their family.
fn queried_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let starts_word = i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        let rest = &text[i..];
        if starts_word && (rest.starts_with("ngx_") || rest.starts_with("http_")) {
            let len = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            let mut name = &rest[..len];
            for suffix in ["_bucket", "_sum", "_count"] {
                if let Some(base) = name.strip_suffix(suffix) {
                    name = base;
                }
            }
            names.insert(name.to_owned());
            i += len;
        } else {
            i += 1;
        }
    }
    names
}

fn deploy_file(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// One instance over `redis` and `namespace`, sharing `db`.
async fn instance(db: &Database, redis: &RedisServer, namespace: &str) -> Router {
    http::install_metrics();
    let config = CacheConfig::builder()
        .url(redis.url())
        .namespace(namespace)
        .build()
        .unwrap();
    let cache = Cache::connect(config).await.unwrap();
    let manager = NgxCacheManager::new(cache, DomainCacheSettings::default());
    http::app(AppState::new(db.clone(), Some(manager)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_scrape_passes_promtool_and_has_every_queried_metric() {
    let (db, _dir) = http_support::seeded_db().await;
    let redis = RedisServer::start();
    let ns = format!("m{}", std::process::id());
    let a = serve(&instance(&db, &redis, &ns).await).await;
    let b = serve(&instance(&db, &redis, &ns).await).await;
    exercise(&a).await;
    // Writes on B reach A as invalidation messages: A records their lag.
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let text = loop {
        let put = client
            .put(format!("{b}/customers/cust-00002"))
            .json(&json!({"name": "From B", "email": "b@example.com"}))
            .send()
            .await
            .unwrap();
        assert!(put.status().is_success(), "{}", put.status());
        let text = scrape(&a).await;
        if text.contains("ngx_cache_invalidation_lag_seconds_count") {
            break text;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no invalidation lag recorded on A"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    promtool_check(&text);

    let present = families(&text);
    let mut queried = queried_names(&deploy_file("prometheus-rules.yml"));
    queried.extend(queried_names(&deploy_file(
        "grafana/dashboards/ngx-cache.json",
    )));
    assert!(queried.len() > 10, "too few names found: {queried:?}");
    let missing: Vec<_> = queried.difference(&present).collect();
    assert!(
        missing.is_empty(),
        "queried by deploy/ but absent from /metrics: {missing:?}\npresent: {present:?}"
    );
}

#[test]
fn name_extraction_finds_histogram_families() {
    let names = queried_names(
        r#"histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{route!="/metrics"}[5m]))) / ngx_cache_hits_total"#,
    );
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        ["http_request_duration_seconds", "ngx_cache_hits_total"]
    );
}

/// Every `http_requests_total` series' label values for `label`.
fn label_values(text: &str, label: &str) -> BTreeSet<String> {
    let needle = format!("{label}=\"");
    text.lines()
        .filter(|l| l.starts_with("http_requests_total{"))
        .filter_map(|l| {
            let at = l.find(&needle)? + needle.len();
            let end = l[at..].find('"')?;
            Some(l[at..at + end].to_owned())
        })
        .collect()
}

#[tokio::test]
async fn made_up_methods_and_paths_create_no_new_series() {
    let t = TestApp::new().await;
    for i in 0..10_000u32 {
        let method = Method::from_bytes(format!("BREW{i}").as_bytes()).unwrap();
        let req = Request::builder()
            .method(method)
            .uri(format!("/made/up/{i}"))
            .body(Body::empty())
            .unwrap();
        let resp = t.app.clone().oneshot(req).await.unwrap();
        assert!(resp.status().is_client_error(), "{}", resp.status());
    }
    let (_, m) = t.call("GET", "/metrics", None).await;
    let text = m.as_str().unwrap();
    let methods = label_values(text, "method");
    let known: BTreeSet<String> = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE", "other",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    assert!(
        methods.is_subset(&known),
        "method labels beyond the known set: {} values, e.g. {:?}",
        methods.len(),
        methods.difference(&known).take(3).collect::<Vec<_>>()
    );
    assert!(methods.contains("other"), "{methods:?}");
    let routes = label_values(text, "route");
    assert!(
        routes.iter().all(|r| !r.starts_with("/made/up/")),
        "raw paths became labels: {} routes",
        routes.len()
    );
}
