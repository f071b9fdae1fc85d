//! The output of tier detection.

use serde::{Deserialize, Serialize};

use super::error::check_range;
use super::{ProgramType, Tier, ValidationError};

/// Which tier fits a customer, how sure the detector is, and why.
/// Cached under `ngx:tier:v1:{customer_id}:{context_hash}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TierDetectionResult {
    /// The chosen tier.
    pub tier: Tier,
    /// The program the profile points to.
    pub program_type: ProgramType,
    /// Confidence, 0..=1: the chosen tier's share of the softmax over all
    /// tier scores.
    pub confidence: f64,
    /// Raw score of each tier, in [`Tier::ALL`] order.
    pub scores: Vec<(Tier, f64)>,
    /// Human-readable reasons, strongest first.
    pub reasons: Vec<String>,
}

impl TierDetectionResult {
    /// Checks the confidence range and that every score is finite.
    pub fn validate(&self) -> Result<(), ValidationError> {
        check_range("confidence", self.confidence, 0.0, 1.0)?;
        if self.scores.iter().any(|(_, s)| !s.is_finite()) {
            return Err(ValidationError::new("scores", "must be finite"));
        }
        Ok(())
    }
}
