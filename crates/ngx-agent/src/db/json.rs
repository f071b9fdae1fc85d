//! JSON-text columns: encoding on write, decoding (as corruption) on read.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::DbError;

/// Encodes a value for a JSON-text column.
pub(crate) fn encode<T: Serialize + ?Sized>(
    entity: &'static str,
    value: &T,
) -> Result<String, DbError> {
    serde_json::to_string(value).map_err(|e| DbError::corrupt(entity, e))
}

/// Decodes a JSON-text column; a failure means the stored row is corrupt.
pub(crate) fn decode<T: DeserializeOwned>(entity: &'static str, text: &str) -> Result<T, DbError> {
    serde_json::from_str(text).map_err(|e| DbError::corrupt(entity, e))
}

/// Converts an optional age column to `u32`, refusing negatives.
pub(crate) fn age(entity: &'static str, value: Option<i64>) -> Result<Option<u32>, DbError> {
    value
        .map(|v| u32::try_from(v).map_err(|e| DbError::corrupt(entity, e)))
        .transpose()
}
