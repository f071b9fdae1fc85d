//! Value encodings: plain JSON, self-identifying MessagePack, LZ4 compression.
//!
//! The first byte tells a value's format, so reads work whatever codec wrote it:
//!
//! | first byte | format |
//! |---|---|
//! | `0x01` | MessagePack with named fields (`0x01` + body) |
//! | `0x02` | LZ4 block (`0x02` + u32 LE decompressed size + block), inner value is JSON or `0x01`-MessagePack |
//! | anything else | plain UTF-8 JSON, readable with `redis-cli GET` |
//!
//! JSON text never starts with `0x01` or `0x02`, so the markers cannot collide.

use std::str::FromStr;

use serde::Serialize;
use serde::de::value::{BorrowedStrDeserializer, Error as DeError};
use serde::de::{DeserializeOwned, Deserializer, Error as _, IntoDeserializer, Visitor};

use crate::error::Error;

const MSGPACK: u8 = 0x01;
const LZ4: u8 = 0x02;
/// Bound on MessagePack nesting, so hostile bytes cannot exhaust the stack.
const MSGPACK_MAX_DEPTH: usize = 128;

/// The encoding used for writes. Reads accept every codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Codec {
    /// Plain UTF-8 JSON, as the original service stored it.
    #[default]
    Json,
    /// MessagePack with named fields, prefixed with a marker byte.
    MessagePack,
}

impl FromStr for Codec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "json" => Ok(Codec::Json),
            "msgpack" | "messagepack" => Ok(Codec::MessagePack),
            _ => Err("expected json or msgpack".to_owned()),
        }
    }
}

/// Encoding limits taken from the configuration.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) max_value_bytes: usize,
    pub(crate) compression_threshold: Option<usize>,
}

impl Codec {
    /// Encodes `value`, compressing it above the threshold, and refuses
    /// results over the size limit.
    pub(crate) fn encode<T: Serialize + ?Sized>(
        self,
        value: &T,
        limits: Limits,
    ) -> Result<Vec<u8>, Error> {
        let bytes = match self {
            Codec::Json => match super::probe::json_str(value) {
                Some(bytes) => bytes,
                None => serde_json::to_vec(value).map_err(|e| Error::Encode(e.to_string()))?,
            },
            Codec::MessagePack => {
                let mut out = vec![MSGPACK];
                let mut ser = rmp_serde::Serializer::new(&mut out).with_struct_map();
                value
                    .serialize(&mut ser)
                    .map_err(|e| Error::Encode(e.to_string()))?;
                out
            }
        };
        let bytes = match limits.compression_threshold {
            Some(threshold) if bytes.len() > threshold => compress(&bytes),
            _ => bytes,
        };
        if bytes.len() > limits.max_value_bytes {
            return Err(Error::ValueTooLarge {
                size: bytes.len(),
                limit: limits.max_value_bytes,
            });
        }
        Ok(bytes)
    }
}

/// Decodes bytes written by any codec.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8], limits: Limits) -> Result<T, Error> {
    match bytes.first() {
        Some(&LZ4) => {
            let inner = decompress(bytes, limits.max_value_bytes)?;
            if inner.first() == Some(&LZ4) {
                return Err(Error::Decode("nested compression".to_owned()));
            }
            decode(&inner, limits)
        }
        Some(&MSGPACK) => {
            let mut de = rmp_serde::Deserializer::from_read_ref(&bytes[1..]);
            de.set_max_depth(MSGPACK_MAX_DEPTH);
            T::deserialize(&mut de).map_err(|e| Error::Decode(format!("msgpack: {e}")))
        }
        _ => match plain_json_str(bytes) {
            // A JSON string with nothing to unescape is its own content: it
            // is handed to `T` as the borrowed string the JSON parser would
            // hand it, without running the parser. A `T` that does not take
            // a string gets the parser's answer (and error).
            Some(s) => T::deserialize(BorrowedStrDeserializer::<serde::de::value::Error>::new(s))
                .or_else(|_| json(bytes)),
            None => json(bytes),
        },
    }
}

