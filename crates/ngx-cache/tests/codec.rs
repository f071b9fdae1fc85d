//! Codecs on a real server: JSON is stored as plain JSON, MessagePack is
//! marked with 0x01, either codec reads the other's values, compression
//! round-trips, and undecodable bytes are evicted misses, never errors.

mod support;

use ngx_cache::{Cache, Codec};
use serde::{Deserialize, Serialize};
use support::server::RedisServer;
use support::util::{config, raw_exists, raw_get, raw_set};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Turn {
    role: String,
    text: String,
    score: f64,
}

fn turn() -> Turn {
    Turn {
        role: "agent".into(),
        text: "¡Hola! \"quoted\"".into(),
        score: 0.5,
    }
}

async fn cache_with(server: &RedisServer, codec: Codec) -> Cache {
    Cache::connect(config(server).codec(codec).build().unwrap())
        .await
        .unwrap()
}

#[tokio::test]
async fn json_is_stored_as_plain_json() {
    let server = RedisServer::start();
    let cache = cache_with(&server, Codec::Json).await;
    cache.set("turn", &turn(), None).await.unwrap();
    let raw = raw_get(&server, "t:turn").unwrap();
    assert_eq!(raw, serde_json::to_vec(&turn()).unwrap());
    let parsed: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(parsed["role"], "agent");
    // And what another client writes as JSON, we read.
    raw_set(
        &server,
        "t:py",
        br#"{"role":"user","text":"hi","score":1.0}"#,
    );
    let got: Turn = cache.get("py").await.unwrap();
    assert_eq!(got.role, "user");
}

#[tokio::test]
async fn msgpack_is_marked_and_uses_named_fields() {
    let server = RedisServer::start();
    let cache = cache_with(&server, Codec::MessagePack).await;
    cache.set("turn", &turn(), None).await.unwrap();
    let raw = raw_get(&server, "t:turn").unwrap();
    assert_eq!(raw[0], 0x01, "MessagePack marker");
    let body: serde_json::Value = rmp_serde::from_slice(&raw[1..]).unwrap();
    assert_eq!(body["text"], turn().text, "fields are named: {body}");
    assert_eq!(cache.get::<Turn>("turn").await, Some(turn()));
    // set_many uses the configured codec too.
    cache.set_many(&[("a", turn())], None).await.unwrap();
    assert_eq!(raw_get(&server, "t:a").unwrap()[0], 0x01);
}

#[tokio::test]
async fn each_codec_reads_what_the_other_wrote() {
    let server = RedisServer::start();
    let json = cache_with(&server, Codec::Json).await;
    let msgpack = cache_with(&server, Codec::MessagePack).await;
    json.set("from-json", &turn(), None).await.unwrap();
    msgpack.set("from-msgpack", &turn(), None).await.unwrap();
    json.try_set_with_codec("explicit", &turn(), None, Codec::MessagePack)
        .await
        .unwrap();
    assert_eq!(raw_get(&server, "t:explicit").unwrap()[0], 0x01);
    for cache in [&json, &msgpack] {
        let got: Vec<Option<Turn>> = cache
            .get_many(&["from-json", "from-msgpack", "explicit"])
            .await;
        assert_eq!(got, vec![Some(turn()); 3]);
    }
    assert_eq!(json.stats().errors + msgpack.stats().errors, 0);
}

