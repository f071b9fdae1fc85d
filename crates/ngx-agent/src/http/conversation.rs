//! `/conversations`: create, read, append a message.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ngx_cache::Shared;
use serde::Deserialize;
use utoipa::ToSchema;

use super::extract::{Json, Path};
use super::{AppError, AppState, now_millis};
use crate::domain::{ConversationState, Message, ProgramType, Role};

/// Body of `POST /conversations`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateConversation {
    /// Id of the new conversation (`[A-Za-z0-9_.-]`, at most 128 bytes);
    /// generated when absent.
    #[schema(example = "conv-demo-1")]
    pub conversation_id: Option<String>,
    /// An existing customer.
    #[schema(example = "cust-00001")]
    pub customer_id: String,
    /// `PRIME` or `LONGEVITY`; by default chosen from the customer's age
    /// (50 and over: LONGEVITY).
    #[schema(example = "PRIME")]
    pub program_type: Option<ProgramType>,
    /// The customer's first message, stored as the first user message.
    #[schema(example = "Hi, I want more energy at work")]
    pub initial_message: Option<String>,
}

/// Body of `POST /conversations/{id}/messages`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AppendMessage {
    /// `user` (default), `assistant` or `system`.
    #[schema(example = "user")]
    pub role: Option<Role>,
    /// The text, 1 to 16,384 characters.
    #[schema(example = "How much does the PRO tier cost?")]
    pub content: String,
}

/// Creates a conversation for an existing customer.
#[utoipa::path(
    post, path = "/conversations", operation_id = "create_conversation", tag = "conversations",
    request_body = CreateConversation,
    responses(
        (status = 201, description = "The new conversation state", body = crate::domain::ConversationState),
        (status = 404, description = "Unknown customer", body = super::ErrorBody),
        (status = 409, description = "The id is taken", body = super::ErrorBody),
        (status = 422, description = "Invalid input", body = super::ErrorBody),
    )
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    Json(req): Json<CreateConversation>,
) -> Result<Response, AppError> {
    let services = state.services();
    let profile = services.customers.get(&req.customer_id).await?;
    let now = now_millis();
    let id = req
        .conversation_id
        .unwrap_or_else(|| format!("conv-{:016x}", rand::random::<u64>()));
    let program = req.program_type.unwrap_or(match profile.age {
        Some(age) if age >= 50 => ProgramType::Longevity,
        _ => ProgramType::Prime,
    });
    let mut conversation = ConversationState::new(
        id,
        profile.to_info(req.initial_message.clone()),
        program,
        now,
    )?;
    if let Some(text) = req.initial_message {
        conversation
            .messages
            .push(Message::new(Role::User, text, now)?);
    }
    services.conversations.create(&conversation).await?;
    let location =
        HeaderValue::from_str(&format!("/conversations/{}", conversation.conversation_id))
            .map_err(|e| AppError::Internal(e.to_string()))?;
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(conversation),
    )
        .into_response())
}

/// The conversation state (cached 30 min, invalidated on every write).
#[utoipa::path(
    get, path = "/conversations/{id}", operation_id = "get_conversation", tag = "conversations",
    params(("id" = String, Path, description = "Conversation id", example = "conv-00001")),
    responses(
        (status = 200, description = "The conversation state", body = crate::domain::ConversationState),
        (status = 404, description = "Unknown conversation", body = super::ErrorBody),
        (status = 422, description = "Invalid id", body = super::ErrorBody),
    )
)]
pub(crate) async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    shared_json(&state.services().conversations.get_shared(&id).await?)
}

/// A 200 with the value's memoized JSON: on a cache hit, no copy and no
/// serialization.
fn shared_json<T: serde::Serialize>(value: &Shared<T>) -> Result<Response, AppError> {
    let body = value
        .json()
        .map_err(|e| AppError::Internal(format!("rendering JSON: {e}")))?;
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response())
}

/// Appends a message and returns the new state.
#[utoipa::path(
    post, path = "/conversations/{id}/messages", operation_id = "append_message", tag = "conversations",
    params(("id" = String, Path, description = "Conversation id", example = "conv-00001")),
    request_body = AppendMessage,
    responses(
        (status = 200, description = "The conversation state with the new message", body = crate::domain::ConversationState),
        (status = 404, description = "Unknown conversation", body = super::ErrorBody),
        (status = 422, description = "Invalid input", body = super::ErrorBody),
    )
)]
pub(crate) async fn append(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(req): Json<AppendMessage>,
) -> Result<Json<ConversationState>, AppError> {
    let message = Message::new(req.role.unwrap_or(Role::User), req.content, now_millis())?;
    let services = state.services();
    let appended = services.conversations.append_message(&id, &message).await?;
    // Predictions are keyed by the conversation's state, so the append made
    // every cached one unreachable: compute the new ones now, after the
    // answer's state is known and without holding the answer back.
    let predictions = services.predictions.clone();
    let fresh = appended.clone();
    tokio::spawn(async move {
        predictions.refresh(fresh).await;
    });
    Ok(Json(appended))
}
