//! The error type of the computations.

use crate::domain::{ProgramType, Tier, ValidationError};

/// A computation could not run on its input.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ComputeError {
    /// The input failed validation.
    #[error("invalid input")]
    Invalid(#[from] ValidationError),
    /// The catalog holds no program to choose from.
    #[error("the program catalog is empty")]
    EmptyCatalog,
    /// The catalog does not sell this tier of this program.
    #[error("the catalog has no {tier:?} tier for {program:?}")]
    MissingTier {
        /// The program.
        program: ProgramType,
        /// The tier.
        tier: Tier,
    },
}
