//! A process-wide default cache for the `#[cached]` macros.

use std::sync::OnceLock;

use super::handle::Cache;

static GLOBAL: OnceLock<Cache> = OnceLock::new();

/// Installs the process-wide default cache used by `#[cached]` functions that
/// name no `cache = ..`. Only the first call takes effect; it returns false
/// when a cache was already installed.
pub fn install_global(cache: Cache) -> bool {
    GLOBAL.set(cache).is_ok()
}

/// The process-wide default cache, if one was installed.
pub fn global() -> Option<&'static Cache> {
    GLOBAL.get()
}
