//! The error type of the services.

use std::sync::Arc;

use ngx_cache::LoadError;

use crate::compute::ComputeError;
use crate::db::DbError;
use crate::domain::ValidationError;

/// Why a service call failed. Cloneable, because one failed load is shared
/// by every caller that waited for it.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// The entity does not exist.
    #[error("{entity} {id:?} not found")]
    NotFound {
        /// What was looked for.
        entity: &'static str,
        /// Its id.
        id: String,
    },
    /// The input is invalid.
    #[error("invalid input: {0}")]
    Invalid(#[from] ValidationError),
    /// The entity already exists.
    #[error("{0}")]
    Conflict(String),
    /// The database failed.
    #[error("database error")]
    Database(#[source] Arc<DbError>),
    /// A computation refused its input.
    #[error("computation failed: {0}")]
    Compute(#[from] ComputeError),
    /// The loader ran past its time limit, or panicked.
    #[error("the request could not be completed in time")]
    Unavailable,
}

impl From<DbError> for ServiceError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::NotFound { entity, id } => ServiceError::NotFound { entity, id },
            DbError::Invalid(v) => ServiceError::Invalid(v),
            e if e.is_conflict() => ServiceError::Conflict(e.to_string()),
            e => ServiceError::Database(Arc::new(e)),
        }
    }
}

impl From<LoadError<ServiceError>> for ServiceError {
    fn from(e: LoadError<ServiceError>) -> Self {
        match e {
            LoadError::Loader(inner) => (*inner).clone(),
            _ => ServiceError::Unavailable,
        }
    }
}

/// A repository read as "maybe": not found becomes `Ok(None)`, which the
/// cache keeps for the negative TTL.
pub(crate) fn optional<T>(read: Result<T, DbError>) -> Result<Option<T>, ServiceError> {
    match read {
        Ok(value) => Ok(Some(value)),
        Err(DbError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// `None` from a cached read as the service's not-found error.
pub(crate) fn found<T>(
    value: Option<T>,
    entity: &'static str,
    id: &str,
) -> Result<T, ServiceError> {
    value.ok_or_else(|| ServiceError::NotFound {
        entity,
        id: id.to_owned(),
    })
}
