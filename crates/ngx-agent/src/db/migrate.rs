//! Portable, ordered, idempotent migrations.
//!
//! One list of statements serves both backends: only TEXT, BIGINT and
//! DOUBLE PRECISION columns, `IF NOT EXISTS` wherever both have it. Applied versions are
//! recorded in `schema_migrations`; each migration runs in one transaction.
//!
//! On PostgreSQL the whole run holds a session advisory lock (one per
//! schema), so instances starting together on a fresh database apply the
//! migrations once, one after the other, instead of racing their
//! `CREATE TABLE IF NOT EXISTS` (which PostgreSQL does not make atomic).

use sqlx::pool::PoolConnection;
use sqlx::{Any, Row};

use super::{Database, DbError, now_millis};

/// One migration: a version, a name and its statements.
struct Migration {
    version: i64,
    name: &'static str,
    statements: &'static [&'static str],
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "core_tables",
        statements: &[
            "CREATE TABLE IF NOT EXISTS customers (
                id TEXT PRIMARY KEY,
                name TEXT NOT NULL,
                email TEXT NOT NULL,
                phone TEXT,
                age BIGINT,
                occupation TEXT,
                income_band TEXT NOT NULL,
                goals TEXT NOT NULL,
                created_at BIGINT NOT NULL,
                updated_at BIGINT NOT NULL
            )",
            "CREATE TABLE IF NOT EXISTS conversations (
                id TEXT PRIMARY KEY,
                customer_id TEXT NOT NULL,
                customer_name TEXT NOT NULL,
                customer_email TEXT NOT NULL,
                customer_phone TEXT,
                customer_age BIGINT,
                initial_message TEXT,
                context TEXT NOT NULL,
                lead_score DOUBLE PRECISION NOT NULL,
                intent TEXT,
                human_transfer_needed BIGINT NOT NULL,
                program_type TEXT NOT NULL,
                tier_detected TEXT,
                tier_confidence DOUBLE PRECISION,
                phase TEXT NOT NULL,
                updated_at BIGINT NOT NULL
            )",
            "CREATE INDEX IF NOT EXISTS conversations_customer_idx
                ON conversations (customer_id)",
            "CREATE TABLE IF NOT EXISTS messages (
                conversation_id TEXT NOT NULL,
                seq BIGINT NOT NULL,
                role TEXT NOT NULL,
                content TEXT NOT NULL,
                sent_at BIGINT NOT NULL,
                PRIMARY KEY (conversation_id, seq)
            )",
        ],
    },
    Migration {
        version: 2,
        name: "catalog_knowledge_config",
        statements: &[
            "CREATE TABLE IF NOT EXISTS programs (
                program_type TEXT PRIMARY KEY,
                name TEXT NOT NULL,
                description TEXT NOT NULL,
                min_age BIGINT NOT NULL,
                max_age BIGINT NOT NULL
            )",
            "CREATE TABLE IF NOT EXISTS program_tiers (
                program_type TEXT NOT NULL,
                tier TEXT NOT NULL,
                position BIGINT NOT NULL,
                name TEXT NOT NULL,
                monthly_price_cents BIGINT NOT NULL,
                features TEXT NOT NULL,
                PRIMARY KEY (program_type, tier)
            )",
            "CREATE TABLE IF NOT EXISTS knowledge (
                topic TEXT PRIMARY KEY,
                title TEXT NOT NULL,
                content TEXT NOT NULL,
                tags TEXT NOT NULL,
                updated_at BIGINT NOT NULL
            )",
            "CREATE TABLE IF NOT EXISTS agent_configs (
                name TEXT PRIMARY KEY,
                system_prompt TEXT NOT NULL,
                model TEXT NOT NULL,
                temperature DOUBLE PRECISION NOT NULL,
                max_tokens BIGINT NOT NULL,
                voice TEXT NOT NULL,
                greeting TEXT NOT NULL,
                features TEXT NOT NULL,
                updated_at BIGINT NOT NULL
            )",
        ],
    },
    Migration {
        version: 3,
        name: "conversation_message_revision",
        // Applied once (recorded in the same transaction), so the ALTER
        // needs no IF NOT EXISTS, which SQLite does not have for columns.
        // Existing message lists count as append-only from here on.
        statements: &[
            "ALTER TABLE conversations ADD COLUMN message_revision BIGINT NOT NULL DEFAULT 0",
            "UPDATE conversations SET message_revision = \
                (SELECT COUNT(*) FROM messages WHERE messages.conversation_id = conversations.id)",
        ],
    },
];

impl Database {
    /// Applies every migration not yet recorded, in version order. Safe to
    /// call at every start: applied versions are skipped and every statement
    /// is idempotent. Returns how many migrations were applied.
    pub async fn migrate(&self) -> Result<usize, DbError> {
        let mut conn = self.pool().acquire().await?;
        let key = self.advisory_key("migrate");
        let locked = self.backend() == super::Backend::Postgres;
        if locked {
            self.tick();
            sqlx::query("SELECT pg_advisory_lock($1)")
                .bind(key)
                .execute(&mut *conn)
                .await?;
        }
        let result = self.migrate_locked(&mut conn).await;
        if locked {
            self.tick();
            let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(key)
                .execute(&mut *conn)
                .await;
            if unlocked.is_err() {
                // Never hand a connection that may still hold the lock back
                // to the pool: closing the session releases it.
                conn.detach();
            }
        }
        result
    }

    async fn migrate_locked(&self, conn: &mut PoolConnection<Any>) -> Result<usize, DbError> {
        self.tick();
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                version BIGINT PRIMARY KEY,
                name TEXT NOT NULL,
                applied_at BIGINT NOT NULL
            )",
        )
        .execute(&mut **conn)
        .await?;
        self.tick();
        let applied: Vec<i64> = sqlx::query("SELECT version FROM schema_migrations")
            .fetch_all(&mut **conn)
            .await?
            .iter()
            .map(|r| r.try_get::<i64, _>(0))
            .collect::<Result<_, _>>()?;
        let mut count = 0;
        for migration in MIGRATIONS.iter().filter(|m| !applied.contains(&m.version)) {
            self.apply(conn, migration)
                .await
                .map_err(|source| DbError::Migration {
                    version: migration.version,
                    name: migration.name,
                    source,
                })?;
            tracing::info!(
                version = migration.version,
                name = migration.name,
                "migration applied"
            );
            count += 1;
        }
        Ok(count)
    }

    /// Versions recorded in `schema_migrations`, ascending.
    pub async fn applied_migrations(&self) -> Result<Vec<i64>, DbError> {
        self.tick();
        let rows = sqlx::query("SELECT version FROM schema_migrations ORDER BY version")
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| r.try_get::<i64, _>(0).map_err(DbError::from))
            .collect()
    }

    async fn apply(
        &self,
        conn: &mut PoolConnection<Any>,
        migration: &Migration,
    ) -> Result<(), sqlx::Error> {
        let mut tx = sqlx::Connection::begin(&mut **conn).await?;
        for statement in migration.statements {
            self.tick();
            sqlx::query(*statement).execute(&mut *tx).await?;
        }
        self.tick();
        sqlx::query(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)
             ON CONFLICT (version) DO NOTHING",
        )
        .bind(migration.version)
        .bind(migration.name)
        .bind(now_millis())
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_strictly_increase() {
        assert!(MIGRATIONS.windows(2).all(|w| w[0].version < w[1].version));
        assert_eq!(MIGRATIONS.first().map(|m| m.version), Some(1));
    }
}
