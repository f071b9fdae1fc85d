//! `NgxCacheManager`: typed get/set/delete and get-or-load for every NGX data
//! type, over `ngx_cache::Cache`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use ngx_cache::{Cache, Cacheable, EntryOptions, Error, LoadError, Shared, WarmEntry};
use serde::Serialize;
use tracing::Instrument as _;

use super::keyspace::customer_tag;
use super::{DomainCacheSettings, KeySpace};
use crate::domain::{
    AgentConfig, ConversationState, CustomerProfile, KnowledgeEntry, ModelKind, Prediction,
    Program, ProgramRecommendation, RoiCalculation, TierDetectionResult,
};

/// The domain cache: one key space and TTL per data type (see
/// [`KeySpace`]), tags that group a customer's derived data, and metric
/// counters. Cheap to clone.
///
/// # Negative caching
/// Customers, conversations, knowledge topics and agent configurations are
/// cached as `Option<T>`: a load that finds no row stores `null` for
/// [`DomainCacheSettings::negative_ttl`] (10 s by default), so a scan over
/// unknown ids costs one database query per id and TTL, not one per
/// request. Creating the id deletes the key, which ends the negative entry
/// on every instance.
#[derive(Debug, Clone)]
pub struct NgxCacheManager {
    cache: Cache,
    settings: Arc<DomainCacheSettings>,
}

