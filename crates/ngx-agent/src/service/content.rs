//! Knowledge base and agent configuration, cache-aside, plus warming the
//! cache at start: them, the catalog and the most recently active
//! customers (see `warm`).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use ngx_cache::{WarmEntry, WarmReport};

use crate::cache::{KeySpace, NgxCacheManager};
use crate::db::Database;
use crate::domain::{AgentConfig, KnowledgeEntry};

use super::error::{found, optional};
use super::{ProgramService, ServiceError, warm};

/// Knowledge base articles and agent configurations.
#[derive(Debug, Clone)]
pub struct ContentService {
    db: Database,
    cache: NgxCacheManager,
}

impl ContentService {
    /// A service over `db`.
    pub fn new(db: Database, cache: NgxCacheManager) -> Self {
        Self { db, cache }
    }

    /// The knowledge base entry for `topic`.
    pub async fn knowledge(&self, topic: &str) -> Result<KnowledgeEntry, ServiceError> {
        crate::domain::validate_id("topic", topic)?;
        let db = self.db.clone();
        let owned = topic.to_owned();
        let entry = self
            .cache
            .get_or_load_knowledge(topic, move || async move {
                optional(db.knowledge().get(&owned).await)
            })
            .await?;
        found(entry, "knowledge entry", topic)
    }

    /// The agent configuration called `name`.
    pub async fn agent_config(&self, name: &str) -> Result<AgentConfig, ServiceError> {
        crate::domain::validate_id("name", name)?;
        let db = self.db.clone();
        let owned = name.to_owned();
        let config = self
            .cache
            .get_or_load_agent_config(name, move || async move {
                optional(db.agent_configs().get(&owned).await)
            })
            .await?;
        found(config, "agent config", name)
    }

    /// Loads every knowledge topic, the `default` agent configuration, the
    /// program catalog, and the profiles and program recommendations of the
    /// most recently active customers (at most
    /// [`warm_customers`](crate::cache::DomainCacheSettings::warm_customers))
    /// into the cache, logging progress. With the cache disabled nothing is
    /// loaded and every entry is `skipped`.
    pub async fn warm(&self, programs: &ProgramService) -> Result<WarmReport, ServiceError> {
        let logged = AtomicUsize::new(0);
        self.warm_with_progress(programs, |p| {
            // About ten lines, whatever the number of entries.
            let n = p.done + p.failed;
            let tenth = n * 10 / p.total.max(1);
            if n == p.total || tenth > logged.load(Ordering::Relaxed) {
                logged.store(tenth, Ordering::Relaxed);
                tracing::info!(
                    done = p.done,
                    failed = p.failed,
                    total = p.total,
                    "warming cache"
                );
            }
        })
        .await
    }

    /// Like [`warm`](Self::warm), calling `progress` after each entry; the
    /// report's `total` counts every entry: knowledge topics, agent
    /// configuration, catalog, and two per customer (profile and
    /// recommendation). The customers are read in one query before
    /// anything is loaded, so the total is known from the first call.
    pub async fn warm_with_progress(
        &self,
        programs: &ProgramService,
        progress: impl Fn(&WarmReport),
    ) -> Result<WarmReport, ServiceError> {
        let topics = self.db.knowledge().list_topics().await?;
        let opts = self.cache.options(KeySpace::Knowledge, Vec::new());
        // Cached as `Option<KnowledgeEntry>`, the type readers ask for.
        let entries: Vec<WarmEntry<Option<KnowledgeEntry>, ServiceError>> = topics
            .into_iter()
            .map(|topic| {
                let db = self.db.clone();
                let key = KeySpace::Knowledge.key(&[&topic]);
                WarmEntry::new(key, opts.clone(), move || async move {
                    Ok(Some(db.knowledge().get(&topic).await?))
                })
            })
            .collect();
        if !self.cache.cache().is_enabled() {
            let total = entries.len() + 2;
            return Ok(WarmReport {
                total,
                skipped: total,
                ..WarmReport::default()
            });
        }
        let started = Instant::now();
        let limit = self.cache.settings().warm_customers;
        let customers = if limit == 0 {
            Vec::new()
        } else {
            self.db.customers().recently_active(limit).await?
        };
        let total = entries.len() + 2 + 2 * customers.len();
        let mut report = self
            .cache
            .cache()
            .warm(entries, 4, |p| progress(&WarmReport { total, ..*p }))
            .await;
        report.total = total;
        let config = self.agent_config("default").await.is_ok();
        count(&mut report, config, &progress);
        let catalog = programs.catalog().await.ok().map(Arc::new);
        count(&mut report, catalog.is_some(), &progress);
        let base = report;
        let part = warm::customers(&self.cache, customers, catalog, started, |p| {
            progress(&WarmReport {
                total,
                done: base.done + p.done,
                failed: base.failed + p.failed,
                skipped: base.skipped + p.skipped,
            })
        })
        .await;
        report.done += part.done;
        report.failed += part.failed;
        report.skipped += part.skipped;
        tracing::info!(
            done = report.done,
            failed = report.failed,
            total = report.total,
            "cache warmed"
        );
        Ok(report)
    }
}

/// Counts one entry in `report` as done or failed and reports progress.
fn count(report: &mut WarmReport, ok: bool, progress: &impl Fn(&WarmReport)) {
    if ok {
        report.done += 1;
    } else {
        report.failed += 1;
    }
    progress(report);
}
