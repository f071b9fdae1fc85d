//! The system of record: sqlx `Any` over SQLite (default) or PostgreSQL.
//!
//! [`Database`] owns the pool and a shared query counter. Repositories are
//! cheap borrowed views created by [`Database::customers`],
//! [`Database::conversations`], [`Database::programs`],
//! [`Database::knowledge`] and [`Database::agent_configs`]. Every statement
//! they run increments the counter, so a benchmark can read
//! [`Database::query_count`] before and after a request.
//!
//! Only types `Any` understands cross the driver boundary: timestamps are
//! BIGINT unix milliseconds, ids TEXT, booleans BIGINT 0/1, floats DOUBLE
//! PRECISION, and nested data (goals, context, tags, features) JSON text.
//! Messages live in their own table so appending one is a single INSERT.
//!
//! ```no_run
//! # async fn demo() -> Result<(), ngx_agent::db::DbError> {
//! use ngx_agent::db::Database;
//! let db = Database::connect(Database::DEFAULT_URL).await?;
//! db.migrate().await?;
//! db.seed().await?;
//! let before = db.query_count();
//! let customer = db.customers().get("cust-00001").await?;
//! assert_eq!(db.query_count() - before, 1);
//! # let _ = customer; Ok(()) }
//! ```

mod config;
mod connect;
mod conversation;
mod customer;
mod error;
mod json;
mod knowledge;
mod migrate;
mod program;
mod seed;
pub(crate) mod seed_catalog;
mod seed_text;
mod sql;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::AnyPool;

pub use config::AgentConfigRepo;
pub use connect::DbOptions;
pub use conversation::ConversationRepo;
pub use customer::CustomerRepo;
pub use error::{BoxError, DbError};
pub use knowledge::KnowledgeRepo;
pub use program::ProgramRepo;
pub use seed::{SeedReport, SeedSpec};

/// Which engine a [`Database`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite file (or in-memory database).
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// A connection pool plus the shared query counter. Cloning is cheap and
/// clones share both.
#[derive(Debug, Clone)]
pub struct Database {
    pool: AnyPool,
    backend: Backend,
    /// PostgreSQL schema this handle is confined to, if any.
    schema: Option<Arc<str>>,
    /// Shared by every clone: benchmarks read it to report queries per
    /// request. Relaxed ordering is enough, it is a statistic.
    queries: Arc<AtomicU64>,
    /// Bounds checked by [`ConversationRepo::append_message`].
    conversation_limits: crate::domain::ConversationLimits,
    /// SQLite has one writer at a time, and a connection that finds the
    /// write lock taken sleeps in SQLite's busy handler (1, 2, 5, 10 ms
    /// ...), whatever the holder's remaining time. Conversation writes of
    /// this process wait their turn here instead, in order, and take the
    /// lock as soon as it is free. Unused on PostgreSQL (row locks).
    writer: Arc<tokio::sync::Mutex<()>>,
}

impl Database {
    /// The default URL: a SQLite file under `./data/`, created on first start.
    pub const DEFAULT_URL: &'static str = "sqlite://data/ngx.db";

    /// Connects with [`DbOptions::default`]. See [`Database::connect_with`].
    pub async fn connect(url: &str) -> Result<Database, DbError> {
        Self::connect_with(url, DbOptions::default()).await
    }

    /// Which engine this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The bounds of one conversation enforced by appends.
    pub fn conversation_limits(&self) -> crate::domain::ConversationLimits {
        self.conversation_limits
    }

    /// On SQLite, waits until no other conversation write of this process
    /// is running and holds the turn until the guard drops; `None` (no
    /// wait) on PostgreSQL.
    pub(crate) async fn writer_turn(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match self.backend {
            Backend::Sqlite => Some(self.writer.lock().await),
            Backend::Postgres => None,
        }
    }

    /// The SQLite writer's turn as a guard that can move into a task:
    /// waits like [`writer_turn`](Self::writer_turn), on either backend.
    pub(crate) async fn owned_writer_turn(&self) -> tokio::sync::OwnedMutexGuard<()> {
        Arc::clone(&self.writer).lock_owned().await
    }

    /// Statements run so far through this handle and its clones.
    pub fn query_count(&self) -> u64 {
        self.queries.load(Ordering::Relaxed)
    }

    /// Customer profiles.
    pub fn customers(&self) -> CustomerRepo<'_> {
        CustomerRepo::new(self)
    }

    /// Conversations and their messages.
    pub fn conversations(&self) -> ConversationRepo<'_> {
        ConversationRepo::new(self)
    }

    /// The program catalog.
    pub fn programs(&self) -> ProgramRepo<'_> {
        ProgramRepo::new(self)
    }

    /// The knowledge base.
    pub fn knowledge(&self) -> KnowledgeRepo<'_> {
        KnowledgeRepo::new(self)
    }

    /// Agent configurations.
    pub fn agent_configs(&self) -> AgentConfigRepo<'_> {
        AgentConfigRepo::new(self)
    }

    /// Closes every pooled connection; later calls fail.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The pool, for repositories. Callers must [`Database::tick`] per
    /// statement.
    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Counts one statement.
    pub(crate) fn tick(&self) {
        self.queries.fetch_add(1, Ordering::Relaxed);
    }
}

/// Current time in unix milliseconds.
pub(crate) fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
