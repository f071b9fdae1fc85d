//! `&self` methods, with the cache taken from a field.
use std::sync::Arc;

use ngx_cache::{Cache, cached};
use serde::Serialize;

#[derive(Clone, Serialize)]
struct Tenant {
    #[serde(skip)]
    cache: Option<Cache>,
    id: u32,
    #[serde(skip)]
    db: Arc<Vec<String>>,
}

impl Tenant {
    #[cached(cache = self.cache, ttl = 60, key_prefix = "tenant:name")]
    async fn name(&self, index: usize) -> Option<String> {
        self.db.get(index).cloned()
    }

    /// `key_self = true` puts `self` (here: its serialized `id`) in the key.
    #[cached(cache = self.cache, key_self = true)]
    async fn size(&self) -> usize {
        self.db.len()
    }

    #[cached(cache = &self.cache, key = "{self}:{index}")]
    async fn readable(&self, index: usize) -> Result<String, String> {
        self.db.get(index).cloned().ok_or_else(|| "missing".to_owned())
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let t = Tenant {
        cache: Some(Cache::disabled()),
        id: 7,
        db: Arc::new(vec!["a".into()]),
    };
    assert_eq!(t.name(0).await.as_deref(), Some("a"));
    assert_eq!(t.size().await, 1);
    assert!(t.readable(3).await.is_err());
    assert_eq!(t.name_uncached(0).await.as_deref(), Some("a"));
    assert!(!t.name_invalidate(0).await);
    let _ = t.id;
}
