//! Decoding a stored value without knowing its Rust type, for operator
//! tools: which codec wrote it, its envelope (logical expiry, TTL, tags) and
//! the value as JSON.

use serde::Serialize;

use super::codec::{self, Limits};
use super::envelope;
use crate::error::Error;

/// The encoding of a stored value, as told by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Format {
    /// Plain UTF-8 JSON.
    Json,
    /// Marked MessagePack with named fields.
    MessagePack,
    /// LZ4-compressed JSON.
    Lz4Json,
    /// LZ4-compressed MessagePack.
    Lz4MessagePack,
}

/// The metadata envelope of an entry written by `get_or_load` or with
/// tags: logical expiry, TTL and tag versions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct EnvelopeInfo {
    /// Logical expiry, Unix milliseconds. Past it the entry is stale: only
    /// fail-safe serves it, until Redis expires the key.
    pub logical_expiry_ms: u64,
    /// The TTL the entry was written with, milliseconds.
    pub ttl_ms: u64,
    /// Tags and the version each had when the entry was written.
    pub tags: Vec<(String, u64)>,
}

/// A stored value, decoded. See [`inspect`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Inspection {
    /// How the value (inside any envelope) is encoded.
    pub format: Format,
    /// The envelope, when the entry has one.
    pub envelope: Option<EnvelopeInfo>,
    /// The value as JSON (MessagePack maps become JSON objects).
    pub value: serde_json::Value,
    /// Bytes stored in Redis.
    pub stored_bytes: usize,
}

impl Inspection {
    /// True when the envelope's logical expiry is before `now_ms` (Unix
    /// milliseconds): the entry is kept only as a fail-safe fallback.
    pub fn is_stale_at(&self, now_ms: u64) -> bool {
        self.envelope
            .as_ref()
            .is_some_and(|e| e.logical_expiry_ms <= now_ms)
    }
}

/// Decodes bytes written by any codec of this crate (JSON, MessagePack,
/// LZ4, with or without an envelope) into JSON, refusing compressed values
/// that declare more than `max_value_bytes`. An `Err` means the bytes are
/// corrupt: the cache itself would treat them as a miss and delete them.
///
/// ```
/// let inspected = ngx_cache::value::inspect::inspect(br#"{"name":"Ana"}"#, 1 << 20).unwrap();
/// assert_eq!(inspected.format, ngx_cache::value::inspect::Format::Json);
/// assert_eq!(inspected.value["name"], "Ana");
/// assert!(inspected.envelope.is_none());
/// assert!(ngx_cache::value::inspect::inspect(b"\x02\xff", 1 << 20).is_err());
/// ```
pub fn inspect(bytes: &[u8], max_value_bytes: usize) -> Result<Inspection, Error> {
    let (envelope, payload) = if envelope::is_envelope(bytes) {
        let env = envelope::decode(bytes)?;
        (
            Some(EnvelopeInfo {
                logical_expiry_ms: env.logical_expiry_ms,
                ttl_ms: env.ttl_ms,
                tags: env.tags,
            }),
            env.payload,
        )
    } else {
        (None, bytes)
    };
    let limits = Limits {
        max_value_bytes,
        compression_threshold: None,
    };
    let value: serde_json::Value = codec::decode(payload, limits)?;
    let format = match payload.first() {
        Some(0x01) => Format::MessagePack,
        Some(0x02) => match codec::decompress(payload, max_value_bytes)?.first() {
            Some(0x01) => Format::Lz4MessagePack,
            _ => Format::Lz4Json,
        },
        _ => Format::Json,
    };
    Ok(Inspection {
        format,
        envelope,
        value,
        stored_bytes: bytes.len(),
    })
}

/// Milliseconds since the Unix epoch: the clock envelopes are written with.
pub fn now_ms() -> u64 {
    envelope::now_ms()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::codec::Codec;

    fn limits() -> Limits {
        Limits {
            max_value_bytes: 1 << 20,
            compression_threshold: Some(8),
        }
    }

    #[test]
    fn every_codec_and_envelope_decodes() {
        let v = serde_json::json!({"name": "Ana", "visits": [1, 2, 3], "note": "x".repeat(64)});
        for (codec, plain, compressed) in [
            (Codec::Json, Format::Json, Format::Lz4Json),
            (
                Codec::MessagePack,
                Format::MessagePack,
                Format::Lz4MessagePack,
            ),
        ] {
            let small = Limits {
                compression_threshold: None,
                ..limits()
            };
            let bytes = codec.encode(&v, small).unwrap();
            let got = inspect(&bytes, 1 << 20).unwrap();
            assert_eq!((got.format, &got.value), (plain, &v));
            let bytes = codec.encode(&v, limits()).unwrap();
            assert_eq!(bytes[0], 0x02);
            let got = inspect(&bytes, 1 << 20).unwrap();
            assert_eq!((got.format, &got.value), (compressed, &v));
            let wrapped =
                envelope::encode(1_000, 60_000, &[("customer:1".into(), 3)], &bytes).unwrap();
            let got = inspect(&wrapped, 1 << 20).unwrap();
            assert_eq!(got.value, v);
            let env = got.envelope.clone().unwrap();
            assert_eq!(env.logical_expiry_ms, 1_000);
            assert_eq!(env.tags, vec![("customer:1".to_owned(), 3)]);
            assert!(got.is_stale_at(1_000) && !got.is_stale_at(999));
        }
    }

    #[test]
    fn corrupt_bytes_are_errors() {
        assert!(inspect(b"{not json", 1 << 20).is_err());
        assert!(inspect(b"\x01\xc1", 1 << 20).is_err());
        assert!(inspect(b"\x03\x01\x00", 1 << 20).is_err());
        let big = Codec::Json.encode(&"y".repeat(4096), limits()).unwrap();
        assert!(inspect(&big, 100).is_err(), "declared size over the limit");
    }
}
