//! Deterministic demo data for a fresh database.
//!
//! Everything comes from a seeded [`StdRng`] and fixed tables, so two fresh
//! databases seeded with the same [`SeedSpec`] hold identical rows. Each
//! group (customers with conversations, catalog, knowledge, agent
//! configuration) is only filled when its table is empty, all in one
//! transaction, with multi-row inserts: 3,000 customers take well under a
//! second on SQLite.

use sqlx::AssertSqlSafe;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sqlx::{Any, Row, Transaction};

use super::seed_text::{
    AGENT_LINES, FIRST_NAMES, GOALS, INTENTS, LAST_NAMES, OCCUPATIONS, USER_LINES,
};
use super::{Database, DbError, json, sql};
use crate::domain::{ConversationPhase, IncomeBand, ProgramType, Tier};

/// 2025-01-01T00:00:00Z, the fixed clock of the demo data.
pub(crate) const EPOCH_MS: i64 = 1_735_689_600_000;

/// How much data to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SeedSpec {
    /// Customers to create (default 3,000).
    pub customers: usize,
    /// Conversations to create (default 1,000), each with 3 to 6 messages.
    pub conversations: usize,
    /// Seed of the random generator (default 42).
    pub rng_seed: u64,
}

impl Default for SeedSpec {
    fn default() -> Self {
        Self {
            customers: 3_000,
            conversations: 1_000,
            rng_seed: 42,
        }
    }
}

impl SeedSpec {
    /// A spec with these sizes and the default RNG seed.
    pub fn new(customers: usize, conversations: usize) -> Self {
        Self {
            customers,
            conversations,
            ..Self::default()
        }
    }
}

/// What [`Database::seed_with`] inserted. All zero when the data existed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SeedReport {
    /// Customers inserted.
    pub customers: usize,
    /// Conversations inserted.
    pub conversations: usize,
    /// Messages inserted.
    pub messages: usize,
    /// Programs inserted.
    pub programs: usize,
    /// Knowledge entries inserted.
    pub knowledge_entries: usize,
    /// Agent configurations inserted.
    pub agent_configs: usize,
    /// Wall time spent.
    pub elapsed: Duration,
}

impl SeedReport {
    /// True when anything was inserted.
    pub fn seeded_anything(&self) -> bool {
        self.customers + self.programs + self.knowledge_entries + self.agent_configs > 0
    }
}

impl Database {
    /// Seeds with [`SeedSpec::default`]. See [`Database::seed_with`].
    pub async fn seed(&self) -> Result<SeedReport, DbError> {
        self.seed_with(SeedSpec::default()).await
    }

    /// Fills every empty table group with deterministic demo data, in one
    /// transaction. Idempotent: a group that already has rows is left alone,
    /// so a second call inserts nothing.
    pub async fn seed_with(&self, spec: SeedSpec) -> Result<SeedReport, DbError> {
        self.seed_with_progress(spec, |_, _| {}).await
    }

    /// Like [`seed_with`](Self::seed_with), calling `progress(done, total)`
    /// as customer and conversation rows are inserted (`total` is their sum).
    /// Nothing is called when those tables already hold data.
    pub async fn seed_with_progress(
        &self,
        spec: SeedSpec,
        progress: impl Fn(usize, usize) + Send + Sync,
    ) -> Result<SeedReport, DbError> {
        let total = spec.customers + spec.conversations;
        let started = Instant::now();
        let mut report = SeedReport::default();
        let mut rng = StdRng::seed_from_u64(spec.rng_seed);
        let mut tx = self.pool().begin().await?;
        // Two instances seeding one empty database would both see empty
        // tables: the second waits here and then sees the first one's rows.
        self.advisory_xact_lock(&mut tx, "seed").await?;
        if self.is_empty(&mut tx, "customers").await?
            && self.is_empty(&mut tx, "conversations").await?
        {
            report.customers = self
                .seed_customers(&mut tx, &mut rng, spec.customers, &|n| progress(n, total))
                .await?;
            let (c, m) = self
                .seed_conversations(
                    &mut tx,
                    &mut rng,
                    spec.conversations,
                    spec.customers,
                    &|n| progress(spec.customers + n, total),
                )
                .await?;
            report.conversations = c;
            report.messages = m;
        }
        if self.is_empty(&mut tx, "programs").await? {
            report.programs = self.insert_catalog(&mut tx).await?;
        }
        if self.is_empty(&mut tx, "knowledge").await? {
            report.knowledge_entries = self.insert_knowledge(&mut tx).await?;
        }
        if self.is_empty(&mut tx, "agent_configs").await? {
            report.agent_configs = self.insert_agent_configs(&mut tx).await?;
        }
        tx.commit().await?;
        report.elapsed = started.elapsed();
        tracing::info!(?report, "seed finished");
        Ok(report)
    }

