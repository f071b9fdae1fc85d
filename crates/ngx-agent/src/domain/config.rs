//! The agent's runtime configuration, stored by name.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::error::{check_millis, check_range, check_text};
use super::{ValidationError, validate_id};

/// A named agent configuration, cached under `ngx:conf:agent:v1:{name}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AgentConfig {
    /// The configuration's name, an id ("default").
    pub name: String,
    /// The system prompt given to the language model.
    pub system_prompt: String,
    /// Language model identifier.
    pub model: String,
    /// Sampling temperature, 0..=2.
    pub temperature: f64,
    /// Longest answer, in tokens (1..=32,768).
    pub max_tokens: u32,
    /// Text-to-speech voice identifier.
    pub voice: String,
    /// The first sentence the agent says.
    pub greeting: String,
    /// Feature switches by name.
    pub features: BTreeMap<String, bool>,
    /// Last change, unix milliseconds.
    pub updated_at: i64,
}

impl AgentConfig {
    /// Checks every field.
    pub fn validate(&self) -> Result<(), ValidationError> {
        validate_id("name", &self.name)?;
        check_text("system_prompt", &self.system_prompt, 64 * 1024)?;
        check_text("model", &self.model, 128)?;
        check_range("temperature", self.temperature, 0.0, 2.0)?;
        if !(1..=32_768).contains(&self.max_tokens) {
            return Err(ValidationError::new("max_tokens", "must be 1..=32768"));
        }
        check_text("voice", &self.voice, 128)?;
        check_text("greeting", &self.greeting, 1024)?;
        check_millis("updated_at", self.updated_at)
    }
}
