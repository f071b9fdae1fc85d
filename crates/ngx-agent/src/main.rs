//! The `ngx-agent` binary: reads its configuration, connects the cache and
//! reports its health.

use anyhow::Context;
use ngx_cache::{Cache, CacheConfig};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,ngx_cache=info,ngx_agent=info".into()),
        )
        .init();
    let config = CacheConfig::from_env().context("reading cache configuration")?;
    tracing::info!(?config, "starting ngx-agent");
    let cache = match Cache::connect(config.clone()).await {
        Ok(cache) => cache,
        Err(e) => {
            tracing::warn!(error = %e, "cache unavailable at start, connecting in the background");
            Cache::connect_lazy(config).await?
        }
    };
    let health = cache.health_check().await;
    tracing::info!(health = %serde_json::to_string(&health)?, "cache health");
    tokio::signal::ctrl_c().await?;
    tracing::info!(stats = %serde_json::to_string(&cache.stats())?, "shutting down");
    Ok(())
}
