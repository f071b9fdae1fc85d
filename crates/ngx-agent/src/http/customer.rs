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
    /// Age in years, 18 to 120. A whole number, also when written `41.0`
    /// (JSON Schema's integers include it).
    #[schema(example = 41)]
    #[serde(default, deserialize_with = "whole_number")]
    pub age: Option<u32>,
    /// Occupation.
    #[schema(example = "surgeon")]
    pub occupation: Option<String>,
    /// `unknown` (default), `low`, `middle`, `upper_middle` or `high`.
    #[schema(example = "upper_middle")]
    pub income_band: Option<IncomeBand>,
    /// Goals in free text, at most 32.
    #[serde(default)]
    pub goals: Vec<String>,
}

/// The customer profile (cached 1 h).
#[utoipa::path(
    get, path = "/customers/{id}", operation_id = "get_customer", tag = "customers",
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
    put, path = "/customers/{id}", operation_id = "update_customer", tag = "customers",
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

/// An optional whole number that may be written with a zero fraction
/// (`41.0`). Anything else is a type error (422); values past `u32` become
/// `u32::MAX`, which the range check then refuses with a clear message.
fn whole_number<'de, D>(deserializer: D) -> Result<Option<u32>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    use serde::de::Error;
    let Some(number) = Option::<serde_json::Number>::deserialize(deserializer)? else {
        return Ok(None);
    };
    if let Some(n) = number.as_u64() {
        return Ok(Some(u32::try_from(n).unwrap_or(u32::MAX)));
    }
    match number.as_f64() {
        Some(f) if f.fract() == 0.0 && f >= 0.0 => Ok(Some(if f > f64::from(u32::MAX) {
            u32::MAX
        } else {
            f as u32
        })),
        _ => Err(D::Error::custom(format!(
            "invalid value {number}, expected a whole number of years"
        ))),
    }
}
