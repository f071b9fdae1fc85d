//! Pure, deterministic computations the cache sits in front of.
//!
//! Nothing here touches the network or the database, and nothing reads the
//! clock: the same input always gives the same output, which is what makes
//! caching by [`stable_hash`] of the input correct.
//!
//! - [`detect_tier`]: explainable tier scoring over message, profile and
//!   history (the expensive one, a few milliseconds).
//! - [`extract_features`] and [`predict`]: fixed logistic models.
//! - [`recommend_program`]: program and tier over profile and catalog.
//! - [`consultant_roi`]: return on a tier's price for a consultant.

mod error;
mod features;
mod hash;
mod predict;
mod recommend;
mod roi;
mod text;
mod tier;
mod tier_tables;

pub use error::ComputeError;
pub use features::{ConversationFeatures, extract_features};
pub use hash::{HashError, stable_hash};
pub use predict::{LogisticModel, model, predict, predict_all};
pub use recommend::recommend_program;
pub use roi::{consultant_roi, productivity_gain};
pub use tier::{TierInput, detect_tier};
