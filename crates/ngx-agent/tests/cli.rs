//! Every `ngx-agent` subcommand, run as the real binary against a real
//! `redis-server` started by the test (and, for `serve`, `warm` and
//! `healthcheck`, a real SQLite database).

#[path = "../../ngx-cache/tests/support/server.rs"]
#[allow(dead_code, unreachable_pub)]
mod server;

#[allow(dead_code, unreachable_pub)]
mod cli_support;

use std::process::Stdio;
use std::time::Duration;

use cli_support::{BIN, Service, command, json, run, stderr, stdout};
use ngx_cache::{Cache, CacheConfig, Codec, EntryOptions};
use redis::Commands as _;
use server::RedisServer;

async fn cache(redis: &RedisServer, ns: &str, codec: Codec, compress: Option<usize>) -> Cache {
    let config = CacheConfig::builder()
        .url(redis.url())
        .namespace(ns)
        .codec(codec)
        .compression_threshold(compress)
        .ttl_jitter(0.0)
        .build()
        .unwrap();
    Cache::connect(config).await.unwrap()
}

fn keys(redis: &RedisServer, pattern: &str) -> Vec<String> {
    let mut conn = redis.conn();
    let mut keys: Vec<String> = conn
        .scan_match(pattern)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    keys.sort();
    keys
}

