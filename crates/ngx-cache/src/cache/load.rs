//! `get_or_load` on [`Cache`]: the value from L1, else Redis, else the
//! loader. The work is done by the loading layer (`load/`).

use std::future::Future;

use super::handle::Cache;
use crate::options::{EntryOptions, LoadError, Loaded};
use crate::value::Cacheable;

impl Cache {
    /// Returns the value for `key` from L1, else Redis, else `loader`, and
    /// stores what the loader returns in both tiers.
    ///
    /// Concurrent calls for one key in this process run `loader` once; the
    /// others wait for its result (see the stampede example below). A call
    /// that starts after the key was invalidated (`delete`, `set`, a tag or
    /// a clear, here or on another instance) never joins a load that began
    /// before the invalidation, so a read after a write sees the write. Across
    /// instances a lease in Redis makes the others wait briefly for the first
    /// one's value. Redis failures only make the call slower: it then loads
    /// without caching. See [`EntryOptions`] for fail-safe, timeouts, tags
    /// and eager refresh.
    ///
    /// ```no_run
    /// # async fn demo(cache: ngx_cache::Cache) {
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::time::Duration;
    /// use ngx_cache::EntryOptions;
    ///
    /// let calls = Arc::new(AtomicUsize::new(0));
    /// let opts = EntryOptions::new().ttl(Duration::from_secs(60));
    /// let tasks: Vec<_> = (0..1000)
    ///     .map(|_| {
    ///         let (cache, calls, opts) = (cache.clone(), calls.clone(), opts.clone());
    ///         tokio::spawn(async move {
    ///             cache
    ///                 .get_or_load("report:7", &opts, move || async move {
    ///                     calls.fetch_add(1, Ordering::SeqCst);
    ///                     tokio::time::sleep(Duration::from_millis(50)).await;
    ///                     Ok::<_, std::io::Error>("expensive".to_owned())
    ///                 })
    ///                 .await
    ///         })
    ///     })
    ///     .collect();
    /// for t in tasks {
    ///     assert_eq!(t.await.unwrap().unwrap(), "expensive");
    /// }
    /// assert_eq!(calls.load(Ordering::SeqCst), 1); // one load for 1,000 callers
    /// # }
    /// ```
    pub async fn get_or_load<T, E, F, Fut>(
        &self,
        key: &str,
        options: &EntryOptions,
        loader: F,
    ) -> Result<T, LoadError<E>>
    where
        T: Cacheable,
        E: Send + Sync + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        self.get_or_load_entry(key, options, loader)
            .await
            .map(|l| l.value)
    }

    /// Like [`get_or_load`](Self::get_or_load), also telling where the value
    /// came from ([`Source::Stale`](crate::Source::Stale) when fail-safe
    /// served it).
    pub async fn get_or_load_entry<T, E, F, Fut>(
        &self,
        key: &str,
        options: &EntryOptions,
        loader: F,
    ) -> Result<Loaded<T>, LoadError<E>>
    where
        T: Cacheable,
        E: Send + Sync + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        self.inner
            .loader
            .get_or_load_entry(key, options, loader)
            .await
    }
}
