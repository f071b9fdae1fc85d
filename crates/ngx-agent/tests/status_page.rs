//! The live status page in a real headless Chromium, driven over the W3C
//! WebDriver protocol (chromedriver): the page loads from the running
//! binary, its numbers move with traffic, and killing Redis turns the
//! breaker red. Screenshots go to `target/status-page-*.png`.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs
//! them). `CHROMIUM` and `CHROMEDRIVER` override the paths.

#[path = "../../ngx-cache/tests/support/server.rs"]
#[allow(dead_code, unreachable_pub)]
mod server;

#[allow(dead_code, unreachable_pub)]
mod cli_support;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use cli_support::Service;
use serde_json::{Value, json};
use server::{RedisServer, free_port};

fn find(var: &str, candidates: &[&str]) -> PathBuf {
    if let Ok(p) = std::env::var(var) {
        return PathBuf::from(p);
    }
    candidates
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| {
            panic!(
                "{} not found (tried {candidates:?}); install Debian's chromium and \
                 chromium-driver (apt-get install -y chromium chromium-driver) or set {var}",
                candidates[0]
            )
        })
}

/// chromedriver on a free port, killed on drop.
struct Driver {
    child: Child,
    base: String,
    session: Option<String>,
    http: reqwest::Client,
}

impl Driver {
    async fn start() -> Self {
        let driver = find(
            "CHROMEDRIVER",
            &["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"],
        );
        let port = free_port();
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = http.get(format!("{base}/status")).send().await;
            if let Ok(r) = ready {
                let v: Value = r.json().await.unwrap_or_default();
                if v["value"]["ready"] == true {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Self {
            child,
            base,
            session: None,
            http,
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp: Value = req.send().await.unwrap().json().await.unwrap();
        assert!(
            resp["value"].get("error").is_none(),
            "WebDriver {path}: {resp}"
        );
        resp["value"].clone()
    }

    async fn open_session(&mut self, profile: &std::path::Path) {
        let chromium = find(
            "CHROMIUM",
            &["/usr/bin/chromium", "/usr/bin/chromium-browser"],
        );
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1400,1050",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .chain([format!("--user-data-dir={}", profile.display())])
        .collect::<Vec<_>>();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium, "args": args}
        }}});
        let v = self
            .call(reqwest::Method::POST, "/session", Some(caps))
            .await;
        self.session = Some(v["sessionId"].as_str().unwrap().to_owned());
    }

    fn path(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session.as_ref().unwrap())
    }

    async fn goto(&self, url: &str) {
        self.call(
            reqwest::Method::POST,
            &self.path("/url"),
            Some(json!({ "url": url })),
        )
        .await;
    }

    async fn eval(&self, script: &str) -> Value {
        self.call(
            reqwest::Method::POST,
            &self.path("/execute/sync"),
            Some(json!({ "script": script, "args": [] })),
        )
        .await
    }

    async fn text(&self, id: &str) -> String {
        let v = self
            .eval(&format!(
                "return document.getElementById('{id}').textContent"
            ))
            .await;
        v.as_str().unwrap_or_default().to_owned()
    }

    async fn class(&self, id: &str) -> String {
        let v = self
            .eval(&format!("return document.getElementById('{id}').className"))
            .await;
        v.as_str().unwrap_or_default().to_owned()
    }

    /// Polls `check` on the page's state until it holds (20 s at most).
    async fn wait_for(&self, what: &str, ids: &[&str], check: impl Fn(&[String]) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let mut texts = Vec::new();
            for id in ids {
                texts.push(self.text(id).await);
            }
            if check(&texts) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: page shows {ids:?} = {texts:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self
            .call(reqwest::Method::GET, &self.path("/screenshot"), None)
            .await;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap())
            .unwrap();
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if let Some(id) = self.session.take() {
            // Best effort: ends the browser; the driver is killed below anyway.
            let url = format!("{}/session/{id}", self.base);
            let _ = std::thread::spawn(move || {
                let _ = std::process::Command::new("curl")
                    .args(["-s", "-X", "DELETE", &url])
                    .stdout(Stdio::null())
                    .status();
            })
            .join();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends GETs of `paths` (cycled) until `stop` is set; returns the count.
fn traffic(
    base: &str,
    paths: Vec<String>,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<usize> {
    let base = base.to_owned();
    tokio::spawn(async move {
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let mut sent = 0;
        for p in paths.iter().cycle() {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let r = http.get(format!("{base}{p}")).send().await.unwrap();
            assert!(r.status().is_success(), "{p}: {}", r.status());
            sent += 1;
            // About 100 requests a second: enough for the chart.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        sent
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_page_moves_with_traffic_and_shows_redis_down() {
    let mut redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let service = Service::start(
        &redis,
        "statuspage",
        dir.path(),
        &[("CACHE_CIRCUIT_BREAKER_TIMEOUT", "120")],
    )
    .await;
    let profile = tempfile::tempdir().unwrap();
    let mut driver = Driver::start().await;
    driver.open_session(profile.path()).await;

    driver.goto(&format!("{}/", service.base)).await;
    driver
        .wait_for(
            "the page shows the service healthy",
            &["state", "version"],
            |t| t[0] == "HEALTHY" && t[1] == env!("CARGO_PKG_VERSION"),
        )
        .await;
    let before = driver.text("req-sub").await;

    // Traffic: repeated reads, so the hit rate and the tiers fill in.
    let stop = Arc::new(AtomicBool::new(false));
    let reads: Vec<String> = (1..=20)
        .map(|i| format!("/conversations/conv-{i:05}"))
        .chain((1..=40).map(|i| format!("/customers/cust-{i:05}")))
        .collect();
    let load = traffic(&service.base, reads, stop.clone());
    driver
        .wait_for(
            "request counters and hit rate move",
            &["req-sub", "hit-rate", "tier-l1", "req-rate"],
            |t| t[0] != before && t[1].ends_with('%') && t[2] != "0.0" && t[3] != "0.0",
        )
        .await;
    assert!(driver.class("tile-breaker").await.contains("ok"));
    // A few seconds of history on the chart before the picture.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let healthy = driver.screenshot("status-page-healthy.png").await;
    stop.store(true, Ordering::Relaxed);
    assert!(load.await.unwrap() > 0);

    // Nothing was fetched from anywhere but the service.
    let foreign = driver
        .eval(
            "return performance.getEntriesByType('resource')\
             .map(e => e.name).filter(n => !n.startsWith(location.origin))",
        )
        .await;
    assert_eq!(foreign, json!([]), "the page fetched from elsewhere");

    // Redis dies; reads of keys not in L1 fail, the breaker opens.
    redis.kill();
    let stop = Arc::new(AtomicBool::new(false));
    let cold: Vec<String> = (41..=400)
        .map(|i| format!("/customers/cust-{i:05}"))
        .collect();
    let load = traffic(&service.base, cold, stop.clone());
    driver
        .wait_for("the breaker turns visible", &["breaker", "state"], |t| {
            matches!(t[0].as_str(), "OPEN" | "DISCONNECTED" | "HALF-OPEN") && t[1] == "CACHE DOWN"
        })
        .await;
    assert!(driver.class("tile-breaker").await.contains("bad"));
    assert!(driver.class("state").await.contains("bad"));
    assert!(driver.text("banner").await.contains("Redis is unavailable"));
    tokio::time::sleep(Duration::from_secs(3)).await;
    let down = driver.screenshot("status-page-redis-down.png").await;
    stop.store(true, Ordering::Relaxed);
    assert!(load.await.unwrap() > 0);
    for shot in [healthy, down] {
        let size = std::fs::metadata(&shot).unwrap().len();
        assert!(size > 20_000, "{} is only {size} bytes", shot.display());
        eprintln!("screenshot: {}", shot.display());
    }
}
