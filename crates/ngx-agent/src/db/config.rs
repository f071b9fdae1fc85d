//! Repository of named agent configurations.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Database, DbError, json};
use crate::domain::{AgentConfig, validate_id};

const ENTITY: &str = "agent config";

/// Agent configurations. Obtained from [`Database::agent_configs`].
#[derive(Debug, Clone, Copy)]
pub struct AgentConfigRepo<'a> {
    db: &'a Database,
}

impl<'a> AgentConfigRepo<'a> {
    pub(crate) fn new(db: &'a Database) -> Self {
        Self { db }
    }

    /// The configuration called `name`, or [`DbError::NotFound`]. One query.
    #[tracing::instrument(name = "db.query", level = "info", skip_all, fields(db.operation = "agent_configs.get"))]
    pub async fn get(&self, name: &str) -> Result<AgentConfig, DbError> {
        validate_id("name", name)?;
        self.db.tick();
        let row = sqlx::query(
            "SELECT name, system_prompt, model, temperature, max_tokens, voice, greeting,
                    features, updated_at
             FROM agent_configs WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(self.db.pool())
        .await?
        .ok_or_else(|| DbError::not_found(ENTITY, name))?;
        from_row(&row)
    }

    /// Creates or replaces the configuration with its name. One query.
    pub async fn save(&self, config: &AgentConfig) -> Result<(), DbError> {
        config.validate()?;
        self.db.tick();
        sqlx::query(
            "INSERT INTO agent_configs
             (name, system_prompt, model, temperature, max_tokens, voice, greeting, features,
              updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (name) DO UPDATE SET system_prompt = excluded.system_prompt,
                model = excluded.model, temperature = excluded.temperature,
                max_tokens = excluded.max_tokens, voice = excluded.voice,
                greeting = excluded.greeting, features = excluded.features,
                updated_at = excluded.updated_at",
        )
        .bind(config.name.as_str())
        .bind(config.system_prompt.as_str())
        .bind(config.model.as_str())
        .bind(config.temperature)
        .bind(i64::from(config.max_tokens))
        .bind(config.voice.as_str())
        .bind(config.greeting.as_str())
        .bind(json::encode(ENTITY, &config.features)?)
        .bind(config.updated_at)
        .execute(self.db.pool())
        .await?;
        Ok(())
    }
}

fn from_row(row: &AnyRow) -> Result<AgentConfig, DbError> {
    let features: String = row.try_get("features")?;
    let max_tokens: i64 = row.try_get("max_tokens")?;
    let config = AgentConfig {
        name: row.try_get("name")?,
        system_prompt: row.try_get("system_prompt")?,
        model: row.try_get("model")?,
        temperature: row.try_get("temperature")?,
        max_tokens: u32::try_from(max_tokens).map_err(|e| DbError::corrupt(ENTITY, e))?,
        voice: row.try_get("voice")?,
        greeting: row.try_get("greeting")?,
        features: json::decode(ENTITY, &features)?,
        updated_at: row.try_get("updated_at")?,
    };
    config.validate().map_err(|e| DbError::corrupt(ENTITY, e))?;
    Ok(config)
}
