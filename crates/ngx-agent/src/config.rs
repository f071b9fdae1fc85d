//! The service's configuration, read once at start from the environment.
//!
//! [`AppConfig::from_env`] reads the HTTP, database and admin settings below
//! plus [`CacheConfig::from_env`] and [`DomainCacheSettings::from_env`]. A
//! malformed value stops start-up with a [`ConfigError`] naming the variable.
//! `Debug` never shows the admin token or a database password.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `HTTP_ADDR` | `127.0.0.1:8000` | listen address |
//! | `DATABASE_URL` | `sqlite://data/ngx.db` | `sqlite://path` or `postgres://...` |
//! | `DATABASE_SCHEMA` | unset | PostgreSQL only: confine the service to this schema (created if missing) |
//! | `DATABASE_MAX_CONNECTIONS` | 8 | pool size |
//! | `DATABASE_SEED` | true | seed demo data into empty tables at start |
//! | `CACHE_WARM` | true | warm knowledge, agent config, catalog and recently active customers at start |
//! | `ADMIN_TOKEN` | unset | bearer token of the admin endpoints; unset disables them |
//! | `LOG_FORMAT` | `text` | `text` or `json` |
//! | `RUST_LOG` | `info,sqlx=warn` | log filter (`tracing` directives); a malformed one stops start-up |
//! | `HTTP_REQUEST_TIMEOUT_MS` | 10000 | per-request deadline (503 after it) |
//! | `HTTP_BODY_LIMIT_BYTES` | 262144 | largest request body (413 above it) |
//! | `HTTP_SHUTDOWN_TIMEOUT_MS` | 10000 | how long shutdown waits for in-flight requests |
//! | `OTEL_EXPORTER_OTLP_ENDPOINT` | unset | OTLP/HTTP receiver for trace export (off when unset) |
//! | `OTEL_SERVICE_NAME` | `ngx-agent` | `service.name` of exported spans |
//! | `HTTP_HEADER_TIMEOUT_MS` | 5000 | a connection that has not sent a request's headers within this is closed |
//! | `HTTP_IDLE_TIMEOUT_MS` | 60000 | a keep-alive connection idle for this long is closed |
//! | `HTTP_MAX_CONNECTIONS` | 1024 | open connections at most; more wait in the listen backlog |
//! | `DATABASE_STATEMENT_TIMEOUT_MS` | 5000 | PostgreSQL `statement_timeout`, SQLite busy timeout; 0 = none |
//! | `CONVERSATION_MAX_MESSAGES` | 500 | messages one conversation may hold (422 beyond) |
//! | `CONVERSATION_MAX_BYTES` | 262144 | bytes of message text one conversation may hold (422 beyond) |
//! | `HEALTH_DETAILS_PUBLIC` | false | show readiness details without the admin token |

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use ngx_cache::config::Env;
use ngx_cache::redact::redact_url;
use ngx_cache::{CacheConfig, ConfigError};

use crate::cache::DomainCacheSettings;
use crate::db::Database;
pub use crate::domain::ConversationLimits;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Limits applied by the HTTP layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct HttpLimits {
    /// Deadline of one request; past it the client gets 503.
    pub request_timeout: Duration,
    /// Largest accepted request body, in bytes; above it the client gets 413.
    pub body_limit: usize,
    /// A connection must send a request's headers within this, or it is
    /// closed: slow or silent clients cannot hold connections.
    pub header_timeout: Duration,
    /// A keep-alive connection with no request for this long is closed.
    pub idle_timeout: Duration,
    /// Open connections at most. Further clients wait in the kernel's
    /// listen backlog until one closes.
    pub max_connections: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(10),
            body_limit: 256 * 1024,
            header_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(60),
            max_connections: 1024,
        }
    }
}

