//! Outputs of the fixed logistic models.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::ValidationError;
use super::error::{check_range, check_text};

/// Which model produced a prediction.
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
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// Will the customer raise an objection (price, time, trust)?
    Objection,
    /// Does the customer express a clear need the programs address?
    Needs,
    /// Will the customer buy?
    Conversion,
}

impl ModelKind {
    /// Every model.
    pub const ALL: [ModelKind; 3] = [Self::Objection, Self::Needs, Self::Conversion];

    /// The lowercase name, also the `{model}` part of `ngx:pred:{model}:{hash}`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Objection => "objection",
            Self::Needs => "needs",
            Self::Conversion => "conversion",
        }
    }

    /// Parses the name written by [`ModelKind::as_str`].
    pub fn parse(value: &str) -> Result<Self, ValidationError> {
        Self::ALL
            .into_iter()
            .find(|m| m.as_str() == value)
            .ok_or_else(|| ValidationError::new("model", format!("unknown model {value:?}")))
    }
}

/// A model's score for one input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Prediction {
    /// The model.
    pub model: ModelKind,
    /// Probability, 0..=1.
    pub score: f64,
    /// Human label for the score ("likely", "unlikely", ...).
    pub label: String,
    /// The feature values the model used, by name.
    pub features: BTreeMap<String, f64>,
}

impl Prediction {
    /// Checks the score range, the label, and that every feature is finite.
    pub fn validate(&self) -> Result<(), ValidationError> {
        check_range("score", self.score, 0.0, 1.0)?;
        check_text("label", &self.label, 64)?;
        if let Some((name, _)) = self.features.iter().find(|(_, v)| !v.is_finite()) {
            return Err(ValidationError::new(
                "features",
                format!("feature {name:?} is not finite"),
            ));
        }
        Ok(())
    }
}
