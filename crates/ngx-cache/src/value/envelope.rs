//! The metadata envelope for entries that need more than a value: a logical
//! expiry (fail-safe keeps the key alive past it), the TTL (for eager
//! refresh) and tag versions (for tag invalidation).
//!
//! Two layouts, chosen by the value's codec:
//!
//! - A JSON value stays JSON, so `redis-cli GET` and other clients can still
//!   read it: `{"ngx":1,"exp":<unix ms>,"ttl":<ms>,"tags":[["t",3]],"v":<value>}`.
//!   Reads recognise it by the exact prefix `{"ngx":1,`.
//! - Other values (MessagePack, compressed): `0x03`, format version `1`,
//!   logical expiry (u64 LE, unix ms), TTL (u64 LE, ms), tag count (u8), then
//!   per tag: length (u16 LE), UTF-8 bytes, version (u64 LE); then the value
//!   as the codec wrote it. `0x03` never starts JSON, MessagePack-marked or
//!   compressed values.

use crate::error::Error;

pub(crate) const MARKER: u8 = 0x03;
const VERSION: u8 = 1;
/// The prefix of a JSON envelope.
const JSON_PREFIX: &[u8] = br#"{"ngx":1,"#;

/// The JSON envelope, borrowing the value's raw JSON.
#[derive(serde::Serialize, serde::Deserialize)]
struct JsonEnvelope<'a> {
    ngx: u8,
    exp: u64,
    ttl: u64,
    tags: Vec<(String, u64)>,
    #[serde(borrow)]
    v: &'a serde_json::value::RawValue,
}

/// A decoded envelope, borrowing the payload.
#[derive(Debug, PartialEq)]
pub(crate) struct Envelope<'a> {
    pub(crate) logical_expiry_ms: u64,
    pub(crate) ttl_ms: u64,
    pub(crate) tags: Vec<(String, u64)>,
    pub(crate) payload: &'a [u8],
}

pub(crate) fn is_envelope(bytes: &[u8]) -> bool {
    bytes.first() == Some(&MARKER) || bytes.starts_with(JSON_PREFIX)
}

pub(crate) fn encode(
    logical_expiry_ms: u64,
    ttl_ms: u64,
    tags: &[(String, u64)],
    payload: &[u8],
) -> Result<Vec<u8>, Error> {
    if !matches!(payload.first(), Some(0x01..=0x03)) {
        let raw = std::str::from_utf8(payload)
            .ok()
            .and_then(|s| serde_json::from_str::<&serde_json::value::RawValue>(s).ok())
            .ok_or_else(|| Error::Encode("payload is not JSON".to_owned()))?;
        let env = JsonEnvelope {
            ngx: VERSION,
            exp: logical_expiry_ms,
            ttl: ttl_ms,
            tags: tags.to_vec(),
            v: raw,
        };
        return serde_json::to_vec(&env).map_err(|e| Error::Encode(e.to_string()));
    }
    if tags.len() > u8::MAX as usize {
        return Err(Error::Encode("at most 255 tags per entry".to_owned()));
    }
    let tag_bytes: usize = tags.iter().map(|(t, _)| t.len() + 10).sum();
    let mut out = Vec::with_capacity(19 + tag_bytes + payload.len());
    out.push(MARKER);
    out.push(VERSION);
    out.extend_from_slice(&logical_expiry_ms.to_le_bytes());
    out.extend_from_slice(&ttl_ms.to_le_bytes());
    out.push(tags.len() as u8);
    for (tag, version) in tags {
        let len = u16::try_from(tag.len())
            .map_err(|_| Error::Encode("tag longer than 65535 bytes".to_owned()))?;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(tag.as_bytes());
        out.extend_from_slice(&version.to_le_bytes());
    }
    out.extend_from_slice(payload);
    Ok(out)
}

pub(crate) fn decode(bytes: &[u8]) -> Result<Envelope<'_>, Error> {
    let bad = || Error::Decode("malformed envelope".to_owned());
    if bytes.starts_with(JSON_PREFIX) {
        let env: JsonEnvelope<'_> = serde_json::from_slice(bytes).map_err(|_| bad())?;
        if env.ngx != VERSION {
            return Err(bad());
        }
        return Ok(Envelope {
            logical_expiry_ms: env.exp,
            ttl_ms: env.ttl,
            tags: env.tags,
            payload: env.v.get().as_bytes(),
        });
    }
    let mut r = Reader(bytes);
    if r.take(1).ok_or_else(bad)? != [MARKER] || r.take(1).ok_or_else(bad)? != [VERSION] {
        return Err(bad());
    }
    let logical_expiry_ms = r.u64().ok_or_else(bad)?;
    let ttl_ms = r.u64().ok_or_else(bad)?;
    let n = r.take(1).ok_or_else(bad)?[0] as usize;
    let mut tags = Vec::with_capacity(n);
    for _ in 0..n {
        let len = u16::from_le_bytes(r.take(2).ok_or_else(bad)?.try_into().map_err(|_| bad())?);
        let tag = std::str::from_utf8(r.take(len as usize).ok_or_else(bad)?).map_err(|_| bad())?;
        let version = r.u64().ok_or_else(bad)?;
        tags.push((tag.to_owned(), version));
    }
    if r.0.first() == Some(&MARKER) {
        return Err(bad());
    }
    Ok(Envelope {
        logical_expiry_ms,
        ttl_ms,
        tags,
        payload: r.0,
    })
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
}

/// Milliseconds since the Unix epoch, the clock shared by instances.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, crate::key::millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trips_and_stays_json() {
        let tags = vec![("customer:1".to_owned(), 3), ("x".to_owned(), 0)];
        let bytes = encode(123, 456, &tags, b"{\"a\":1}").unwrap();
        assert!(is_envelope(&bytes));
        assert_eq!(
            std::str::from_utf8(&bytes).unwrap(),
            r#"{"ngx":1,"exp":123,"ttl":456,"tags":[["customer:1",3],["x",0]],"v":{"a":1}}"#
        );
        let env = decode(&bytes).unwrap();
        assert_eq!(env.logical_expiry_ms, 123);
        assert_eq!(env.ttl_ms, 456);
        assert_eq!(env.tags, tags);
        assert_eq!(env.payload, b"{\"a\":1}");
        assert!(!is_envelope(br#"{"a":1}"#));
        assert!(decode(br#"{"ngx":1,"exp":1}"#).is_err());
    }

    #[test]
    fn binary_round_trips() {
        let tags = vec![("customer:1".to_owned(), 3)];
        let bytes = encode(123, 456, &tags, &[0x01, 0x92, 0x01, 0x02]).unwrap();
        assert_eq!(bytes[0], MARKER);
        let env = decode(&bytes).unwrap();
        assert_eq!((env.logical_expiry_ms, env.ttl_ms), (123, 456));
        assert_eq!(env.tags, tags);
        assert_eq!(env.payload, &[0x01, 0x92, 0x01, 0x02]);
    }

    #[test]
    fn truncated_or_garbage_is_an_error() {
        let bytes = encode(1, 2, &[("tag".to_owned(), 1)], &[0x01, 0xc0]).unwrap();
        for cut in 0..bytes.len() - 2 {
            assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        assert!(decode(&[MARKER, 9]).is_err());
        let nested = encode(1, 2, &[], &bytes).unwrap();
        assert!(decode(&nested).is_err());
    }
}
