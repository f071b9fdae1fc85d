//! Two real `ngx-agent` processes on one local Redis Cluster and one
//! database: a customer written through one is never read stale from the
//! other once the invalidation lag (measured and printed) has passed. And
//! the operator's `ngx-agent cache` reads on a cluster: `keys` and `stats`
//! see the keys of every primary, and `get` reads an entry (and its tags)
//! on the node that holds it.

mod support {
    #![allow(dead_code, unreachable_pub, missing_docs)]
    #[path = "../../../ngx-cache/tests/support/cluster.rs"]
    pub mod cluster;
    #[path = "../../../ngx-cache/tests/support/server.rs"]
    pub mod server;
    #[path = "../../../ngx-cache/tests/support/target.rs"]
    pub mod target;
}

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use ngx_cache::{Cache, CacheConfig, EntryOptions};
use serde_json::json;
use support::cluster::RedisCluster;
use support::server::free_port;

const BIN: &str = env!("CARGO_BIN_EXE_ngx-agent");
const TOKEN: &str = "cluster-test-secret-token";

/// An `ngx-agent` process, killed on drop.
struct Agent {
    child: Child,
    base: String,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start(cluster: &RedisCluster, db: &str, client: &reqwest::Client) -> Agent {
    let port = free_port();
    let child = Command::new(BIN)
        .env("HTTP_ADDR", format!("127.0.0.1:{port}"))
        .env("DATABASE_URL", db)
        .env("REDIS_URL", cluster.urls())
        .env("REDIS_CLUSTER", "true")
        .env("ADMIN_TOKEN", TOKEN)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start ngx-agent");
    let mut agent = Agent {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = client
            .get(format!("{}/health/ready", agent.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            && r.status() == 200
        {
            let body: serde_json::Value = r.json().await.unwrap();
            assert_eq!(body["cache"]["healthy"], true, "{body}");
            assert_eq!(
                body["cache"]["nodes"].as_array().map(Vec::len),
                Some(3),
                "{body}"
            );
            return agent;
        }
        assert!(Instant::now() < deadline, "ngx-agent never became ready");
        assert!(
            agent.child.try_wait().unwrap().is_none(),
            "ngx-agent exited"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn name(client: &reqwest::Client, agent: &Agent, id: &str) -> String {
    let r = client
        .get(format!("{}/customers/{id}", agent.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    body["name"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_through_one_agent_is_never_read_stale_from_the_other() {
    let cluster = RedisCluster::start();
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/ngx.db", dir.path().display());
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    // One after the other: the first creates and seeds the database.
    let a = start(&cluster, &db, &client).await;
    let b = start(&cluster, &db, &client).await;
    let agents = [&a, &b];
    let id = "cust-00002";
    let mut worst = Duration::ZERO;
    for round in 0..10 {
        let (writer, reader) = (agents[round % 2], agents[(round + 1) % 2]);
        // The reader holds the current value in its L1.
        let before = name(&client, reader, id).await;
        assert_eq!(name(&client, reader, id).await, before);
        let new = format!("Name {round}");
        let put = client
            .put(format!("{}/customers/{id}", writer.base))
            .json(&json!({"name": new, "email": format!("c{round}@example.com")}))
            .send()
            .await
            .unwrap();
        assert_eq!(put.status(), 200, "{}", put.text().await.unwrap());
        let written = Instant::now();
        let lag = loop {
            if name(&client, reader, id).await == new {
                break written.elapsed();
            }
            assert!(
                written.elapsed() < Duration::from_secs(2),
                "round {round}: the other agent still serves the old name"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        };
        worst = worst.max(lag);
        // Once seen, never the old value again.
        for _ in 0..20 {
            assert_eq!(
                name(&client, reader, id).await,
                new,
                "round {round}: stale again"
            );
        }
    }
    println!(
        "two ngx-agent processes on a cluster: invalidation lag at most {worst:?} over 10 writes"
    );
}

const NS: &str = "clicluster";

/// `ngx-agent args...` on `cluster`, with nothing of the caller's
/// environment that would point it elsewhere.
fn run(cluster: &RedisCluster, args: &[&str]) -> Output {
    let mut cmd = Command::new(BIN);
    for (name, _) in std::env::vars() {
        if name.starts_with("CACHE_") || name.starts_with("REDIS_") {
            cmd.env_remove(name);
        }
    }
    cmd.env("REDIS_URL", cluster.urls())
        .env("REDIS_CLUSTER", "true")
        .env("CACHE_NAMESPACE", NS)
        .env("RUST_LOG", "warn")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run ngx-agent")
}

fn json(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON output")
}

/// A cache in [`NS`] on `cluster`, holding customers `c0` to `c29` (worth
/// their number).
async fn with_customers(cluster: &RedisCluster) -> Cache {
    let config = CacheConfig::builder()
        .url(cluster.urls())
        .cluster(true)
        .namespace(NS)
        .build()
        .unwrap();
    let cache = Cache::connect(config).await.unwrap();
    for i in 0..30 {
        cache.set(&format!("cust:v1:c{i}"), &i, None).await.unwrap();
    }
    cache
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_reads_see_every_primary() {
    let cluster = RedisCluster::start();
    let cache = with_customers(&cluster).await;
    let tagged = EntryOptions::new().tag("customer:c7");
    cache
        .set_with("tier:v1:c7", &"gold", &tagged)
        .await
        .unwrap();
    assert!(cache.invalidate_tag("customer:c7").await);
    let primaries = cluster.primaries();
    let holding = primaries
        .iter()
        .filter(|&&i| {
            cluster
                .try_query::<u64>(i, &redis::cmd("DBSIZE"))
                .is_some_and(|n| n > 0)
        })
        .count();
    assert_eq!(holding, 3, "the keys should be spread over the primaries");

    let listed = json(&run(&cluster, &["cache", "keys", "cust", "--json"]));
    let keys = sorted_keys(&listed);
    let mut expected: Vec<String> = (0..30).map(|i| format!("{NS}:cust:v1:c{i}")).collect();
    expected.sort();
    assert_eq!(keys, expected);
    assert_eq!(listed["truncated"], false);
    let limited = json(&run(
        &cluster,
        &["cache", "keys", "cust", "--limit", "5", "--json"],
    ));
    assert_eq!(limited["keys"].as_array().unwrap().len(), 5);
    assert_eq!(limited["truncated"], true);

    let stats = json(&run(&cluster, &["cache", "stats", "--json"]));
    assert_eq!(stats["keys_by_type"]["customer"], 30, "{stats}");
    assert_eq!(stats["keys_by_type"]["tier"], 1, "{stats}");
    assert_eq!(stats["tag_versions"], 1, "{stats}");
    assert!(
        stats["redis_version"].as_str().unwrap().starts_with('7'),
        "{stats}"
    );

    for i in [0, 7, 29] {
        let entry = json(&run(
            &cluster,
            &["cache", "get", "cust", &format!("c{i}"), "--json"],
        ));
        assert_eq!(entry["state"], "fresh", "{entry}");
        assert_eq!(entry["value"], i, "{entry}");
    }
    // The tag's version lives on its own slot: read there, it shows the
    // entry was invalidated.
    let entry = json(&run(&cluster, &["cache", "get", "tier", "c7", "--json"]));
    assert_eq!(entry["state"], "invalidated", "{entry}");
    let missing = run(&cluster, &["cache", "get", "cust", "nobody"]);
    assert_eq!(missing.status.code(), Some(1));
}

/// The `keys` of `cache keys --json` output, sorted.
fn sorted_keys(listed: &serde_json::Value) -> Vec<String> {
    let mut keys: Vec<String> = listed["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect();
    keys.sort();
    keys
}

/// `ngx-agent args...` as [`run`], parsed from its `--json` output whatever
/// its exit code.
fn run_json(cluster: &RedisCluster, args: &[&str]) -> (Option<i32>, serde_json::Value, String) {
    let out = run(cluster, args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("JSON output ({e}); stderr: {stderr}"));
    (out.status.code(), value, stderr)
}

/// A shard whose primary and replica are both down (as when a failover has
/// nothing to promote): `keys` and `stats` still show the other primaries'
/// keys, name the node they could not read, and exit 1; `get` still reads
/// keys held elsewhere; `clear` removes the other primaries' keys, says how
/// many and names the node, and exits 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_reads_report_a_primary_that_is_down() {
    let mut cluster = RedisCluster::start();
    let cache = with_customers(&cluster).await;
    drop(cache);
    let victim = cluster.primary_of_slot(cluster.slot(&format!("{NS}:cust:v1:c0")));
    let down = format!("127.0.0.1:{}", cluster.nodes[victim].port());
    let survivors: Vec<String> = (0..30)
        .map(|i| format!("{NS}:cust:v1:c{i}"))
        .filter(|k| cluster.primary_of_slot(cluster.slot(k)) != victim)
        .collect();
    assert!(!survivors.is_empty() && survivors.len() < 30);
    let replica = cluster.replica_of(victim);
    cluster.nodes[replica].kill();
    let mut expected = survivors.clone();
    expected.sort();

    // First the primary hangs (paused: connections open, nothing answers),
    // then it is gone (killed: connections refused).
    cluster.nodes[victim].pause();
    for hung in [true, false] {
        if !hung {
            cluster.nodes[victim].kill();
        }
        let started = Instant::now();
        let (code, listed, stderr) = run_json(&cluster, &["cache", "keys", "cust", "--json"]);
        assert_eq!(code, Some(1), "hung {hung}: {listed} {stderr}");
        assert_eq!(sorted_keys(&listed), expected, "hung {hung}");
        assert_eq!(listed["unreachable"][0]["address"], down, "{listed}");
        assert_eq!(listed["unreachable"].as_array().unwrap().len(), 1);
        assert!(stderr.contains(&down), "{stderr}");
        println!(
            "hung {hung}: cache keys answered in {:?}",
            started.elapsed()
        );

        let (code, stats, stderr) = run_json(&cluster, &["cache", "stats", "--json"]);
        assert_eq!(code, Some(1), "hung {hung}: {stats} {stderr}");
        assert_eq!(
            stats["keys_by_type"]["customer"],
            survivors.len(),
            "{stats}"
        );
        assert_eq!(stats["primaries"], 2, "{stats}");
        assert_eq!(stats["unreachable"][0]["address"], down, "{stats}");
        assert!(stderr.contains(&down), "{stderr}");

        let id = survivors[0].rsplit(':').next().unwrap();
        let started = Instant::now();
        let entry = json(&run(&cluster, &["cache", "get", "cust", id, "--json"]));
        assert_eq!(entry["state"], "fresh", "hung {hung}: {entry}");
        println!("hung {hung}: cache get answered in {:?}", started.elapsed());
    }

    let live = cluster.keys(&format!("{NS}:*")).len();
    let started = Instant::now();
    let out = run(&cluster, &["cache", "clear", "--yes"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("cleared in part, {live} keys removed")) && stderr.contains(&down),
        "{stderr}"
    );
    assert_eq!(cluster.keys(&format!("{NS}:*")), Vec::<String>::new());
    println!("cache clear answered in {:?}", started.elapsed());
}
