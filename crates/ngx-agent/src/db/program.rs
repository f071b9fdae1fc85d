//! Repository of the program catalog.

use sqlx::AssertSqlSafe;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Database, DbError, json, sql};
use crate::domain::{Program, ProgramTier, ProgramType, Tier};

const ENTITY: &str = "program";

/// The program catalog. Obtained from [`Database::programs`].
#[derive(Debug, Clone, Copy)]
pub struct ProgramRepo<'a> {
    db: &'a Database,
}

impl<'a> ProgramRepo<'a> {
    pub(crate) fn new(db: &'a Database) -> Self {
        Self { db }
    }

    /// Every program with its tiers (cheapest first), PRIME before
    /// LONGEVITY. Two queries.
    #[tracing::instrument(name = "db.query", level = "info", skip_all, fields(db.operation = "programs.list"))]
    pub async fn list(&self) -> Result<Vec<Program>, DbError> {
        self.db.tick();
        let rows = sqlx::query(
            "SELECT program_type, name, description, min_age, max_age FROM programs
             ORDER BY program_type DESC",
        )
        .fetch_all(self.db.pool())
        .await?;
        self.db.tick();
        let tier_rows = sqlx::query(
            "SELECT program_type, tier, name, monthly_price_cents, features FROM program_tiers
             ORDER BY program_type, position",
        )
        .fetch_all(self.db.pool())
        .await?;
        let mut programs = rows
            .iter()
            .map(program_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        for row in &tier_rows {
            let program: String = row.try_get("program_type")?;
            let program = ProgramType::parse(&program).map_err(|e| DbError::corrupt(ENTITY, e))?;
            if let Some(p) = programs.iter_mut().find(|p| p.program_type == program) {
                p.tiers.push(tier_from_row(row)?);
            }
        }
        for program in &programs {
            program
                .validate()
                .map_err(|e| DbError::corrupt(ENTITY, e))?;
        }
        Ok(programs)
    }

    /// One program with its tiers, or [`DbError::NotFound`]. Two queries.
    #[tracing::instrument(name = "db.query", level = "info", skip_all, fields(db.operation = "programs.get"))]
    pub async fn get(&self, program_type: ProgramType) -> Result<Program, DbError> {
        self.db.tick();
        let row = sqlx::query(
            "SELECT program_type, name, description, min_age, max_age FROM programs
             WHERE program_type = $1",
        )
        .bind(program_type.as_str())
        .fetch_optional(self.db.pool())
        .await?
        .ok_or_else(|| DbError::not_found(ENTITY, program_type.as_str()))?;
        let mut program = program_from_row(&row)?;
        self.db.tick();
        let rows = sqlx::query(
            "SELECT program_type, tier, name, monthly_price_cents, features FROM program_tiers
             WHERE program_type = $1 ORDER BY position",
        )
        .bind(program_type.as_str())
        .fetch_all(self.db.pool())
        .await?;
        program.tiers = rows.iter().map(tier_from_row).collect::<Result<_, _>>()?;
        program
            .validate()
            .map_err(|e| DbError::corrupt(ENTITY, e))?;
        Ok(program)
    }

    /// Creates or replaces a program and all its tiers, in one transaction.
    /// Three queries.
    pub async fn save(&self, program: &Program) -> Result<(), DbError> {
        program.validate()?;
        let code = program.program_type.as_str();
        let mut tx = self.db.pool().begin().await?;
        self.db.tick();
        sqlx::query(
            "INSERT INTO programs (program_type, name, description, min_age, max_age)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (program_type) DO UPDATE SET name = excluded.name,
                description = excluded.description, min_age = excluded.min_age,
                max_age = excluded.max_age",
        )
        .bind(code)
        .bind(program.name.as_str())
        .bind(program.description.as_str())
        .bind(i64::from(program.min_age))
        .bind(i64::from(program.max_age))
        .execute(&mut *tx)
        .await?;
        self.db.tick();
        sqlx::query("DELETE FROM program_tiers WHERE program_type = $1")
            .bind(code)
            .execute(&mut *tx)
            .await?;
        self.db.tick();
        let sql = format!(
            "INSERT INTO program_tiers
             (program_type, tier, position, name, monthly_price_cents, features) VALUES {}",
            sql::values(program.tiers.len(), 6)
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for (position, tier) in (0_i64..).zip(&program.tiers) {
            query = query
                .bind(code)
                .bind(tier.tier.as_str())
                .bind(position)
                .bind(tier.name.as_str())
                .bind(tier.monthly_price_cents)
                .bind(json::encode(ENTITY, &tier.features)?);
        }
        query.execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }
}

fn program_from_row(row: &AnyRow) -> Result<Program, DbError> {
    let code: String = row.try_get("program_type")?;
    let age = |column: &str| -> Result<u32, DbError> {
        let v: i64 = row.try_get(column)?;
        u32::try_from(v).map_err(|e| DbError::corrupt(ENTITY, e))
    };
    Ok(Program {
        program_type: ProgramType::parse(&code).map_err(|e| DbError::corrupt(ENTITY, e))?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        min_age: age("min_age")?,
        max_age: age("max_age")?,
        tiers: Vec::new(),
    })
}

fn tier_from_row(row: &AnyRow) -> Result<ProgramTier, DbError> {
    let tier: String = row.try_get("tier")?;
    let features: String = row.try_get("features")?;
    Ok(ProgramTier {
        tier: Tier::parse(&tier).map_err(|e| DbError::corrupt(ENTITY, e))?,
        name: row.try_get("name")?,
        monthly_price_cents: row.try_get("monthly_price_cents")?,
        features: json::decode(ENTITY, &features)?,
    })
}
