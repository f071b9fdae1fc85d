//! Opening a [`Database`]: URL handling, pool options, Postgres schemas.

use sqlx::AssertSqlSafe;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::{Connection, Executor};

use super::{Backend, Database, DbError};
use crate::domain::ConversationLimits;

/// A pooled connection idle for this long is pinged before it is handed
/// out.
const IDLE_CHECK: Duration = Duration::from_secs(1);

/// Options for [`Database::connect_with`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DbOptions {
    /// Most pooled connections (default 8).
    pub max_connections: u32,
    /// How long to wait for a free connection (default 5 s).
    pub acquire_timeout: Duration,
    /// PostgreSQL only: confine every connection to this schema (created if
    /// missing) through `SET search_path`. Tests use one schema each so they
    /// run in parallel. Must match `[a-z_][a-z0-9_]{0,62}`.
    pub schema: Option<String>,
    /// How long one statement may run (PostgreSQL `statement_timeout`,
    /// which includes waiting for locks) or wait for a locked database
    /// (SQLite busy timeout). Default 5 s; `None` waits forever.
    pub statement_timeout: Option<Duration>,
    /// Bounds of one conversation, checked by every append.
    pub conversation_limits: ConversationLimits,
}

impl Default for DbOptions {
    fn default() -> Self {
        Self {
            max_connections: 8,
            acquire_timeout: Duration::from_secs(5),
            schema: None,
            statement_timeout: Some(Duration::from_secs(5)),
            conversation_limits: ConversationLimits::default(),
        }
    }
}

impl DbOptions {
    /// Sets [`DbOptions::max_connections`].
    #[must_use]
    pub fn max_connections(mut self, n: u32) -> Self {
        self.max_connections = n;
        self
    }

    /// Sets [`DbOptions::statement_timeout`].
    #[must_use]
    pub fn statement_timeout(mut self, limit: Option<Duration>) -> Self {
        self.statement_timeout = limit;
        self
    }

    /// Sets [`DbOptions::conversation_limits`].
    #[must_use]
    pub fn conversation_limits(mut self, limits: ConversationLimits) -> Self {
        self.conversation_limits = limits;
        self
    }

    /// Sets [`DbOptions::schema`].
    #[must_use]
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = Some(schema.into());
        self
    }
}

impl Database {
    /// Opens a pool on `url`.
    ///
    /// - `sqlite:path`, `sqlite://path` (relative) or `sqlite:///abs/path`:
    ///   the parent directory and the file are created when missing
    ///   (`mode=rwc` is added unless the URL sets a mode), and the file is
    ///   switched to WAL so readers do not block the writer.
    /// - `postgres://...` / `postgresql://...`: a server; with
    ///   [`DbOptions::schema`] every connection uses that schema.
    ///
    /// Migrations are not run; call [`Database::migrate`].
    pub async fn connect_with(url: &str, options: DbOptions) -> Result<Database, DbError> {
        sqlx::any::install_default_drivers();
        let (url, backend) = prepare_url(url)?;
        if options.max_connections == 0 {
            return Err(DbError::InvalidOption {
                option: "max_connections",
                reason: "must be at least 1".into(),
            });
        }
        let schema = match (&options.schema, backend) {
            (None, _) => None,
            (Some(_), Backend::Sqlite) => {
                return Err(DbError::InvalidOption {
                    option: "schema",
                    reason: "schemas are a PostgreSQL feature".into(),
                });
            }
            (Some(s), Backend::Postgres) => {
                validate_schema(s)?;
                let mut conn = sqlx::AnyConnection::connect(&url).await?;
                // Concurrent `CREATE SCHEMA IF NOT EXISTS` can still fail
                // with a unique violation: serialise it per schema.
                let mut tx = conn.begin().await?;
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(advisory_key(Some(s), "schema"))
                    .execute(&mut *tx)
                    .await?;
                tx.execute(sqlx::query(AssertSqlSafe(format!(
                    "CREATE SCHEMA IF NOT EXISTS \"{s}\""
                ))))
                .await?;
                tx.commit().await?;
                conn.close().await?;
                Some(Arc::<str>::from(s.as_str()))
            }
        };
        let on_connect = schema.clone();
        let timeout_ms = options
            .statement_timeout
            .map_or(0, |d| d.as_millis().max(1));
        let pool = AnyPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.acquire_timeout)
            // sqlx pings every connection it hands out by default: one more
            // round trip per acquire, which across a network is as long as
            // the statement itself. Only a connection that sat idle is
            // checked (a database restart or a dropped link shows there);
            // one in steady use fails its next statement instead, as it
            // could right after any ping.
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= IDLE_CHECK {
                        sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            })
            .after_connect(move |conn, _meta| {
                let schema = on_connect.clone();
                Box::pin(async move {
                    if let Some(s) = schema {
                        conn.execute(sqlx::query(AssertSqlSafe(format!(
                            "SET search_path TO \"{s}\""
                        ))))
                        .await?;
                    }
                    // A hung database (a held lock) fails the statement
                    // instead of holding the connection and its caller.
                    let limit = match backend {
                        Backend::Postgres => format!("SET statement_timeout = {timeout_ms}"),
                        Backend::Sqlite => format!("PRAGMA busy_timeout = {timeout_ms}"),
                    };
                    conn.execute(sqlx::query(AssertSqlSafe(limit))).await?;
                    Ok(())
                })
            })
            .connect(&url)
            .await?;
        if backend == Backend::Sqlite && !url.contains("memory") {
            sqlx::query("PRAGMA journal_mode = WAL")
                .execute(&pool)
                .await?;
        }
        Ok(Database {
            pool,
            backend,
            schema,
            queries: Arc::new(AtomicU64::new(0)),
            conversation_limits: options.conversation_limits,
            writer: Arc::new(tokio::sync::Mutex::new(())),
        })
    }

    /// PostgreSQL only: drops the schema given in [`DbOptions::schema`] with
    /// everything in it, then closes the pool. Used by tests to clean up.
    pub async fn drop_schema(self) -> Result<(), DbError> {
        let Some(schema) = self.schema.clone() else {
            return Err(DbError::InvalidOption {
                option: "schema",
                reason: "this handle was opened without a schema".into(),
            });
        };
        self.tick();
        sqlx::query(AssertSqlSafe(format!(
            "DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"
        )))
        .execute(self.pool())
        .await?;
        self.close().await;
        Ok(())
    }
}

