//! Keys: validation and namespacing, lease and tag keys, glob escaping,
//! [`stable_hash`], and the remaining lifetime of a key ([`KeyTtl`]).

use std::time::Duration;

use crate::error::Error;

/// The remaining lifetime of a key, as Redis's `PTTL` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyTtl {
    /// The key does not exist.
    Missing,
    /// The key exists and never expires.
    Persistent,
    /// The key expires after this long.
    Expires(Duration),
}

/// The longest TTL the cache writes: 365 days. Settings above it are
/// refused at start-up (the error names the variable); a longer TTL or
/// fail-safe window passed to a call is shortened to it, so time arithmetic
/// never overflows and Redis always accepts the expiry.
pub const MAX_TTL: Duration = Duration::from_secs(365 * 24 * 3600);

/// `ttl`, at most [`MAX_TTL`].
pub(crate) fn clamp_ttl(ttl: Duration) -> Duration {
    ttl.min(MAX_TTL)
}

/// Whole milliseconds of `d`, saturating at `u64::MAX` instead of wrapping.
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The invalidation channel of `namespace`: `{namespace}:__invalidation`.
pub(crate) fn channel_name(namespace: &str) -> String {
    format!("{namespace}:__invalidation")
}

/// The namespace and key limit every full key is built with.
#[derive(Debug, Clone)]
pub(crate) struct KeySpace {
    pub(crate) namespace: String,
    pub(crate) max_key_bytes: usize,
}

impl KeySpace {
    /// `{namespace}:{key}`, validated.
    pub(crate) fn full(&self, key: &str) -> Result<String, Error> {
        full_key(&self.namespace, key, self.max_key_bytes)
    }

    /// The full keys of `keys`, validated, in one buffer: a batch of `n`
    /// keys costs two allocations instead of `n`.
    pub(crate) fn full_many<'k>(
        &self,
        keys: impl ExactSizeIterator<Item = &'k str> + Clone,
    ) -> Result<FullKeys, Error> {
        let mut total = 0;
        for key in keys.clone() {
            total += checked_len(&self.namespace, key, self.max_key_bytes)?;
        }
        let mut buf = String::with_capacity(total);
        let mut ends = Vec::with_capacity(keys.len());
        for key in keys {
            push_full(&mut buf, &self.namespace, key);
            ends.push(buf.len());
        }
        Ok(FullKeys { buf, ends })
    }

    /// The key holding the version counter of `tag`.
    pub(crate) fn tag(&self, tag: &str) -> Result<String, Error> {
        if tag.is_empty() {
            return Err(Error::invalid_key("tag is empty"));
        }
        self.full(&format!("__tag:{tag}"))
    }

    /// The caller's key for a full key of this namespace.
    pub(crate) fn short<'a>(&self, full: &'a str) -> Option<&'a str> {
        full.strip_prefix(self.namespace.as_str())?
            .strip_prefix(':')
    }
}

/// Full keys built by [`KeySpace::full_many`], one after the other in one
/// string.
#[derive(Debug)]
pub(crate) struct FullKeys {
    buf: String,
    /// Where each key ends in `buf` (the next starts there).
    ends: Vec<usize>,
}

impl FullKeys {
    /// The keys, in order.
    pub(crate) fn iter(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        (0..self.ends.len()).map(|i| {
            let start = if i == 0 { 0 } else { self.ends[i - 1] };
            &self.buf[start..self.ends[i]]
        })
    }
}

/// The lease key of `full` (`<namespace>:<key>`):
/// `<namespace>:__lease:{T}:<key>`, where `T` is a short brace-free string
/// whose hash slot is the slot of `full` ([`slot_tag`]). So the lease always
/// lives in the data key's cluster slot, whatever braces the key holds, and
/// starts with the namespace prefix, so an ACL key pattern such as `~ngx:*`
/// and `SCAN MATCH ngx:*` cover it.
pub(crate) fn lease_key(full: &str) -> String {
    companion_key(LEASE_INFIX, full)
}

/// The key holding the highest version written to `full` by a versioned
/// write: `<namespace>:__ver:{T}:<key>`, in the data key's slot like
/// [`lease_key`].
pub(crate) fn version_key(full: &str) -> String {
    companion_key(VERSION_INFIX, full)
}