#[tokio::test]
async fn compressed_values_round_trip_with_either_codec() {
    let server = RedisServer::start();
    for codec in [Codec::Json, Codec::MessagePack] {
        let cache = Cache::connect(
            config(&server)
                .codec(codec)
                .compression_threshold(Some(256))
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
        let long = Turn {
            text: "lorem ipsum ".repeat(500),
            ..turn()
        };
        cache.set("long", &long, None).await.unwrap();
        let raw = raw_get(&server, "t:long").unwrap();
        assert_eq!(raw[0], 0x02, "{codec:?}: LZ4 marker");
        assert!(raw.len() < 1000, "{codec:?}: {} bytes", raw.len());
        assert_eq!(cache.get::<Turn>("long").await, Some(long));
        // Small values stay uncompressed.
        cache.set("short", &turn(), None).await.unwrap();
        assert_ne!(raw_get(&server, "t:short").unwrap()[0], 0x02);
        assert_eq!(cache.stats().errors, 0);
    }
}

/// Bytes no codec can decode into a `Turn`.
fn corrupt_values() -> Vec<(&'static str, Vec<u8>)> {
    let mut bomb = vec![0x02];
    bomb.extend_from_slice(&u32::MAX.to_le_bytes());
    bomb.extend_from_slice(&[0x10, 0x41, 0x00]);
    let mut near_limit_bomb = vec![0x02];
    near_limit_bomb.extend_from_slice(&(1_048_577u32).to_le_bytes());
    near_limit_bomb.extend_from_slice(b"garbage");
    vec![
        ("garbage", b"\xff\xfe\x00 not json".to_vec()),
        ("truncated-json", br#"{"role":"agent","te"#.to_vec()),
        ("wrong-shape", br#"[1,2,3]"#.to_vec()),
        ("bad-msgpack", vec![0x01, 0xc1, 0xc1]),
        ("empty-msgpack", vec![0x01]),
        ("lz4-bomb", bomb),
        ("lz4-over-limit", near_limit_bomb),
        ("lz4-truncated", vec![0x02, 0x01]),
        ("empty", Vec::new()),
    ]
}

#[tokio::test]
async fn corrupt_values_are_misses_that_are_evicted_and_counted() {
    let server = RedisServer::start();
    let cache = cache_with(&server, Codec::Json).await;
    let values = corrupt_values();
    for (i, (name, bytes)) in values.iter().enumerate() {
        let full = format!("t:{name}");
        raw_set(&server, &full, bytes);
        let before = cache.stats();
        let got = if i % 2 == 0 {
            cache.get::<Turn>(name).await
        } else {
            // try_get also treats corruption as a miss, not an error.
            cache.try_get::<Turn>(name).await.unwrap()
        };
        assert_eq!(got, None, "{name}");
        assert!(!raw_exists(&server, &full), "{name} was not deleted");
        let after = cache.stats();
        assert_eq!(after.errors, before.errors + 1, "{name}");
        assert_eq!(after.corrupt_evicted, before.corrupt_evicted + 1, "{name}");
        assert_eq!(after.misses, before.misses + 1, "{name}");
    }
    // Decode errors are not transient: the breaker did not move.
    let s = cache.stats();
    assert_eq!(s.failure_count, 0);
    assert!(!s.circuit_breaker_open);
}

#[tokio::test]
async fn get_many_evicts_only_the_corrupt_entries() {
    let server = RedisServer::start();
    let cache = cache_with(&server, Codec::MessagePack).await;
    cache.set("good1", &turn(), None).await.unwrap();
    cache.set("good2", &turn(), None).await.unwrap();
    let values = corrupt_values();
    for (name, bytes) in &values {
        raw_set(&server, &format!("t:{name}"), bytes);
    }
    let mut keys = vec!["good1", "missing"];
    keys.extend(values.iter().map(|(n, _)| *n));
    keys.push("good2");
    let got: Vec<Option<Turn>> = cache.get_many(&keys).await;
    let mut expected = vec![Some(turn()), None];
    expected.extend(values.iter().map(|_| None));
    expected.push(Some(turn()));
    assert_eq!(got, expected);
    for (name, _) in &values {
        assert!(!raw_exists(&server, &format!("t:{name}")), "{name}");
    }
    assert!(raw_exists(&server, "t:good1") && raw_exists(&server, "t:good2"));
    let s = cache.stats();
    let n = values.len() as u64;
    assert_eq!((s.errors, s.corrupt_evicted), (n, n), "{s:?}");
    assert_eq!((s.hits, s.misses), (2, n + 1), "{s:?}");
}
