//! The `ngx-agent` binary.
//!
//! - `ngx-agent` (or `ngx-agent serve`): reads the configuration, migrates,
//!   seeds and warms, then serves the HTTP API until SIGTERM or Ctrl-C.
//! - `ngx-agent bench [options]`: the load benchmark (`ngx-agent bench --help`).

use anyhow::Context;
use ngx_agent::config::{AppConfig, LogFormat};
use ngx_agent::http::{self, AppState};

/// mimalloc instead of glibc malloc: the request path allocates a lot of
/// small, short-lived objects, and malloc/free were the largest user-space
/// item in a profile of the cached mix (see docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None | Some("serve") => serve().await,
        Some("bench") => ngx_agent::bench::main(&args[1..]).await,
        Some("-h" | "--help" | "help") => {
            println!("usage: ngx-agent [serve]\n       ngx-agent bench --help");
            Ok(())
        }
        Some(other) => anyhow::bail!("unknown command {other:?}; try `ngx-agent --help`"),
    }
}

async fn serve() -> anyhow::Result<()> {
    let config = AppConfig::from_env().context("reading configuration")?;
    let _otel = init_tracing(&config)?;
    tracing::info!(?config, "starting ngx-agent");
    let state = AppState::start(&config)
        .await
        .context("starting the service")?;
    let listener = tokio::net::TcpListener::bind(config.http_addr)
        .await
        .with_context(|| format!("binding HTTP_ADDR {}", config.http_addr))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "listening");
    println!("ngx-agent listening on http://{addr}");
    println!("  API docs:  http://{addr}/docs");
    println!("  metrics:   http://{addr}/metrics");
    println!("  readiness: http://{addr}/health/ready");
    http::serve(
        listener,
        state,
        http::shutdown::signal(),
        config.shutdown_timeout,
    )
    .await
    .context("serving HTTP")?;
    Ok(())
}

/// Logs to stdout and, when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, exports
/// spans over OTLP; the guard flushes them at exit.
fn init_tracing(config: &AppConfig) -> anyhow::Result<Option<ngx_agent::otel::OtelGuard>> {
    use tracing_subscriber::prelude::*;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,sqlx=warn".into());
    let (otel, guard) = match &config.otel {
        Some(c) => {
            let (layer, guard) =
                ngx_agent::otel::layer(c).context("OTEL_EXPORTER_OTLP_ENDPOINT")?;
            (Some(layer), Some(guard))
        }
        None => (None, None),
    };
    let registry = tracing_subscriber::registry().with(filter).with(otel);
    match config.log_format {
        LogFormat::Json => registry
            .with(tracing_subscriber::fmt::layer().json())
            .init(),
        LogFormat::Text => registry.with(tracing_subscriber::fmt::layer()).init(),
    }
    Ok(guard)
}