#[test]
fn version_help_and_unknown_flags() {
    let redis = RedisServer::start();
    let out = run(&redis, "t", &["--version"]);
    assert!(out.status.success());
    assert_eq!(
        stdout(&out).trim(),
        format!("ngx-agent {}", env!("CARGO_PKG_VERSION"))
    );

    let help = stdout(&run(&redis, "t", &["--help"]));
    for needle in [
        "serve",
        "bench",
        "healthcheck",
        "cache",
        "[env: REDIS_URL",
        "[default: redis://localhost:6379]",
        "[env: CACHE_TTL_KNOWLEDGE=",
        "[default: 86400]",
        "[env: HTTP_ADDR=",
        "[default: 127.0.0.1:8000]",
        "[env: ADMIN_TOKEN]",
    ] {
        assert!(help.contains(needle), "--help lacks {needle:?}:\n{help}");
    }
    // Secrets in the environment never appear in the help.
    let out = command(&redis, "t")
        .env("ADMIN_TOKEN", "hunter2-secret")
        .env("REDIS_URL", "redis://:pw-secret@127.0.0.1:1")
        .arg("--help")
        .output()
        .unwrap();
    let help = stdout(&out);
    assert!(
        !help.contains("hunter2") && !help.contains("pw-secret"),
        "{help}"
    );

    for args in [
        &["serve", "--bogus"][..],
        &["--bogus"],
        &["cache", "keys", "conv", "--lmit", "3"],
        &["cache", "get", "nonsense", "x"],
        &["cache", "invalidate"],
        &["cache", "invalidate", "--key", "a", "--tag", "b"],
        &["bench", "--requests", "many"],
        &["frobnicate"],
    ] {
        let out = run(&redis, "t", args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("error:"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    let out = run(&redis, "t", &["bench", "--help"]);
    assert!(out.status.success());
    assert!(stdout(&out).contains("--concurrency <N>"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_decodes_every_codec_and_tells_stale_invalidated_and_corrupt() {
    let redis = RedisServer::start();
    let ns = "cliget";
    let value = serde_json::json!({"name": "Ana", "notes": "n".repeat(300), "score": 7});

    let json_cache = cache(&redis, ns, Codec::Json, None).await;
    json_cache
        .set("conv:v1:plain", &value, Some(Duration::from_secs(600)))
        .await
        .unwrap();
    let packed = cache(&redis, ns, Codec::MessagePack, Some(64)).await;
    let opts = EntryOptions::new()
        .ttl(Duration::from_secs(600))
        .tag("customer:cust-1");
    let got: serde_json::Value = packed
        .get_or_load("cust:v1:packed", &opts, || async {
            Ok::<_, std::io::Error>(serde_json::json!({"name": "Ben", "notes": "m".repeat(300)}))
        })
        .await
        .unwrap();
    assert_eq!(got["name"], "Ben");

    // Plain JSON: value, TTL, fresh.
    let out = run(&redis, ns, &["cache", "get", "conv", "plain"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("cliget:conv:v1:plain"), "{text}");
    assert!(text.contains("fresh"), "{text}");
    assert!(text.contains("\"name\": \"Ana\""), "{text}");
    assert!(text.contains("JSON"), "{text}");
    let j = json(&run(
        &redis,
        ns,
        &["cache", "get", "conversation", "plain", "--json"],
    ));
    assert_eq!(j["format"], "json");
    assert_eq!(j["state"], "fresh");
    assert_eq!(j["value"], value);
    let ttl = j["ttl_ms"].as_u64().unwrap();
    assert!(ttl > 590_000 && ttl <= 600_000, "{j}");

    // Compressed MessagePack in an envelope, with its tag.
    let j = json(&run(
        &redis,
        ns,
        &["cache", "get", "cust", "packed", "--json"],
    ));
    assert_eq!(j["format"], "lz4_message_pack", "{j}");
    assert_eq!(j["state"], "fresh");
    assert_eq!(j["value"]["name"], "Ben");
    assert_eq!(j["tags"][0]["tag"], "customer:cust-1");
    assert!(j["logical_expiry_in_ms"].as_i64().unwrap() > 590_000, "{j}");

    // The tag moves on: invalidated.
    assert!(packed.invalidate_tag("customer:cust-1").await);
    let out = run(&redis, ns, &["cache", "get", "cust", "packed"]);
    assert!(stdout(&out).contains("INVALIDATED"), "{}", stdout(&out));

    // Past the logical expiry, kept by fail-safe: stale.
    let short = EntryOptions::new()
        .ttl(Duration::from_millis(300))
        .fail_safe(Duration::from_secs(60));
    let _: serde_json::Value = json_cache
        .get_or_load("know:v1:old", &short, || async {
            Ok::<_, std::io::Error>(serde_json::json!("old news"))
        })
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let out = run(&redis, ns, &["cache", "get", "knowledge", "old"]);
    let text = stdout(&out);
    assert!(text.contains("STALE"), "{text}");
    assert!(text.contains(" ago)"), "{text}");

    // Corrupt bytes: said so, nothing changed.
    let mut conn = redis.conn();
    let _: () = conn
        .set("cliget:tier:v1:bad", b"\x02\xff\xff\xff\xff".as_slice())
        .unwrap();
    let out = run(&redis, ns, &["cache", "get", "tier", "bad"]);
    assert!(out.status.success());
    assert!(stdout(&out).contains("CORRUPT"), "{}", stdout(&out));
    assert_eq!(keys(&redis, "cliget:tier:*").len(), 1);

    // Missing: exit 1.
    let out = run(&redis, ns, &["cache", "get", "conv", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("no such entry"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_scan_with_a_limit_and_stats_count_per_type() {
    let redis = RedisServer::start();
    let ns = "clikeys";
    let c = cache(&redis, ns, Codec::Json, None).await;
    for i in 0..7 {
        c.set(&format!("conv:v1:c{i}"), &i, None).await.unwrap();
    }
    c.set("cust:v1:x", &1, None).await.unwrap();
    // Another namespace that a careless glob would match.
    let other = cache(&redis, "clikeysX", Codec::Json, None).await;
    other.set("conv:v1:zzz", &1, None).await.unwrap();

    let out = run(&redis, ns, &["cache", "keys", "conv"]);
    let listed: Vec<String> = stdout(&out).lines().map(|l| l.trim().to_owned()).collect();
    assert_eq!(listed.len(), 7, "{listed:?}");
    assert!(listed.iter().all(|k| k.starts_with("clikeys:conv:v1:c")));

    let j = json(&run(
        &redis,
        ns,
        &["cache", "keys", "conv", "--limit", "3", "--json"],
    ));
    assert_eq!(j["keys"].as_array().unwrap().len(), 3);
    assert_eq!(j["truncated"], true);

    c.invalidate_tag("customer:a").await;
    let j = json(&run(&redis, ns, &["cache", "stats", "--json"]));
    assert_eq!(j["namespace"], ns);
    assert_eq!(j["keys_by_type"]["conversation"], 7);
    assert_eq!(j["keys_by_type"]["customer"], 1);
    assert_eq!(j["tag_versions"], 1);
    assert!(j["redis_version"].as_str().unwrap().starts_with('7'), "{j}");
    let text = stdout(&run(&redis, ns, &["cache", "stats"]));
    assert!(
        text.contains("conversation") && text.contains("hit rate"),
        "{text}"
    );
}

#[test]
fn health_exits_zero_when_healthy_and_one_when_redis_is_gone() {
    let mut redis = RedisServer::start();
    let out = run(&redis, "h", &["cache", "health"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("healthy: Redis 7"),
        "{}",
        stdout(&out)
    );
    let j = json(&run(&redis, "h", &["cache", "health", "--json"]));
    assert_eq!(j["healthy"], true);

    redis.kill();
    let out = command(&redis, "h")
        .args(["cache", "health"])
        .env("CACHE_CONNECT_TIMEOUT_MS", "300")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("UNHEALTHY"), "{}", stdout(&out));
    let out = run(&redis, "h", &["cache", "keys", "conv"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("cannot connect to Redis at redis://127.0.0.1:")
            || stderr(&out).contains("did not answer within"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalidate_by_key_tag_type_and_prefix() {
    let redis = RedisServer::start();
    let ns = "cliinv";
    let c = cache(&redis, ns, Codec::Json, None).await;
    for i in 0..3 {
        c.set(&format!("conv:v1:c{i}"), &i, None).await.unwrap();
        c.set(&format!("pred:v1:objection:h{i}"), &i, None)
            .await
            .unwrap();
    }
    c.set("cust:v1:one", &1, None).await.unwrap();

    let j = json(&run(
        &redis,
        ns,
        &["cache", "invalidate", "--key", "cust:v1:one", "--json"],
    ));
    assert_eq!(
        (j["target"].as_str(), j["removed"].as_u64()),
        (Some("key"), Some(1))
    );
    assert!(keys(&redis, "cliinv:cust:*").is_empty());

    let j = json(&run(
        &redis,
        ns,
        &["cache", "invalidate", "--type", "conv", "--json"],
    ));
    assert_eq!(
        (j["target"].as_str(), j["removed"].as_u64()),
        (Some("type"), Some(3))
    );
    assert!(keys(&redis, "cliinv:conv:*").is_empty());
    assert_eq!(keys(&redis, "cliinv:pred:*").len(), 3);

    let out = run(
        &redis,
        ns,
        &["cache", "invalidate", "--prefix", "pred:v1:objection:h1"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("1 keys removed"), "{}", stdout(&out));
    assert_eq!(keys(&redis, "cliinv:pred:*").len(), 2);

    let j = json(&run(
        &redis,
        ns,
        &["cache", "invalidate", "--tag", "customer:c9", "--json"],
    ));
    assert_eq!(j["removed"], 1, "first version of the tag: {j}");
    let j = json(&run(
        &redis,
        ns,
        &["cache", "invalidate", "--tag", "customer:c9", "--json"],
    ));
    assert_eq!(j["removed"], 2);
    let mut conn = redis.conn();
    let v: u64 = conn.get("cliinv:__tag:customer:c9").unwrap();
    assert_eq!(v, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clear_needs_yes_without_a_terminal() {
    let redis = RedisServer::start();
    let ns = "cliclr";
    let c = cache(&redis, ns, Codec::Json, None).await;
    for i in 0..4 {
        c.set(&format!("conv:v1:c{i}"), &i, None).await.unwrap();
    }
    let out = run(&redis, ns, &["cache", "clear"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("without --yes"), "{}", stderr(&out));
    assert_eq!(keys(&redis, "cliclr:*").len(), 4, "nothing removed");

    let j = json(&run(&redis, ns, &["cache", "clear", "--yes", "--json"]));
    assert_eq!(j["removed"], 4);
    assert!(keys(&redis, "cliclr:*").is_empty());
}

#[test]
fn clear_asks_on_a_terminal() {
    let redis = RedisServer::start();
    let ns = "clipty";
    let mut conn = redis.conn();
    for i in 0..3 {
        let _: () = conn.set(format!("{ns}:conv:v1:c{i}"), "1").unwrap();
    }
    // Anything but `yes` keeps the keys.
    let mut cmd = command(&redis, ns);
    cmd.args(["cache", "clear"]);
    let mut p = rexpect::session::spawn_command(cmd, Some(20_000)).unwrap();
    p.exp_string("Remove all 3 keys of namespace `clipty`")
        .unwrap();
    p.exp_string("Type `yes` to confirm:").unwrap();
    p.send_line("no").unwrap();
    p.exp_string("nothing removed").unwrap();
    p.exp_eof().unwrap();
    assert_eq!(keys(&redis, "clipty:*").len(), 3);

    let mut cmd = command(&redis, ns);
    cmd.args(["cache", "clear"]);
    let mut p = rexpect::session::spawn_command(cmd, Some(20_000)).unwrap();
    p.exp_string("Type `yes` to confirm:").unwrap();
    p.send_line("yes").unwrap();
    p.exp_string("cleared namespace clipty: 3 keys removed")
        .unwrap();
    p.exp_eof().unwrap();
    assert!(keys(&redis, "clipty:*").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warm_loads_from_the_database_with_progress_only_on_a_terminal() {
    let redis = RedisServer::start();
    let ns = "cliwarm";
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/ngx.db", dir.path().display());
    let db = ngx_agent::db::Database::connect(&url).await.unwrap();
    db.migrate().await.unwrap();
    db.seed_with(ngx_agent::db::SeedSpec::new(20, 10))
        .await
        .unwrap();
    db.close().await;

    let out = command(&redis, ns)
        .args(["cache", "warm", "--json"])
        .env("DATABASE_URL", &url)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let j = json(&out);
    let total = j["total"].as_u64().unwrap();
    assert!(total > 2, "{j}");
    assert_eq!(j["done"].as_u64(), Some(total));
    assert!(
        !stderr(&out).contains("warming"),
        "no bar off a terminal: {}",
        stderr(&out)
    );
    assert!(!keys(&redis, "cliwarm:know:v1:*").is_empty());
    assert_eq!(keys(&redis, "cliwarm:conf:agent:v1:*").len(), 1);

    // On a terminal the bar is drawn.
    let mut cmd = command(&redis, ns);
    cmd.args(["cache", "warm"]).env("DATABASE_URL", &url);
    let mut p = rexpect::session::spawn_command(cmd, Some(20_000)).unwrap();
    p.exp_string("warming [").unwrap();
    p.exp_string(&format!("warmed {total} of {total} entries"))
        .unwrap();
    p.exp_eof().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_port_healthcheck_and_invalidation_reaching_the_service() {
    let redis = RedisServer::start();
    let ns = "cliserve";
    let dir = tempfile::tempdir().unwrap();
    let mut service = Service::start(&redis, ns, dir.path(), &[]).await;
    // `serve --port` won over HTTP_ADDR=127.0.0.1:1: Service::start reached it.

    let addr = format!("127.0.0.1:{}", service.port);
    let check = |args: &[&str]| {
        command(&redis, ns)
            .arg("healthcheck")
            .args(args)
            .env("HTTP_ADDR", &addr)
            .output()
            .unwrap()
    };
    let out = check(&[]);
    assert!(out.status.success(), "{}", stdout(&out));
    assert!(stdout(&out).contains("/health -> 200"), "{}", stdout(&out));
    assert!(check(&["--ready"]).status.success());
    let j: serde_json::Value = serde_json::from_slice(&check(&["--json"]).stdout).unwrap();
    assert_eq!(
        (j["healthy"].as_bool(), j["status"].as_u64()),
        (Some(true), Some(200))
    );

    // The service caches a conversation in L1; the CLI's invalidation
    // reaches it over pub/sub.
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    for _ in 0..2 {
        let r = client
            .get(format!("{}/conversations/conv-00001", service.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let before = service.get_json("/cache/stats").await;
    let out = run(
        &redis,
        ns,
        &["cache", "invalidate", "--key", "conv:v1:conv-00001"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let mut received = 0;
    for _ in 0..100 {
        let after = service.get_json("/cache/stats").await;
        received = after["invalidations_received"].as_u64().unwrap()
            - before["invalidations_received"].as_u64().unwrap();
        if received > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        received, 1,
        "the running service applied the CLI's invalidation"
    );

    // `bench --url`: JSON report on stdout, no progress bar off a terminal,
    // a bar on one.
    let bench_args = [
        "bench",
        "--url",
        service.base.as_str(),
        "--requests",
        "200",
        "--warmup",
        "50",
        "--probe-requests",
        "50",
        "--concurrency",
        "2",
        "--customers",
        "3000",
        "--conversations",
        "1000",
    ];
    let out = run(&redis, ns, &bench_args);
    assert!(out.status.success(), "{}", stderr(&out));
    let report = json(&out);
    assert_eq!(report["mix"]["requests"], 200);
    assert_eq!(report["mix"]["errors"], 0);
    assert!(!stderr(&out).contains("service: mix"), "{}", stderr(&out));
    let mut cmd = command(&redis, ns);
    cmd.args(bench_args);
    let mut p = rexpect::session::spawn_command(cmd, Some(60_000)).unwrap();
    p.exp_string("service: mix [").unwrap();
    p.exp_eof().unwrap();

    service.stop();
    let out = check(&["--timeout-ms", "500"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("unhealthy"), "{}", stdout(&out));
    // A malformed HTTP_ADDR is named.
    let out = command(&redis, ns)
        .arg("healthcheck")
        .env("HTTP_ADDR", "nowhere")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("HTTP_ADDR"), "{}", stdout(&out));
}

#[test]
fn binary_path_is_the_one_under_test() {
    assert!(std::path::Path::new(BIN).exists());
}

#[test]
fn serve_shows_seeding_progress_on_a_terminal() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let port = server::free_port();
    let mut cmd = command(&redis, "cliseed");
    cmd.args(["serve", "--addr", &format!("127.0.0.1:{port}")])
        .env(
            "DATABASE_URL",
            format!("sqlite://{}/ngx.db", dir.path().display()),
        )
        .env("CACHE_WARM", "false");
    let mut p = rexpect::session::spawn_command(cmd, Some(60_000)).unwrap();
    p.exp_string("seeding the database [").unwrap();
    p.exp_string(&format!("ngx-agent listening on http://127.0.0.1:{port}"))
        .unwrap();
    p.exp_string("status:    http://").unwrap();
    p.process.signal(rexpect::process::signal::SIGTERM).unwrap();
    p.exp_eof().unwrap();
}
