//! `/customers/{id}`: read and replace a profile.

use axum::extract::State;
use serde::Deserialize;
use utoipa::ToSchema;

use super::extract::{Json, Path};
use super::{AppError, AppState, now_millis};
use crate::domain::{CustomerProfile, IncomeBand};

/// Body of `PUT /customers/{id}`: the profile's editable fields. Absent
/// optional fields are cleared (PUT replaces).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCustomer {
    /// Display name.
    #[schema(example = "Ana Ruiz")]
    pub name: String,
    /// E-mail address.
    #[schema(example = "ana@example.com")]
    pub email: String,
    /// Phone number.
    #[schema(example = "+34 600 123 456")]
    pub phone: Option<String>,
    /// Age in years, 18 to 120.
    #[schema(example = 41)]
    pub age: Option<u32>,
    /// Occupation.
    #[schema(example = "surgeon")]
    pub occupation: Option<String>,
    /// `unknown` (default), `low`, `middle`, `upper_middle` or `high`.
    #[schema(value_type = Option<String>, example = "upper_middle")]
    pub income_band: Option<IncomeBand>,
    /// Goals in free text, at most 32.
    #[serde(default)]
    pub goals: Vec<String>,
}

/// The customer profile (cached 1 h).
#[utoipa::path(
    get, path = "/customers/{id}", tag = "customers",
    params(("id" = String, Path, description = "Customer id", example = "cust-00001")),
    responses(
        (status = 200, description = "The profile", body = crate::domain::CustomerProfile),
        (status = 404, description = "Unknown customer", body = super::ErrorBody),
        (status = 422, description = "Invalid id", body = super::ErrorBody),
    )
)]
pub(crate) async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<CustomerProfile>, AppError> {
    Ok(Json(state.services().customers.get(&id).await?))
}

/// Replaces the profile, then invalidates it and everything derived from
/// it (tier detections, predictions, recommendations).
#[utoipa::path(
    put, path = "/customers/{id}", tag = "customers",
    params(("id" = String, Path, description = "Customer id", example = "cust-00001")),
    request_body = UpdateCustomer,
    responses(
        (status = 200, description = "The updated profile", body = crate::domain::CustomerProfile),
        (status = 404, description = "Unknown customer", body = super::ErrorBody),
        (status = 422, description = "Invalid input", body = super::ErrorBody),
    )
)]
pub(crate) async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(req): Json<UpdateCustomer>,
) -> Result<Json<CustomerProfile>, AppError> {
    crate::domain::validate_id("customer_id", &id)?;
    // The current row, straight from the system of record: `created_at`
    // must come from the truth, not from a cached copy.
    let current = state
        .db()
        .customers()
        .get(&id)
        .await
        .map_err(crate::service::ServiceError::from)?;
    let profile = CustomerProfile {
        id,
        name: req.name,
        email: req.email,
        phone: req.phone,
        age: req.age,
        occupation: req.occupation,
        income_band: req.income_band.unwrap_or(IncomeBand::Unknown),
        goals: req.goals,
        created_at: current.created_at,
        updated_at: now_millis().max(current.updated_at),
    };
    Ok(Json(state.services().customers.update(&profile).await?))
}
