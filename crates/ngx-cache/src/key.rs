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
