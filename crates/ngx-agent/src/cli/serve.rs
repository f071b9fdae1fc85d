//! `ngx-agent serve`: read the configuration, migrate, seed (with a progress
//! bar on a terminal), connect and warm the cache, then serve until SIGTERM
//! or Ctrl-C.

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Context;
use ngx_agent::config::{AppConfig, LogFormat};
use ngx_agent::db::{Database, DbOptions, SeedSpec};
use ngx_agent::http::{self, AppState};

use super::EnvArgs;
use super::progress;

/// Options of `serve`; they override `HTTP_ADDR`.
#[derive(Debug, Default, clap::Args)]
pub(crate) struct ServeArgs {
    /// Listen address, e.g. 0.0.0.0:8000 (overrides HTTP_ADDR).
    #[arg(long, value_name = "HOST:PORT")]
    addr: Option<SocketAddr>,
    /// Listen port, keeping the host of HTTP_ADDR (or of --addr).
    #[arg(long, value_name = "PORT")]
    port: Option<u16>,
}

pub(crate) async fn run(args: ServeArgs, mut env: EnvArgs) -> anyhow::Result<ExitCode> {
    if let Some(addr) = args.addr {
        env.set("HTTP_ADDR", addr.to_string());
    }
    let mut config = AppConfig::from_lookup(|n| env.get(n)).context("reading configuration")?;
    if let Some(port) = args.port {
        config.http_addr.set_port(port);
    }
    init_tracing(config.log_format, env.get("RUST_LOG"));
    tracing::info!(?config, "starting ngx-agent");
    if config.seed {
        seed_with_progress(&config).await?;
    }
    let state = AppState::start(&config)
        .await
        .context("starting the service")?;
    let listener = tokio::net::TcpListener::bind(config.http_addr)
        .await
        .with_context(|| format!("binding HTTP_ADDR {}", config.http_addr))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "listening");
    println!("ngx-agent listening on http://{addr}");
    println!("  status:    http://{addr}/");
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
    Ok(ExitCode::SUCCESS)
}

/// Seeds an empty database before start, showing progress on a terminal.
/// `AppState::start` then finds the tables filled and inserts nothing.
async fn seed_with_progress(config: &AppConfig) -> anyhow::Result<()> {
    if !progress::on_terminal() {
        return Ok(());
    }
    let mut options = DbOptions::default().max_connections(config.database_max_connections);
    if let Some(schema) = &config.database_schema {
        options = options.schema(schema.clone());
    }
    let db = Database::connect_with(&config.database_url, options)
        .await
        .with_context(|| format!("connecting to {}", config.redacted_database_url()))?;
    db.migrate().await.context("migrating the database")?;
    let spec = SeedSpec::default();
    let bar = progress::bar("seeding the database", 0);
    db.seed_with_progress(spec, |done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    })
    .await
    .context("seeding the database")?;
    bar.finish_and_clear();
    db.close().await;
    Ok(())
}

fn init_tracing(format: LogFormat, filter: Option<String>) {
    let filter = filter
        .and_then(|f| tracing_subscriber::EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| "info,sqlx=warn".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}
