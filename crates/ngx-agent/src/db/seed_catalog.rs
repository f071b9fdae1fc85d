//! The fixed program catalog, knowledge base and agent configurations of
//! the seed, and their insertion.

use std::collections::BTreeMap;

use sqlx::{Any, Transaction};

use super::seed::EPOCH_MS;
use super::seed_text::KNOWLEDGE;
use super::{Database, DbError, json};
use crate::domain::{AgentConfig, Program, ProgramTier, ProgramType, Tier};

/// PRIME and LONGEVITY with four tiers each, prices in US cents.
pub(crate) fn programs() -> Vec<Program> {
    vec![
        Program {
            program_type: ProgramType::Prime,
            name: "NGX PRIME".into(),
            description: "Performance program for professionals: energy, focus, body \
                composition and stress resilience."
                .into(),
            min_age: 25,
            max_age: 50,
            tiers: tiers("PRIME"),
        },
        Program {
            program_type: ProgramType::Longevity,
            name: "NGX LONGEVITY".into(),
            description: "Healthy-ageing program: strength, mobility, bone density, metabolic \
                and cognitive health."
                .into(),
            min_age: 50,
            max_age: 120,
            tiers: tiers("LONGEVITY"),
        },
    ]
}

fn tiers(program: &str) -> Vec<ProgramTier> {
    let features = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect();
    vec![
        ProgramTier {
            tier: Tier::Essential,
            name: format!("{program} Essential"),
            monthly_price_cents: 7_900,
            features: features(&["AI agents", "daily plans", "weekly check-in"]),
        },
        ProgramTier {
            tier: Tier::Pro,
            name: format!("{program} Pro"),
            monthly_price_cents: 14_900,
            features: features(&[
                "everything in Essential",
                "monthly specialist review",
                "wearables",
            ]),
        },
        ProgramTier {
            tier: Tier::Elite,
            name: format!("{program} Elite"),
            monthly_price_cents: 19_900,
            features: features(&[
                "everything in Pro",
                "weekly coaching call",
                "quarterly labs",
            ]),
        },
        ProgramTier {
            tier: Tier::Premium,
            name: format!("{program} Premium Hybrid Coaching"),
            monthly_price_cents: 399_700,
            features: features(&["dedicated human coach", "full lab work-up", "20-week plan"]),
        },
    ]
}

/// The `default` agent configuration and a terser `concise` variant.
pub(crate) fn agent_configs(updated_at: i64) -> Vec<AgentConfig> {
    let features: BTreeMap<String, bool> = [
        ("tier_detection", true),
        ("roi_calculator", true),
        ("human_transfer", true),
        ("empathy_engine", true),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let default = AgentConfig {
        name: "default".into(),
        system_prompt: "You are the NGX sales consultant. Learn the customer's goals, recommend \
            PRIME or LONGEVITY and the tier that fits, and never invent prices."
            .into(),
        model: "gpt-4o".into(),
        temperature: 0.7,
        max_tokens: 800,
        voice: "nova".into(),
        greeting: "Hi, I'm the NGX consultant. What would you like to improve first?".into(),
        features: features.clone(),
        updated_at,
    };
    let concise = AgentConfig {
        name: "concise".into(),
        system_prompt: "You are the NGX sales consultant. Answer in two sentences at most.".into(),
        temperature: 0.3,
        max_tokens: 200,
        ..default.clone()
    };
    vec![default, concise]
}

impl Database {
    pub(super) async fn insert_catalog(
        &self,
        tx: &mut Transaction<'_, Any>,
    ) -> Result<usize, DbError> {
        let catalog = programs();
        for program in &catalog {
            self.tick();
            sqlx::query(
                "INSERT INTO programs (program_type, name, description, min_age, max_age)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (program_type) DO NOTHING",
            )
            .bind(program.program_type.as_str())
            .bind(program.name.as_str())
            .bind(program.description.as_str())
            .bind(i64::from(program.min_age))
            .bind(i64::from(program.max_age))
            .execute(&mut **tx)
            .await?;
            for (position, tier) in (0_i64..).zip(&program.tiers) {
                self.tick();
                sqlx::query(
                    "INSERT INTO program_tiers (program_type, tier, position, name,
                     monthly_price_cents, features) VALUES ($1, $2, $3, $4, $5, $6)
                     ON CONFLICT (program_type, tier) DO NOTHING",
                )
                .bind(program.program_type.as_str())
                .bind(tier.tier.as_str())
                .bind(position)
                .bind(tier.name.as_str())
                .bind(tier.monthly_price_cents)
                .bind(json::encode("program", &tier.features)?)
                .execute(&mut **tx)
                .await?;
            }
        }
        Ok(catalog.len())
    }

    pub(super) async fn insert_knowledge(
        &self,
        tx: &mut Transaction<'_, Any>,
    ) -> Result<usize, DbError> {
        for (topic, title, tags, content) in KNOWLEDGE {
            self.tick();
            sqlx::query(
                "INSERT INTO knowledge (topic, title, content, tags, updated_at)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (topic) DO NOTHING",
            )
            .bind(*topic)
            .bind(*title)
            .bind(*content)
            .bind(json::encode("knowledge entry", tags)?)
            .bind(EPOCH_MS)
            .execute(&mut **tx)
            .await?;
        }
        Ok(KNOWLEDGE.len())
    }

    pub(super) async fn insert_agent_configs(
        &self,
        tx: &mut Transaction<'_, Any>,
    ) -> Result<usize, DbError> {
        let configs = agent_configs(EPOCH_MS);
        for config in &configs {
            self.tick();
            sqlx::query(
                "INSERT INTO agent_configs (name, system_prompt, model, temperature, max_tokens,
                 voice, greeting, features, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT (name) DO NOTHING",
            )
            .bind(config.name.as_str())
            .bind(config.system_prompt.as_str())
            .bind(config.model.as_str())
            .bind(config.temperature)
            .bind(i64::from(config.max_tokens))
            .bind(config.voice.as_str())
            .bind(config.greeting.as_str())
            .bind(json::encode("agent config", &config.features)?)
            .bind(config.updated_at)
            .execute(&mut **tx)
            .await?;
        }
        Ok(configs.len())
    }
}
