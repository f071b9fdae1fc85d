//! The services of the NGX agent: cache-aside over the database, as in the
//! original design's integration examples.
//!
//! Reads go through [`NgxCacheManager`]'s get-or-load (L1, Redis, then the
//! database or computation). Writes commit to the database first, then
//! update the cache (conversation saves and appends write the new state
//! through, versioned by the row's revision; other writes invalidate), and
//! run to their end even when the caller stops waiting for them. With the
//! cache disabled or Redis down every service still returns correct
//! results, straight from the database.

mod compute;
mod content;
mod conversation;
mod customer;
mod error;
mod warm;

pub use compute::{PredictionService, ProgramService, TierDetectionService, prediction_input_hash};
pub use content::ContentService;
pub use conversation::ConversationService;
pub use customer::{CustomerBatch, CustomerService};
pub use error::ServiceError;

use std::future::Future;

use ngx_cache::Cache;
use tracing::Instrument;

use crate::cache::{DomainCacheSettings, NgxCacheManager};
use crate::db::Database;

/// Every service, built once and shared (cheap to clone).
#[derive(Debug, Clone)]
pub struct Services {
    /// Conversations.
    pub conversations: ConversationService,
    /// Customer profiles.
    pub customers: CustomerService,
    /// Tier detection.
    pub tiers: TierDetectionService,
    /// Predictions.
    pub predictions: PredictionService,
    /// Catalog, recommendations, ROI.
    pub programs: ProgramService,
    /// Knowledge base and agent configuration.
    pub content: ContentService,
}

impl Services {
    /// Builds the services over `db`. Without a cache manager they run
    /// uncached (every read goes to the database).
    pub fn new(db: Database, cache: Option<NgxCacheManager>) -> Self {
        let cache = cache.unwrap_or_else(|| {
            NgxCacheManager::new(Cache::disabled(), DomainCacheSettings::default())
        });
        let conversations = ConversationService::new(db.clone(), cache.clone());
        let customers = CustomerService::new(db.clone(), cache.clone());
        Self {
            tiers: TierDetectionService::new(
                customers.clone(),
                conversations.clone(),
                cache.clone(),
            ),
            predictions: PredictionService::new(conversations.clone(), cache.clone()),
            programs: ProgramService::new(db.clone(), customers.clone(), cache.clone()),
            content: ContentService::new(db, cache),
            conversations,
            customers,
        }
    }
}

/// Runs a write (a database commit and the cache update after it) in a
/// task of its own and waits for it. A caller that stops waiting (the
/// request deadline drops the handler's future) then cannot stop the write
/// between its commit and its cache update, which would leave the cache
/// serving a state the database has left behind.
async fn to_completion<T, F>(write: F) -> Result<T, ServiceError>
where
    T: Send + 'static,
    F: Future<Output = Result<T, ServiceError>> + Send + 'static,
{
    match tokio::spawn(write.in_current_span()).await {
        Ok(result) => result,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        // The runtime is shutting down.
        Err(_) => Err(ServiceError::Unavailable),
    }
}
