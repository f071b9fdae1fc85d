//! Program recommendation over a profile and the catalog.
//!
//! # Model
//! For each program: `score = 0.6 × age_fit + 0.4 × goal_fit`, where
//! - `age_fit` is 1 inside the program's age window, falling linearly to 0
//!   fifteen years outside it, and 0.5 when the age is unknown;
//! - `goal_fit` is `(own + 1) / (own + other + 2)`, counting the goal words
//!   that point to this program (`own`) and to the other one (`other`).
//!
//! The best program wins (catalog order breaks ties) and the runner-up is
//! returned as the alternative. The tier follows the income band (unknown →
//! PRO, low → ESSENTIAL, middle → PRO, upper middle → ELITE, high →
//! PREMIUM), one step up for executive occupations and one down for
//! students; when the program does not sell that tier, the nearest cheaper
//! one (or else the cheapest) is taken.

use super::ComputeError;
use super::text::{fuzzy_eq, tokens};
use super::tier_tables::{LONGEVITY_WORDS, PRIME_WORDS};
use crate::domain::{
    CustomerProfile, IncomeBand, Program, ProgramRecommendation, ProgramType, Tier,
};

const EXECUTIVE: &[&str] = &[
    "founder",
    "ceo",
    "investor",
    "director",
    "surgeon",
    "entrepreneur",
];

/// Recommends a program and tier for `profile` from `catalog`.
pub fn recommend_program(
    profile: &CustomerProfile,
    catalog: &[Program],
) -> Result<ProgramRecommendation, ComputeError> {
    profile.validate()?;
    let (mut longevity, mut prime) = (0_u32, 0_u32);
    for tok in profile.goals.iter().flat_map(|g| tokens(g)) {
        longevity += u32::from(LONGEVITY_WORDS.iter().any(|w| fuzzy_eq(&tok, w)));
        prime += u32::from(PRIME_WORDS.iter().any(|w| fuzzy_eq(&tok, w)));
    }
    let mut scored: Vec<(&Program, f64)> = catalog
        .iter()
        .filter(|p| !p.tiers.is_empty())
        .map(|p| {
            let (own, other) = match p.program_type {
                ProgramType::Longevity => (longevity, prime),
                ProgramType::Prime => (prime, longevity),
            };
            let goal_fit = f64::from(own + 1) / f64::from(own + other + 2);
            (p, 0.6 * age_fit(profile.age, p) + 0.4 * goal_fit)
        })
        .collect();
    // Stable sort keeps catalog order among equal scores.
    scored.sort_by(|a, b| b.1.total_cmp(&a.1));
    let Some(&(program, score)) = scored.first() else {
        return Err(ComputeError::EmptyCatalog);
    };

    let mut reasons = Vec::new();
    match profile.age {
        Some(age) => reasons.push(format!(
            "age {age} against the {}-{} window of {}",
            program.min_age, program.max_age, program.name
        )),
        None => reasons.push("age unknown".to_owned()),
    }
    reasons.push(format!(
        "goals: {longevity} longevity and {prime} performance keywords"
    ));

    let mut wanted = match profile.income_band {
        IncomeBand::Unknown | IncomeBand::Middle => Tier::Pro,
        IncomeBand::Low => Tier::Essential,
        IncomeBand::UpperMiddle => Tier::Elite,
        IncomeBand::High => Tier::Premium,
    }
    .index();
    reasons.push(format!("income band {}", profile.income_band.as_str()));
    let occupation: Vec<String> = profile
        .occupation
        .as_deref()
        .map(tokens)
        .unwrap_or_default();
    if occupation
        .iter()
        .any(|t| EXECUTIVE.iter().any(|e| fuzzy_eq(t, e)))
    {
        wanted = (wanted + 1).min(Tier::ALL.len() - 1);
        reasons.push("executive occupation: one tier up".to_owned());
    } else if occupation.iter().any(|t| t == "student") {
        wanted = wanted.saturating_sub(1);
        reasons.push("student: one tier down".to_owned());
    }
    let tier = (0..=wanted)
        .rev()
        .find_map(|i| program.tier(Tier::ALL[i]))
        .or_else(|| program.tiers.iter().min_by_key(|t| t.monthly_price_cents))
        .ok_or(ComputeError::EmptyCatalog)?;

    let recommendation = ProgramRecommendation {
        program_type: program.program_type,
        tier: tier.tier,
        monthly_price_cents: tier.monthly_price_cents,
        score,
        alternative: scored.get(1).map(|(p, s)| (p.program_type, *s)),
        reasons,
    };
    recommendation.validate()?;
    Ok(recommendation)
}

fn age_fit(age: Option<u32>, program: &Program) -> f64 {
    let Some(age) = age else { return 0.5 };
    let distance = if age < program.min_age {
        program.min_age - age
    } else {
        age.saturating_sub(program.max_age)
    };
    (1.0 - f64::from(distance) / 15.0).max(0.0)
}

#[cfg(test)]
#[path = "recommend_tests.rs"]
mod tests;
