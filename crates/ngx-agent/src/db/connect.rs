//! Opening a [`Database`]: URL handling, pool options, Postgres schemas.

use sqlx::AssertSqlSafe;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::{Connection, Executor};

use super::{Backend, Database, DbError};

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
}

impl Default for DbOptions {
    fn default() -> Self {
        Self {
            max_connections: 8,
            acquire_timeout: Duration::from_secs(5),
            schema: None,
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
                conn.execute(sqlx::query(AssertSqlSafe(format!(
                    "CREATE SCHEMA IF NOT EXISTS \"{s}\""
                ))))
                .await?;
                conn.close().await?;
                Some(Arc::<str>::from(s.as_str()))
            }
        };
        let on_connect = schema.clone();
        let pool = AnyPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.acquire_timeout)
            .after_connect(move |conn, _meta| {
                let schema = on_connect.clone();
                Box::pin(async move {
                    if let Some(s) = schema {
                        conn.execute(sqlx::query(AssertSqlSafe(format!(
                            "SET search_path TO \"{s}\""
                        ))))
                        .await?;
                    }
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

/// Normalises the URL and tells the backend apart.
fn prepare_url(url: &str) -> Result<(String, Backend), DbError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok((url.to_owned(), Backend::Postgres));
    }
    let Some(rest) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    else {
        return Err(DbError::UnsupportedUrl(redact(url)));
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

/// Hides a password so the URL can appear in an error message.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            format!("{}://***@{}", &url[..scheme_end], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
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
