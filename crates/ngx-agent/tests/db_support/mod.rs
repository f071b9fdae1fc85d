//! Shared helpers for the database tests: one isolated database per test.
//!
//! Without `TEST_DATABASE_URL` each test gets a SQLite file in its own
//! temporary directory. With `TEST_DATABASE_URL=postgres://...` each test
//! gets a fresh schema (dropped by [`TestDb::finish`]) so tests run in
//! parallel and repeatedly on one server.

#![allow(dead_code, unreachable_pub)]

use std::sync::atomic::{AtomicU32, Ordering};

use ngx_agent::db::{Backend, Database, DbOptions};

/// A migrated, empty database private to one test.
pub struct TestDb {
    /// The handle under test.
    pub db: Database,
    /// The SQLite file's directory, deleted on drop.
    dir: Option<tempfile::TempDir>,
    /// The URL used, for opening a second handle.
    pub url: String,
    /// The Postgres schema, if any.
    pub schema: Option<String>,
}

impl TestDb {
    /// Opens and migrates a fresh database.
    pub async fn new() -> TestDb {
        let t = Self::unmigrated().await;
        t.db.migrate().await.expect("migrations apply");
        t
    }

    /// Opens a fresh database without running migrations.
    pub async fn unmigrated() -> TestDb {
        match std::env::var("TEST_DATABASE_URL") {
            Ok(url) if !url.is_empty() => {
                static N: AtomicU32 = AtomicU32::new(0);
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .subsec_nanos();
                let schema = format!(
                    "t_{}_{}_{}",
                    std::process::id(),
                    nanos,
                    N.fetch_add(1, Ordering::Relaxed)
                );
                let db = Database::connect_with(&url, DbOptions::default().schema(&schema))
                    .await
                    .expect("connect to TEST_DATABASE_URL");
                assert_eq!(db.backend(), Backend::Postgres);
                TestDb {
                    db,
                    dir: None,
                    url,
                    schema: Some(schema),
                }
            }
            _ => {
                let dir = tempfile::tempdir().expect("tempdir");
                let url = format!("sqlite://{}", dir.path().join("data/ngx.db").display());
                let db = Database::connect(&url).await.expect("open sqlite");
                assert_eq!(db.backend(), Backend::Sqlite);
                TestDb {
                    db,
                    dir: Some(dir),
                    url,
                    schema: None,
                }
            }
        }
    }

    /// A second, independent handle on the same database.
    pub async fn reopen(&self) -> Database {
        self.reopen_with(DbOptions::default()).await
    }

    /// A second handle on the same database with these options (the
    /// test's schema is added on PostgreSQL).
    pub async fn reopen_with(&self, mut options: DbOptions) -> Database {
        if let Some(schema) = &self.schema {
            options = options.schema(schema);
        }
        Database::connect_with(&self.url, options)
            .await
            .expect("reopen")
    }

    /// Drops the Postgres schema or closes the SQLite pool.
    pub async fn finish(self) {
        if self.schema.is_some() {
            self.db.drop_schema().await.expect("drop schema");
        } else {
            self.db.close().await;
        }
    }
}
