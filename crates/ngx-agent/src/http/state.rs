//! [`AppState`]: everything a handler needs, built once at start and shared
//! (the original's `dependencies.py`).

use std::sync::Arc;
use std::time::Instant;

use metrics_exporter_prometheus::PrometheusHandle;
use ngx_cache::Cache;

use crate::cache::NgxCacheManager;
use crate::config::{AppConfig, HttpLimits};
use crate::db::{Database, DbError, DbOptions};
use crate::service::Services;

/// The shared application state. Cheap to clone: one `Arc`.
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    db: Database,
    /// `None` when the cache is disabled by configuration. When Redis was
    /// merely unreachable at start this is `Some` (lazily connecting), so
    /// the service heals once Redis comes back without a restart.
    cache: Option<NgxCacheManager>,
    services: Services,
    /// `None` disables the admin endpoints (403), never opens them.
    admin_token: Option<String>,
    limits: HttpLimits,
    /// Readiness details (database, cache) without the admin token.
    health_details_public: bool,
    /// The last readiness check, reused for about a second.
    readiness: Arc<super::health::ReadinessCache>,
    metrics: PrometheusHandle,
    /// Request counters and latency buckets behind the status page.
    meter: Arc<super::status::RequestMeter>,
    started: Instant,
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// Connecting, migrating or seeding the database failed.
    #[error("database start-up failed")]
    Database(#[from] DbError),
    /// The cache configuration is unusable (bad URL, unsupported mode).
    #[error("cache start-up failed")]
    Cache(#[from] ngx_cache::Error),
}

impl AppState {
    /// State over `db` and an optional cache manager, with default limits
    /// and the admin endpoints disabled.
    pub fn new(db: Database, cache: Option<NgxCacheManager>) -> Self {
        let services = Services::new(db.clone(), cache.clone());
        Self {
            inner: Arc::new(Inner {
                db,
                cache,
                services,
                admin_token: None,
                limits: HttpLimits::default(),
                health_details_public: false,
                readiness: Arc::default(),
                metrics: super::metrics::install(),
                meter: Arc::default(),
                started: Instant::now(),
            }),
        }
    }

    /// Enables the admin endpoints with `token` (`None` or empty disables them).
    #[must_use]
    pub fn admin_token(self, token: Option<String>) -> Self {
        self.map(|i| i.admin_token = token.filter(|t| !t.is_empty()))
    }

    /// Sets the request timeout and body limit.
    #[must_use]
    pub fn limits(self, limits: HttpLimits) -> Self {
        self.map(|i| i.limits = limits)
    }

    /// Shows readiness details to every caller, not only with the admin
    /// token (`HEALTH_DETAILS_PUBLIC`).
    #[must_use]
    pub fn health_details_public(self, public: bool) -> Self {
        self.map(|i| i.health_details_public = public)
    }

    fn map(self, f: impl FnOnce(&mut Inner)) -> Self {
        let mut inner = Arc::try_unwrap(self.inner).unwrap_or_else(|shared| Inner {
            db: shared.db.clone(),
            cache: shared.cache.clone(),
            services: shared.services.clone(),
            admin_token: shared.admin_token.clone(),
            limits: shared.limits,
            health_details_public: shared.health_details_public,
            readiness: shared.readiness.clone(),
            metrics: shared.metrics.clone(),
            meter: shared.meter.clone(),
            started: shared.started,
        });
        f(&mut inner);
        Self {
            inner: Arc::new(inner),
        }
    }

    /// Start-up: connects the database (migrations, then seed when
    /// configured), connects the cache and warms it when configured.
    ///
    /// The cache never stops the start: with `CACHE_ENABLED=false` the
    /// manager is `None`; when Redis does not answer within the connect
    /// timeout the cache connects lazily in the background and every
    /// request goes to the database until it is back.
    pub async fn start(config: &AppConfig) -> Result<Self, StartError> {
        // Before the cache connects: it takes its metric handles from the
        // recorder installed at that moment.
        super::metrics::install();
        let mut options = DbOptions::default()
            .max_connections(config.database_max_connections)
            .statement_timeout(config.database_statement_timeout)
            .conversation_limits(config.conversation_limits);
        if let Some(schema) = &config.database_schema {
            options = options.schema(schema.clone());
        }
        let db = Database::connect_with(&config.database_url, options).await?;
        let applied = db.migrate().await?;
        tracing::info!(
            url = %config.redacted_database_url(),
            applied,
            "database ready"
        );
        if config.seed {
            let report = db.seed().await?;
            if report.seeded_anything() {
                tracing::info!(
                    customers = report.customers,
                    conversations = report.conversations,
                    elapsed_ms = report.elapsed.as_millis() as u64,
                    "database seeded"
                );
            }
        }
        let cache = connect_cache(config).await?;
        let state = Self::new(db, cache)
            .admin_token(config.admin_token.clone())
            .limits(config.limits)
            .health_details_public(config.health_details_public);
        if config.warm && state.cache().is_some() {
            let services = state.services();
            if let Err(e) = services.content.warm(&services.programs).await {
                tracing::warn!(error = %e, "cache warm-up failed, continuing cold");
            }
        }
        Ok(state)
    }

    /// The database.
    pub fn db(&self) -> &Database {
        &self.inner.db
    }

    /// The cache manager; `None` when the cache is disabled.
    pub fn cache(&self) -> Option<&NgxCacheManager> {
        self.inner.cache.as_ref()
    }

    /// The services.
    pub fn services(&self) -> &Services {
        &self.inner.services
    }

    /// The configured admin token.
    pub(crate) fn admin(&self) -> Option<&str> {
        self.inner.admin_token.as_deref()
    }

    /// Whether readiness details are public.
    pub(crate) fn details_public(&self) -> bool {
        self.inner.health_details_public
    }

    /// The readiness cache.
    pub(crate) fn readiness(&self) -> &super::health::ReadinessCache {
        &self.inner.readiness
    }

    /// The HTTP limits.
    pub fn http_limits(&self) -> HttpLimits {
        self.inner.limits
    }

    /// The Prometheus handle rendering `/metrics`.
    pub(crate) fn metrics(&self) -> &PrometheusHandle {
        &self.inner.metrics
    }

    /// The request meter of the status page.
    pub(crate) fn meter(&self) -> &super::status::RequestMeter {
        &self.inner.meter
    }

    /// Seconds since this state was built.
    pub fn uptime_secs(&self) -> f64 {
        self.inner.started.elapsed().as_secs_f64()
    }

    /// Settles the cache invalidations that Redis has not taken yet (deletes and
    /// tag bumps that could not reach it), for up to `within`, and logs
    /// by count what could not be settled. Nothing without a cache.
    pub async fn settle_cache(&self, within: std::time::Duration) {
        let Some(cache) = &self.inner.cache else {
            return;
        };
        let cache = cache.cache();
        let stats = cache.stats();
        let pending = stats.invalidations_pending + stats.publishes_pending;
        if pending == 0 {
            return;
        }
        let left = cache.settle_pending(within).await;
        if left == 0 {
            tracing::info!(settled = pending, "pending cache invalidations settled");
        } else {
            tracing::warn!(
                settled = pending.saturating_sub(left),
                not_settled = left,
                ?within,
                "pending cache invalidations could not be settled before shutdown; other instances may serve the old entries until they expire"
            );
        }
    }

    /// Closes the database pool. The cache's background tasks stop when
    /// the last clone of the state is dropped.
    pub async fn close(&self) {
        self.inner.db.close().await;
    }
}

async fn connect_cache(config: &AppConfig) -> Result<Option<NgxCacheManager>, StartError> {
    if !config.cache.enabled {
        tracing::info!("cache disabled (CACHE_ENABLED=false): every read goes to the database");
        return Ok(None);
    }
    let cache = match Cache::connect(config.cache.clone()).await {
        Ok(cache) => cache,
        Err(e @ ngx_cache::Error::Config(_)) => return Err(e.into()),
        Err(e) => {
            tracing::warn!(
                url = %config.cache.redacted_url(),
                error = %e,
                "Redis unavailable at start: serving from the database, connecting in the background"
            );
            Cache::connect_lazy(config.cache.clone()).await?
        }
    };
    Ok(Some(NgxCacheManager::new(cache, config.domain.clone())))
}
