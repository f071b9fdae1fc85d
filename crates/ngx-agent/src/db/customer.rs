//! Repository of customer profiles.

use sqlx::AssertSqlSafe;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Database, DbError, json, sql};
use crate::domain::{CustomerProfile, IncomeBand, validate_id};

const ENTITY: &str = "customer";
const COLUMNS: &str =
    "id, name, email, phone, age, occupation, income_band, goals, created_at, updated_at";

/// Customer profiles. Obtained from [`Database::customers`].
#[derive(Debug, Clone, Copy)]
pub struct CustomerRepo<'a> {
    db: &'a Database,
}

impl<'a> CustomerRepo<'a> {
    pub(crate) fn new(db: &'a Database) -> Self {
        Self { db }
    }

    /// The profile with `id`, or [`DbError::NotFound`]. One query.
    #[tracing::instrument(name = "db.query", level = "info", skip_all, fields(db.operation = "customers.get"))]
    pub async fn get(&self, id: &str) -> Result<CustomerProfile, DbError> {
        validate_id("customer_id", id)?;
        self.db.tick();
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM customers WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(self.db.pool())
        .await?
        .ok_or_else(|| DbError::not_found(ENTITY, id))?;
        from_row(&row)
    }

    /// The profiles of `ids` that exist, in no particular order; ids with no
    /// row are left out. One query for all of them (`WHERE id IN (...)`),
    /// none when `ids` is empty. Every id is validated first. The caller
    /// bounds the number of ids (one bind per id).
    #[tracing::instrument(name = "db.query", level = "info", skip_all, fields(db.operation = "customers.get_many"))]
    pub async fn get_many(&self, ids: &[String]) -> Result<Vec<CustomerProfile>, DbError> {
        for id in ids {
            validate_id("customer_id", id)?;
        }
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        self.db.tick();
        let statement = format!(
            "SELECT {COLUMNS} FROM customers WHERE id IN ({})",
            sql::list(ids.len())
        );
        let mut query = sqlx::query(AssertSqlSafe(statement));
        for id in ids {
            query = query.bind(id.as_str());
        }
        let rows = query.fetch_all(self.db.pool()).await?;
        rows.iter().map(from_row).collect()
    }

    /// Inserts a new profile; [`DbError::Conflict`] if the id exists. One
    /// query.
    pub async fn create(&self, profile: &CustomerProfile) -> Result<(), DbError> {
        profile.validate()?;
        self.db.tick();
        let done = sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO customers ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (id) DO NOTHING"
        )))
        .bind(profile.id.as_str())
        .bind(profile.name.as_str())
        .bind(profile.email.as_str())
        .bind(profile.phone.clone())
        .bind(profile.age.map(i64::from))
        .bind(profile.occupation.clone())
        .bind(profile.income_band.as_str())
        .bind(json::encode(ENTITY, &profile.goals)?)
        .bind(profile.created_at)
        .bind(profile.updated_at)
        .execute(self.db.pool())
        .await?;
        if done.rows_affected() == 0 {
            return Err(DbError::Conflict {
                entity: ENTITY,
                id: profile.id.clone(),
            });
        }
        Ok(())
    }

    /// Overwrites every field of an existing profile except `created_at`;
    /// [`DbError::NotFound`] if absent. One query.
    pub async fn update(&self, profile: &CustomerProfile) -> Result<(), DbError> {
        profile.validate()?;
        self.db.tick();
        let done = sqlx::query(
            "UPDATE customers SET name = $2, email = $3, phone = $4, age = $5,
                occupation = $6, income_band = $7, goals = $8, updated_at = $9
             WHERE id = $1",
        )
        .bind(profile.id.as_str())
        .bind(profile.name.as_str())
        .bind(profile.email.as_str())
        .bind(profile.phone.clone())
        .bind(profile.age.map(i64::from))
        .bind(profile.occupation.clone())
        .bind(profile.income_band.as_str())
        .bind(json::encode(ENTITY, &profile.goals)?)
        .bind(profile.updated_at)
        .execute(self.db.pool())
        .await?;
        if done.rows_affected() == 0 {
            return Err(DbError::not_found(ENTITY, &profile.id));
        }
        Ok(())
    }

    /// Up to `limit` ids in ascending order, skipping `offset`. One query.
    pub async fn list_ids(&self, limit: u32, offset: u32) -> Result<Vec<String>, DbError> {
        self.db.tick();
        let rows = sqlx::query("SELECT id FROM customers ORDER BY id LIMIT $1 OFFSET $2")
            .bind(i64::from(limit))
            .bind(i64::from(offset))
            .fetch_all(self.db.pool())
            .await?;
        rows.iter()
            .map(|r| r.try_get::<String, _>(0).map_err(DbError::from))
            .collect()
    }

    /// Up to `limit` profiles, the most recently active first: customers
    /// by the latest `updated_at` of their conversations, then customers
    /// without a conversation by their own `updated_at`, ties by id. One
    /// query.
    #[tracing::instrument(name = "db.query", level = "info", skip_all, fields(db.operation = "customers.recently_active"))]
    pub async fn recently_active(&self, limit: u32) -> Result<Vec<CustomerProfile>, DbError> {
        self.db.tick();
        // CASE instead of NULLS LAST: SQLite and PostgreSQL sort NULL at
        // opposite ends.
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM customers
             LEFT JOIN (SELECT customer_id, MAX(updated_at) AS active_at
                        FROM conversations GROUP BY customer_id) activity
               ON activity.customer_id = customers.id
             ORDER BY CASE WHEN activity.active_at IS NULL THEN 1 ELSE 0 END,
                      activity.active_at DESC, updated_at DESC, id
             LIMIT $1"
        )))
        .bind(i64::from(limit))
        .fetch_all(self.db.pool())
        .await?;
        rows.iter().map(from_row).collect()
    }

    /// Number of customers. One query.
    pub async fn count(&self) -> Result<u64, DbError> {
        self.db.tick();
        let n: i64 = sqlx::query("SELECT COUNT(*) FROM customers")
            .fetch_one(self.db.pool())
            .await?
            .try_get(0)?;
        u64::try_from(n).map_err(|e| DbError::corrupt(ENTITY, e))
    }
}

/// Decodes and validates one `customers` row.
fn from_row(row: &AnyRow) -> Result<CustomerProfile, DbError> {
    let band: String = row.try_get("income_band")?;
    let goals: String = row.try_get("goals")?;
    let profile = CustomerProfile {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        email: row.try_get("email")?,
        phone: row.try_get("phone")?,
        age: json::age(ENTITY, row.try_get("age")?)?,
        occupation: row.try_get("occupation")?,
        income_band: IncomeBand::parse(&band).map_err(|e| DbError::corrupt(ENTITY, e))?,
        goals: json::decode(ENTITY, &goals)?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    };
    profile
        .validate()
        .map_err(|e| DbError::corrupt(ENTITY, e))?;
    Ok(profile)
}