fn companion_key(infix: &str, full: &str) -> String {
    let tag = slot_tag(key_slot(full.as_bytes()));
    match full.split_once(':') {
        Some((namespace, key)) => format!("{namespace}:{infix}{{{tag}}}:{key}"),
        None => format!("{infix}{{{tag}}}:{full}"),
    }
}

/// A `SCAN MATCH` pattern for the lease keys of every key that starts with
/// `full_prefix` (`<namespace>:<key prefix>`), metacharacters escaped.
pub(crate) fn lease_glob(full_prefix: &str) -> String {
    companion_glob(LEASE_INFIX, full_prefix)
}

/// A `SCAN MATCH` pattern for the version keys of every key that starts
/// with `full_prefix`, like [`lease_glob`].
pub(crate) fn version_glob(full_prefix: &str) -> String {
    companion_glob(VERSION_INFIX, full_prefix)
}

fn companion_glob(infix: &str, full_prefix: &str) -> String {
    let (namespace, prefix) = full_prefix.split_once(':').unwrap_or(("", full_prefix));
    format!(
        "{}:{infix}{{*}}:{}*",
        escape_glob(namespace),
        escape_glob(prefix)
    )
}

/// What follows `<namespace>:` in every lease key.
pub(crate) const LEASE_INFIX: &str = "__lease:";

/// What follows `<namespace>:` in every version key.
pub(crate) const VERSION_INFIX: &str = "__ver:";

/// Number of hash slots of a Redis Cluster.
pub(crate) const SLOTS: u16 = 16384;

/// The Redis Cluster hash slot of `key`: CRC16 (XMODEM) of its hash tag
/// (the bytes between the first `{` and the first `}` after it, when not
/// empty) or of the whole key, modulo 16384. The same function as the
/// server's `CLUSTER KEYSLOT`.
pub(crate) fn key_slot(key: &[u8]) -> u16 {
    crc16(hash_tag(key)) % SLOTS
}

/// The part of `key` that is hashed: its non-empty `{tag}` or all of it.
fn hash_tag(key: &[u8]) -> &[u8] {
    if let Some(open) = key.iter().position(|&b| b == b'{')
        && let Some(len) = key[open + 1..].iter().position(|&b| b == b'}')
        && len > 0
    {
        return &key[open + 1..open + 1 + len];
    }
    key
}

/// CRC16-CCITT (XMODEM): polynomial 0x1021, initial value 0, no reflection.
fn crc16(bytes: &[u8]) -> u16 {
    const TABLE: [u16; 256] = {
        let mut table = [0u16; 256];
        let mut i = 0;
        while i < 256 {
            let mut crc = (i as u16) << 8;
            let mut bit = 0;
            while bit < 8 {
                crc = if crc & 0x8000 != 0 {
                    (crc << 1) ^ 0x1021
                } else {
                    crc << 1
                };
                bit += 1;
            }
            table[i] = crc;
            i += 1;
        }
        table
    };
    bytes.iter().fold(0u16, |crc, &b| {
        (crc << 8) ^ TABLE[usize::from((crc >> 8) as u8 ^ b)]
    })
}

/// A short string of letters and digits whose hash slot is `slot`: the
/// first such string in length-then-alphabet order. Built once, for all
/// 16384 slots, on first use.
pub(crate) fn slot_tag(slot: u16) -> &'static str {
    static TAGS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    let tags = TAGS.get_or_init(|| {
        const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
        let mut tags: Vec<Option<String>> = vec![None; usize::from(SLOTS)];
        let mut missing = usize::from(SLOTS);
        let mut candidates: Vec<Vec<u8>> = vec![Vec::new()];
        while missing > 0 {
            let mut longer = Vec::with_capacity(candidates.len() * ALPHABET.len());
            for prefix in &candidates {
                for &c in ALPHABET {
                    let mut tag = prefix.clone();
                    tag.push(c);
                    let entry = &mut tags[usize::from(key_slot(&tag))];
                    if entry.is_none() {
                        *entry = Some(String::from_utf8(tag.clone()).unwrap_or_default());
                        missing -= 1;
                    }
                    longer.push(tag);
                }
            }
            candidates = longer;
        }
        tags.into_iter().map(Option::unwrap_or_default).collect()
    });
    &tags[usize::from(slot % SLOTS)]
}

