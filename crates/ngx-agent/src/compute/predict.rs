//! Fixed logistic models for objection, needs and conversion.
//!
//! Each model is `score = 1 / (1 + exp(-(bias + Σ weight_i × feature_i)))`
//! over [`ConversationFeatures`]. The weights are fixed by hand (they stand
//! in for a trained model whose coefficients are shipped with the release):
//!
//! | feature         | objection | needs | conversion |
//! |-----------------|----------:|------:|-----------:|
//! | bias            |     -1.5  | -1.2  |      -2.0  |
//! | user_turns      |      0.3  |  0.4  |       0.5  |
//! | question_rate   |      0.8  |  0.3  |       0.2  |
//! | price_mentions  |      2.5  |  0.0  |      -1.2  |
//! | time_objection  |      1.5  |  0.0  |      -0.8  |
//! | trust_objection |      1.8  |  0.0  |      -1.0  |
//! | need_signals    |     -0.3  |  3.0  |       1.2  |
//! | buy_signals     |     -1.5  |  0.5  |       2.5  |
//! | lead_score      |     -0.5  |  0.5  |       2.0  |
//! | phase_progress  |      0.4  |  0.2  |       1.0  |
//! | human_transfer  |      0.6  |  0.0  |      -0.5  |
//!
//! Labels: score >= 0.66 is `likely`, >= 0.33 `possible`, else `unlikely`.

use std::collections::BTreeMap;

use super::ConversationFeatures;
use crate::domain::{ModelKind, Prediction};

