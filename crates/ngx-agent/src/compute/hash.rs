//! Stable hashes of complex inputs, for cache keys.

use serde::Serialize;

/// The input could not be encoded as JSON (for example a map whose keys are
/// not strings).
#[derive(Debug, thiserror::Error)]
#[error("cannot encode the input as canonical JSON")]
pub struct HashError(#[from] serde_json::Error);

/// xxh3-64 of the canonical JSON encoding of `value`, as 16 lowercase hex
/// characters: [`ngx_cache::try_stable_hash`], the hash every cache key is
/// built with, with its error typed for the compute layer.
///
/// Canonical means object keys sorted by their UTF-8 bytes at every depth
/// (explicitly, whatever `serde_json` features the build enables), no
/// whitespace, numbers and strings as `serde_json` writes them. The same
/// input thus gives the same hash in every process and across releases; a
/// unit test pins one value.
///
/// ```
/// use std::collections::HashMap;
/// use ngx_agent::compute::stable_hash;
/// let a: HashMap<&str, i32> = [("x", 1), ("y", 2)].into();
/// let b: HashMap<&str, i32> = [("y", 2), ("x", 1)].into();
/// assert_eq!(stable_hash(&a).unwrap(), stable_hash(&b).unwrap());
/// assert_eq!(stable_hash(&a).unwrap(), ngx_cache::stable_hash(&a));
/// ```
pub fn stable_hash<T: Serialize + ?Sized>(value: &T) -> Result<String, HashError> {
    Ok(ngx_cache::try_stable_hash(value)?)
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};

    use serde_json::json;

    use super::*;

    #[test]
    fn pinned_value_never_drifts() {
        // If this fails, every cache key built from a hash changed: bump the
        // key-space schema version instead of editing this value.
        let input = json!({"b": [1, 2.5, "x", null, true], "a": {"z": 1, "y": "é"}});
        assert_eq!(stable_hash(&input).unwrap(), PINNED);
    }

    const PINNED: &str = "769c3c25406d0f5f";

    #[test]
    fn insertion_order_does_not_matter() {
        let mut a = HashMap::new();
        let mut b = HashMap::new();
        for i in 0..50 {
            a.insert(format!("k{i}"), i);
        }
        for i in (0..50).rev() {
            b.insert(format!("k{i}"), i);
        }
        assert_eq!(stable_hash(&a).unwrap(), stable_hash(&b).unwrap());
        let sorted: BTreeMap<_, _> = a.iter().collect();
        assert_eq!(stable_hash(&a).unwrap(), stable_hash(&sorted).unwrap());

        #[derive(Serialize)]
        struct Ab {
            a: u8,
            b: u8,
        }
        #[derive(Serialize)]
        struct Ba {
            b: u8,
            a: u8,
        }
        assert_eq!(
            stable_hash(&Ab { a: 1, b: 2 }).unwrap(),
            stable_hash(&Ba { b: 2, a: 1 }).unwrap()
        );
    }

    #[test]
    fn different_inputs_differ_and_format_is_16_hex() {
        let h1 = stable_hash(&json!({"a": 1})).unwrap();
        let h2 = stable_hash(&json!({"a": 2})).unwrap();
        assert_ne!(h1, h2);
        for h in [h1, h2] {
            assert_eq!(h.len(), 16);
            assert!(
                h.chars()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
            );
        }
    }

    #[test]
    fn same_output_as_ngx_cache() {
        let mut map = HashMap::new();
        for i in 0..20 {
            map.insert(format!("k{i}é"), json!({"z": i, "a": [i, null, 1.5e300]}));
        }
        let inputs = [
            json!({"b": [1, 2.5, "x", null, true], "a": {"z": 1, "y": "é"}}),
            json!("abc"),
            json!(["user", 42]),
            json!({"Z": 1, "a": 2, "é": 3, "e": {"\u{1}": -0.0, "B": u64::MAX}}),
            serde_json::to_value(&map).unwrap(),
        ];
        for input in inputs {
            assert_eq!(stable_hash(&input).unwrap(), ngx_cache::stable_hash(&input));
        }
        assert_eq!(stable_hash(&map).unwrap(), ngx_cache::stable_hash(&map));
    }

    #[test]
    fn unencodable_input_is_an_error_not_a_panic() {
        let bad: HashMap<(u8, u8), u8> = [((1, 2), 3)].into();
        assert!(stable_hash(&bad).is_err());
    }
}