/// Everything `ngx-agent` needs to start.
#[derive(Clone)]
#[non_exhaustive]
pub struct AppConfig {
    /// Listen address (`HTTP_ADDR`).
    pub http_addr: SocketAddr,
    /// System of record (`DATABASE_URL`). May hold a password: never log it
    /// raw, use [`AppConfig::redacted_database_url`].
    pub database_url: String,
    /// PostgreSQL schema to use, created if missing (`DATABASE_SCHEMA`).
    pub database_schema: Option<String>,
    /// Pool size (`DATABASE_MAX_CONNECTIONS`).
    pub database_max_connections: u32,
    /// Seed demo data at start (`DATABASE_SEED`).
    pub seed: bool,
    /// Warm the cache at start (`CACHE_WARM`).
    pub warm: bool,
    /// Bearer token of the admin endpoints (`ADMIN_TOKEN`); `None` disables them.
    pub admin_token: Option<String>,
    /// Log format (`LOG_FORMAT`).
    pub log_format: LogFormat,
    /// Log filter, `tracing` directives (`RUST_LOG`); checked at start-up.
    pub log_filter: String,
    /// Request timeout, body limit, connection timeouts and cap.
    pub limits: HttpLimits,
    /// PostgreSQL `statement_timeout` and SQLite busy timeout
    /// (`DATABASE_STATEMENT_TIMEOUT_MS`); `None` waits forever.
    pub database_statement_timeout: Option<Duration>,
    /// Bounds of one conversation (`CONVERSATION_MAX_*`).
    pub conversation_limits: ConversationLimits,
    /// Show readiness details to anyone, not only with the admin token
    /// (`HEALTH_DETAILS_PUBLIC`).
    pub health_details_public: bool,
    /// How long shutdown waits for in-flight requests (`HTTP_SHUTDOWN_TIMEOUT_MS`).
    pub shutdown_timeout: Duration,
    /// The cache library's settings (`REDIS_URL`, `CACHE_*`).
    pub cache: CacheConfig,
    /// Per-type TTLs and fail-safe (`CACHE_TTL_*`, `CACHE_FAIL_SAFE`).
    pub domain: DomainCacheSettings,
    /// OpenTelemetry trace export (`OTEL_EXPORTER_OTLP_ENDPOINT`,
    /// `OTEL_SERVICE_NAME`); off without an endpoint.
    pub otel: crate::otel::OtelConfig,
}

impl Default for AppConfig {
    fn default() -> Self {
        Self {
            http_addr: SocketAddr::from(([127, 0, 0, 1], 8000)),
            database_url: Database::DEFAULT_URL.to_owned(),
            database_schema: None,
            database_max_connections: 8,
            seed: true,
            warm: true,
            admin_token: None,
            log_format: LogFormat::Text,
            log_filter: "info,sqlx=warn".to_owned(),
            limits: HttpLimits::default(),
            database_statement_timeout: Some(Duration::from_secs(5)),
            conversation_limits: ConversationLimits::default(),
            health_details_public: false,
            shutdown_timeout: Duration::from_secs(10),
            cache: CacheConfig::default(),
            domain: DomainCacheSettings::default(),
            otel: crate::otel::OtelConfig::default(),
        }
    }
}

impl fmt::Debug for AppConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppConfig")
            .field("http_addr", &self.http_addr)
            .field("database_url", &self.redacted_database_url())
            .field("database_schema", &self.database_schema)
            .field("database_max_connections", &self.database_max_connections)
            .field("seed", &self.seed)
            .field("warm", &self.warm)
            .field(
                "admin_token",
                &self.admin_token.as_ref().map(|_| "<redacted>"),
            )
            .field("log_format", &self.log_format)
            .field("log_filter", &self.log_filter)
            .field("limits", &self.limits)
            .field(
                "database_statement_timeout",
                &self.database_statement_timeout,
            )
            .field("conversation_limits", &self.conversation_limits)
            .field("health_details_public", &self.health_details_public)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .field("cache", &self.cache)
            .field("domain", &self.domain)
            .finish()
    }
}

