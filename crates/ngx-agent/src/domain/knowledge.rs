//! One article of the agent's knowledge base.

use serde::{Deserialize, Serialize};

use super::error::{check_millis, check_text};
use super::{ValidationError, validate_id};

/// A knowledge-base article, keyed by topic and cached under
/// `ngx:know:v1:{topic}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct KnowledgeEntry {
    /// The topic, an id ("pricing", "objection.price", ...).
    pub topic: String,
    /// Title shown to operators.
    pub title: String,
    /// The text the agent draws on.
    pub content: String,
    /// Search tags.
    pub tags: Vec<String>,
    /// Last change, unix milliseconds.
    pub updated_at: i64,
}

impl KnowledgeEntry {
    /// Checks every field.
    pub fn validate(&self) -> Result<(), ValidationError> {
        validate_id("topic", &self.topic)?;
        check_text("title", &self.title, 256)?;
        check_text("content", &self.content, 64 * 1024)?;
        for tag in &self.tags {
            check_text("tags", tag, 64)?;
        }
        check_millis("updated_at", self.updated_at)
    }
}
