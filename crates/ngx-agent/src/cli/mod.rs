//! The command line of `ngx-agent` (clap derive).
//!
//! # Layout
//! - `env`: every environment variable as a global flag, listed by `--help`.
//! - `serve`: the HTTP service (the default command).
//! - `healthcheck`: exit status 0/1 from the service's health endpoint.
//! - `cache`: operator commands against Redis (`stats`, `health`, `get`,
//!   `keys`, `invalidate`, `clear`, `warm`); `entry` renders `cache get`.
//! - `progress`: progress bars drawn only on a terminal.

mod cache;
mod entry;
mod env;
mod healthcheck;
mod progress;
mod serve;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub(crate) use env::EnvArgs;

/// The NGX Voice Sales Agent service and its operator tools. Every setting
/// comes from the environment or the matching flag, the same for all commands.
#[derive(Debug, Parser)]
#[command(name = "ngx-agent", version, propagate_version = true)]
pub(crate) struct Cli {
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    env: EnvArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the HTTP API until SIGTERM or Ctrl-C (the default).
    Serve(serve::ServeArgs),
    /// Load benchmark: the service with the cache off, then on, side by side.
    Bench(ngx_bench::BenchArgs),
    /// Exit 0 when the service at HTTP_ADDR answers its health check, 1 otherwise.
    Healthcheck(healthcheck::HealthcheckArgs),
    /// Inspect and manage the cache in Redis.
    #[command(subcommand)]
    Cache(cache::CacheCommand),
}

/// Parses the command line and runs the command.
pub(crate) async fn run() -> ExitCode {
    let cli = Cli::parse();
    let out = Output { json: cli.json };
    let result = match cli.command {
        None => serve::run(serve::ServeArgs::default(), cli.env).await,
        Some(Command::Serve(args)) => serve::run(args, cli.env).await,
        Some(Command::Bench(args)) => ngx_bench::main(args).await.map(|()| ExitCode::SUCCESS),
        Some(Command::Healthcheck(args)) => return healthcheck::run(&args, &cli.env, out),
        Some(Command::Cache(cmd)) => cache::run(cmd, &cli.env, out).await,
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// How results are printed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Output {
    pub(crate) json: bool,
}

impl Output {
    /// Prints `value` as pretty JSON with `--json`, else runs `human`.
    pub(crate) fn print<T: serde::Serialize>(&self, value: &T, human: impl FnOnce()) {
        if self.json {
            match serde_json::to_string_pretty(value) {
                Ok(text) => println!("{text}"),
                Err(e) => eprintln!("error: {e}"),
            }
        } else {
            human();
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn unknown_flags_are_errors() {
        assert!(Cli::try_parse_from(["ngx-agent", "serve", "--bogus"]).is_err());
        assert!(Cli::try_parse_from(["ngx-agent", "--bogus"]).is_err());
        assert!(
            Cli::try_parse_from(["ngx-agent", "cache", "keys", "conv", "--lmit", "3"]).is_err()
        );
        assert!(Cli::try_parse_from(["ngx-agent", "serve", "--port", "9000"]).is_ok());
    }
}
