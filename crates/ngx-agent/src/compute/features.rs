//! Features of a conversation for the logistic models.

use serde::{Deserialize, Serialize};

use super::text::{bigrams, fuzzy_eq, tokens};
use crate::domain::{ConversationPhase, ConversationState, Role};

const PRICE_WORDS: &[&str] = &[
    "price",
    "cost",
    "expensive",
    "afford",
    "cheap",
    "money",
    "pay",
    "budget",
    "caro",
    "precio",
];
const TIME_PHRASES: &[&str] = &["no time", "too busy", "busy", "travel", "schedule"];
const TRUST_PHRASES: &[&str] = &[
    "tried before",
    "burned",
    "scam",
    "guarantee",
    "not sure",
    "doubt",
];
const NEED_WORDS: &[&str] = &[
    "tired",
    "energy",
    "weight",
    "sleep",
    "stress",
    "pain",
    "mobility",
    "focus",
    "burnout",
    "health",
    "strength",
    "productivity",
];
const BUY_PHRASES: &[&str] = &[
    "sign up",
    "let's do",
    "how do i pay",
    "enrol",
    "enroll",
    "buy",
    "start today",
];

/// Numeric features of a conversation, each documented with its range.
/// Serialisable so its [`stable_hash`](super::stable_hash) can be the
/// `{input_hash}` of `ngx:pred:{model}:{input_hash}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationFeatures {
    /// `ln(1 + customer messages)`, 0 and up.
    pub user_turns: f64,
    /// Share of customer messages containing a question mark, 0..=1.
    pub question_rate: f64,
    /// Price words in customer messages (typo-tolerant), capped at 5, / 5.
    pub price_mentions: f64,
    /// 1 when the customer mentions lack of time, else 0.
    pub time_objection: f64,
    /// 1 when the customer expresses distrust, else 0.
    pub trust_objection: f64,
    /// Need words (energy, sleep, stress...), capped at 5, / 5.
    pub need_signals: f64,
    /// 1 when the customer asks how to buy, else 0.
    pub buy_signals: f64,
    /// The stored lead score, 0..=1.
    pub lead_score: f64,
    /// Funnel position: phase index / 5, 0..=1.
    pub phase_progress: f64,
    /// 1 when a human transfer was requested, else 0.
    pub human_transfer: f64,
}

impl ConversationFeatures {
    /// The features as `(name, value)` pairs in declaration order.
    pub fn pairs(&self) -> [(&'static str, f64); 10] {
        [
            ("user_turns", self.user_turns),
            ("question_rate", self.question_rate),
            ("price_mentions", self.price_mentions),
            ("time_objection", self.time_objection),
            ("trust_objection", self.trust_objection),
            ("need_signals", self.need_signals),
            ("buy_signals", self.buy_signals),
            ("lead_score", self.lead_score),
            ("phase_progress", self.phase_progress),
            ("human_transfer", self.human_transfer),
        ]
    }
}

/// Extracts the features from a conversation's customer messages and state.
pub fn extract_features(state: &ConversationState) -> ConversationFeatures {
    let user: Vec<&str> = state.user_messages().map(|m| m.content.as_str()).collect();
    let turns = user.len();
    let questions = user.iter().filter(|m| m.contains('?')).count();
    let (mut price, mut need) = (0_usize, 0_usize);
    let (mut time, mut trust, mut buy) = (false, false, false);
    for text in &user {
        let toks = tokens(text);
        let grams: Vec<String> = toks.iter().cloned().chain(bigrams(&toks)).collect();
        price += toks
            .iter()
            .filter(|t| PRICE_WORDS.iter().any(|w| fuzzy_eq(t, w)))
            .count();
        need += toks
            .iter()
            .filter(|t| NEED_WORDS.iter().any(|w| fuzzy_eq(t, w)))
            .count();
        let lower = text.to_lowercase();
        time |= grams.iter().any(|g| TIME_PHRASES.contains(&g.as_str()));
        trust |= TRUST_PHRASES.iter().any(|p| lower.contains(p));
        buy |= BUY_PHRASES.iter().any(|p| lower.contains(p));
    }
    let phase = ConversationPhase::ALL
        .iter()
        .position(|p| *p == state.phase)
        .unwrap_or(0);
    ConversationFeatures {
        user_turns: ratio(turns, 1).ln_1p(),
        question_rate: if turns == 0 {
            0.0
        } else {
            ratio(questions, turns)
        },
        price_mentions: ratio(price.min(5), 5),
        time_objection: f64::from(u8::from(time)),
        trust_objection: f64::from(u8::from(trust)),
        need_signals: ratio(need.min(5), 5),
        buy_signals: f64::from(u8::from(buy)),
        lead_score: state.lead_score,
        phase_progress: ratio(phase, 5),
        human_transfer: f64::from(u8::from(
            state.human_transfer_needed || state.messages.iter().any(|m| m.role == Role::System),
        )),
    }
}

/// `a / b` for small counts, exact in f64.
fn ratio(a: usize, b: usize) -> f64 {
    let a = u32::try_from(a).unwrap_or(u32::MAX);
    let b = u32::try_from(b).unwrap_or(u32::MAX).max(1);
    f64::from(a) / f64::from(b)
}
