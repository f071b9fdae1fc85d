//! [`AppError`]: the one error type of the HTTP layer, rendered as
//! `{"error": code, "detail": message}`.
//!
//! Client errors carry a message about the input. Server-side failures are
//! logged with their cause here and reach the client only as a generic
//! message, so no internal detail (SQL, Redis, paths) leaks.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::compute::ComputeError;
use crate::domain::ValidationError;
use crate::service::ServiceError;

/// The JSON body of every error response.
#[derive(Debug, Clone, Serialize, serde::Deserialize, ToSchema)]
pub struct ErrorBody {
    /// A stable, machine-readable code (`not_found`, `validation_error`, ...).
    pub error: String,
    /// A human-readable explanation; never contains internal details.
    pub detail: String,
}

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AppError {
    /// Malformed request: bad JSON syntax, bad path or query encoding (400).
    #[error("{0}")]
    BadRequest(String),
    /// Well-formed but invalid input: wrong shape, invalid id, out of range (422).
    #[error("{0}")]
    Validation(String),
    /// The resource does not exist (404).
    #[error("{0}")]
    NotFound(String),
    /// The resource already exists (409).
    #[error("{0}")]
    Conflict(String),
    /// The body is over the configured limit (413).
    #[error("request body is too large")]
    PayloadTooLarge,
    /// The body is not `application/json` (415).
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// No `Authorization: Bearer` header (401).
    #[error("missing bearer token")]
    Unauthorized,
    /// Wrong token, or admin endpoints disabled (403).
    #[error("{0}")]
    Forbidden(String),
    /// A dependency (database, cache admin operation) is unavailable, or
    /// the request ran past its deadline (503). The cause is only logged.
    #[error("service temporarily unavailable")]
    Unavailable(String),
    /// A bug. The cause is only logged (500).
    #[error("internal error")]
    Internal(String),
}

impl AppError {
    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AppError::Unauthorized => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable code in the `error` field.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::BadRequest(_) => "bad_request",
            AppError::Validation(_) => "validation_error",
            AppError::NotFound(_) => "not_found",
            AppError::Conflict(_) => "conflict",
            AppError::PayloadTooLarge => "payload_too_large",
            AppError::UnsupportedMediaType(_) => "unsupported_media_type",
            AppError::Unauthorized => "unauthorized",
            AppError::Forbidden(_) => "forbidden",
            AppError::Unavailable(_) => "service_unavailable",
            AppError::Internal(_) => "internal_error",
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        match &self {
            AppError::Unavailable(cause) => tracing::warn!(%cause, "request failed: unavailable"),
            AppError::Internal(cause) => tracing::error!(%cause, "request failed: internal error"),
            _ => {}
        }
        let body = ErrorBody {
            error: self.code().to_owned(),
            detail: self.to_string(),
        };
        let mut response = (self.status(), Json(body)).into_response();
        if matches!(self, AppError::Unauthorized) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<ValidationError> for AppError {
    fn from(e: ValidationError) -> Self {
        AppError::Validation(e.to_string())
    }
}

impl From<ServiceError> for AppError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::NotFound { .. } => AppError::NotFound(e.to_string()),
            ServiceError::Invalid(v) => v.into(),
            ServiceError::Conflict(m) => AppError::Conflict(m),
            ServiceError::Compute(ComputeError::Invalid(v)) => v.into(),
            ServiceError::Compute(c @ ComputeError::MissingTier { .. }) => {
                AppError::Validation(c.to_string())
            }
            ServiceError::Database(db) => AppError::Unavailable(format!("database: {db:?}")),
            other => AppError::Unavailable(format!("{other:?}")),
        }
    }
}

impl From<JsonRejection> for AppError {
    fn from(r: JsonRejection) -> Self {
        match r {
            JsonRejection::JsonDataError(e) => AppError::Validation(e.body_text()),
            JsonRejection::JsonSyntaxError(e) => AppError::BadRequest(e.body_text()),
            JsonRejection::MissingJsonContentType(e) => {
                AppError::UnsupportedMediaType(e.body_text())
            }
            other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => AppError::PayloadTooLarge,
            other => AppError::BadRequest(other.body_text()),
        }
    }
}

impl From<PathRejection> for AppError {
    fn from(r: PathRejection) -> Self {
        AppError::BadRequest(r.body_text())
    }
}

impl From<QueryRejection> for AppError {
    fn from(r: QueryRejection) -> Self {
        AppError::BadRequest(r.body_text())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::db::DbError;

    #[test]
    fn server_side_causes_never_reach_the_body() {
        let err: AppError = ServiceError::Database(Arc::new(DbError::UnsupportedUrl(
            "postgres://u:hunter2@db".into(),
        )))
        .into();
        assert_eq!(err.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(!err.to_string().contains("hunter2"));
        assert_eq!(
            AppError::Internal("boom at x.rs:1".into()).to_string(),
            "internal error"
        );
    }

    #[test]
    fn service_errors_map_to_client_statuses() {
        let nf: AppError = ServiceError::NotFound {
            entity: "customer",
            id: "x".into(),
        }
        .into();
        assert_eq!(nf.status(), StatusCode::NOT_FOUND);
        let inv: AppError = ServiceError::Invalid(ValidationError::new("age", "too old")).into();
        assert_eq!(inv.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(inv.to_string().contains("age"));
    }
}
