//! `get_or_load` on [`Cache`]: the value from L1, else Redis, else the
//! loader. The work is done by the loading layer (`load/`).

use std::collections::HashMap;
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

    /// Returns values for many keys at once, in the order of `keys`, `None`
    /// where `loader` returned nothing: L1 first (no I/O), then one Redis
    /// read for the keys L1 did not answer, then one `loader` call with only
    /// the keys still missing. What the loader returns is stored in both
    /// tiers, like [`get_or_load`](Self::get_or_load) does for one key.
    ///
    /// Each key loaded here is single-flight with the other loads in this
    /// process: a key whose `get_or_load` (or another batch) is already
    /// running is awaited, not passed to `loader`, and a `get_or_load` for a
    /// key this batch is loading waits for the batch (it gets
    /// [`LoadError::NotLoaded`] when the loader leaves that key out). Leases
    /// and checked fills work as for one key, so a key written or deleted
    /// during the load is not overwritten with the loaded value.
    ///
    /// A loader error or timeout fails the call, unless fail-safe is on and
    /// every failed key has a stale value to serve. Keys that cannot be
    /// cached (invalid, or Redis disabled) are passed to `loader` too and
    /// not stored.
    ///
    /// ```no_run
    /// # async fn demo(cache: ngx_cache::Cache) -> Result<(), ngx_cache::LoadError<std::io::Error>> {
    /// use std::collections::HashMap;
    /// use ngx_cache::EntryOptions;
    ///
    /// let ids = ["user:1", "user:2", "user:3"];
    /// let names: Vec<Option<String>> = cache
    ///     .get_or_load_many(&ids, &EntryOptions::new(), |missing: Vec<String>| async move {
    ///         // One query for every missing key, for example `WHERE id = ANY($1)`.
    ///         Ok::<_, std::io::Error>(
    ///             missing.into_iter().map(|k| { let v = k.to_uppercase(); (k, v) }).collect::<HashMap<_, _>>(),
    ///         )
    ///     })
    ///     .await?;
    /// assert_eq!(names.len(), 3);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn get_or_load_many<T, E, F, Fut, K>(
        &self,
        keys: &[K],
        options: &EntryOptions,
        loader: F,
    ) -> Result<Vec<Option<T>>, LoadError<E>>
    where
        T: Cacheable,
        E: Send + Sync + 'static,
        F: FnOnce(Vec<String>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<HashMap<String, T>, E>> + Send + 'static,
        K: AsRef<str>,
    {
        let keys: Vec<String> = keys.iter().map(|k| k.as_ref().to_owned()).collect();
        self.inner
            .loader
            .get_or_load_many(&keys, options, loader)
            .await
    }
}