/// Checks a namespace: non-empty, at most 128 bytes, no control characters
/// or whitespace.
pub(crate) fn validate_namespace(ns: &str) -> Result<(), String> {
    if ns.is_empty() {
        return Err("must not be empty".to_owned());
    }
    if ns.len() > 128 {
        return Err("must be at most 128 bytes".to_owned());
    }
    if ns.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("must not contain control characters or whitespace".to_owned());
    }
    if ns.contains(':') {
        // `a` would otherwise clear `a:b`'s keys too: they all match `a:*`.
        return Err("must not contain ':', which separates the namespace from the key".to_owned());
    }
    Ok(())
}

/// Builds `{namespace}:{key}` after checking `key`: non-empty, no control
/// characters, and the full key within `max_len` bytes.
pub(crate) fn full_key(namespace: &str, key: &str, max_len: usize) -> Result<String, Error> {
    let mut full = String::with_capacity(checked_len(namespace, key, max_len)?);
    push_full(&mut full, namespace, key);
    Ok(full)
}

/// Appends `{namespace}:{key}` to `buf`.
fn push_full(buf: &mut String, namespace: &str, key: &str) {
    buf.push_str(namespace);
    buf.push(':');
    buf.push_str(key);
}

/// The length of `{namespace}:{key}`, once `key` is checked: not empty, no
/// control character, and the whole at most `max_len` bytes.
fn checked_len(namespace: &str, key: &str, max_len: usize) -> Result<usize, Error> {
    if key.is_empty() {
        return Err(Error::invalid_key("key is empty"));
    }
    let len = namespace.len() + 1 + key.len();
    if len > max_len {
        return Err(Error::invalid_key(format!(
            "key is {len} bytes, the limit is {max_len}"
        )));
    }
    if has_control(key) {
        return Err(Error::invalid_key("key contains a control character"));
    }
    Ok(len)
}

/// Whether `key` holds a control character (`char::is_control`: U+0000 to
/// U+001F, U+007F, U+0080 to U+009F). The C1 controls are the only ones
/// outside ASCII, each encoded as `0xC2` and a second byte, so a key with
/// none of the bytes below 0x20, 0x7F and 0xC2 has none; that scan has no
/// early exit, so it compiles to vector instructions.
fn has_control(key: &str) -> bool {
    let suspect = key
        .bytes()
        .fold(false, |any, b| any | (b < 0x20) | (b == 0x7f) | (b == 0xc2));
    suspect && key.chars().any(char::is_control)
}

