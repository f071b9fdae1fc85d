//! Knowledge base and agent configuration, cache-aside, plus warming them
//! (and the catalog) at start.

use ngx_cache::{WarmEntry, WarmReport};

use crate::cache::{KeySpace, NgxCacheManager};
use crate::db::Database;
use crate::domain::{AgentConfig, KnowledgeEntry};

use super::error::{found, optional};
use super::{ProgramService, ServiceError};

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

    /// Loads every knowledge topic, the `default` agent configuration and
    /// the program catalog into the cache, logging progress. With the cache
    /// disabled nothing is loaded and every entry is `skipped`.
    pub async fn warm(&self, programs: &ProgramService) -> Result<WarmReport, ServiceError> {
        self.warm_with_progress(programs, |p| {
            if p.done + p.failed == p.total || (p.done + p.failed) % 10 == 0 {
                tracing::info!(
                    done = p.done,
                    failed = p.failed,
                    total = p.total,
                    "warming knowledge base"
                );
            }
        })
        .await
    }

    /// Like [`warm`](Self::warm), calling `progress` after each entry; the
    /// report's `total` counts every entry, knowledge topics, agent
    /// configuration and catalog.
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
        let mut report = self
            .cache
            .cache()
            .warm(entries, 4, |p| {
                progress(&WarmReport {
                    total: p.total + 2,
                    ..*p
                })
            })
            .await;
        report.total += 2;
        for ok in [
            self.agent_config("default").await.is_ok(),
            programs.catalog().await.is_ok(),
        ] {
            if ok {
                report.done += 1;
            } else {
                report.failed += 1;
            }
            progress(&report);
        }
        tracing::info!(
            done = report.done,
            failed = report.failed,
            total = report.total,
            "cache warmed"
        );
        Ok(report)
    }
}