    async fn is_empty(&self, tx: &mut Transaction<'_, Any>, table: &str) -> Result<bool, DbError> {
        self.tick();
        let row = sqlx::query(AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
            .fetch_one(&mut **tx)
            .await?;
        Ok(row.try_get::<i64, _>(0)? == 0)
    }

    async fn seed_customers(
        &self,
        tx: &mut Transaction<'_, Any>,
        rng: &mut StdRng,
        count: usize,
        progress: &(dyn Fn(usize) + Send + Sync),
    ) -> Result<usize, DbError> {
        const COLS: usize = 10;
        const BATCH: usize = 200;
        for start in (0..count).step_by(BATCH) {
            let rows = BATCH.min(count - start);
            let sql = format!(
                "INSERT INTO customers (id, name, email, phone, age, occupation, income_band,
                 goals, created_at, updated_at) VALUES {} ON CONFLICT (id) DO NOTHING",
                sql::values(rows, COLS)
            );
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for n in start + 1..=start + rows {
                let first = pick(rng, FIRST_NAMES);
                let last = pick(rng, LAST_NAMES);
                let age: i64 = rng.random_range(22..=78);
                let phone = rng
                    .random_bool(0.8)
                    .then(|| format!("+1 555 {:04}", rng.random_range(0..10_000)));
                let occupation = rng
                    .random_bool(0.9)
                    .then(|| pick(rng, OCCUPATIONS).to_owned());
                let band = IncomeBand::ALL[rng.random_range(0..IncomeBand::ALL.len())];
                let goals: Vec<&str> = (0..rng.random_range(1..=3))
                    .map(|_| pick(rng, GOALS))
                    .collect();
                let created = EPOCH_MS + rng.random_range(0..86_400_000 * 180_i64);
                query = query
                    .bind(customer_id(n))
                    .bind(format!("{first} {last}"))
                    .bind(format!(
                        "{}.{}{n}@example.com",
                        first.to_lowercase(),
                        last.to_lowercase()
                    ))
                    .bind(phone)
                    .bind(Some(age))
                    .bind(occupation)
                    .bind(band.as_str())
                    .bind(json::encode("customer", &goals)?)
                    .bind(created)
                    .bind(created + rng.random_range(0..86_400_000 * 30_i64));
            }
            self.tick();
            query.execute(&mut **tx).await?;
            progress(start + rows);
        }
        Ok(count)
    }

