//! Tier detection: explainable keyword scoring over the current message,
//! the profile and the conversation history.
//!
//! # Model
//! 1. The history and the current message are cut into segments, each with a
//!    base weight: current message 2.0, user 1.0, assistant 0.25, system 0;
//!    older segments decay by 0.85 per step back.
//! 2. Every segment is tokenised; every token is matched against
//!    [`WORDS`](super::tier_tables::WORDS) with typo tolerance (Levenshtein,
//!    see `text::fuzzy_eq`), after every trigram and bigram was matched
//!    against `PHRASES` exactly (words inside a matched phrase are not
//!    counted twice). A segment's vector is the sum of matched weights.
//! 3. Three passes re-weight segments by their cosine agreement with the
//!    previous pass's total, so one off-hand remark ("that's expensive")
//!    counts less when the rest of the conversation points elsewhere.
//! 4. Profile priors are added: occupation, income band, age, engagement.
//! 5. A softmax (temperature 4) over the four scores gives the confidence of
//!    the best tier.
//!
//! Reasons list the strongest contributions to the chosen tier.
//!
//! # Cost
//! Measured with `cargo test --release -p ngx-agent --lib tier::tests::cost
//! -- --nocapture` on the shared 2-core development machine while other
//! builds ran (load average about 10): about 0.12 ms per call for a
//! 4-message history, 2.1 ms for 40 messages and 14 ms for 200 messages.
//! Most of it is typo-tolerant matching (a Levenshtein check of every token
//! against every keyword). It grows with the words in the history, which
//! is why results are cached per customer and context hash.

use std::collections::BTreeMap;

use serde::Serialize;

use super::ComputeError;
use super::text::{bigrams, fuzzy_eq, tokens, trigrams};
use super::tier_tables::{
    INCOME, LONGEVITY_WORDS, OCCUPATIONS, PHRASES, PRIME_WORDS, WORDS, Weights,
};
use crate::domain::{
    CustomerProfile, Message, ProgramType, Role, Tier, TierDetectionResult, ValidationError,
};

/// Base rates before any evidence: PRO is the most common purchase.
const PRIOR: Weights = [0.3, 0.5, 0.2, 0.0];
const CURRENT_WEIGHT: f64 = 2.0;
const RECENCY_DECAY: f64 = 0.85;
const PASSES: usize = 3;
const MAX_REASONS: usize = 5;
/// Softmax temperature: evidence sums reach tens, so scores are divided by
/// this before the softmax to keep confidences calibrated.
const TEMPERATURE: f64 = 4.0;

/// Everything tier detection looks at. Serialisable so its
/// [`stable_hash`](super::stable_hash) can be the `{context_hash}` of
/// `ngx:tier:{customer_id}:{context_hash}`.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct TierInput<'a> {
    /// What the customer just said.
    pub message: &'a str,
    /// The customer's profile.
    pub profile: &'a CustomerProfile,
    /// Earlier messages, oldest first.
    pub history: &'a [Message],
}

