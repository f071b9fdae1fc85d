//! Entry points for the fuzz targets in `fuzz/` and for the test that
//! replays their seed corpus (`tests/fuzz_corpus.rs`): every decoder the
//! cache runs on bytes it did not write itself (values and envelopes read
//! from Redis, messages from the invalidation channel, arguments hashed into
//! keys), fed arbitrary input. Each function panics when a property fails,
//! which is what a fuzzer reports as a crash. Not a public API.

#![allow(missing_docs)]

use std::time::Duration;

use serde_json::Value;

use crate::coherence::{Channel, Invalidation};
use crate::value::codec::{self, Codec, Limits};
use crate::value::{entry, envelope};

/// The value limit of the default configuration.
const LIMITS: Limits = Limits {
    max_value_bytes: 1 << 20,
    compression_threshold: None,
};
/// Compresses everything over 64 bytes, to exercise LZ4 on the way back.
const COMPRESSING: Limits = Limits {
    max_value_bytes: 1 << 20,
    compression_threshold: Some(64),
};

/// Stored bytes of unknown origin, decoded by every codec's reader. Read
/// from owned bytes (as a read from Redis does) they must decode to the
/// same value, or fail too. What decodes must encode again with every
/// codec and decode to the same value.
pub fn codec(data: &[u8]) {
    let borrowed = codec::decode::<Value>(data, LIMITS);
    let owned = codec::decode_owned::<Value>(data.to_vec(), LIMITS);
    assert_eq!(owned.as_ref().ok(), borrowed.as_ref().ok(), "owned read");
    let owned = codec::decode_owned::<String>(data.to_vec(), LIMITS);
    let borrowed_string = codec::decode::<String>(data, LIMITS);
    assert_eq!(owned.ok(), borrowed_string.ok(), "owned String read");
    let Ok(value) = borrowed else {
        return;
    };
    for codec in [Codec::Json, Codec::MessagePack] {
        for limits in [LIMITS, COMPRESSING] {
            let bytes = codec
                .encode(&value, limits)
                .expect("a decoded value encodes");
            let back: Value = codec::decode(&bytes, limits).expect("an encoded value decodes");
            assert_eq!(back, value, "{codec:?} round trip");
        }
    }
}

/// Stored bytes opened as an entry and judged, as a read does: envelope,
/// expiry arithmetic, eager-refresh check, then the payload. A decoded
/// envelope must encode again to the same envelope.
pub fn envelope(data: &[u8]) {
    let opened = entry::open(data);
    let _ = codec::decode::<Value>(opened.payload, LIMITS);
    let Some(env) = opened.envelope else {
        return;
    };
    let meta = entry::Meta::of_envelope(
        env.logical_expiry_ms,
        env.ttl_ms,
        env.tags.clone(),
        Some(Duration::from_millis(env.ttl_ms)),
    );
    let _ = meta.is_fresh();
    for fraction in [0.0, 0.5, 0.99, 1.0] {
        let _ = meta.refresh_due(Some(fraction));
    }
    let Ok(bytes) = envelope::encode(env.logical_expiry_ms, env.ttl_ms, &env.tags, env.payload)
    else {
        return;
    };
    let again = envelope::decode(&bytes).expect("an encoded envelope decodes");
    assert_eq!(
        (again.logical_expiry_ms, again.ttl_ms, &again.tags),
        (env.logical_expiry_ms, env.ttl_ms, &env.tags),
        "envelope round trip"
    );
    // A JSON payload may lose insignificant whitespace around it on the way
    // (and inside it, when it parses).
    match (
        serde_json::from_slice::<Value>(again.payload),
        serde_json::from_slice::<Value>(env.payload),
    ) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "envelope payload round trip"),
        _ => assert_eq!(
            trim_json(again.payload),
            trim_json(env.payload),
            "envelope payload round trip"
        ),
    }
}

/// `bytes` without the JSON whitespace around it.
fn trim_json(bytes: &[u8]) -> &[u8] {
    let ws = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r');
    let start = bytes.iter().position(|b| !ws(b)).unwrap_or(bytes.len());
    let end = bytes.iter().rposition(|b| !ws(b)).map_or(start, |i| i + 1);
    &bytes[start..end]
}

/// A message from the invalidation channel. What parses must encode again
/// to the same invalidation, and judging it must not panic.
pub fn message(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Some(received) = Channel::parse(text) else {
        return;
    };
    let channel = Channel::new("fuzz");
    let _ = channel.judge(&received);
    let _ = channel.judge(&received);
    let again = Channel::parse(&channel.encode(&received.what)).expect("an encoded message parses");
    assert_eq!(again.what, received.what, "message round trip");
    if let Invalidation::Key(key) = &received.what {
        assert!(!key.is_empty());
    }
}

/// Arbitrary JSON hashed as a key argument: the hash exists, and the value
/// read back from its canonical text hashes the same (a key built in one
/// process is found by another that received the same value as JSON).
pub fn key_hash(data: &[u8]) {
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let hash = crate::key::try_stable_hash(&value).expect("JSON values hash");
    assert_eq!(hash.len(), 16);
    let text = serde_json::to_string(&value).expect("JSON values print");
    let back: Value = serde_json::from_str(&text).expect("printed JSON parses");
    assert_eq!(back, value, "JSON round trip of {text}");
    assert_eq!(crate::key::stable_hash(&back), hash, "hash of {text}");
}