impl Database {
    /// The PostgreSQL advisory lock key of `purpose` in this handle's schema.
    pub(crate) fn advisory_key(&self, purpose: &str) -> i64 {
        advisory_key(self.schema.as_deref(), purpose)
    }

    /// PostgreSQL: takes the transaction-level advisory lock of `purpose`
    /// (released at commit or rollback). SQLite: nothing, its writers are
    /// serialised by the database lock.
    pub(crate) async fn advisory_xact_lock(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        purpose: &str,
    ) -> Result<(), DbError> {
        if self.backend == Backend::Postgres {
            self.tick();
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(self.advisory_key(purpose))
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }
}

/// A stable 64-bit key for `ngx-agent:{schema}:{purpose}`: instances on the
/// same schema share it, other schemas do not wait for each other.
fn advisory_key(schema: Option<&str>, purpose: &str) -> i64 {
    let name = format!("ngx-agent:{}:{purpose}", schema.unwrap_or("public"));
    xxhash_rust::xxh3::xxh3_64(name.as_bytes()) as i64
}

/// Normalises the URL and tells the backend apart.
fn prepare_url(url: &str) -> Result<(String, Backend), DbError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok((url.to_owned(), Backend::Postgres));
    }
    let Some(rest) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    else {
        return Err(DbError::UnsupportedUrl(ngx_cache::redact::redact_url(url)));
    };
    let (path, params) = rest.split_once('?').unwrap_or((rest, ""));
    if path.is_empty() || path == ":memory:" || params.contains("mode=memory") {
        return Ok((url.to_owned(), Backend::Sqlite));
    }
    if let Some(dir) = Path::new(path)
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir).map_err(|source| DbError::CreateDir {
            path: dir.display().to_string(),
            source,
        })?;
    }
    let params = if params.split('&').any(|p| p.starts_with("mode=")) {
        params.to_owned()
    } else if params.is_empty() {
        "mode=rwc".to_owned()
    } else {
        format!("{params}&mode=rwc")
    };
    Ok((format!("sqlite:{path}?{params}"), Backend::Sqlite))
}

fn validate_schema(schema: &str) -> Result<(), DbError> {
    let ok = !schema.is_empty()
        && schema.len() <= 63
        && schema.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && schema
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(DbError::InvalidOption {
            option: "schema",
            reason: format!("{schema:?} must match [a-z_][a-z0-9_]{{0,62}}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_get_create_mode_and_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("nested/ngx.db");
        let (url, backend) = prepare_url(&format!("sqlite://{}", file.display())).unwrap();
        assert_eq!(backend, Backend::Sqlite);
        assert_eq!(url, format!("sqlite:{}?mode=rwc", file.display()));
        assert!(file.parent().unwrap().is_dir());
        let (url, _) = prepare_url("sqlite::memory:").unwrap();
        assert_eq!(url, "sqlite::memory:");
    }

    #[test]
    fn other_schemes_are_refused_without_leaking_passwords() {
        let err = prepare_url("mysql://root:hunter2@db/x").unwrap_err();
        assert!(matches!(err, DbError::UnsupportedUrl(_)));
        assert!(!err.to_string().contains("hunter2"));
        assert_eq!(
            prepare_url("postgres://u@h/db").unwrap().1,
            Backend::Postgres
        );
    }

    #[test]
    fn schema_names_are_checked() {
        assert!(validate_schema("t_123").is_ok());
        assert!(validate_schema("T").is_err());
        assert!(validate_schema("a\"b").is_err());
        assert!(validate_schema("").is_err());
    }
}