impl AppConfig {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads every variable through `lookup` (tests pass a map), with the
    /// cache library's [`Env`] reader, so every variable accepts the same
    /// spellings.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env::new(&lookup);
        let mut c = Self::default();
        if let Some(addr) = env.parse("HTTP_ADDR", |v| {
            v.parse::<SocketAddr>()
                .map_err(|_| "expected an address like 127.0.0.1:8000")
        })? {
            c.http_addr = addr;
        }
        if let Some(url) = env.string("DATABASE_URL") {
            if !(url.starts_with("sqlite:")
                || url.starts_with("postgres://")
                || url.starts_with("postgresql://"))
            {
                return Err(ConfigError::invalid(
                    "DATABASE_URL",
                    "must start with sqlite: or postgres://",
                ));
            }
            c.database_url = url;
        }
        if let Some(schema) = env.string("DATABASE_SCHEMA") {
            let ok = schema.len() <= 63
                && schema.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
                && schema
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if !ok {
                return Err(ConfigError::invalid(
                    "DATABASE_SCHEMA",
                    "must match [a-z_][a-z0-9_]{0,62}",
                ));
            }
            if c.database_url.starts_with("sqlite:") {
                return Err(ConfigError::invalid(
                    "DATABASE_SCHEMA",
                    "schemas need a postgres:// DATABASE_URL",
                ));
            }
            c.database_schema = Some(schema);
        }
        if let Some(n) = env.number::<u32>("DATABASE_MAX_CONNECTIONS")? {
            if n == 0 {
                return Err(ConfigError::invalid(
                    "DATABASE_MAX_CONNECTIONS",
                    "must be at least 1",
                ));
            }
            c.database_max_connections = n;
        }
        if let Some(b) = env.boolean("DATABASE_SEED")? {
            c.seed = b;
        }
        if let Some(b) = env.boolean("CACHE_WARM")? {
            c.warm = b;
        }
        c.admin_token = env.string("ADMIN_TOKEN");
        if let Some(format) =
            env.parse("LOG_FORMAT", |v| match v.to_ascii_lowercase().as_str() {
                "text" | "pretty" => Ok(LogFormat::Text),
                "json" => Ok(LogFormat::Json),
                _ => Err("expected `text` or `json`"),
            })?
        {
            c.log_format = format;
        }
        if let Some(filter) = env.parse("RUST_LOG", |v| {
            tracing_subscriber::EnvFilter::try_new(v)
                .map(|_| v.to_owned())
                .map_err(|e| e.to_string())
        })? {
            c.log_filter = filter;
        }
        if let Some(timeout) = env.millis("HTTP_REQUEST_TIMEOUT_MS")? {
            if timeout.is_zero() {
                return Err(ConfigError::invalid(
                    "HTTP_REQUEST_TIMEOUT_MS",
                    "must be at least 1",
                ));
            }
            c.limits.request_timeout = timeout;
        }
        if let Some(bytes) = env.number::<usize>("HTTP_BODY_LIMIT_BYTES")? {
            if bytes < 1024 {
                return Err(ConfigError::invalid(
                    "HTTP_BODY_LIMIT_BYTES",
                    "must be at least 1024",
                ));
            }
            c.limits.body_limit = bytes;
        }
        if let Some(timeout) = env.millis("HTTP_SHUTDOWN_TIMEOUT_MS")? {
            c.shutdown_timeout = timeout;
        }
        if let Some(t) = positive_millis(&env, "HTTP_HEADER_TIMEOUT_MS")? {
            c.limits.header_timeout = t;
        }
        if let Some(t) = positive_millis(&env, "HTTP_IDLE_TIMEOUT_MS")? {
            c.limits.idle_timeout = t;
        }
        if let Some(n) = env.number::<usize>("HTTP_MAX_CONNECTIONS")? {
            c.limits.max_connections = at_least_one("HTTP_MAX_CONNECTIONS", n)?;
        }
        if let Some(t) = env.millis("DATABASE_STATEMENT_TIMEOUT_MS")? {
            c.database_statement_timeout = (!t.is_zero()).then_some(t);
        }
        if let Some(n) = env.number::<usize>("CONVERSATION_MAX_MESSAGES")? {
            c.conversation_limits.max_messages = at_least_one("CONVERSATION_MAX_MESSAGES", n)?;
        }
        if let Some(n) = env.number::<usize>("CONVERSATION_MAX_BYTES")? {
            c.conversation_limits.max_bytes = at_least_one("CONVERSATION_MAX_BYTES", n)?;
        }
        if let Some(b) = env.boolean("HEALTH_DETAILS_PUBLIC")? {
            c.health_details_public = b;
        }
        c.cache = CacheConfig::from_lookup(&lookup)?;
        c.domain = DomainCacheSettings::from_lookup(&lookup)?;
        c.otel = crate::otel::OtelConfig::from_lookup(&lookup)?;
        if let Some(hard) = c.domain.hard_timeout
            && hard >= c.limits.request_timeout
        {
            return Err(ConfigError::invalid(
                "CACHE_LOAD_HARD_TIMEOUT_MS",
                format!(
                    "{} ms must be below HTTP_REQUEST_TIMEOUT_MS ({} ms), so a hung load can still \
                     be answered with a stale value",
                    hard.as_millis(),
                    c.limits.request_timeout.as_millis()
                ),
            ));
        }
        Ok(c)
    }

    /// The database URL with any password replaced by `***` (the cache
    /// library's redactor: user-info passwords and `password=` parameters).
    pub fn redacted_database_url(&self) -> String {
        redact_url(&self.database_url)
    }
}

/// A duration in milliseconds that must not be zero.
fn positive_millis(env: &Env<'_>, var: &str) -> Result<Option<Duration>, ConfigError> {
    match env.millis(var)? {
        Some(t) if t.is_zero() => Err(ConfigError::invalid(var, "must be at least 1")),
        other => Ok(other),
    }
}