    async fn seed_conversations(
        &self,
        tx: &mut Transaction<'_, Any>,
        rng: &mut StdRng,
        count: usize,
        customers: usize,
        progress: &(dyn Fn(usize) + Send + Sync),
    ) -> Result<(usize, usize), DbError> {
        if customers == 0 {
            return Ok((0, 0));
        }
        let mut message_rows: Vec<(String, i64, &str, &str, i64)> = Vec::new();
        let mut conv_rows = Vec::with_capacity(count);
        for n in 1..=count {
            let id = format!("conv-{n:05}");
            let customer = rng.random_range(1..=customers);
            let age: i64 = rng.random_range(22..=78);
            let program = if age >= 50 {
                ProgramType::Longevity
            } else {
                ProgramType::Prime
            };
            let started = EPOCH_MS + rng.random_range(0..86_400_000 * 180_i64);
            let mut at = started;
            let turns = rng.random_range(3..=6_i64);
            for seq in 0..turns {
                at += rng.random_range(5_000..120_000);
                let (role, line) = if seq % 2 == 0 {
                    ("user", pick(rng, USER_LINES))
                } else {
                    ("assistant", pick(rng, AGENT_LINES))
                };
                message_rows.push((id.clone(), seq, role, line, at));
            }
            let phase = ConversationPhase::ALL[rng.random_range(0..ConversationPhase::ALL.len())];
            let scored = rng.random_bool(0.5);
            let tier = scored.then(|| Tier::ALL[rng.random_range(0..Tier::ALL.len())].as_str());
            let confidence = scored.then(|| f64::from(rng.random_range(300..=990_u32)) / 1000.0);
            let context = serde_json::json!({
                "channel": if rng.random_bool(0.7) { "voice" } else { "web" },
                "campaign": format!("spring-{}", rng.random_range(1..=5)),
            });
            conv_rows.push((
                id, customer, age, program, context, tier, confidence, phase, at, turns,
            ));
        }
        const CONV_BATCH: usize = 100;
        let mut done = 0;
        for chunk in conv_rows.chunks(CONV_BATCH) {
            let sql = format!(
                "INSERT INTO conversations (id, customer_id, customer_name, customer_email,
                 customer_phone, customer_age, initial_message, context, lead_score, intent,
                 human_transfer_needed, program_type, tier_detected, tier_confidence, phase,
                 updated_at, message_revision) VALUES {} ON CONFLICT (id) DO NOTHING",
                sql::values(chunk.len(), 17)
            );
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for (id, customer, age, program, context, tier, confidence, phase, at, turns) in chunk {
                let first = pick(rng, FIRST_NAMES);
                query = query
                    .bind(id.as_str())
                    .bind(customer_id(*customer))
                    .bind(format!("{first} {}", pick(rng, LAST_NAMES)))
                    .bind(format!("{}{customer}@example.com", first.to_lowercase()))
                    .bind(None::<String>)
                    .bind(Some(*age))
                    .bind(Some(pick(rng, USER_LINES).to_owned()))
                    .bind(json::encode("conversation", context)?)
                    .bind(f64::from(rng.random_range(0..=1000_u32)) / 1000.0)
                    .bind(Some(pick(rng, INTENTS).to_owned()))
                    .bind(i64::from(rng.random_bool(0.05)))
                    .bind(program.as_str())
                    .bind(*tier)
                    .bind(*confidence)
                    .bind(phase.as_str())
                    .bind(*at)
                    .bind(*turns);
            }
            self.tick();
            query.execute(&mut **tx).await?;
            done += chunk.len();
            progress(done);
        }
        for chunk in message_rows.chunks(500) {
            let sql = format!(
                "INSERT INTO messages (conversation_id, seq, role, content, sent_at) VALUES {}
                 ON CONFLICT (conversation_id, seq) DO NOTHING",
                sql::values(chunk.len(), 5)
            );
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for (id, seq, role, content, at) in chunk {
                query = query
                    .bind(id.as_str())
                    .bind(*seq)
                    .bind(*role)
                    .bind(*content)
                    .bind(*at);
            }
            self.tick();
            query.execute(&mut **tx).await?;
        }
        Ok((count, message_rows.len()))
    }
}

/// The id of the `n`th seeded customer (1-based): `cust-00001`.
pub(crate) fn customer_id(n: usize) -> String {
    format!("cust-{n:05}")
}

fn pick<'t>(rng: &mut StdRng, table: &[&'t str]) -> &'t str {
    table[rng.random_range(0..table.len())]
}
