//! JSON vs MessagePack encode and decode of a ~1 KiB conversation-like value.
//!
//! `Codec::encode` and `codec::decode` are crate-private, so this bench
//! repeats exactly what they do for an uncompressed value:
//! - JSON: `serde_json::to_vec` / `serde_json::from_slice`;
//! - MessagePack: a `0x01` marker byte, then `rmp_serde` with named fields
//!   (`with_struct_map`); decoding skips the marker and bounds the nesting
//!   depth at 128 (`Deserializer::from_read_ref` + `set_max_depth`).
//!
//! The encoded sizes are printed before the timings.

#![allow(missing_docs)]

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Customer {
    id: String,
    name: String,
    email: String,
    age: u32,
    tier: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Message {
    role: String,
    content: String,
    timestamp: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Conversation {
    conversation_id: String,
    customer: Customer,
    messages: Vec<Message>,
    context: BTreeMap<String, String>,
    scores: Vec<f64>,
    phase: String,
    updated_at: i64,
}

fn conversation() -> Conversation {
    let lines = [
        (
            "user",
            "Hi, I'm looking for a coaching program for busy professionals.",
        ),
        (
            "assistant",
            "Happy to help! How many hours a week can you train?",
        ),
        (
            "user",
            "About four hours, mostly early mornings before work.",
        ),
        (
            "assistant",
            "Our PRIME program fits that schedule, with 45-minute sessions.",
        ),
        (
            "user",
            "What does it cost per month, and is there a trial period?",
        ),
        (
            "assistant",
            "It is 149 per month and the first two weeks are free to cancel.",
        ),
    ];
    Conversation {
        conversation_id: "conv-7f3a9c2e-4b1d-4e8a-9f60-1c2d3e4f5a6b".into(),
        customer: Customer {
            id: "cust-0012345".into(),
            name: "Ana García".into(),
            email: "ana.garcia@example.com".into(),
            age: 38,
            tier: "prime".into(),
        },
        messages: lines
            .iter()
            .enumerate()
            .map(|(i, (role, content))| Message {
                role: (*role).into(),
                content: (*content).into(),
                timestamp: 1_714_000_000 + 17 * i as i64,
            })
            .collect(),
        context: [
            ("channel", "web"),
            ("locale", "es-MX"),
            ("campaign", "spring-2024"),
            ("intent", "purchase"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect(),
        scores: vec![0.82, 0.64, 0.91, 0.37],
        phase: "discovery".into(),
        updated_at: 1_714_000_102,
    }
}

const MSGPACK: u8 = 0x01;

fn json_encode<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("json encode")
}

fn json_decode<T: DeserializeOwned>(b: &[u8]) -> T {
    serde_json::from_slice(b).expect("json decode")
}

fn msgpack_encode<T: Serialize>(v: &T) -> Vec<u8> {
    let mut out = vec![MSGPACK];
    let mut ser = rmp_serde::Serializer::new(&mut out).with_struct_map();
    v.serialize(&mut ser).expect("msgpack encode");
    out
}

fn msgpack_decode<T: DeserializeOwned>(b: &[u8]) -> T {
    assert_eq!(b[0], MSGPACK);
    let mut de = rmp_serde::Deserializer::from_read_ref(&b[1..]);
    de.set_max_depth(128);
    T::deserialize(&mut de).expect("msgpack decode")
}

fn main() {
    let value = conversation();
    let json = json_encode(&value);
    let mp = msgpack_encode(&value);
    assert_eq!(json_decode::<Conversation>(&json), value);
    assert_eq!(msgpack_decode::<Conversation>(&mp), value);
    println!(
        "codec sizes: json = {} bytes, msgpack (with marker) = {} bytes ({:.0}% of json)",
        json.len(),
        mp.len(),
        100.0 * mp.len() as f64 / json.len() as f64
    );

    let mut c = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    let mut group = c.benchmark_group("codec");
    group.throughput(Throughput::Elements(1));
    group.bench_function("json/encode", |b| b.iter(|| json_encode(black_box(&value))));
    group.bench_function("msgpack/encode", |b| {
        b.iter(|| msgpack_encode(black_box(&value)))
    });
    group.bench_function("json/decode", |b| {
        b.iter(|| json_decode::<Conversation>(black_box(&json)))
    });
    group.bench_function("msgpack/decode", |b| {
        b.iter(|| msgpack_decode::<Conversation>(black_box(&mp)))
    });
    group.finish();
    c.final_summary();
}