/// Decodes bytes written by any codec, like [`decode`], taking them over.
///
/// A JSON string with nothing to unescape is cut out of its quotes in
/// place and handed to `T` as an owned `String`, so a `String` value keeps
/// the bytes Redis sent instead of being copied out of them (one
/// allocation and one free less per value).
pub(crate) fn decode_owned<T: DeserializeOwned>(
    mut bytes: Vec<u8>,
    limits: Limits,
) -> Result<T, Error> {
    let Some(len) = plain_json_body(&bytes).map(<[u8]>::len) else {
        return decode(&bytes, limits);
    };
    bytes.copy_within(1..=len, 0);
    bytes.truncate(len);
    let content = match String::from_utf8(bytes) {
        Ok(content) => content,
        Err(e) => return decode(&quoted(e.into_bytes()), limits),
    };
    let mut slot = Some(content);
    let taken = T::deserialize(OwnedStr(&mut slot));
    match (taken, slot) {
        (Ok(value), _) => Ok(value),
        // `T` asked for something only the parser answers (a number, a
        // struct, a newtype...) and left the string in place.
        (Err(_), Some(content)) => json(&quoted(content.into_bytes())),
        (Err(e), None) => Err(Error::Decode(format!("json: {e}"))),
    }
}

/// `content` in JSON quotes again (it has nothing to escape).
fn quoted(mut content: Vec<u8>) -> Vec<u8> {
    content.insert(0, b'"');
    content.push(b'"');
    content
}

/// The content of a JSON string, handed to the value as an owned `String`
/// by the methods a JSON string answers directly (a string, an identifier,
/// a unit variant, `Some`). Every other method leaves the string in the
/// slot and fails, and [`decode_owned`] asks the parser, so a value decodes
/// as the parser decodes it.
struct OwnedStr<'a>(&'a mut Option<String>);

impl OwnedStr<'_> {
    #[inline]
    fn take(self) -> Result<String, DeError> {
        self.0
            .take()
            .ok_or_else(|| DeError::custom("the string was taken"))
    }
}

/// Methods a JSON string does not answer without the parser.
macro_rules! left_to_the_parser {
    ($($method:ident($($arg:ident: $ty:ty),*))*) => {$(
        fn $method<V: Visitor<'de>>(self, $(_: $ty,)* _: V) -> Result<V::Value, DeError> {
            Err(DeError::custom("left to the JSON parser"))
        }
    )*};
}

