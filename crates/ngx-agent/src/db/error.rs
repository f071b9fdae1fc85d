//! The error type of the data layer.

use crate::domain::ValidationError;

/// A boxed error source, for causes of several kinds.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong in the data layer.
///
/// Causes are returned from `source()`, never repeated in the message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DbError {
    /// The URL is neither `sqlite:` nor `postgres://`.
    #[error("unsupported database URL scheme in {0:?}: expected sqlite:// or postgres://")]
    UnsupportedUrl(String),
    /// An option passed to [`super::DbOptions`] is unusable.
    #[error("invalid database option `{option}`: {reason}")]
    InvalidOption {
        /// The option's name.
        option: &'static str,
        /// Why it was refused.
        reason: String,
    },
    /// The directory holding the SQLite file could not be created.
    #[error("cannot create the database directory {path}")]
    CreateDir {
        /// The directory.
        path: String,
        /// The I/O failure.
        #[source]
        source: std::io::Error,
    },
    /// The driver reported a failure (connection, SQL, constraint...).
    #[error("database operation failed")]
    Sqlx(#[from] sqlx::Error),
    /// A migration could not be applied.
    #[error("migration {version} ({name}) failed")]
    Migration {
        /// The migration's version.
        version: i64,
        /// The migration's name.
        name: &'static str,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// The row asked for does not exist.
    #[error("{entity} {id:?} not found")]
    NotFound {
        /// What was looked for ("customer", "conversation", ...).
        entity: &'static str,
        /// Its id.
        id: String,
    },
    /// A row with that id already exists.
    #[error("{entity} {id:?} already exists")]
    Conflict {
        /// What was created.
        entity: &'static str,
        /// Its id.
        id: String,
    },
    /// The value given to a repository failed validation.
    #[error("invalid input")]
    Invalid(#[from] ValidationError),
    /// A stored row could not be decoded into a valid domain value.
    #[error("stored {entity} is corrupt")]
    Corrupt {
        /// What was read.
        entity: &'static str,
        /// The decoding or validation failure.
        #[source]
        source: BoxError,
    },
}

impl DbError {
    /// The row does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, DbError::NotFound { .. })
    }

    /// The row already exists.
    pub fn is_conflict(&self) -> bool {
        matches!(self, DbError::Conflict { .. })
    }

    /// The caller passed invalid data.
    pub fn is_invalid(&self) -> bool {
        matches!(self, DbError::Invalid(_))
    }

    pub(crate) fn not_found(entity: &'static str, id: &str) -> Self {
        DbError::NotFound {
            entity,
            id: id.to_owned(),
        }
    }

    pub(crate) fn corrupt(entity: &'static str, source: impl Into<BoxError>) -> Self {
        DbError::Corrupt {
            entity,
            source: source.into(),
        }
    }
}
