//! Domain models of the NGX Voice Sales Agent.
//!
//! Every model derives `Serialize`, `Deserialize`, `Clone`, `Debug` and
//! `PartialEq`, and offers `validate()`; constructors named `new` validate
//! before returning. Deserialisation does not validate by itself: call
//! `validate()` on data that crossed a trust boundary (the repositories do so
//! for every row they read).
//!
//! Identifiers are plain `String`s checked by [`validate_id`], because they
//! end up inside Redis keys.

mod config;
mod conversation;
mod customer;
mod error;
mod id;
mod knowledge;
mod prediction;
mod program;
mod roi;
mod tier;

pub use config::AgentConfig;
pub use conversation::{
    ConversationLimits, ConversationPhase, ConversationState, CustomerInfo, MAX_CONTEXT_ENTRIES,
    MAX_MESSAGE_LEN, Message, Role,
};
pub use customer::{CustomerProfile, IncomeBand, MAX_GOALS};
pub use error::ValidationError;
pub use id::{MAX_ID_LEN, validate_id};
pub use knowledge::KnowledgeEntry;
pub use prediction::{ModelKind, Prediction};
pub use program::{Program, ProgramRecommendation, ProgramTier, ProgramType, Tier};
pub use roi::{RoiCalculation, RoiInput};
pub use tier::TierDetectionResult;

#[cfg(test)]
mod tests;
