//! Whole entries: a value encoded with its codec and, when needed, wrapped
//! in the metadata envelope; and stored bytes opened and judged at read
//! time. Pure: the tiers above do the I/O.

use std::time::Duration;

use serde::Serialize;

use crate::error::Error;
use crate::key::{clamp_ttl, millis};
use crate::value::codec::{Codec, Limits};
use crate::value::envelope::{self, now_ms};

/// How one entry is written.
#[derive(Debug)]
pub(crate) struct EntrySpec<'a> {
    pub(crate) codec: Codec,
    pub(crate) limits: Limits,
    /// Logical TTL of a value (jitter already applied).
    pub(crate) ttl: Duration,
    /// TTL of a `None` value; without one, `None` is not stored.
    pub(crate) negative_ttl: Option<Duration>,
    /// Wrap the value in the envelope (tags, fail-safe, eager refresh).
    pub(crate) envelope: bool,
    /// Tags with the versions the value was loaded under.
    pub(crate) tags: &'a [(String, u64)],
}

/// Encodes `value` under `spec`: `Ok(None)` for a `None` that must not be
/// stored. Returns the bytes and the logical TTL, at most [`MAX_TTL`](crate::key::MAX_TTL).
pub(crate) fn encode<T: Serialize + ?Sized>(
    value: &T,
    spec: &EntrySpec<'_>,
) -> Result<Option<(Vec<u8>, Duration)>, Error> {
    let payload = spec.codec.encode(value, spec.limits)?;
    let is_none = payload == b"null" || payload == [0x01, 0xc0];
    let ttl = clamp_ttl(match (is_none, spec.negative_ttl) {
        (true, None) => return Ok(None),
        (true, Some(negative)) => negative,
        (false, _) => spec.ttl,
    });
    // A plain value that happens to start like an envelope is wrapped,
    // so reading it back is never ambiguous.
    if !spec.envelope && !envelope::is_envelope(&payload) {
        return Ok(Some((payload, ttl)));
    }
    let ttl_ms = millis(ttl);
    let bytes = envelope::encode(now_ms().saturating_add(ttl_ms), ttl_ms, spec.tags, &payload)?;
    if bytes.len() > spec.limits.max_value_bytes {
        return Err(Error::ValueTooLarge {
            size: bytes.len(),
            limit: spec.limits.max_value_bytes,
        });
    }
    Ok(Some((bytes, ttl)))
}

/// Stored bytes, opened: the payload to decode and what the envelope said.
#[derive(Debug)]
pub(crate) struct Opened<'a> {
    pub(crate) payload: &'a [u8],
    /// `None` for a plain value (or one that merely starts like an
    /// envelope, written by another client).
    pub(crate) envelope: Option<envelope::Envelope<'a>>,
}

/// Splits stored bytes into payload and envelope.
pub(crate) fn open(bytes: &[u8]) -> Opened<'_> {
    if !envelope::is_envelope(bytes) {
        return Opened {
            payload: bytes,
            envelope: None,
        };
    }
    match envelope::decode(bytes) {
        Ok(env) => Opened {
            payload: env.payload,
            envelope: Some(env),
        },
        // Anything that is not a valid envelope is decoded as a plain value
        // (and evicted by the reader when that fails too).
        Err(_) => Opened {
            payload: bytes,
            envelope: None,
        },
    }
}

/// What is known about a stored value's lifetime.
#[derive(Debug, Clone, Default)]
pub(crate) struct Meta {
    /// Time left of the logical TTL.
    pub(crate) logical_left: Option<Duration>,
    /// Time left before Redis drops the key (`PTTL`), when read.
    pub(crate) physical_left: Option<Duration>,
    /// The logical TTL it was written with (envelopes only).
    pub(crate) ttl: Option<Duration>,
    /// Tags and the versions it was loaded under.
    pub(crate) tags: Vec<(String, u64)>,
    /// Size of the stored bytes: the weight of an L1 copy.
    pub(crate) bytes: u64,
}

impl Meta {
    /// The metadata of a plain value.
    pub(crate) fn plain(physical_left: Option<Duration>) -> Self {
        Self {
            physical_left,
            ..Self::default()
        }
    }

    /// The metadata of an entry this instance has just written: `bytes`
    /// stored for `ttl` (logical) and `physical` (in Redis), with `tags`.
    pub(crate) fn written(
        ttl: Duration,
        physical: Duration,
        tags: Vec<(String, u64)>,
        bytes: usize,
    ) -> Self {
        Self {
            logical_left: Some(ttl),
            physical_left: Some(physical),
            ttl: Some(ttl),
            tags,
            bytes: bytes as u64,
        }
    }

    /// The metadata an envelope records, judged now.
    pub(crate) fn of_envelope(
        logical_expiry_ms: u64,
        ttl_ms: u64,
        tags: Vec<(String, u64)>,
        physical_left: Option<Duration>,
    ) -> Self {
        Self {
            logical_left: logical_expiry_ms
                .checked_sub(now_ms())
                .filter(|ms| *ms > 0)
                .map(Duration::from_millis),
            physical_left,
            ttl: Some(Duration::from_millis(ttl_ms)),
            tags,
            bytes: 0,
        }
    }

    /// Whether the value is within its logical TTL (a plain value always is).
    pub(crate) fn is_fresh(&self) -> bool {
        self.ttl.is_none() || self.logical_left.is_some()
    }

    /// Whether a hit now should start an eager refresh at `fraction` of the TTL.
    pub(crate) fn refresh_due(&self, fraction: Option<f64>) -> bool {
        match (fraction, self.ttl, self.logical_left) {
            (Some(f), Some(ttl), Some(left)) if f > 0.0 && f < 1.0 => {
                ttl.saturating_sub(left) >= ttl.mul_f64(f)
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_value_bytes: 1 << 20,
        compression_threshold: None,
    };

    fn spec(envelope: bool, negative_ttl: Option<Duration>) -> EntrySpec<'static> {
        EntrySpec {
            codec: Codec::Json,
            limits: LIMITS,
            ttl: Duration::from_secs(60),
            negative_ttl,
            envelope,
            tags: &[],
        }
    }

    #[test]
    fn plain_values_stay_plain_and_none_needs_a_negative_ttl() {
        let (bytes, ttl) = encode(&"v", &spec(false, None)).unwrap().unwrap();
        assert_eq!(
            (bytes.as_slice(), ttl),
            (&b"\"v\""[..], Duration::from_secs(60))
        );
        assert!(encode(&None::<u8>, &spec(false, None)).unwrap().is_none());
        let (_, ttl) = encode(&None::<u8>, &spec(false, Some(Duration::from_secs(5))))
            .unwrap()
            .unwrap();
        assert_eq!(ttl, Duration::from_secs(5));
    }

    #[test]
    fn envelopes_open_and_judge() {
        let (bytes, _) = encode(&7u8, &spec(true, None)).unwrap().unwrap();
        let opened = open(&bytes);
        assert_eq!(opened.payload, b"7");
        let env = opened.envelope.unwrap();
        let meta = Meta::of_envelope(env.logical_expiry_ms, env.ttl_ms, env.tags, None);
        assert!(meta.is_fresh());
        assert!(!meta.refresh_due(Some(0.5)));
        let expired = Meta::of_envelope(1, 1000, Vec::new(), None);
        assert!(!expired.is_fresh());
        // A value that only starts like an envelope is a plain value.
        let odd = br#"{"ngx":1,"other":true}"#;
        assert!(open(odd).envelope.is_none());
        assert!(Meta::plain(None).is_fresh());
    }
}
