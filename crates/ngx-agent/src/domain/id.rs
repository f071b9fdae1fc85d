//! Identifier validation: ids become parts of Redis keys.

use super::ValidationError;

/// The longest identifier accepted, in bytes.
pub const MAX_ID_LEN: usize = 128;

/// Checks that `value` is a usable identifier: non-empty, at most
/// [`MAX_ID_LEN`] bytes, and only `[A-Za-z0-9_.-]`.
///
/// The charset excludes `:` (the key separator), whitespace, control
/// characters and every glob metacharacter, so an id can be embedded in a
/// Redis key or a `SCAN MATCH` pattern without escaping.
///
/// ```
/// use ngx_agent::domain::validate_id;
/// assert!(validate_id("customer_id", "cust-0042").is_ok());
/// let err = validate_id("customer_id", "a:b").unwrap_err();
/// assert_eq!(err.field, "customer_id");
/// ```
pub fn validate_id(field: &'static str, value: &str) -> Result<(), ValidationError> {
    if value.is_empty() {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    if value.len() > MAX_ID_LEN {
        return Err(ValidationError::new(
            field,
            format!("is {} bytes, the limit is {MAX_ID_LEN}", value.len()),
        ));
    }
    if let Some(bad) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        return Err(ValidationError::new(
            field,
            format!("contains {bad:?}; allowed characters are [A-Za-z0-9_.-]"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_documented_charset() {
        assert!(validate_id("id", "Abc_09.x-y").is_ok());
        assert!(validate_id("id", &"a".repeat(MAX_ID_LEN)).is_ok());
    }

    #[test]
    fn rejects_empty_long_and_foreign_characters() {
        assert!(validate_id("id", "").is_err());
        assert!(validate_id("id", &"a".repeat(MAX_ID_LEN + 1)).is_err());
        for bad in ["a b", "a:b", "a*", "a?", "a[1]", "é", "a\n", "a\\b"] {
            let err = validate_id("conversation_id", bad).unwrap_err();
            assert_eq!(err.field, "conversation_id", "{bad:?}");
        }
    }
}
