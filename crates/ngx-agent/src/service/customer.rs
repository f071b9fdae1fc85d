//! Customer profiles, cache-aside. An update invalidates the profile and
//! everything derived from it (the `customer:{id}` tag).

use std::collections::HashSet;

use crate::cache::NgxCacheManager;
use crate::db::Database;
use crate::domain::CustomerProfile;

use super::ServiceError;
use super::error::{found, optional};

/// The answer to [`CustomerService::get_many`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CustomerBatch {
    /// The profiles that exist, in the order their ids were asked for.
    pub customers: Vec<CustomerProfile>,
    /// The ids with no profile, in the order they were asked for.
    pub missing: Vec<String>,
}

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

    /// Most ids one [`get_many`](Self::get_many) call takes.
    pub const MAX_BATCH: usize = 100;

    /// The profiles of `ids`, each id answered once (the first time it
    /// appears): one L1 pass, one Redis read for the rest, and one database
    /// query for the ids still missing (none when every id was cached).
    /// Ids that do not exist land in [`CustomerBatch::missing`] and are
    /// cached as not found, like a single [`get`](Self::get) caches them.
    ///
    /// [`ServiceError::Invalid`] for an invalid id (named by its place in
    /// `ids`), no ids, or more than [`MAX_BATCH`](Self::MAX_BATCH)
    /// (duplicates included), before any lookup.
    pub async fn get_many(&self, ids: &[String]) -> Result<CustomerBatch, ServiceError> {
        if ids.is_empty() || ids.len() > Self::MAX_BATCH {
            return Err(crate::domain::ValidationError::new(
                "ids",
                format!(
                    "expected 1 to {} customer ids, got {}",
                    Self::MAX_BATCH,
                    ids.len()
                ),
            )
            .into());
        }
        let mut seen = HashSet::with_capacity(ids.len());
        let mut unique: Vec<String> = Vec::with_capacity(ids.len());
        for (i, id) in ids.iter().enumerate() {
            // Named by its place in the list: one of 100 ids is otherwise
            // hard to find.
            crate::domain::validate_id("customer_id", id).map_err(|e| {
                crate::domain::ValidationError::new(
                    "ids",
                    format!("id {} of {} {}", i + 1, ids.len(), e.reason),
                )
            })?;
            if seen.insert(id.as_str()) {
                unique.push(id.clone());
            }
        }
        let db = self.db.clone();
        let profiles = self
            .cache
            .get_or_load_customers(&unique, move |missing| async move {
                db.customers()
                    .get_many(&missing)
                    .await
                    .map_err(ServiceError::from)
            })
            .await?;
        let mut batch = CustomerBatch::default();
        for (id, profile) in unique.into_iter().zip(profiles) {
            match profile {
                Some(profile) => batch.customers.push(profile),
                None => batch.missing.push(id),
            }
        }
        Ok(batch)
    }

    /// Commits the new profile, then invalidates it and the customer's
    /// derived data (tier detections, predictions, recommendations).
    pub async fn update(&self, profile: &CustomerProfile) -> Result<CustomerProfile, ServiceError> {
        profile.validate()?;
        let (this, id, profile) = (self.clone(), profile.id.clone(), profile.clone());
        super::to_completion(async move {
            this.db.customers().update(&profile).await?;
            this.cache.delete_customer(&profile.id).await;
            this.cache.invalidate_customer(&profile.id).await;
            Ok(())
        })
        .await?;
        self.get(&id).await
    }
}
