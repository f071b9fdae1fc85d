//! `/customers/{id}`: read and replace a profile; `/customers?ids=`: read
//! many at once.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::extract::{Json, Path, Query};
use super::{AppError, AppState, now_millis};
use crate::domain::{CustomerProfile, IncomeBand};
use crate::service::CustomerService;

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

/// Query of `GET /customers`.
#[derive(Debug, Deserialize)]
pub(crate) struct IdsQuery {
    /// Comma-separated customer ids.
    ids: Option<String>,
}

/// Body of `GET /customers?ids=...`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CustomersResponse {
    /// The profiles found, in the order their ids were asked for (each id
    /// once).
    pub customers: Vec<CustomerProfile>,
    /// The ids with no profile, in the order they were asked for.
    #[schema(example = json!(["cust-99999"]))]
    pub missing: Vec<String>,
}

/// Many profiles in one request: one L1 pass, one Redis read for the ids L1
/// did not answer, one database query for the ids still missing. Shares
/// its cache entries with `GET /customers/{id}`, unknown ids included.
#[utoipa::path(
    get, path = "/customers", operation_id = "get_customers", tag = "customers",
    params((
        "ids" = String, Query,
        description = "1 to 100 comma-separated customer ids (duplicates count toward the \
                       limit and are answered once); whitespace around an id is ignored",
        example = "cust-00001,cust-00002,cust-99999"
    )),
    responses(
        (status = 200, description = "The profiles found and the ids not found", body = CustomersResponse),
        (status = 400, description = "No `ids` parameter, or more than one", body = super::ErrorBody),
        (status = 422, description = "An empty list, more than 100 ids, or an invalid id", body = super::ErrorBody),
    )
)]
pub(crate) async fn get_many(
    State(state): State<AppState>,
    Query(q): Query<IdsQuery>,
) -> Result<Json<CustomersResponse>, AppError> {
    let ids = parse_ids(q.ids.as_deref())?;
    let batch = state.services().customers.get_many(&ids).await?;
    Ok(Json(CustomersResponse {
        customers: batch.customers,
        missing: batch.missing,
    }))
}

/// The ids of `ids=a,b,c`, trimmed: 400 without the parameter, 422 when
/// there are none or more than [`CustomerService::MAX_BATCH`]. Validation
/// of each id is the service's (422 too).
fn parse_ids(raw: Option<&str>) -> Result<Vec<String>, AppError> {
    let Some(raw) = raw else {
        return Err(AppError::BadRequest(
            "query parameter `ids` is required: 1 to 100 comma-separated customer ids".into(),
        ));
    };
    if raw.trim().is_empty() {
        return Err(AppError::Validation(
            "`ids` is empty: give 1 to 100 comma-separated customer ids".into(),
        ));
    }
    // One past the limit is enough to refuse, whatever the length.
    let ids: Vec<String> = raw
        .split(',')
        .take(CustomerService::MAX_BATCH + 1)
        .map(|id| id.trim().to_owned())
        .collect();
    if ids.len() > CustomerService::MAX_BATCH {
        return Err(AppError::Validation(format!(
            "at most {} customer ids per request",
            CustomerService::MAX_BATCH
        )));
    }
    Ok(ids)
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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    #[test]
    fn ids_are_split_and_trimmed_and_bounded() {
        assert_eq!(parse_ids(Some(" a , b,a ")).unwrap(), ["a", "b", "a"]);
        assert_eq!(parse_ids(Some("a,,b")).unwrap(), ["a", "", "b"]);
        let status = |raw| parse_ids(raw).unwrap_err().status();
        assert_eq!(status(None), StatusCode::BAD_REQUEST);
        assert_eq!(status(Some("")), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(status(Some(" \t")), StatusCode::UNPROCESSABLE_ENTITY);
        let hundred = vec!["x"; 100].join(",");
        assert_eq!(parse_ids(Some(&hundred)).unwrap().len(), 100);
        let over = format!("{hundred},x");
        assert_eq!(status(Some(&over)), StatusCode::UNPROCESSABLE_ENTITY);
    }
}
