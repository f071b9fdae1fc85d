//! [`Shared`]: a cached value held by reference, with its JSON rendering
//! memoized.
//!
//! An L1 hit returns a clone of the cached value. For a large value (a
//! conversation with its messages) that clone, and then serializing it
//! again for an HTTP response, cost more than the lookup itself. Cache a
//! `Shared<T>` instead of a `T`: a hit clones one `Arc`, and
//! [`Shared::json`] renders the JSON once per cached value, then hands out
//! the same bytes.
//!
//! In Redis a `Shared<T>` is stored exactly as `T` (the serde impls are
//! transparent), so both forms read each other's entries. In L1 they are
//! different types: read one key with one type.
//!
//! ```
//! use ngx_cache::Shared;
//!
//! let profile = Shared::new(vec!["PRIME".to_owned(), "LONGEVITY".to_owned()]);
//! let hit = profile.clone(); // one reference count, no copy
//! assert_eq!(hit.len(), 2);
//! assert_eq!(&hit.json().unwrap()[..], br#"["PRIME","LONGEVITY"]"#);
//! assert_eq!(serde_json::to_string(&hit).unwrap(), r#"["PRIME","LONGEVITY"]"#);
//! ```

use std::fmt;
use std::ops::Deref;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An immutable value behind an `Arc`, with its JSON text rendered at
/// most once. Cheap to clone; derefs to `T`.
pub struct Shared<T> {
    inner: Arc<SharedInner<T>>,
}

struct SharedInner<T> {
    value: T,
    json: OnceLock<Bytes>,
}

impl<T> Shared<T> {
    /// Wraps `value`.
    pub fn new(value: T) -> Self {
        Self {
            inner: Arc::new(SharedInner {
                value,
                json: OnceLock::new(),
            }),
        }
    }

    /// The value, moved out when this is the only reference, else cloned.
    pub fn into_inner(self) -> T
    where
        T: Clone,
    {
        match Arc::try_unwrap(self.inner) {
            Ok(inner) => inner.value,
            Err(shared) => shared.value.clone(),
        }
    }

    /// The value as compact JSON (`serde_json::to_vec`), rendered on the
    /// first call and shared by every later call on any clone.
    ///
    /// # Errors
    /// When `T` cannot be rendered as JSON (a map with non-string keys, a
    /// failing `Serialize` impl); nothing is memoized then.
    pub fn json(&self) -> Result<Bytes, serde_json::Error>
    where
        T: Serialize,
    {
        if let Some(bytes) = self.inner.json.get() {
            return Ok(bytes.clone());
        }
        let bytes = Bytes::from(serde_json::to_vec(&self.inner.value)?);
        // A concurrent first call may have won: both rendered the same text.
        Ok(self.inner.json.get_or_init(|| bytes).clone())
    }
}

impl<T> Clone for Shared<T> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<T> Deref for Shared<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.inner.value
    }
}

impl<T> AsRef<T> for Shared<T> {
    fn as_ref(&self) -> &T {
        &self.inner.value
    }
}

impl<T> From<T> for Shared<T> {
    fn from(value: T) -> Self {
        Self::new(value)
    }
}

impl<T: fmt::Debug> fmt::Debug for Shared<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.value.fmt(f)
    }
}

impl<T: PartialEq> PartialEq for Shared<T> {
    fn eq(&self, other: &Self) -> bool {
        self.inner.value == other.inner.value
    }
}

impl<T: Serialize> Serialize for Shared<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.inner.value.serialize(serializer)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Shared<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(deserializer).map(Self::new)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn json_is_rendered_once_and_shared_by_clones() {
        let a = Shared::new(vec![1, 2, 3]);
        let b = a.clone();
        let first = a.json().unwrap();
        let second = b.json().unwrap();
        assert_eq!(&first[..], b"[1,2,3]");
        // The same allocation: the second call did not render again.
        assert_eq!(first.as_ptr(), second.as_ptr());
    }

    #[test]
    fn serde_is_transparent_in_both_codecs() {
        let v = Shared::new(("a".to_owned(), 7_u32));
        assert_eq!(serde_json::to_string(&v).unwrap(), r#"["a",7]"#);
        let back: Shared<(String, u32)> = serde_json::from_str(r#"["a",7]"#).unwrap();
        assert_eq!(back, v);
        let packed = rmp_serde::to_vec(&v).unwrap();
        assert_eq!(packed, rmp_serde::to_vec(&("a".to_owned(), 7_u32)).unwrap());
        let back: Shared<(String, u32)> = rmp_serde::from_slice(&packed).unwrap();
        assert_eq!(*back, ("a".to_owned(), 7));
    }

    #[test]
    fn into_inner_moves_or_clones() {
        let a = Shared::new(String::from("x"));
        let b = a.clone();
        assert_eq!(a.into_inner(), "x");
        assert_eq!(b.into_inner(), "x");
    }

    #[test]
    fn a_json_error_is_returned_and_not_memoized() {
        let mut m = HashMap::new();
        m.insert((1, 2), 3);
        let v = Shared::new(m);
        assert!(v.json().is_err());
        assert!(v.json().is_err());
    }
}
