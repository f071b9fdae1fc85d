//! Key validation, namespacing and glob escaping.

use crate::error::Error;

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
    Ok(())
}

/// Builds `{namespace}:{key}` after checking `key`: non-empty, no control
/// characters, and the full key within `max_len` bytes.
pub(crate) fn full_key(namespace: &str, key: &str, max_len: usize) -> Result<String, Error> {
    if key.is_empty() {
        return Err(Error::invalid_key("key is empty"));
    }
    let len = namespace.len() + 1 + key.len();
    if len > max_len {
        return Err(Error::invalid_key(format!(
            "key is {len} bytes, the limit is {max_len}"
        )));
    }
    if key.chars().any(char::is_control) {
        return Err(Error::invalid_key("key contains a control character"));
    }
    let mut full = String::with_capacity(len);
    full.push_str(namespace);
    full.push(':');
    full.push_str(key);
    Ok(full)
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
    fn namespaces() {
        assert!(validate_namespace("ngx").is_ok());
        assert!(validate_namespace("ns*").is_ok());
        assert!(validate_namespace("").is_err());
        assert!(validate_namespace("a b").is_err());
    }
}

/// A stable hash of `value`: xxh3-64 of its canonical JSON (object keys
/// sorted), printed as 16 lowercase hex characters. The same input gives the
/// same string in every process and across releases, so it can go into keys.
///
/// ```
/// use std::collections::HashMap;
/// let a: HashMap<_, _> = [("x", 1), ("y", 2)].into();
/// let b: HashMap<_, _> = [("y", 2), ("x", 1)].into();
/// assert_eq!(ngx_cache::stable_hash(&a), ngx_cache::stable_hash(&b));
/// assert_eq!(ngx_cache::stable_hash(&a).len(), 16);
/// ```
pub fn stable_hash<T: serde::Serialize + ?Sized>(value: &T) -> String {
    // `serde_json::Value` keeps object keys in a BTreeMap (no
    // `preserve_order` feature), which makes the encoding canonical.
    let canonical = serde_json::to_value(value)
        .and_then(|v| serde_json::to_vec(&v))
        .unwrap_or_else(|e| format!("unserializable:{e}").into_bytes());
    format!("{:016x}", xxhash_rust::xxh3::xxh3_64(&canonical))
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
    }
}
