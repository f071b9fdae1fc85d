//! Cache warming: load a list of keys through their loaders with bounded
//! concurrency, reporting progress.

use std::future::Future;

use futures::StreamExt;
use futures::future::BoxFuture;

use super::handle::Cache;
use crate::options::EntryOptions;
use crate::value::Cacheable;

/// One key to warm, with its options and loader.
pub struct WarmEntry<T, E> {
    key: String,
    options: EntryOptions,
    loader: Box<dyn FnOnce() -> BoxFuture<'static, Result<T, E>> + Send>,
}

impl<T, E> std::fmt::Debug for WarmEntry<T, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WarmEntry")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl<T: Send + 'static, E: Send + 'static> WarmEntry<T, E> {
    /// A key, its options, and the loader that produces its value.
    pub fn new<F, Fut>(key: impl Into<String>, options: EntryOptions, loader: F) -> Self
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        Self {
            key: key.into(),
            options,
            loader: Box::new(move || Box::pin(loader())),
        }
    }
}

/// Progress of a warm-up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct WarmReport {
    /// Entries to warm.
    pub total: usize,
    /// Entries now cached (loaded, or already present).
    pub done: usize,
    /// Entries whose loader failed.
    pub failed: usize,
    /// Entries not loaded because the cache is disabled (`CACHE_ENABLED=false`):
    /// there is nowhere to put them.
    pub skipped: usize,
}

impl Cache {
    /// Loads `entries` through [`get_or_load`](Self::get_or_load), at most
    /// `concurrency` at a time, calling `progress` after each one. Entries
    /// already cached are not loaded again. A disabled cache runs no loader
    /// and reports every entry as `skipped`.
    ///
    /// ```no_run
    /// # async fn demo(cache: ngx_cache::Cache) {
    /// use ngx_cache::{EntryOptions, WarmEntry};
    ///
    /// let topics = ["pricing", "objections", "programs"];
    /// let entries = topics
    ///     .iter()
    ///     .map(|t| {
    ///         let t = t.to_string();
    ///         WarmEntry::new(format!("know:{t}"), EntryOptions::new(), move || async move {
    ///             Ok::<_, std::io::Error>(format!("article about {t}"))
    ///         })
    ///     })
    ///     .collect();
    /// let report = cache.warm(entries, 4, |p| println!("{}/{}", p.done, p.total)).await;
    /// assert_eq!(report.failed, 0);
    /// # }
    /// ```
    pub async fn warm<T, E>(
        &self,
        entries: Vec<WarmEntry<T, E>>,
        concurrency: usize,
        progress: impl Fn(&WarmReport),
    ) -> WarmReport
    where
        T: Cacheable,
        E: Send + Sync + 'static,
    {
        let mut report = WarmReport {
            total: entries.len(),
            ..WarmReport::default()
        };
        if !self.is_enabled() {
            report.skipped = report.total;
            progress(&report);
            return report;
        }
        let mut results = futures::stream::iter(entries)
            .map(|entry| async move {
                self.get_or_load(&entry.key, &entry.options, entry.loader)
                    .await
                    .is_ok()
            })
            .buffer_unordered(concurrency.max(1));
        while let Some(ok) = results.next().await {
            if ok {
                report.done += 1;
            } else {
                report.failed += 1;
            }
            progress(&report);
        }
        report
    }
}