/// `n`, refusing 0.
fn at_least_one(var: &str, n: usize) -> Result<usize, ConfigError> {
    if n == 0 {
        Err(ConfigError::invalid(var, "must be at least 1"))
    } else {
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn from(pairs: &[(&str, &str)]) -> Result<AppConfig, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        AppConfig::from_lookup(|n| map.get(n).cloned())
    }

    #[test]
    fn defaults_match_the_documentation() {
        let c = from(&[]).unwrap();
        assert_eq!(c.http_addr.to_string(), "127.0.0.1:8000");
        assert_eq!(c.database_url, "sqlite://data/ngx.db");
        assert_eq!(c.admin_token, None);
        assert!(c.seed && c.warm && c.cache.enabled);
        assert_eq!(c.limits, HttpLimits::default());
    }

    #[test]
    fn malformed_values_name_the_variable() {
        for (var, value) in [
            ("HTTP_ADDR", "localhost"),
            ("DATABASE_URL", "mysql://x"),
            ("DATABASE_MAX_CONNECTIONS", "0"),
            ("DATABASE_SEED", "maybe"),
            ("LOG_FORMAT", "xml"),
            ("HTTP_REQUEST_TIMEOUT_MS", "soon"),
            ("HTTP_BODY_LIMIT_BYTES", "10"),
            ("CACHE_ENABLED", "perhaps"),
            ("CACHE_TTL_CONVERSATION", "-1"),
            ("HTTP_HEADER_TIMEOUT_MS", "0"),
            ("HTTP_IDLE_TIMEOUT_MS", "1s"),
            ("HTTP_MAX_CONNECTIONS", "0"),
            ("DATABASE_STATEMENT_TIMEOUT_MS", "-5"),
            ("CONVERSATION_MAX_MESSAGES", "0"),
            ("CONVERSATION_MAX_BYTES", "lots"),
            ("HEALTH_DETAILS_PUBLIC", "sure"),
            ("CACHE_LOAD_HARD_TIMEOUT_MS", "x"),
            ("CACHE_WARM_CUSTOMERS", "lots"),
        ] {
            let err = from(&[(var, value)]).unwrap_err();
            assert_eq!(err.var, var, "{var}={value}");
        }
    }

    #[test]
    fn the_database_url_is_redacted_by_the_library() {
        let c = from(&[(
            "DATABASE_URL",
            "postgres://app:s3cret@db/ngx?sslmode=require&x=a@b",
        )])
        .unwrap();
        assert_eq!(
            c.redacted_database_url(),
            "postgres://app:***@db/ngx?sslmode=require&x=a@b"
        );
        let c = from(&[("DATABASE_URL", "postgres://db/ngx?user=app&password=s3cret")]).unwrap();
        assert!(!c.redacted_database_url().contains("s3cret"));
        assert!(!format!("{c:?}").contains("s3cret"));
    }

    #[test]
    fn connection_and_load_limits_are_read() {
        let c = from(&[
            ("HTTP_HEADER_TIMEOUT_MS", "1500"),
            ("HTTP_IDLE_TIMEOUT_MS", "20000"),
            ("HTTP_MAX_CONNECTIONS", "64"),
            ("DATABASE_STATEMENT_TIMEOUT_MS", "0"),
            ("CONVERSATION_MAX_MESSAGES", "40"),
            ("CONVERSATION_MAX_BYTES", "65536"),
            ("HEALTH_DETAILS_PUBLIC", "true"),
        ])
        .unwrap();
        assert_eq!(c.limits.header_timeout, Duration::from_millis(1500));
        assert_eq!(c.limits.idle_timeout, Duration::from_secs(20));
        assert_eq!(c.limits.max_connections, 64);
        assert_eq!(c.database_statement_timeout, None);
        assert_eq!(c.conversation_limits.max_messages, 40);
        assert_eq!(c.conversation_limits.max_bytes, 65536);
        assert!(c.health_details_public);
        // The load's hard timeout must stay under the request deadline.
        let err = from(&[("HTTP_REQUEST_TIMEOUT_MS", "2000")]).unwrap_err();
        assert_eq!(err.var, "CACHE_LOAD_HARD_TIMEOUT_MS");
        assert!(
            from(&[
                ("HTTP_REQUEST_TIMEOUT_MS", "2000"),
                ("CACHE_LOAD_HARD_TIMEOUT_MS", "1000"),
                ("CACHE_LOAD_SOFT_TIMEOUT_MS", "100"),
            ])
            .is_ok()
        );
    }

    #[test]
    fn debug_hides_credentials() {
        let c = from(&[
            ("DATABASE_URL", "postgres://app:s3cret@db/ngx"),
            ("ADMIN_TOKEN", "tok-very-secret"),
            ("CACHE_ENABLED", "false"),
            ("LOG_FORMAT", "json"),
        ])
        .unwrap();
        let text = format!("{c:?}");
        assert!(
            !text.contains("s3cret") && !text.contains("tok-very-secret"),
            "{text}"
        );
        assert_eq!(c.admin_token.as_deref(), Some("tok-very-secret"));
        assert!(!c.cache.enabled);
        assert_eq!(c.log_format, LogFormat::Json);
    }
}
