//! The computed data types, each over the database plus a computation and
//! cached with its TTL: tier detection, predictions, program
//! recommendations and ROI.

use std::sync::Arc;

use ngx_cache::Shared;

use crate::cache::NgxCacheManager;
use crate::compute::{
    TierInput, consultant_roi, detect_tier, extract_features, predict, recommend_program,
};
use crate::db::Database;
use crate::domain::{
    ConversationState, ModelKind, Prediction, Program, ProgramRecommendation, RoiCalculation,
    RoiInput, TierDetectionResult,
};

use super::{ConversationService, CustomerService, ServiceError};

/// Tier detection, cached by customer and a hash of the context (message,
/// profile, history), tagged `customer:{id}`.
#[derive(Debug, Clone)]
pub struct TierDetectionService {
    customers: CustomerService,
    conversations: ConversationService,
    cache: NgxCacheManager,
}

impl TierDetectionService {
    /// A service reading profiles and histories through the other services.
    pub fn new(
        customers: CustomerService,
        conversations: ConversationService,
        cache: NgxCacheManager,
    ) -> Self {
        Self {
            customers,
            conversations,
            cache,
        }
    }

    /// Detects the tier for `message` from `customer_id`, using the
    /// conversation's history when one is given. A conversation of another
    /// customer is [`ServiceError::NotFound`].
    pub async fn detect(
        &self,
        customer_id: &str,
        message: &str,
        conversation_id: Option<&str>,
    ) -> Result<TierDetectionResult, ServiceError> {
        let profile = self.customers.get(customer_id).await?;
        let history = match conversation_id {
            Some(id) => {
                let conversation = self.conversations.get_shared(id).await?;
                // Another customer's conversation is reported as absent: its
                // history must not leak into this customer's detection, and
                // its existence is not this caller's business.
                if conversation.customer.id != customer_id {
                    return Err(ServiceError::NotFound {
                        entity: "conversation",
                        id: id.to_owned(),
                    });
                }
                conversation.messages.clone()
            }
            None => Vec::new(),
        };
        // The key is the stable hash of exactly what the detector reads, so
        // `get_tier_detection(customer, &stable_hash(&input))` finds it.
        let owned = Arc::new((message.to_owned(), profile, history));
        let data = Arc::clone(&owned);
        let input = TierInput {
            message: &owned.0,
            profile: &owned.1,
            history: &owned.2,
        };
        Ok(self
            .cache
            .get_or_load_tier_detection(customer_id, &input, move || async move {
                let text = data.0.len() + data.2.iter().map(|m| m.content.len()).sum::<usize>();
                let detect = move || {
                    detect_tier(&TierInput {
                        message: &data.0,
                        profile: &data.1,
                        history: &data.2,
                    })
                };
                // The detection's time grows with the text it reads: about
                // 10 µs for a message alone, milliseconds for a long
                // history, which go off the runtime. A short one is
                // cheaper than the two thread hand-overs of moving it.
                if text <= INLINE_TIER_TEXT {
                    return detect().map_err(ServiceError::from);
                }
                tokio::task::spawn_blocking(detect)
                    .await
                    .map_err(|_| ServiceError::Unavailable)?
                    .map_err(ServiceError::from)
            })
            .await?)
    }
}

/// Bytes of text (message and history) up to which a tier detection runs
/// on the runtime's thread. Measured at about 10 µs for a message of 50
/// bytes alone and 0.2 ms for ten history messages of 110 bytes (about
/// 0.18 µs a byte), so this bounds it to about 50 µs.
const INLINE_TIER_TEXT: usize = 256;

/// Objection, needs and conversion predictions over a conversation,
/// cached for the prediction TTL by model and feature hash.
#[derive(Debug, Clone)]
pub struct PredictionService {
    conversations: ConversationService,
    cache: NgxCacheManager,
}

impl PredictionService {
    /// A service reading conversations through `conversations`.
    pub fn new(conversations: ConversationService, cache: NgxCacheManager) -> Self {
        Self {
            conversations,
            cache,
        }
    }