impl<'de> Deserializer<'de> for OwnedStr<'_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_string(self.take()?)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_some(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_enum(self.take()?.into_deserializer())
    }

    serde::forward_to_deserialize_any! {
        char str string bytes byte_buf identifier ignored_any
    }

    left_to_the_parser! {
        deserialize_bool() deserialize_i8() deserialize_i16() deserialize_i32()
        deserialize_i64() deserialize_i128() deserialize_u8() deserialize_u16()
        deserialize_u32() deserialize_u64() deserialize_u128() deserialize_f32()
        deserialize_f64() deserialize_unit() deserialize_seq() deserialize_map()
        deserialize_unit_struct(name: &'static str)
        deserialize_newtype_struct(name: &'static str)
        deserialize_tuple(len: usize)
        deserialize_tuple_struct(name: &'static str, len: usize)
        deserialize_struct(name: &'static str, fields: &'static [&'static str])
    }
}

fn json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(bytes).map_err(|e| Error::Decode(format!("json: {e}")))
}

/// The content of `bytes` when they are exactly one JSON string with no
/// escape sequence: `"`, UTF-8 with no `"`, `\` or control character, `"`.
fn plain_json_str(bytes: &[u8]) -> Option<&str> {
    std::str::from_utf8(plain_json_body(bytes)?).ok()
}

/// The bytes between the quotes when `bytes` are one JSON string with no
/// `"`, `\` or control character inside (UTF-8 not checked).
fn plain_json_body(bytes: &[u8]) -> Option<&[u8]> {
    let body = bytes.strip_prefix(b"\"")?.strip_suffix(b"\"")?;
    // No early exit: the scan compiles to vector instructions.
    let special = body.iter().fold(false, |any, &b| {
        any | (b == b'"') | (b == b'\\') | (b < 0x20)
    });
    (!special).then_some(body)
}

fn compress(bytes: &[u8]) -> Vec<u8> {
    let block = lz4_flex::block::compress(bytes);
    let mut out = Vec::with_capacity(5 + block.len());
    out.push(LZ4);
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(&block);
    out
}

pub(crate) fn decompress(bytes: &[u8], limit: usize) -> Result<Vec<u8>, Error> {
    let header: [u8; 4] = bytes
        .get(1..5)
        .and_then(|h| h.try_into().ok())
        .ok_or_else(|| Error::Decode("truncated compression header".to_owned()))?;
    let declared = u32::from_le_bytes(header) as usize;
    // Check the declared size before allocating anything for it.
    if declared > limit {
        return Err(Error::Decode(format!(
            "declared size {declared} exceeds the value limit {limit}"
        )));
    }
    let mut out = vec![0u8; declared];
    let n = lz4_flex::block::decompress_into(&bytes[5..], &mut out)
        .map_err(|e| Error::Decode(format!("lz4: {e}")))?;
    if n != declared {
        return Err(Error::Decode("decompressed size mismatch".to_owned()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    /// Decodes with the JSON parser only, as every JSON value was decoded
    /// before the plain-string shortcut.
    fn parser<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
        json(bytes)
    }

    #[derive(Debug, PartialEq, Deserialize)]
    enum Unit {
        A,
    }

    #[derive(Debug, Clone, PartialEq, Deserialize)]
    struct Id(String);

    #[test]
    fn plain_strings_decode_as_the_parser_decodes_them() {
        let cases: [&[u8]; 12] = [
            b"\"\"",
            b"\"abc\"",
            "\"h\u{e9}llo \u{1f600}\"".as_bytes(),
            b"\"a\\nb\"",
            b"\"q\\\"q\"",
            b"\"x\" ",
            b" \"x\"",
            b"\"x",
            b"\"",
            b"\"a\"b\"",
            b"\"\xff\"",
            b"\"tab\there\"",
        ];
        for bytes in cases {
            let shown = String::from_utf8_lossy(bytes);
            let owned = |b: &[u8]| b.to_vec();
            let theirs = parser::<String>(bytes).map_err(|e| e.to_string());
            let ours = decode::<String>(bytes, LIMITS).map_err(|e| e.to_string());
            assert_eq!(ours, theirs, "{shown}");
            let ours = decode_owned::<String>(owned(bytes), LIMITS).map_err(|e| e.to_string());
            assert_eq!(ours, theirs, "owned {shown}");
            let theirs = parser::<serde_json::Value>(bytes).ok();
            assert_eq!(decode(bytes, LIMITS).ok(), theirs, "{shown}");
            assert_eq!(decode_owned(owned(bytes), LIMITS).ok(), theirs, "{shown}");
            let theirs = parser::<Option<String>>(bytes).ok();
            assert_eq!(decode(bytes, LIMITS).ok(), theirs, "{shown}");
            assert_eq!(decode_owned(owned(bytes), LIMITS).ok(), theirs, "{shown}");
        }
        // Types that take a string some other way, or not at all, read
        // from borrowed and from owned bytes.
        fn both<T: DeserializeOwned>(bytes: &[u8]) -> [Option<T>; 2] {
            [
                decode(bytes, LIMITS).ok(),
                decode_owned(bytes.to_vec(), LIMITS).ok(),
            ]
        }
        assert_eq!(both::<Unit>(b"\"A\""), [Some(Unit::A), Some(Unit::A)]);
        assert_eq!(both::<Unit>(b"\"B\""), [None, None]);
        let id = Some(Id("x".to_owned()));
        assert_eq!(both::<Id>(b"\"x\""), [id.clone(), id]);
        assert_eq!(both::<char>(b"\"c\""), [Some('c'), Some('c')]);
        assert_eq!(both::<u32>(b"\"1\""), [None, None]);
        assert_eq!(both::<Vec<u8>>(b"\"ab\""), [None, None]);
        for raw in both::<Box<serde_json::value::RawValue>>(b"\"ab\"") {
            assert_eq!(raw.map(|r| r.get().to_owned()).as_deref(), Some("\"ab\""));
        }
        // A type the string cannot be: the parser's error, word for word.
        assert_eq!(
            decode_owned::<u32>(b"\"1\"".to_vec(), LIMITS).map_err(|e| e.to_string()),
            parser::<u32>(b"\"1\"").map_err(|e| e.to_string()),
        );
    }

    const LIMITS: Limits = Limits {
        max_value_bytes: 1 << 20,
        compression_threshold: None,
    };

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct V1 {
        id: String,
        n: u32,
    }

    #[derive(Debug, PartialEq, Deserialize)]
    struct V2 {
        id: String,
        n: u32,
        #[serde(default)]
        extra: Option<String>,
    }

    #[test]
    fn json_is_plain() {
        let v = V1 {
            id: "a".into(),
            n: 1,
        };
        let bytes = Codec::Json.encode(&v, LIMITS).unwrap();
        assert_eq!(bytes, br#"{"id":"a","n":1}"#);
        assert_eq!(decode::<V1>(&bytes, LIMITS).unwrap(), v);
    }

    #[test]
    fn msgpack_is_marked_and_named() {
        let v = V1 {
            id: "a".into(),
            n: 1,
        };
        let bytes = Codec::MessagePack.encode(&v, LIMITS).unwrap();
        assert_eq!(bytes[0], MSGPACK);
        // Named fields survive adding a field.
        let v2: V2 = decode(&bytes, LIMITS).unwrap();
        assert_eq!(v2.id, "a");
        assert_eq!(v2.extra, None);
    }

    #[test]
    fn compression_round_trips_and_checks_declared_size() {
        let limits = Limits {
            max_value_bytes: 1 << 20,
            compression_threshold: Some(64),
        };
        let long = "x".repeat(10_000);
        for codec in [Codec::Json, Codec::MessagePack] {
            let bytes = codec.encode(&long, limits).unwrap();
            assert_eq!(bytes[0], LZ4);
            assert!(bytes.len() < 1000);
            assert_eq!(decode::<String>(&bytes, limits).unwrap(), long);
        }
        let mut bomb = vec![LZ4];
        bomb.extend_from_slice(&u32::MAX.to_le_bytes());
        bomb.extend_from_slice(&[0, 0, 0]);
        assert!(decode::<String>(&bomb, limits).is_err());
        assert!(decode::<String>(&[LZ4, 1], limits).is_err());
    }

    #[test]
    fn too_large_is_refused() {
        let limits = Limits {
            max_value_bytes: 10,
            compression_threshold: None,
        };
        let err = Codec::Json.encode(&"x".repeat(20), limits).unwrap_err();
        assert!(matches!(err, Error::ValueTooLarge { limit: 10, .. }));
    }

    #[test]
    fn garbage_is_a_decode_error_not_a_panic() {
        for bytes in [&b"\xff\xfe"[..], b"{", b"", &[MSGPACK, 0xc1], &[MSGPACK]] {
            assert!(decode::<V1>(bytes, LIMITS).is_err());
        }
        // Deeply nested MessagePack arrays are bounded.
        let mut deep = vec![MSGPACK];
        deep.extend(std::iter::repeat_n(0x91u8, 100_000));
        assert!(decode::<serde_json::Value>(&deep, LIMITS).is_err());
        let deep_json = "[".repeat(100_000);
        assert!(decode::<serde_json::Value>(deep_json.as_bytes(), LIMITS).is_err());
    }
}
