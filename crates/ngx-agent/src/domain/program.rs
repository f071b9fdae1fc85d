//! The program catalog: PRIME and LONGEVITY, each sold in tiers.

use serde::{Deserialize, Serialize};

use super::ValidationError;
use super::error::{check_range, check_text};

/// The two NGX programs.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "UPPERCASE")]
pub enum ProgramType {
    /// Performance program for professionals, roughly 25 to 50 years old.
    Prime,
    /// Healthy-ageing program, roughly 50 and over.
    Longevity,
}

impl ProgramType {
    /// Both programs.
    pub const ALL: [ProgramType; 2] = [Self::Prime, Self::Longevity];

    /// `"PRIME"` or `"LONGEVITY"`, as in JSON and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Prime => "PRIME",
            Self::Longevity => "LONGEVITY",
        }
    }

    /// Parses `"PRIME"` or `"LONGEVITY"`.
    pub fn parse(value: &str) -> Result<Self, ValidationError> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str() == value)
            .ok_or_else(|| {
                ValidationError::new("program_type", format!("unknown program {value:?}"))
            })
    }
}

/// A service tier, cheapest first.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "UPPERCASE")]
pub enum Tier {
    /// AI agents only.
    Essential,
    /// AI agents plus monthly reviews.
    Pro,
    /// AI agents plus weekly coaching.
    Elite,
    /// Hybrid coaching with a dedicated human coach.
    Premium,
}

impl Tier {
    /// Every tier, cheapest first.
    pub const ALL: [Tier; 4] = [Self::Essential, Self::Pro, Self::Elite, Self::Premium];

    /// The uppercase name used in JSON and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Essential => "ESSENTIAL",
            Self::Pro => "PRO",
            Self::Elite => "ELITE",
            Self::Premium => "PREMIUM",
        }
    }

    /// Parses the name written by [`Tier::as_str`].
    pub fn parse(value: &str) -> Result<Self, ValidationError> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == value)
            .ok_or_else(|| ValidationError::new("tier", format!("unknown tier {value:?}")))
    }

    /// Position in [`Tier::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// One tier of a program with its price.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProgramTier {
    /// Which tier.
    pub tier: Tier,
    /// Marketing name.
    pub name: String,
    /// Monthly price in US cents (integer, so no rounding drift).
    pub monthly_price_cents: i64,
    /// What the tier includes.
    pub features: Vec<String>,
}

/// A program with its tiers, cheapest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Program {
    /// PRIME or LONGEVITY.
    pub program_type: ProgramType,
    /// Marketing name.
    pub name: String,
    /// One-paragraph description.
    pub description: String,
    /// Youngest target age.
    pub min_age: u32,
    /// Oldest target age.
    pub max_age: u32,
    /// The tiers, cheapest first.
    pub tiers: Vec<ProgramTier>,
}

impl Program {
    /// Checks names, the age window and that every price is positive.
    pub fn validate(&self) -> Result<(), ValidationError> {
        check_text("name", &self.name, 128)?;
        check_text("description", &self.description, 4096)?;
        if self.min_age > self.max_age {
            return Err(ValidationError::new("min_age", "is above max_age"));
        }
        if self.tiers.is_empty() {
            return Err(ValidationError::new("tiers", "must not be empty"));
        }
        for tier in &self.tiers {
            check_text("tiers.name", &tier.name, 128)?;
            if tier.monthly_price_cents <= 0 {
                return Err(ValidationError::new(
                    "tiers.monthly_price_cents",
                    "must be > 0",
                ));
            }
        }
        Ok(())
    }

    /// The entry for `tier`, if the program sells it.
    pub fn tier(&self, tier: Tier) -> Option<&ProgramTier> {
        self.tiers.iter().find(|t| t.tier == tier)
    }
}

/// The output of the program recommender, cached under
/// `ngx:prog:rec:v1:{profile_hash}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProgramRecommendation {
    /// The program chosen.
    pub program_type: ProgramType,
    /// The tier chosen within it.
    pub tier: Tier,
    /// Its monthly price in US cents.
    pub monthly_price_cents: i64,
    /// Fit score, 0..=1.
    pub score: f64,
    /// Runner-up program and its score, for the agent's fallback pitch.
    pub alternative: Option<(ProgramType, f64)>,
    /// Why, in plain sentences.
    pub reasons: Vec<String>,
}

impl ProgramRecommendation {
    /// Checks the score range and the price.
    pub fn validate(&self) -> Result<(), ValidationError> {
        check_range("score", self.score, 0.0, 1.0)?;
        if self.monthly_price_cents <= 0 {
            return Err(ValidationError::new("monthly_price_cents", "must be > 0"));
        }
        Ok(())
    }
}