    /// The prediction of `model` for the conversation, cached under
    /// [`prediction_input_hash`] of its state.
    pub async fn predict(
        &self,
        model: ModelKind,
        conversation_id: &str,
    ) -> Result<Prediction, ServiceError> {
        let state = self.conversations.get_shared(conversation_id).await?;
        // Cannot fail for a ConversationState (string map keys only).
        let json = state.json().map_err(|e| {
            tracing::error!(error = %e, "a conversation state could not be rendered as JSON");
            ServiceError::Unavailable
        })?;
        let hash = prediction_input_hash(&json);
        let customer = state.customer.id.clone();
        Ok(self
            .cache
            .get_or_load_prediction(model, &hash, Some(&customer), move || async move {
                Ok::<_, ServiceError>(predict(model, &extract_features(&state)))
            })
            .await?)
    }
}

impl PredictionService {
    /// Caches the prediction of every model for `state`, a conversation as
    /// just written (an append's new state), so that the next prediction
    /// after a change is a hit instead of a compulsory miss: a prediction is
    /// keyed by the state, and every append makes a new one. The features
    /// are extracted once for all models, off the runtime. Returns how many
    /// predictions were stored (0 without a cache).
    pub async fn refresh(&self, state: ConversationState) -> usize {
        if !self.cache.cache().is_enabled() {
            return 0;
        }
        let state = Shared::new(state);
        let Ok(json) = state.json() else {
            return 0;
        };
        let hash = prediction_input_hash(&json);
        let customer = state.customer.id.clone();
        let Ok(predictions) = tokio::task::spawn_blocking(move || {
            let features = extract_features(&state);
            ModelKind::ALL.map(|model| (model, predict(model, &features)))
        })
        .await
        else {
            return 0;
        };
        let mut stored = 0;
        for (model, prediction) in &predictions {
            if self
                .cache
                .set_prediction(*model, &hash, Some(&customer), prediction)
                .await
                .is_ok()
            {
                stored += 1;
            }
        }
        stored
    }
}

/// The input hash a prediction is cached under: XXH3 of the conversation
/// state's JSON text, as 16 hex digits. The features are a function of that
/// state, so equal states give equal predictions; any change (a message, a
/// context fact) gives a new key. The key is not the features' hash because
/// extracting them (fuzzy keyword matching over every message) is the
/// expensive part of a prediction, while the JSON text comes memoized with
/// the cached conversation ([`ngx_cache::Shared::json`]).
pub fn prediction_input_hash(state_json: &[u8]) -> String {
    format!("{:016x}", xxhash_rust::xxh3::xxh3_64(state_json))
}

/// The program catalog (cached), program recommendations and ROI.
#[derive(Debug, Clone)]
pub struct ProgramService {
    db: Database,
    customers: CustomerService,
    cache: NgxCacheManager,
}

impl ProgramService {
    /// A service over `db`.
    pub fn new(db: Database, customers: CustomerService, cache: NgxCacheManager) -> Self {
        Self {
            db,
            customers,
            cache,
        }
    }

    /// The catalog: PRIME and LONGEVITY with their tiers and prices.
    pub async fn catalog(&self) -> Result<Vec<Program>, ServiceError> {
        let db = self.db.clone();
        Ok(self
            .cache
            .get_or_load_catalog("all", move || async move {
                Ok::<_, ServiceError>(db.programs().list().await?)
            })
            .await?)
    }

    /// The recommended program and tier for a customer, cached by a hash of
    /// the profile and tagged `customer:{id}`.
    pub async fn recommend(
        &self,
        customer_id: &str,
    ) -> Result<ProgramRecommendation, ServiceError> {
        let profile = self.customers.get(customer_id).await?;
        let catalog = self.catalog().await?;
        let key_input = profile.clone();
        Ok(self
            .cache
            .get_or_load_recommendation(&key_input, Some(customer_id), move || async move {
                Ok::<_, ServiceError>(recommend_program(&profile, &catalog)?)
            })
            .await?)
    }

    /// The consultant ROI for `input`, cached by a hash of the metrics.
    pub async fn roi(&self, input: RoiInput) -> Result<RoiCalculation, ServiceError> {
        input.validate()?;
        let catalog = self.catalog().await?;
        let key_input = input.clone();
        Ok(self
            .cache
            .get_or_load_roi(&key_input, move || async move {
                Ok::<_, ServiceError>(consultant_roi(&input, &catalog)?)
            })
            .await?)
    }
}