/// Escapes the glob metacharacters `* ? [ ] \` so `s` matches itself
/// literally in `SCAN MATCH`.
///
/// ```
/// assert_eq!(ngx_cache::escape_glob("ns*"), r"ns\*");
/// ```
pub fn escape_glob(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_of_full_keys_is_the_single_keys_in_one_buffer() {
        let space = KeySpace {
            namespace: "ns".into(),
            max_key_bytes: 12,
        };
        let keys = ["a", "user:é", "b:c", "123456789"];
        let many = space.full_many(keys.iter().copied()).unwrap();
        let one_by_one: Vec<String> = keys.iter().map(|k| space.full(k).unwrap()).collect();
        assert_eq!(many.iter().collect::<Vec<_>>(), one_by_one);
        assert_eq!(many.iter().len(), 4);
        assert_eq!(space.full_many(std::iter::empty()).unwrap().iter().len(), 0);
        // Any invalid key refuses the batch, with the single key's error.
        for bad in ["", "x\n", "1234567890"] {
            let err = space.full_many(["ok", bad].into_iter()).unwrap_err();
            assert_eq!(err.to_string(), space.full(bad).unwrap_err().to_string());
        }
    }

    #[test]
    fn the_control_byte_scan_agrees_with_char_is_control() {
        let mut buf = [0; 4];
        for c in (0..=char::MAX as u32).filter_map(char::from_u32) {
            let key = format!("a{}b", c.encode_utf8(&mut buf));
            assert_eq!(has_control(&key), c.is_control(), "U+{:04X}", c as u32);
        }
    }

    #[test]
    fn builds_and_validates_keys() {
        assert_eq!(full_key("ngx", "conv:1", 1024).unwrap(), "ngx:conv:1");
        assert!(full_key("ngx", "", 1024).is_err());
        assert!(full_key("ngx", "a\u{7}b", 1024).is_err());
        assert!(full_key("ngx", "a\nb", 1024).is_err());
        assert!(full_key("ngx", &"x".repeat(1021), 1024).is_err());
        assert!(full_key("ngx", &"x".repeat(1020), 1024).is_ok());
        assert!(full_key("ngx", "ünïcode key", 1024).is_ok());
    }

    #[test]
    fn escapes_every_metacharacter() {
        assert_eq!(escape_glob(r"a*b?c[d]e\f"), r"a\*b\?c\[d\]e\\f");
        assert_eq!(escape_glob("plain"), "plain");
    }

    #[test]
    fn slots_match_the_server() {
        // `CLUSTER KEYSLOT` answers of Redis 7.
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"bar"), 5061);
        assert_eq!(key_slot(b"ngx:a}b"), 5016);
        assert_eq!(key_slot(b"123456789"), 12739);
        assert_eq!(crc16(b"123456789"), 0x31C3);
        assert_eq!(
            key_slot(b"{user1000}.following"),
            key_slot(b"{user1000}.followers")
        );
        assert_eq!(key_slot(b"{user1000}.following"), 3443);
        assert_eq!(key_slot(b"somekey"), 11058);
        assert_eq!(key_slot(b"foo{hash_tag}"), 2515);
        // An empty tag hashes the whole key; only the first `{` counts.
        assert_eq!(key_slot(b"foo{}{bar}"), 8363);
        assert_eq!(key_slot(b"foo{{bar}}zap"), 4015);
        assert_eq!(key_slot(b"foo{bar}{zap}"), key_slot(b"bar"));
    }

    #[test]
    fn every_slot_has_a_short_tag() {
        for slot in 0..SLOTS {
            let tag = slot_tag(slot);
            assert!(!tag.is_empty() && tag.len() <= 4, "slot {slot}: {tag:?}");
            assert!(tag.bytes().all(|b| b.is_ascii_alphanumeric()), "{tag:?}");
            assert_eq!(key_slot(tag.as_bytes()), slot);
        }
    }

    #[test]
    fn lease_keys_share_the_slot_and_the_prefix() {
        let hostile = [
            "ngx:conv:v1:a",
            "ngx:a}b",
            "ngx:{user1}:x",
            "ngx:{}:x",
            "ngx:}{",
            "ngx:{",
            "ngx:}",
            "ngx:{}",
            "ngx:{{}}",
            "ngx:a{b}c{d}",
            "ngx:{ngx}",
            "ngx:{ngx:}",
            "ngx:__lease:{0}:x",
            "ngx:ünï{cödé}",
            "ngx:日本{語}",
            "ngx:{ñ",
        ];
        for full in hostile {
            let lease = lease_key(full);
            assert_eq!(
                key_slot(lease.as_bytes()),
                key_slot(full.as_bytes()),
                "{full} -> {lease}"
            );
            assert!(lease.starts_with("ngx:__lease:{"), "{lease}");
            assert!(lease.ends_with(&full["ngx:".len()..]), "{lease}");
            let version = version_key(full);
            assert_eq!(key_slot(version.as_bytes()), key_slot(full.as_bytes()));
            assert!(version.starts_with("ngx:__ver:{"), "{version}");
            assert!(version.ends_with(&full["ngx:".len()..]), "{version}");
        }
        // The reported case: `ngx:a}b` (slot 5016) used to lease in 14843.
        assert_eq!(key_slot(lease_key("ngx:a}b").as_bytes()), 5016);
        assert_ne!(lease_key("ngx:a"), lease_key("ngx:b"));
        assert_eq!(lease_glob("ngx:user*1"), r"ngx:__lease:{*}:user\*1*");
        assert_eq!(version_glob("ngx:user*1"), r"ngx:__ver:{*}:user\*1*");
    }

    #[test]
    fn tag_and_short_keys() {
        let space = KeySpace {
            namespace: "ngx".into(),
            max_key_bytes: 1024,
        };
        assert_eq!(space.tag("t").unwrap(), "ngx:__tag:t");
        assert!(space.tag("").is_err());
        assert_eq!(space.short("ngx:a:b"), Some("a:b"));
        assert_eq!(space.short("ngxa:b"), None);
    }

    #[test]
    fn namespaces() {
        assert!(validate_namespace("ngx").is_ok());
        assert!(validate_namespace("ns*").is_ok());
        assert!(validate_namespace("").is_err());
        assert!(validate_namespace("a b").is_err());
    }
}

