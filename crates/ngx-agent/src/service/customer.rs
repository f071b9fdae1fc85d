//! Customer profiles, cache-aside. An update invalidates the profile and
//! everything derived from it (the `customer:{id}` tag).

use crate::cache::NgxCacheManager;
use crate::db::Database;
use crate::domain::CustomerProfile;

use super::ServiceError;
use super::error::{found, optional};

/// Reads and updates customer profiles.
#[derive(Debug, Clone)]
pub struct CustomerService {
    db: Database,
    cache: NgxCacheManager,
}

impl CustomerService {
    /// A service over `db`, caching through `cache`.
    pub fn new(db: Database, cache: NgxCacheManager) -> Self {
        Self { db, cache }
    }

    /// The profile: from the cache, else from the database (then cached).
    pub async fn get(&self, id: &str) -> Result<CustomerProfile, ServiceError> {
        crate::domain::validate_id("customer_id", id)?;
        let db = self.db.clone();
        let owned = id.to_owned();
        let profile = self
            .cache
            .get_or_load_customer(id, move || async move {
                optional(db.customers().get(&owned).await)
            })
            .await?;
        found(profile, "customer", id)
    }

    /// Commits the new profile, then invalidates it and the customer's
    /// derived data (tier detections, predictions, recommendations).
    pub async fn update(&self, profile: &CustomerProfile) -> Result<CustomerProfile, ServiceError> {
        profile.validate()?;
        self.db.customers().update(profile).await?;
        self.cache.delete_customer(&profile.id).await;
        self.cache.invalidate_customer(&profile.id).await;
        self.get(&profile.id).await
    }
}