/// One scored piece of evidence.
struct Segment {
    weight: f64,
    vector: Weights,
    hits: Vec<(&'static str, String, Weights)>,
}

/// Detects the tier that fits, with a confidence and reasons. Pure and
/// deterministic. Errors only on invalid input (an empty message or an
/// invalid profile).
pub fn detect_tier(input: &TierInput<'_>) -> Result<TierDetectionResult, ComputeError> {
    if input.message.trim().is_empty() {
        return Err(ValidationError::new("message", "must not be empty").into());
    }
    input.profile.validate()?;

    let mut texts: Vec<(f64, &str)> = input
        .history
        .iter()
        .map(|m| (role_weight(m.role), m.content.as_str()))
        .collect();
    texts.push((CURRENT_WEIGHT, input.message));
    let n = texts.len();
    let segments: Vec<Segment> = texts
        .iter()
        .enumerate()
        .map(|(i, (w, text))| score_segment(*w * RECENCY_DECAY.powi(exponent(n - 1 - i)), text))
        .collect();

    let mut weights: Vec<f64> = segments.iter().map(|s| s.weight).collect();
    let mut total = weighted_sum(&segments, &weights);
    for _ in 1..PASSES {
        weights = segments
            .iter()
            .map(|s| s.weight * (1.0 + cosine(&s.vector, &total)))
            .collect();
        total = weighted_sum(&segments, &weights);
    }

    let mut contributions: BTreeMap<String, Weights> = BTreeMap::new();
    for (segment, w) in segments.iter().zip(&weights) {
        for (label, matched, v) in &segment.hits {
            add(
                contributions
                    .entry(format!("{label} (\"{matched}\")"))
                    .or_insert([0.0; 4]),
                v,
                *w,
            );
        }
    }
    let profile = profile_evidence(input.profile, input.history);
    let mut scores = PRIOR;
    add(&mut scores, &total, 1.0);
    for (label, v) in profile {
        add(&mut scores, &v, 1.0);
        add(contributions.entry(label).or_insert([0.0; 4]), &v, 1.0);
    }

    let best = (0..4).fold(0, |b, i| if scores[i] > scores[b] { i } else { b });
    let tier = Tier::ALL[best];
    let confidence = softmax(&scores)[best];
    let mut ranked: Vec<(String, f64)> = contributions
        .into_iter()
        .map(|(label, v)| (label, v[best]))
        .filter(|(_, c)| *c > 0.0)
        .collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let reasons = ranked
        .into_iter()
        .take(MAX_REASONS)
        .map(|(label, c)| format!("{label}: +{c:.2} for {}", tier.as_str()))
        .collect();

    let result = TierDetectionResult {
        tier,
        program_type: program_type(input),
        confidence,
        scores: Tier::ALL.into_iter().zip(scores).collect(),
        reasons,
    };
    result.validate()?;
    Ok(result)
}

fn role_weight(role: Role) -> f64 {
    match role {
        Role::User => 1.0,
        Role::Assistant => 0.25,
        Role::System => 0.0,
    }
}

fn exponent(steps_back: usize) -> i32 {
    i32::try_from(steps_back).unwrap_or(i32::MAX)
}

/// Matches one text against the word and phrase tables.
fn score_segment(weight: f64, text: &str) -> Segment {
    let toks = tokens(text);
    let mut segment = Segment {
        weight,
        vector: [0.0; 4],
        hits: Vec::new(),
    };
    if weight == 0.0 {
        return segment;
    }
    // Phrases first (longest first); their words are then not counted again.
    let mut used = vec![false; toks.len()];
    for (len, grams) in [(3, trigrams(&toks)), (2, bigrams(&toks))] {
        for (start, gram) in grams.into_iter().enumerate() {
            if used[start..start + len].iter().any(|u| *u) {
                continue;
            }
            if let Some((_, label, v)) = PHRASES.iter().find(|(p, _, _)| *p == gram) {
                used[start..start + len].iter_mut().for_each(|u| *u = true);
                add(&mut segment.vector, v, 1.0);
                segment.hits.push((label, gram, *v));
            }
        }
    }
    for (tok, _) in toks.iter().zip(&used).filter(|(_, used)| !**used) {
        let exact = WORDS.iter().find(|(kw, _, _)| kw == tok);
        let matched = exact.or_else(|| WORDS.iter().find(|(kw, _, _)| fuzzy_eq(tok, kw)));
        if let Some((_, label, v)) = matched {
            add(&mut segment.vector, v, 1.0);
            segment.hits.push((label, tok.clone(), *v));
        }
    }
    segment
}

/// Occupation, income, age and engagement priors, with their labels.
fn profile_evidence(profile: &CustomerProfile, history: &[Message]) -> Vec<(String, Weights)> {
    let mut out = Vec::new();
    if let Some(occupation) = &profile.occupation {
        for tok in tokens(occupation) {
            if let Some((kw, v)) = OCCUPATIONS.iter().find(|(kw, _)| fuzzy_eq(&tok, kw)) {
                out.push((format!("occupation \"{kw}\""), *v));
            }
        }
    }
    let band = crate::domain::IncomeBand::ALL
        .iter()
        .position(|b| *b == profile.income_band)
        .unwrap_or(0);
    if INCOME[band] != [0.0; 4] {
        out.push((
            format!("income band {}", profile.income_band.as_str()),
            INCOME[band],
        ));
    }
    match profile.age {
        Some(age) if age < 25 => out.push((format!("age {age}"), [0.5, 0.2, -0.2, -0.5])),
        Some(age) if (35..=60).contains(&age) => {
            out.push((
                format!("age {age}, peak earning years"),
                [-0.1, 0.1, 0.2, 0.2],
            ));
        }
        _ => {}
    }
    let user_turns = history.iter().filter(|m| m.role == Role::User).count();
    if user_turns >= 4 {
        out.push((
            format!("engaged conversation ({user_turns} customer messages)"),
            [-0.2, 0.0, 0.3, 0.2],
        ));
    }
    out
}

/// LONGEVITY when age and vocabulary point there, PRIME otherwise.
fn program_type(input: &TierInput<'_>) -> ProgramType {
    let mut longevity = 0.0;
    let mut prime = 0.0;
    match input.profile.age {
        Some(age) if age >= 50 => longevity += 2.0,
        Some(age) if age < 45 => prime += 1.0,
        _ => {}
    }
    let texts = input
        .profile
        .goals
        .iter()
        .map(String::as_str)
        .chain(
            input
                .history
                .iter()
                .filter(|m| m.role == Role::User)
                .map(|m| m.content.as_str()),
        )
        .chain(std::iter::once(input.message));
    for text in texts {
        for tok in tokens(text) {
            longevity += f64::from(u8::from(LONGEVITY_WORDS.iter().any(|w| fuzzy_eq(&tok, w))));
            prime += f64::from(u8::from(PRIME_WORDS.iter().any(|w| fuzzy_eq(&tok, w))));
        }
    }
    if longevity > prime {
        ProgramType::Longevity
    } else {
        ProgramType::Prime
    }
}

fn add(into: &mut Weights, v: &Weights, factor: f64) {
    for (a, b) in into.iter_mut().zip(v) {
        *a += b * factor;
    }
}

fn weighted_sum(segments: &[Segment], weights: &[f64]) -> Weights {
    let mut total = [0.0; 4];
    for (s, w) in segments.iter().zip(weights) {
        add(&mut total, &s.vector, *w);
    }
    total
}

/// Cosine similarity; 0 when either vector is zero.
fn cosine(a: &Weights, b: &Weights) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &Weights| v.iter().map(|x| x * x).sum::<f64>().sqrt();
    let denom = norm(a) * norm(b);
    if denom == 0.0 { 0.0 } else { dot / denom }
}

fn softmax(scores: &Weights) -> Weights {
    let max = scores.iter().copied().fold(f64::MIN, f64::max);
    let exps = scores.map(|s| ((s - max) / TEMPERATURE).exp());
    let sum: f64 = exps.iter().sum();
    exps.map(|e| e / sum)
}

#[cfg(test)]
#[path = "tier_tests.rs"]
mod tests;
