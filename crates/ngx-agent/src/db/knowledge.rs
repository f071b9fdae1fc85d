//! Repository of the knowledge base.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Database, DbError, json};
use crate::domain::{KnowledgeEntry, validate_id};

const ENTITY: &str = "knowledge entry";

/// The knowledge base. Obtained from [`Database::knowledge`].
#[derive(Debug, Clone, Copy)]
pub struct KnowledgeRepo<'a> {
    db: &'a Database,
}

impl<'a> KnowledgeRepo<'a> {
    pub(crate) fn new(db: &'a Database) -> Self {
        Self { db }
    }

    /// The entry for `topic`, or [`DbError::NotFound`]. One query.
    #[tracing::instrument(name = "db.query", level = "info", skip_all, fields(db.operation = "knowledge.get"))]
    pub async fn get(&self, topic: &str) -> Result<KnowledgeEntry, DbError> {
        validate_id("topic", topic)?;
        self.db.tick();
        let row = sqlx::query(
            "SELECT topic, title, content, tags, updated_at FROM knowledge WHERE topic = $1",
        )
        .bind(topic)
        .fetch_optional(self.db.pool())
        .await?
        .ok_or_else(|| DbError::not_found(ENTITY, topic))?;
        from_row(&row)
    }

    /// Every topic, ascending. One query.
    pub async fn list_topics(&self) -> Result<Vec<String>, DbError> {
        self.db.tick();
        let rows = sqlx::query("SELECT topic FROM knowledge ORDER BY topic")
            .fetch_all(self.db.pool())
            .await?;
        rows.iter()
            .map(|r| r.try_get::<String, _>(0).map_err(DbError::from))
            .collect()
    }

    /// Creates or replaces the entry for its topic. One query.
    pub async fn save(&self, entry: &KnowledgeEntry) -> Result<(), DbError> {
        entry.validate()?;
        self.db.tick();
        sqlx::query(
            "INSERT INTO knowledge (topic, title, content, tags, updated_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (topic) DO UPDATE SET title = excluded.title,
                content = excluded.content, tags = excluded.tags,
                updated_at = excluded.updated_at",
        )
        .bind(entry.topic.as_str())
        .bind(entry.title.as_str())
        .bind(entry.content.as_str())
        .bind(json::encode(ENTITY, &entry.tags)?)
        .bind(entry.updated_at)
        .execute(self.db.pool())
        .await?;
        Ok(())
    }
}

fn from_row(row: &AnyRow) -> Result<KnowledgeEntry, DbError> {
    let tags: String = row.try_get("tags")?;
    let entry = KnowledgeEntry {
        topic: row.try_get("topic")?,
        title: row.try_get("title")?,
        content: row.try_get("content")?,
        tags: json::decode(ENTITY, &tags)?,
        updated_at: row.try_get("updated_at")?,
    };
    entry.validate().map_err(|e| DbError::corrupt(ENTITY, e))?;
    Ok(entry)
}
