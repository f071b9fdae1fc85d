//! Agent configuration and knowledge base reads.

use axum::extract::State;
use serde::Deserialize;
use utoipa::IntoParams;

use super::extract::{Json, Path, Query};
use super::{AppError, AppState};
use crate::domain::{AgentConfig, KnowledgeEntry};

/// Query of `GET /config/agent`.
#[derive(Debug, Deserialize, IntoParams)]
pub struct AgentConfigQuery {
    /// The configuration's name; `default` when absent.
    pub name: Option<String>,
}

/// An agent configuration (cached 2 h).
#[utoipa::path(
    get, path = "/config/agent", operation_id = "get_agent_config", tag = "content",
    params(AgentConfigQuery),
    responses(
        (status = 200, description = "The configuration", body = crate::domain::AgentConfig),
        (status = 404, description = "Unknown configuration", body = super::ErrorBody),
        (status = 422, description = "Invalid name", body = super::ErrorBody),
    )
)]
pub(crate) async fn agent_config(
    State(state): State<AppState>,
    Query(q): Query<AgentConfigQuery>,
) -> Result<Json<AgentConfig>, AppError> {
    let name = q.name.as_deref().unwrap_or("default");
    Ok(Json(state.services().content.agent_config(name).await?))
}

/// A knowledge-base article (cached 24 h).
#[utoipa::path(
    get, path = "/knowledge/{topic}", operation_id = "get_knowledge", tag = "content",
    params(("topic" = String, Path, description = "Topic id", example = "pricing")),
    responses(
        (status = 200, description = "The article", body = crate::domain::KnowledgeEntry),
        (status = 404, description = "Unknown topic", body = super::ErrorBody),
        (status = 422, description = "Invalid topic", body = super::ErrorBody),
    )
)]
pub(crate) async fn knowledge(
    State(state): State<AppState>,
    Path(topic): Path<String>,
) -> Result<Json<KnowledgeEntry>, AppError> {
    Ok(Json(state.services().content.knowledge(&topic).await?))
}