/// A stable hash of `value`: xxh3-64 of its canonical JSON, printed as 16
/// lowercase hex characters. The same input gives the same string in every
/// process and across releases, so it can go into keys. An input that
/// cannot be encoded as JSON (a map with non-string keys) hashes its error
/// message; use [`try_stable_hash`] to see the error instead. NaN and the
/// infinities are written as `null`, as JSON has no other way to write
/// them, so they hash like `None` (the `#[cached]` macro refuses to build a
/// key from them).
///
/// ```
/// use std::collections::HashMap;
/// let a: HashMap<_, _> = [("x", 1), ("y", 2)].into();
/// let b: HashMap<_, _> = [("y", 2), ("x", 1)].into();
/// assert_eq!(ngx_cache::stable_hash(&a), ngx_cache::stable_hash(&b));
/// assert_eq!(ngx_cache::stable_hash(&a).len(), 16);
/// ```
pub fn stable_hash<T: serde::Serialize + ?Sized>(value: &T) -> String {
    try_stable_hash(value).unwrap_or_else(|e| {
        format!(
            "{:016x}",
            xxhash_rust::xxh3::xxh3_64(format!("unserializable:{e}").as_bytes())
        )
    })
}

/// Like [`stable_hash`], failing when `value` cannot be encoded as JSON.
///
/// Canonical means: object keys sorted by their UTF-8 bytes at every depth,
/// no whitespace, numbers and strings as `serde_json` writes them. Keys are
/// sorted here explicitly rather than relying on `serde_json::Map` being a
/// `BTreeMap`, because any crate in the build enabling
/// `serde_json/preserve_order` would silently make it insertion-ordered.
pub fn try_stable_hash<T: serde::Serialize + ?Sized>(
    value: &T,
) -> Result<String, serde_json::Error> {
    let value = serde_json::to_value(value)?;
    let mut bytes = Vec::with_capacity(256);
    write_canonical(&value, &mut bytes)?;
    Ok(format!("{:016x}", xxhash_rust::xxh3::xxh3_64(&bytes)))
}

fn write_canonical(value: &serde_json::Value, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push(b'{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                serde_json::to_writer(&mut *out, key)?;
                out.push(b':');
                write_canonical(item, out)?;
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out)?;
            }
            out.push(b']');
        }
        scalar => serde_json::to_writer(&mut *out, scalar)?,
    }
    Ok(())
}

#[cfg(test)]
mod hash_tests {
    use super::stable_hash;

    #[test]
    fn stable_hash_is_pinned() {
        // Pinned: changing this breaks every key derived from hashes.
        assert_eq!(
            stable_hash(&("user", 42)),
            stable_hash(&serde_json::json!(["user", 42]))
        );
        assert_eq!(stable_hash("abc"), "236ac2698e6b6688");
        let nested = serde_json::json!({"b": [1, 2.5, "x", null, true], "a": {"z": 1, "y": "é"}});
        assert_eq!(stable_hash(&nested), "769c3c25406d0f5f");
        let mut canonical = Vec::new();
        super::write_canonical(&nested, &mut canonical).unwrap();
        assert_eq!(
            String::from_utf8(canonical).unwrap(),
            r#"{"a":{"y":"é","z":1},"b":[1,2.5,"x",null,true]}"#
        );
    }

    #[test]
    fn unencodable_input_is_an_error_or_a_fixed_hash() {
        let bad: std::collections::HashMap<(u8, u8), u8> = [((1, 2), 3)].into();
        assert!(super::try_stable_hash(&bad).is_err());
        assert_eq!(stable_hash(&bad), stable_hash(&bad));
        assert_eq!(stable_hash(&bad).len(), 16);
    }
}
