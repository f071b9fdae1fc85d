//! The fixed program catalog and agent configurations of the seed.

use std::collections::BTreeMap;

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