/// One logistic model: a bias and one weight per feature, in
/// [`ConversationFeatures::pairs`] order.
#[derive(Debug, Clone, PartialEq)]
pub struct LogisticModel {
    /// Which model this is.
    pub kind: ModelKind,
    /// The intercept.
    pub bias: f64,
    /// Weight of each feature, by feature name.
    pub weights: [(&'static str, f64); 10],
}

const OBJECTION: LogisticModel = LogisticModel {
    kind: ModelKind::Objection,
    bias: -1.5,
    weights: [
        ("user_turns", 0.3),
        ("question_rate", 0.8),
        ("price_mentions", 2.5),
        ("time_objection", 1.5),
        ("trust_objection", 1.8),
        ("need_signals", -0.3),
        ("buy_signals", -1.5),
        ("lead_score", -0.5),
        ("phase_progress", 0.4),
        ("human_transfer", 0.6),
    ],
};

const NEEDS: LogisticModel = LogisticModel {
    kind: ModelKind::Needs,
    bias: -1.2,
    weights: [
        ("user_turns", 0.4),
        ("question_rate", 0.3),
        ("price_mentions", 0.0),
        ("time_objection", 0.0),
        ("trust_objection", 0.0),
        ("need_signals", 3.0),
        ("buy_signals", 0.5),
        ("lead_score", 0.5),
        ("phase_progress", 0.2),
        ("human_transfer", 0.0),
    ],
};

const CONVERSION: LogisticModel = LogisticModel {
    kind: ModelKind::Conversion,
    bias: -2.0,
    weights: [
        ("user_turns", 0.5),
        ("question_rate", 0.2),
        ("price_mentions", -1.2),
        ("time_objection", -0.8),
        ("trust_objection", -1.0),
        ("need_signals", 1.2),
        ("buy_signals", 2.5),
        ("lead_score", 2.0),
        ("phase_progress", 1.0),
        ("human_transfer", -0.5),
    ],
};

/// The fixed model of `kind`.
pub fn model(kind: ModelKind) -> &'static LogisticModel {
    match kind {
        ModelKind::Objection => &OBJECTION,
        ModelKind::Needs => &NEEDS,
        ModelKind::Conversion => &CONVERSION,
    }
}

/// Scores `features` with the model of `kind`. Non-finite feature values
/// are treated as 0, so the score is always a valid probability.
pub fn predict(kind: ModelKind, features: &ConversationFeatures) -> Prediction {
    let m = model(kind);
    let pairs = features.pairs();
    let clean = |v: f64| if v.is_finite() { v } else { 0.0 };
    let z = m.bias
        + m.weights
            .iter()
            .zip(&pairs)
            .map(|((_, w), (_, x))| w * clean(*x))
            .sum::<f64>();
    let score = 1.0 / (1.0 + (-z).exp());
    let label = if score >= 0.66 {
        "likely"
    } else if score >= 0.33 {
        "possible"
    } else {
        "unlikely"
    };
    Prediction {
        model: kind,
        score,
        label: label.to_owned(),
        features: pairs
            .iter()
            .map(|(name, v)| ((*name).to_owned(), clean(*v)))
            .collect::<BTreeMap<_, _>>(),
    }
}

/// All three predictions, in [`ModelKind::ALL`] order.
pub fn predict_all(features: &ConversationFeatures) -> Vec<Prediction> {
    ModelKind::ALL
        .iter()
        .map(|k| predict(*k, features))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compute::extract_features;
    use crate::domain::{
        ConversationPhase, ConversationState, CustomerInfo, Message, ProgramType, Role,
    };

    fn state(lines: &[&str]) -> ConversationState {
        let info = CustomerInfo {
            id: "c".into(),
            name: "Ana".into(),
            email: "a@example.com".into(),
            phone: None,
            age: None,
            initial_message: None,
        };
        let mut s = ConversationState::new("conv", info, ProgramType::Prime, 0).unwrap();
        s.messages = lines
            .iter()
            .map(|l| Message::new(Role::User, *l, 1).unwrap())
            .collect();
        s
    }

    #[test]
    fn features_follow_their_definitions() {
        let mut s = state(&[
            "Is it expensive? what's the price?",
            "I'm tired, no energy, no time",
        ]);
        s.phase = ConversationPhase::Closing;
        let f = extract_features(&s);
        assert!((f.user_turns - 2f64.ln_1p()).abs() < 1e-12);
        assert!((f.question_rate - 0.5).abs() < 1e-12);
        assert!((f.price_mentions - 0.4).abs() < 1e-12, "{f:?}");
        assert_eq!(f.time_objection, 1.0);
        assert!((f.need_signals - 0.4).abs() < 1e-12, "{f:?}");
        assert_eq!(f.buy_signals, 0.0);
        assert!((f.phase_progress - 0.8).abs() < 1e-12);
    }

    #[test]
    fn scores_match_the_documented_weights() {
        let f = extract_features(&state(&["hello"]));
        // Only user_turns = ln 2 is non-zero.
        let z = -2.0 + 0.5 * 2f64.ln();
        let p = predict(ModelKind::Conversion, &f);
        assert!((p.score - 1.0 / (1.0 + (-z).exp())).abs() < 1e-12);
        assert_eq!(p.label, "unlikely");
        assert_eq!(p.features.len(), 10);
        assert!(p.validate().is_ok());
    }

    #[test]
    fn signals_move_scores_in_the_documented_direction() {
        let objecting = extract_features(&state(&[
            "Too expensive, I can't afford the price, I tried before, no time",
        ]));
        let buying = extract_features(&state(&[
            "I'm tired and stressed, let's do it, how do I pay? sign up",
        ]));
        assert!(
            predict(ModelKind::Objection, &objecting).score
                > predict(ModelKind::Objection, &buying).score
        );
        assert!(
            predict(ModelKind::Conversion, &buying).score
                > predict(ModelKind::Conversion, &objecting).score
        );
        assert!(
            predict(ModelKind::Needs, &buying).score > predict(ModelKind::Needs, &objecting).score
        );
        let all = predict_all(&buying);
        assert_eq!(
            all.iter().map(|p| p.model).collect::<Vec<_>>(),
            ModelKind::ALL
        );
    }

    #[test]
    fn non_finite_features_cannot_break_the_score() {
        let mut f = extract_features(&state(&["hi"]));
        f.lead_score = f64::NAN;
        f.need_signals = f64::INFINITY;
        let p = predict(ModelKind::Needs, &f);
        assert!(p.score.is_finite() && p.validate().is_ok());
    }
}
