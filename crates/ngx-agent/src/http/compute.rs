//! The computed resources: tier detection, predictions, program
//! recommendations and ROI.

use axum::extract::State;
use serde::Deserialize;
use utoipa::ToSchema;

use super::extract::{Json, Path};
use super::{AppError, AppState};
use crate::domain::{
    MAX_MESSAGE_LEN, ModelKind, Prediction, ProgramRecommendation, ProgramType, RoiCalculation,
    RoiInput, Tier, TierDetectionResult, ValidationError,
};

/// Body of `POST /tier-detection`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DetectTier {
    /// An existing customer.
    #[schema(example = "cust-00001")]
    pub customer_id: String,
    /// What the customer just said, 1 to 16,384 characters.
    #[schema(example = "I run a clinic and need my energy back, price is not the issue")]
    pub message: String,
    /// The conversation whose history to take into account; it must be
    /// this customer's (another customer's conversation is a 404).
    #[schema(example = "conv-00001")]
    pub conversation_id: Option<String>,
}

/// Body of `POST /predictions/{model}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PredictRequest {
    /// The conversation to score.
    #[schema(example = "conv-00001")]
    pub conversation_id: String,
}

/// Body of `POST /programs/recommendations`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecommendRequest {
    /// The customer to recommend a program to.
    #[schema(example = "cust-00001")]
    pub customer_id: String,
}

/// Body of `POST /roi`: what a consultant tells the agent about their work.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoiRequest {
    /// Profession in free text.
    #[schema(example = "lawyer")]
    pub profession: String,
    /// US dollars per hour, 0.01 to 10,000.
    #[schema(example = 250.0)]
    pub hourly_rate: f64,
    /// 0.1 to 100.
    #[schema(example = 30.0)]
    pub billable_hours_per_week: f64,
    /// 1 to 52.
    #[schema(example = 46.0)]
    pub weeks_per_year: f64,
    /// `PRIME` or `LONGEVITY`.
    #[schema(example = "PRIME")]
    pub program_type: ProgramType,
    /// `ESSENTIAL`, `PRO`, `ELITE` or `PREMIUM`.
    #[schema(example = "PRO")]
    pub tier: Tier,
}

/// Detects the service tier that fits the customer (cached 30 min by
/// customer and context hash).
#[utoipa::path(
    post, path = "/tier-detection", operation_id = "detect_tier", tag = "sales",
    request_body = DetectTier,
    responses(
        (status = 200, description = "Tier, confidence, scores and reasons", body = crate::domain::TierDetectionResult),
        (status = 404, description = "Unknown customer, or a conversation that is not this customer's", body = super::ErrorBody),
        (status = 422, description = "Invalid input", body = super::ErrorBody),
    )
)]
pub(crate) async fn detect_tier(
    State(state): State<AppState>,
    Json(req): Json<DetectTier>,
) -> Result<Json<TierDetectionResult>, AppError> {
    if req.message.trim().is_empty() || req.message.chars().count() > MAX_MESSAGE_LEN {
        return Err(ValidationError::new(
            "message",
            format!("must be 1..={MAX_MESSAGE_LEN} characters of text"),
        )
        .into());
    }
    Ok(Json(
        state
            .services()
            .tiers
            .detect(
                &req.customer_id,
                &req.message,
                req.conversation_id.as_deref(),
            )
            .await?,
    ))
}

/// Scores a conversation with one model: `objection`, `needs` or
/// `conversion` (cached 5 min by model and feature hash).
#[utoipa::path(
    post, path = "/predictions/{model}", operation_id = "predict", tag = "sales",
    params(("model" = String, Path, description = "`objection`, `needs` or `conversion`", example = "conversion")),
    request_body = PredictRequest,
    responses(
        (status = 200, description = "Score, label and features", body = crate::domain::Prediction),
        (status = 404, description = "Unknown model or conversation", body = super::ErrorBody),
        (status = 422, description = "Invalid input", body = super::ErrorBody),
    )
)]
pub(crate) async fn predict(
    State(state): State<AppState>,
    Path(model): Path<String>,
    Json(req): Json<PredictRequest>,
) -> Result<Json<Prediction>, AppError> {
    let model = ModelKind::parse(&model).map_err(|_| {
        AppError::NotFound(format!(
            "unknown model {model:?}; the models are objection, needs and conversion"
        ))
    })?;
    Ok(Json(
        state
            .services()
            .predictions
            .predict(model, &req.conversation_id)
            .await?,
    ))
}

/// The program and tier recommended for a customer (cached 1 h by
/// profile hash).
#[utoipa::path(
    post, path = "/programs/recommendations", operation_id = "recommend_program", tag = "sales",
    request_body = RecommendRequest,
    responses(
        (status = 200, description = "Program, tier, price, score and reasons", body = crate::domain::ProgramRecommendation),
        (status = 404, description = "Unknown customer", body = super::ErrorBody),
        (status = 422, description = "Invalid input", body = super::ErrorBody),
    )
)]
pub(crate) async fn recommend(
    State(state): State<AppState>,
    Json(req): Json<RecommendRequest>,
) -> Result<Json<ProgramRecommendation>, AppError> {
    Ok(Json(
        state
            .services()
            .programs
            .recommend(&req.customer_id)
            .await?,
    ))
}

/// The consultant ROI of a program tier (cached 10 min by metrics hash).
#[utoipa::path(
    post, path = "/roi", operation_id = "calculate_roi", tag = "sales",
    request_body = RoiRequest,
    responses(
        (status = 200, description = "Value, cost, net benefit, ROI and payback", body = crate::domain::RoiCalculation),
        (status = 422, description = "Out-of-range metrics", body = super::ErrorBody),
    )
)]
pub(crate) async fn roi(
    State(state): State<AppState>,
    Json(req): Json<RoiRequest>,
) -> Result<Json<RoiCalculation>, AppError> {
    let input = RoiInput {
        profession: req.profession,
        hourly_rate: req.hourly_rate,
        billable_hours_per_week: req.billable_hours_per_week,
        weeks_per_year: req.weeks_per_year,
        program_type: req.program_type,
        tier: req.tier,
    };
    Ok(Json(state.services().programs.roi(input).await?))
}
