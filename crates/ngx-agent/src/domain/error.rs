//! The validation error shared by every domain model.

/// A domain value failed validation. The message names the offending field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
#[error("invalid `{field}`: {reason}")]
pub struct ValidationError {
    /// The field that failed, for example `conversation_id` or `customer.email`.
    pub field: &'static str,
    /// Why it failed, in plain words.
    pub reason: String,
}

impl ValidationError {
    /// Builds an error for `field` with a human-readable `reason`.
    pub fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self {
            field,
            reason: reason.into(),
        }
    }
}

/// Checks that `value` is a finite number inside `min..=max`.
pub(crate) fn check_range(
    field: &'static str,
    value: f64,
    min: f64,
    max: f64,
) -> Result<(), ValidationError> {
    if !value.is_finite() {
        return Err(ValidationError::new(field, "must be a finite number"));
    }
    if value < min || value > max {
        return Err(ValidationError::new(
            field,
            format!("{value} is outside {min}..={max}"),
        ));
    }
    Ok(())
}

/// Checks that `value` is not blank and at most `max` characters long
/// (characters, as JSON Schema counts `maxLength`).
pub(crate) fn check_text(
    field: &'static str,
    value: &str,
    max: usize,
) -> Result<(), ValidationError> {
    if value.trim().is_empty() {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    let chars = value.chars().count();
    if chars > max {
        return Err(ValidationError::new(
            field,
            format!("is {chars} characters, the limit is {max}"),
        ));
    }
    Ok(())
}

/// Checks that a timestamp in unix milliseconds is not negative.
pub(crate) fn check_millis(field: &'static str, value: i64) -> Result<(), ValidationError> {
    if value < 0 {
        return Err(ValidationError::new(
            field,
            "must be unix milliseconds >= 0",
        ));
    }
    Ok(())
}