macro_rules! typed {
    ($(#[$doc:meta])* $space:ident, $ty:ty, $get:ident, $set:ident, $delete:ident, $load:ident) => {
        impl NgxCacheManager {
            $(#[$doc])*
            /// Reads the cached value; a miss when absent or Redis is down.
            pub async fn $get(&self, id: &str) -> Option<$ty> {
                self.cache.get(&KeySpace::$space.key(&[id])).await
            }

            /// Caches `value` under `id` with the key space's TTL.
            pub async fn $set(&self, id: &str, value: &$ty) -> Result<(), Error> {
                self.store(KeySpace::$space, &[id], value, Vec::new()).await
            }

            /// Removes the cached value everywhere (Redis and every L1).
            pub async fn $delete(&self, id: &str) -> bool {
                self.cache.delete(&KeySpace::$space.key(&[id])).await
            }

            /// Returns the cached value, or loads, caches and returns it.
            pub async fn $load<E, F, Fut>(&self, id: &str, loader: F) -> Result<$ty, LoadError<E>>
            where
                E: Send + Sync + 'static,
                F: FnOnce() -> Fut + Send + 'static,
                Fut: Future<Output = Result<$ty, E>> + Send + 'static,
            {
                self.load(KeySpace::$space, &[id], Vec::new(), loader).await
            }
        }
    };
}

/// Conversations are cached as [`Shared`]: the largest values of the
/// service (every message), read on most requests. An L1 hit clones an
/// `Arc`, and the HTTP handler sends the JSON rendered once per cached value
/// ([`Shared::json`]). In Redis the entry is the plain `ConversationState`,
/// or `null` for an id known not to exist (see [negative
/// caching](NgxCacheManager#negative-caching)).
impl NgxCacheManager {
    /// Reads the cached conversation; a miss when absent, cached as not
    /// found, or Redis is down.
    pub async fn get_conversation(&self, id: &str) -> Option<ConversationState> {
        self.get_conversation_shared(id)
            .await
            .map(Shared::into_inner)
    }

    /// [`get_conversation`](Self::get_conversation) without the copy.
    pub async fn get_conversation_shared(&self, id: &str) -> Option<Shared<ConversationState>> {
        self.cache
            .get::<Option<Shared<ConversationState>>>(&KeySpace::Conversation.key(&[id]))
            .await
            .flatten()
    }

    /// Caches `value` under `id` with the conversation TTL.
    pub async fn set_conversation(&self, id: &str, value: &ConversationState) -> Result<(), Error> {
        self.store(KeySpace::Conversation, &[id], value, Vec::new())
            .await
    }

    /// Write-through after a change: caches `value`, revision `revision` of
    /// conversation `id`, so the next read on any instance is a hit. This
    /// instance's L1 keeps the new state (the next read here, such as the
    /// next append's base, does no I/O); every other L1 drops its copy. A write older than one the cache already
    /// took (appends to one conversation on two instances, written in the
    /// other order) is refused; the entry is then removed, so readers load
    /// from the database whatever made the cache hold a newer revision.
    /// When Redis refuses or cannot be reached, the entry is removed too (a
    /// pending delete is retried, and this instance treats the key as a
    /// miss until then), so a failed write never leaves the old state
    /// readable. Returns true when the new state was stored.
    pub async fn write_through_conversation(
        &self,
        id: &str,
        value: &ConversationState,
        revision: u64,
    ) -> bool {
        let key = KeySpace::Conversation.key(&[id]);
        let options = self.options(KeySpace::Conversation, Vec::new());
        // As readers ask for it, so this instance's L1 keeps the new state.
        let cached = Some(Shared::new(value.clone()));
        match self
            .cache
            .try_write_through(&key, &cached, revision, &options)
            .await
        {
            Ok(true) => true,
            Ok(false) => {
                tracing::debug!(
                    revision,
                    "a newer conversation state was cached; deleting it"
                );
                self.cache.delete(&key).await;
                false
            }
            Err(e) => {
                tracing::debug!(error = %e, "write-through of a conversation failed; deleting it");
                self.cache.delete(&key).await;
                false
            }
        }
    }

    /// Removes the cached conversation (or its "not found") everywhere
    /// (Redis and every L1).
    pub async fn delete_conversation(&self, id: &str) -> bool {
        self.cache.delete(&KeySpace::Conversation.key(&[id])).await
    }

    /// Returns the cached conversation, or loads, caches and returns it.
    /// A loaded `None` (no such conversation) is cached for the negative TTL.
    pub async fn get_or_load_conversation<E, F, Fut>(
        &self,
        id: &str,
        loader: F,
    ) -> Result<Option<ConversationState>, LoadError<E>>
    where
        E: Send + Sync + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<Option<ConversationState>, E>> + Send + 'static,
    {
        self.get_or_load_conversation_shared(id, loader)
            .await
            .map(|c| c.map(Shared::into_inner))
    }

    /// [`get_or_load_conversation`](Self::get_or_load_conversation) without
    /// the copy.
    pub async fn get_or_load_conversation_shared<E, F, Fut>(
        &self,
        id: &str,
        loader: F,
    ) -> Result<Option<Shared<ConversationState>>, LoadError<E>>
    where
        E: Send + Sync + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<Option<ConversationState>, E>> + Send + 'static,
    {
        self.load_optional(KeySpace::Conversation, &[id], move || async move {
            loader().await.map(|c| c.map(Shared::new))
        })
        .await
    }
}

/// Like `typed!`, for the types whose ids may not exist: the cached value is
/// `Option<T>`, and a loaded `None` is kept for the negative TTL.
macro_rules! typed_optional {
    ($(#[$doc:meta])* $space:ident, $ty:ty, $get:ident, $set:ident, $delete:ident, $load:ident) => {
        impl NgxCacheManager {
            $(#[$doc])*
            /// Reads the cached value; a miss when absent, cached as not
            /// found, or Redis is down.
            pub async fn $get(&self, id: &str) -> Option<$ty> {
                self.cache
                    .get::<Option<$ty>>(&KeySpace::$space.key(&[id]))
                    .await
                    .flatten()
            }

            /// Caches `value` under `id` with the key space's TTL.
            pub async fn $set(&self, id: &str, value: &$ty) -> Result<(), Error> {
                self.store(KeySpace::$space, &[id], value, Vec::new()).await
            }

            /// Removes the cached value (or its "not found") everywhere
            /// (Redis and every L1).
            pub async fn $delete(&self, id: &str) -> bool {
                self.cache.delete(&KeySpace::$space.key(&[id])).await
            }

            /// Returns the cached value, or loads, caches and returns it. A
            /// loaded `None` (no such id) is cached for the negative TTL.
            pub async fn $load<E, F, Fut>(
                &self,
                id: &str,
                loader: F,
            ) -> Result<Option<$ty>, LoadError<E>>
            where
                E: Send + Sync + 'static,
                F: FnOnce() -> Fut + Send + 'static,
                Fut: Future<Output = Result<Option<$ty>, E>> + Send + 'static,
            {
                self.load_optional(KeySpace::$space, &[id], loader).await
            }
        }
    };
}

typed_optional!(
    Customer,
    CustomerProfile,
    get_customer,
    set_customer,
    delete_customer,
    get_or_load_customer
);
typed_optional!(
    AgentConfig,
    AgentConfig,
    get_agent_config,
    set_agent_config,
    delete_agent_config,
    get_or_load_agent_config
);
typed_optional!(
    Knowledge,
    KnowledgeEntry,
    get_knowledge,
    set_knowledge,
    delete_knowledge,
    get_or_load_knowledge
);
typed!(
    ProgramCatalog,
    Vec<Program>,
    get_catalog,
    set_catalog,
    delete_catalog,
    get_or_load_catalog
);

/// Many customers at once, cached exactly as
/// [`get_or_load_customer`](NgxCacheManager::get_or_load_customer) caches
/// one (same keys, `Option<CustomerProfile>`, same options), so batch and
/// single reads share their entries, "not found" included.
impl NgxCacheManager {
    /// The profiles of `ids`, in the order of `ids`, `None` for an id that
    /// does not exist: one L1 pass, one Redis read (MGET) for the ids L1
    /// did not answer, then one `loader` call with only the ids still
    /// missing. `loader` returns the profiles that exist among the ids it
    /// is given; every id it leaves out is cached as not found for the
    /// negative TTL, as a single read would cache it.
    ///
    /// Each id loaded here is single-flight with single reads of the same
    /// id in this process (see [`Cache::get_or_load_many`]), and a write
    /// or delete during the load is not overwritten with the loaded value.
    /// With the cache disabled, `loader` gets every id.
    pub async fn get_or_load_customers<E, F, Fut>(
        &self,
        ids: &[String],
        loader: F,
    ) -> Result<Vec<Option<CustomerProfile>>, LoadError<E>>
    where
        E: Send + Sync + 'static,
        F: FnOnce(Vec<String>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Vec<CustomerProfile>, E>> + Send + 'static,
    {
        let keys: Vec<String> = ids.iter().map(|id| KeySpace::Customer.key(&[id])).collect();
        let ids_by_key: HashMap<String, String> =
            keys.iter().cloned().zip(ids.iter().cloned()).collect();
        let lookup = tracing::info_span!(
            "cache.lookup",
            cache.key_type =
                ngx_cache::telemetry::key_type(KeySpace::Customer.prefix()).unwrap_or("other"),
            cache.keys = keys.len(),
        );
        let load = tracing::info_span!(parent: &lookup, "cache.load");
        let loader = move |missing: Vec<String>| {
            async move {
                let wanted: Vec<String> = missing
                    .iter()
                    .filter_map(|key| ids_by_key.get(key).cloned())
                    .collect();
                let mut found: HashMap<String, CustomerProfile> = loader(wanted)
                    .await?
                    .into_iter()
                    .map(|profile| (profile.id.clone(), profile))
                    .collect();
                // An entry for every key asked for: `None` is the negative
                // entry of an id the loader did not find.
                Ok(missing
                    .into_iter()
                    .map(|key| {
                        let profile = ids_by_key.get(&key).and_then(|id| found.remove(id));
                        (key, profile)
                    })
                    .collect::<HashMap<_, _>>())
            }
            .instrument(load)
        };
        let opts = self.optional_options(KeySpace::Customer);
        let values = self
            .cache
            .get_or_load_many(&keys, &opts, loader)
            .instrument(lookup)
            .await?;
        Ok(values.into_iter().map(Option::flatten).collect())
    }
}

impl NgxCacheManager {
    /// A manager over `cache` with the given TTLs.
    pub fn new(cache: Cache, settings: DomainCacheSettings) -> Self {
        Self {
            cache,
            settings: Arc::new(settings),
        }
    }

    /// The underlying cache (stats, health, admin operations).
    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// The TTL and fail-safe settings.
    pub fn settings(&self) -> &DomainCacheSettings {
        &self.settings
    }

    /// The entry options of `space`: its TTL, the fail-safe window, the
    /// load timeouts, `tags`.
    pub fn options(&self, space: KeySpace, tags: Vec<String>) -> EntryOptions {
        let mut opts = EntryOptions::new().ttl(self.settings.ttl(space)).tags(tags);
        if let Some(window) = self.settings.fail_safe {
            opts = opts.fail_safe(window);
        }
        if let Some(soft) = self.settings.soft_timeout {
            opts = opts.soft_timeout(soft);
        }
        if let Some(hard) = self.settings.hard_timeout {
            opts = opts.hard_timeout(hard);
        }
        opts
    }

    async fn store<T: Serialize + ?Sized>(
        &self,
        space: KeySpace,
        parts: &[&str],
        value: &T,
        tags: Vec<String>,
    ) -> Result<(), Error> {
        self.cache
            .set_with(&space.key(parts), value, &self.options(space, tags))
            .await
    }

    async fn load<T, E, F, Fut>(
        &self,
        space: KeySpace,
        parts: &[&str],
        tags: Vec<String>,
        loader: F,
    ) -> Result<T, LoadError<E>>
    where
        T: Cacheable,
        E: Send + Sync + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        self.load_with(space.key(parts), self.options(space, tags), loader)
            .await
    }

    /// The entry options of a computed value (a pure function of its key's
    /// input): [`options`](Self::options), the caller is answered as soon
    /// as the computation returns while the write to Redis and L1 finishes
    /// in the load's task ([`EntryOptions::background_fill`]), and the
    /// computation starts without taking a lease in Redis
    /// ([`EntryOptions::skip_lease`]): a racing write of the same key can
    /// only hold the same value, and the customer tag still makes a fill
    /// that raced the customer's invalidation a miss. A miss waits for one
    /// Redis round trip (the read) instead of two; no database write
    /// depends on the entry being stored.
    fn computed_options(&self, space: KeySpace, tags: Vec<String>) -> EntryOptions {
        self.options(space, tags)
            .background_fill(true)
            .skip_lease(true)
    }

    /// Get-or-load of a value that may not exist: a loaded `None` is cached
    /// for the negative TTL (or not at all when it is off).
    async fn load_optional<T, E, F, Fut>(
        &self,
        space: KeySpace,
        parts: &[&str],
        loader: F,
    ) -> Result<Option<T>, LoadError<E>>
    where
        T: Cacheable,
        E: Send + Sync + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<Option<T>, E>> + Send + 'static,
    {
        let opts = self.optional_options(space);
        self.load_with(space.key(parts), opts, loader).await
    }

    /// The options of a value that may not exist: [`options`](Self::options)
    /// plus the negative TTL.
    fn optional_options(&self, space: KeySpace) -> EntryOptions {
        let opts = self.options(space, Vec::new());
        match self.settings.negative_ttl {
            Some(negative) => opts.negative_ttl(negative),
            None => opts,
        }
    }

    /// The get-or-load every domain read goes through: a `cache.lookup`
    /// span (with `cache.load` beneath it when the loader runs) and the
    /// response's cache status.
    async fn load_with<T, E, F, Fut>(
        &self,
        key: String,
        opts: EntryOptions,
        loader: F,
    ) -> Result<T, LoadError<E>>
    where
        T: Cacheable,
        E: Send + Sync + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        let lookup = tracing::info_span!(
            "cache.lookup",
            cache.key_type = ngx_cache::telemetry::key_type(&key).unwrap_or("other"),
            cache.source = tracing::field::Empty,
        );
        // Created here so that it is a child of the lookup even when the
        // load runs on another task.
        let load = tracing::info_span!(parent: &lookup, "cache.load");
        let loader = move || loader().instrument(load);
        let loaded = self
            .cache
            .get_or_load_entry(&key, &opts, loader)
            .instrument(lookup.clone())
            .await?;
        lookup.record(
            "cache.source",
            format!("{:?}", loaded.source).to_lowercase(),
        );
        super::status::record(loaded.source);
        Ok(loaded.value)
    }

    /// Reads a cached prediction of `model` for an input hash.
    pub async fn get_prediction(&self, model: ModelKind, input_hash: &str) -> Option<Prediction> {
        self.cache
            .get(&KeySpace::Prediction.key(&[model.as_str(), input_hash]))
            .await
    }

    /// Caches a prediction, tagged with its customer when known.
    pub async fn set_prediction(
        &self,
        model: ModelKind,
        input_hash: &str,
        customer_id: Option<&str>,
        value: &Prediction,
    ) -> Result<(), Error> {
        let tags = customer_id.map(customer_tag).into_iter().collect();
        self.store(
            KeySpace::Prediction,
            &[model.as_str(), input_hash],
            value,
            tags,
        )
        .await
    }

    /// The prediction of `model` for the input hashed as `input_hash`,
    /// cached for the prediction TTL and tagged with the customer.
    pub async fn get_or_load_prediction<E, F, Fut>(
        &self,
        model: ModelKind,
        input_hash: &str,
        customer_id: Option<&str>,
        loader: F,
    ) -> Result<Prediction, LoadError<E>>
    where
        E: Send + Sync + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<Prediction, E>> + Send + 'static,
    {
        let tags = customer_id.map(customer_tag).into_iter().collect();
        let key = KeySpace::Prediction.key(&[model.as_str(), input_hash]);
        let opts = self.computed_options(KeySpace::Prediction, tags);
        self.load_with(key, opts, loader).await
    }

    /// Reads a cached tier detection.
    pub async fn get_tier_detection(
        &self,
        customer_id: &str,
        context_hash: &str,
    ) -> Option<TierDetectionResult> {
        self.cache
            .get(&KeySpace::Tier.key(&[customer_id, context_hash]))
            .await
    }

    /// Caches a tier detection under the customer and a context hash.
    pub async fn set_tier_detection(
        &self,
        customer_id: &str,
        context_hash: &str,
        value: &TierDetectionResult,
    ) -> Result<(), Error> {
        let tags = vec![customer_tag(customer_id)];
        self.store(KeySpace::Tier, &[customer_id, context_hash], value, tags)
            .await
    }

    /// The tier detection for a customer and `context` (keyed by its
    /// stable hash), tagged `customer:{id}`.
    pub async fn get_or_load_tier_detection<C, E, F, Fut>(
        &self,
        customer_id: &str,
        context: &C,
        loader: F,
    ) -> Result<TierDetectionResult, LoadError<E>>
    where
        C: Serialize + ?Sized,
        E: Send + Sync + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<TierDetectionResult, E>> + Send + 'static,
    {
        let hash = ngx_cache::stable_hash(context);
        let tags = vec![customer_tag(customer_id)];
        let key = KeySpace::Tier.key(&[customer_id, &hash]);
        let opts = self.computed_options(KeySpace::Tier, tags);
        self.load_with(key, opts, loader).await
    }

    /// The program recommendation for `profile` (keyed by its stable hash),
    /// tagged with the customer when known.
    pub async fn get_or_load_recommendation<P, E, F, Fut>(
        &self,
        profile: &P,
        customer_id: Option<&str>,
        loader: F,
    ) -> Result<ProgramRecommendation, LoadError<E>>
    where
        P: Serialize + ?Sized,
        E: Send + Sync + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<ProgramRecommendation, E>> + Send + 'static,
    {
        let hash = ngx_cache::stable_hash(profile);
        let tags = customer_id.map(customer_tag).into_iter().collect();
        let key = KeySpace::ProgramRecommendation.key(&[&hash]);
        let opts = self.computed_options(KeySpace::ProgramRecommendation, tags);
        self.load_with(key, opts, loader).await
    }

    /// A warm-up entry for `profile`, as read from the database: cached as
    /// [`get_or_load_customer`](Self::get_or_load_customer) caches it (same
    /// key, `Option<CustomerProfile>`, same options), in Redis only, so that
    /// a bulk warm-up does not push the hot entries out of L1. Warming keeps
    /// a value already cached.
    pub fn customer_warm_entry(
        &self,
        profile: CustomerProfile,
    ) -> WarmEntry<Option<CustomerProfile>, Infallible> {
        let key = KeySpace::Customer.key(&[&profile.id]);
        let opts = self.optional_options(KeySpace::Customer).l1(false);
        WarmEntry::new(key, opts, move || async move { Ok(Some(profile)) })
    }

    /// A warm-up entry for the recommendation computed for `profile`:
    /// cached as [`get_or_load_recommendation`](Self::get_or_load_recommendation)
    /// caches it for the customer (same key, tag and options), in Redis
    /// only, like [`customer_warm_entry`](Self::customer_warm_entry).
    pub fn recommendation_warm_entry(
        &self,
        profile: &CustomerProfile,
        recommendation: ProgramRecommendation,
    ) -> WarmEntry<ProgramRecommendation, Infallible> {
        let hash = ngx_cache::stable_hash(profile);
        let key = KeySpace::ProgramRecommendation.key(&[&hash]);
        let opts = self
            .options(
                KeySpace::ProgramRecommendation,
                vec![customer_tag(&profile.id)],
            )
            .l1(false);
        WarmEntry::new(key, opts, move || async move { Ok(recommendation) })
    }

    /// Reads a cached recommendation by profile hash.
    pub async fn get_recommendation(&self, profile_hash: &str) -> Option<ProgramRecommendation> {
        self.cache
            .get(&KeySpace::ProgramRecommendation.key(&[profile_hash]))
            .await
    }

    /// The consultant ROI for `metrics` (keyed by their stable hash).
    pub async fn get_or_load_roi<M, E, F, Fut>(
        &self,
        metrics: &M,
        loader: F,
    ) -> Result<RoiCalculation, LoadError<E>>
    where
        M: Serialize + ?Sized,
        E: Send + Sync + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<RoiCalculation, E>> + Send + 'static,
    {
        let hash = ngx_cache::stable_hash(metrics);
        let opts = self.computed_options(KeySpace::Roi, Vec::new());
        self.load_with(KeySpace::Roi.key(&[&hash]), opts, loader)
            .await
    }

    /// Reads a cached ROI calculation by metrics hash.
    pub async fn get_roi(&self, metrics_hash: &str) -> Option<RoiCalculation> {
        self.cache.get(&KeySpace::Roi.key(&[metrics_hash])).await
    }

    /// Makes every entry derived from a customer (tier detections,
    /// predictions, recommendations) a miss on every instance.
    pub async fn invalidate_customer(&self, customer_id: &str) -> bool {
        self.cache.invalidate_tag(&customer_tag(customer_id)).await
    }

    /// Adds 1 to the counter `metric:{category}:{name}` (no TTL) and returns
    /// the new value; `None` when Redis is unavailable.
    pub async fn increment_metric(&self, category: &str, name: &str) -> Option<i64> {
        self.cache
            .increment(&format!("metric:{category}:{name}"), 1)
            .await
    }

    /// The counter `metric:{category}:{name}`; 0 when absent or unavailable.
    pub async fn get_metric(&self, category: &str, name: &str) -> i64 {
        self.cache
            .counter(&format!("metric:{category}:{name}"))
            .await
            .unwrap_or(0)
    }

    /// Removes every key of one key space, in Redis and every L1.
    pub async fn clear_space(&self, space: KeySpace) -> Result<u64, Error> {
        self.cache
            .clear_prefix(&format!("{}:", space.prefix()))
            .await
    }
}
