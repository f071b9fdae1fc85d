//! Repository of conversations and their messages.

use sqlx::AssertSqlSafe;
use std::collections::BTreeMap;

use sqlx::any::AnyRow;
use sqlx::{Any, Row};

use super::sql::AnyQuery;
use super::{Database, DbError, json, sql};
use crate::domain::{
    ConversationPhase, ConversationState, CustomerInfo, Message, ProgramType, Role, Tier,
    validate_id,
};

const ENTITY: &str = "conversation";
const COLUMNS: &str = "id, customer_id, customer_name, customer_email, customer_phone, \
    customer_age, initial_message, context, lead_score, intent, human_transfer_needed, \
    program_type, tier_detected, tier_confidence, phase, updated_at";
const UPDATE_SET: &str = "customer_id = excluded.customer_id, \
    customer_name = excluded.customer_name, customer_email = excluded.customer_email, \
    customer_phone = excluded.customer_phone, customer_age = excluded.customer_age, \
    initial_message = excluded.initial_message, context = excluded.context, \
    lead_score = excluded.lead_score, intent = excluded.intent, \
    human_transfer_needed = excluded.human_transfer_needed, \
    program_type = excluded.program_type, tier_detected = excluded.tier_detected, \
    tier_confidence = excluded.tier_confidence, phase = excluded.phase, \
    updated_at = excluded.updated_at";

/// Whether an append also reads the messages back (SQLite, in the
/// append's own script).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadBack {
    /// The caller needs no state.
    Never,
    /// Unless the list had this length before the append (a cached state
    /// of that length is then the current one).
    UnlessLength(Option<usize>),
}

/// Conversations and their messages. Obtained from
/// [`Database::conversations`].
#[derive(Debug, Clone, Copy)]
pub struct ConversationRepo<'a> {
    db: &'a Database,
}

impl<'a> ConversationRepo<'a> {
    pub(crate) fn new(db: &'a Database) -> Self {
        Self { db }
    }

    /// The full state with its messages in order, or [`DbError::NotFound`].
    /// Two queries (the row, then the messages).
    #[tracing::instrument(name = "db.query", level = "info", skip_all, fields(db.operation = "conversations.get"))]
    pub async fn get(&self, id: &str) -> Result<ConversationState, DbError> {
        validate_id("conversation_id", id)?;
        self.db.tick();
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM conversations WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(self.db.pool())
        .await?
        .ok_or_else(|| DbError::not_found(ENTITY, id))?;
        self.db.tick();
        let rows = sqlx::query(
            "SELECT role, content, sent_at FROM messages WHERE conversation_id = $1 ORDER BY seq",
        )
        .bind(id)
        .fetch_all(self.db.pool())
        .await?;
        let messages = rows
            .iter()
            .map(message_from_row)
            .collect::<Result<_, _>>()?;
        let state = state_from_row(&row, messages)?;
        state.validate().map_err(|e| DbError::corrupt(ENTITY, e))?;
        Ok(state)
    }

    /// Inserts a new conversation with its messages, in one transaction;
    /// [`DbError::Conflict`] if the id exists. Two queries (one without
    /// messages).
    pub async fn create(&self, state: &ConversationState) -> Result<(), DbError> {
        state.validate()?;
        let _turn = self.db.writer_turn().await;
        let mut tx = self.db.pool().begin().await?;
        self.db.tick();
        let sql = format!(
            "INSERT INTO conversations ({COLUMNS}, message_revision) VALUES {} \
             ON CONFLICT (id) DO NOTHING",
            sql::values(1, 17)
        );
        let done = bind_state(sqlx::query(AssertSqlSafe(sql)), state)?
            .bind(message_count(state))
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(DbError::Conflict {
                entity: ENTITY,
                id: state.conversation_id.clone(),
            });
        }
        self.insert_messages(&mut tx, &state.conversation_id, &state.messages)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Writes the whole state, creating it if absent and replacing every
    /// field and the message list otherwise, in one transaction. Three
    /// queries (two without messages). Returns the conversation's
    /// `message_revision` after the write, past that of every state before
    /// it (see [`append_message_state`](Self::append_message_state)).
    pub async fn save(&self, state: &ConversationState) -> Result<u64, DbError> {
        state.validate()?;
        let _turn = self.db.writer_turn().await;
        let mut tx = self.db.pool().begin().await?;
        self.db.tick();
        // Replacing the message list moves the revision past its length for
        // good (see `message_revision` on `append_message_then`).
        let sql = format!(
            "INSERT INTO conversations ({COLUMNS}, message_revision) VALUES {} \
             ON CONFLICT (id) DO UPDATE SET {UPDATE_SET}, \
             message_revision = conversations.message_revision + excluded.message_revision + 1 \
             RETURNING message_revision",
            sql::values(1, 17)
        );
        let row = bind_state(sqlx::query(AssertSqlSafe(sql)), state)?
            .bind(message_count(state))
            .fetch_one(&mut *tx)
            .await?;
        let revision = revision_of(&row)?;
        self.db.tick();
        sqlx::query("DELETE FROM messages WHERE conversation_id = $1")
            .bind(state.conversation_id.as_str())
            .execute(&mut *tx)
            .await?;
        self.insert_messages(&mut tx, &state.conversation_id, &state.messages)
            .await?;
        tx.commit().await?;
        Ok(revision)
    }

    /// Appends one message and moves `updated_at` forward to its timestamp,
    /// committed at once; [`DbError::NotFound`] if the conversation does not
    /// exist. One statement on PostgreSQL, one script of two statements in
    /// a transaction on SQLite (see
    /// [`append_message_state`](Self::append_message_state)). Concurrent
    /// appends are serialised by the row update, so sequence numbers never
    /// collide.
    ///
    /// A conversation that already holds
    /// [`ConversationLimits`](crate::domain::ConversationLimits) worth of
    /// messages or bytes takes no more: [`DbError::Invalid`] on `messages`.
    pub async fn append_message(&self, id: &str, message: &Message) -> Result<(), DbError> {
        validate_id("conversation_id", id)?;
        message.validate()?;
        self.append_row(id, message, ReadBack::Never)
            .await
            .map(drop)
    }

    /// [`append_message`](Self::append_message), returning the new state
    /// and its revision: the conversation's `message_revision` after the
    /// append, which grows with every change of the message list, so of two
    /// states of one conversation the one with the higher revision is the
    /// newer (a cache written after the commit can keep the newest whatever
    /// order the writes arrive in).
    ///
    /// `base` is the state before the append as the caller has it cached,
    /// if it has one. The new state is `base` plus the message when the row
    /// proves `base` current: then the append is one round trip to the
    /// database (on SQLite, one hand-over to the connection's thread).
    /// Otherwise the messages are read too: on SQLite in the append's own
    /// script and transaction (one more statement), on PostgreSQL afterwards
    /// in one transaction (row and messages of the same moment, with the
    /// revision of that moment, so two more queries).
    ///
    /// The proof is the revision: every append adds 1, creating a
    /// conversation sets it to its message count, and replacing the message
    /// list ([`save`](Self::save)) moves it past the count for good. So
    /// while a list has only been appended to, the revision before this
    /// append equals its length, and a state of that length is the current
    /// list (older states are prefixes, shorter); once a list was replaced,
    /// no state's length equals the revision and every append reads.
    pub async fn append_message_state(
        &self,
        id: &str,
        message: &Message,
        base: Option<&ConversationState>,
    ) -> Result<(ConversationState, u64), DbError> {
        validate_id("conversation_id", id)?;
        message.validate()?;
        let read_back = ReadBack::UnlessLength(base.map(|b| b.messages.len()));
        let (row, messages) = self.append_row(id, message, read_back).await?;
        let appended = base
            .map(|b| appended_to(b, &row, message))
            .transpose()?
            .flatten();
        let (state, row) = match (appended, messages) {
            (Some(state), _) => (state, row),
            (None, Some(mut messages)) => {
                messages.shrink_to_fit();
                (state_from_row(&row, messages)?, row)
            }
            (None, None) => {
                tracing::debug!(
                    cached_base = base.is_some(),
                    "append: no current cached state, reading the messages back"
                );
                self.read_back(id).await?
            }
        };
        state.validate().map_err(|e| DbError::corrupt(ENTITY, e))?;
        Ok((state, revision_of(&row)?))
    }

    /// The conversation and its row (with its revision) as one moment
    /// sees them: one transaction, repeatable-read on PostgreSQL (a SQLite
    /// transaction reads one snapshot anyway). Two queries.
    async fn read_back(&self, id: &str) -> Result<(ConversationState, AnyRow), DbError> {
        let mut tx = self.db.pool().begin().await?;
        if self.db.backend() == super::Backend::Postgres {
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                .execute(&mut *tx)
                .await?;
        }
        self.db.tick();
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLUMNS}, message_revision FROM conversations WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| DbError::not_found(ENTITY, id))?;
        let mut messages = self.messages_in(&mut tx, id).await?;
        tx.commit().await?;
        messages.shrink_to_fit();
        Ok((state_from_row(&row, messages)?, row))
    }

    /// The append itself, committed: the conversation's row after it, with
    /// its new `message_revision`, and on SQLite the messages after it if
    /// `read_back` asks for them.
    async fn append_row(
        &self,
        id: &str,
        message: &Message,
        read_back: ReadBack,
    ) -> Result<(AnyRow, Option<Vec<Message>>), DbError> {
        match self.db.backend() {
            super::Backend::Postgres => {
                Ok((self.append_in_one_statement(id, message).await?, None))
            }
            super::Backend::Sqlite => self.append_in_one_script(id, message, read_back).await,
        }
    }

    /// The PostgreSQL append: the row update and the message insert in one
    /// statement, committed on its own, so an append is one round trip (a
    /// transaction would add `BEGIN` and `COMMIT`).
    ///
    /// The statement's subqueries (the next sequence number, the limits)
    /// read the snapshot taken when it started, before it waited for the
    /// row lock; an append another instance committed in between took that
    /// sequence number, so the insert fails on the primary key, nothing of
    /// the statement is kept, and it runs again with a new snapshot.
    async fn append_in_one_statement(
        &self,
        id: &str,
        message: &Message,
    ) -> Result<AnyRow, DbError> {
        const ATTEMPTS: usize = 64;
        let sql = format!(
            "WITH appended AS ({}), inserted AS ({} FROM appended) SELECT * FROM appended",
            append_update("OCTET_LENGTH(content)"),
            APPEND_INSERT,
        );
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.db.tick();
            let result = self
                .append_query(sql.clone(), id, message)
                .fetch_optional(self.db.pool())
                .await;
            match result {
                Ok(Some(row)) => return Ok(row),
                Ok(None) => return Err(self.refused_append(id).await),
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() && attempt < ATTEMPTS => {
                    tracing::debug!(
                        attempt,
                        "append: sequence number taken meanwhile, running again"
                    );
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The SQLite append: `BEGIN IMMEDIATE`, the row update, the message
    /// insert and `COMMIT` as one script, which the connection's thread
    /// runs in one go. Four separate statements would each wait for that
    /// thread and then for a runtime worker, all while holding the
    /// database's write lock, and under load those waits are most of an
    /// append's time.
    ///
    /// The insert runs only if the update changed the row (`changes()`):
    /// the update refuses a missing or full conversation. The messages are
    /// read in the same transaction, after the insert, when `read_back`
    /// asks for them: unless the list had the given length before the
    /// append (the revision tells, as in
    /// [`append_message_state`](Self::append_message_state)). The script runs
    /// in a task of its own, so a caller that gives up (a request timeout)
    /// cannot stop it between `BEGIN` and `COMMIT` and leave its connection
    /// inside a transaction; a script that fails is rolled back, and its
    /// connection closed if even that fails.
    async fn append_in_one_script(
        &self,
        id: &str,
        message: &Message,
        read_back: ReadBack,
    ) -> Result<(AnyRow, Option<Vec<Message>>), DbError> {
        let sql = format!(
            "BEGIN IMMEDIATE;
             {};
             {} WHERE changes() = 1;
             SELECT role, content, sent_at FROM messages
             WHERE conversation_id = $1 AND changes() = 1 AND $8 = 1
               AND (SELECT message_revision FROM conversations WHERE id = $1) - 1 <> $9
             ORDER BY seq;
             COMMIT",
            append_update("LENGTH(CAST(content AS BLOB))"),
            APPEND_INSERT,
        );
        let query = self
            .append_query(sql, id, message)
            .bind(i64::from(read_back != ReadBack::Never))
            .bind(match read_back {
                ReadBack::UnlessLength(Some(n)) => i64::try_from(n).unwrap_or(-1),
                ReadBack::UnlessLength(None) | ReadBack::Never => -1,
            });
        let turn = self.db.owned_writer_turn().await;
        let pool = self.db.pool().clone();
        self.db.tick();
        self.db.tick();
        let script = tokio::spawn(async move {
            let _turn = turn;
            let mut conn = pool.acquire().await?;
            let rows = query.fetch_all(&mut *conn).await;
            if rows.is_err() && sqlx::query("ROLLBACK").execute(&mut *conn).await.is_err() {
                // No transaction was open (`BEGIN` itself failed), or the
                // connection is broken: either way a new one is safer.
                conn.close_on_drop();
            }
            rows
        });
        let rows = match script.await {
            Ok(rows) => rows?,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => return Err(sqlx::Error::WorkerCrashed.into()),
        };
        let mut rows = rows.into_iter();
        let Some(row) = rows.next() else {
            return Err(self.refused_append(id).await);
        };
        // An append leaves at least one message, so rows after the update's
        // are the messages read back, and none means they were not read.
        let messages = rows
            .map(|r| message_from_row(&r))
            .collect::<Result<Vec<_>, _>>()?;
        if messages.is_empty() {
            return Ok((row, None));
        }
        self.db.tick();
        Ok((row, Some(messages)))
    }

    /// An append's statement or script with its first seven arguments: the
    /// id, the message's timestamp, role and content, then the limits
    /// checked by [`append_update`] (owned, so a script can move into its
    /// task).
    fn append_query(&self, sql: String, id: &str, message: &Message) -> AnyQuery<'static> {
        let limits = self.db.conversation_limits();
        sqlx::query(AssertSqlSafe(sql))
            .bind(id.to_owned())
            .bind(message.timestamp)
            .bind(message.role.as_str().to_owned())
            .bind(message.content.clone())
            .bind(i64::try_from(limits.max_messages).unwrap_or(i64::MAX))
            .bind(i64::try_from(message.content.len()).unwrap_or(i64::MAX))
            .bind(i64::try_from(limits.max_bytes).unwrap_or(i64::MAX))
    }

    /// Why an append changed nothing: the conversation does not exist, or
    /// it is full.
    async fn refused_append(&self, id: &str) -> DbError {
        self.db.tick();
        let exists = sqlx::query("SELECT 1 FROM conversations WHERE id = $1")
            .bind(id)
            .fetch_optional(self.db.pool())
            .await;
        match exists {
            Ok(None) => DbError::not_found(ENTITY, id),
            Ok(Some(_)) => full(self.db.conversation_limits()),
            Err(e) => e.into(),
        }
    }

    /// The messages as `tx` sees them, in order. One query.
    async fn messages_in(
        &self,
        tx: &mut sqlx::Transaction<'_, Any>,
        id: &str,
    ) -> Result<Vec<Message>, DbError> {
        self.db.tick();
        let rows = sqlx::query(
            "SELECT role, content, sent_at FROM messages WHERE conversation_id = $1 ORDER BY seq",
        )
        .bind(id)
        .fetch_all(&mut **tx)
        .await?;
        rows.iter().map(message_from_row).collect()
    }

    /// Ids of a customer's conversations, ascending. One query.
    pub async fn ids_for_customer(&self, customer_id: &str) -> Result<Vec<String>, DbError> {
        validate_id("customer_id", customer_id)?;
        self.db.tick();
        let rows = sqlx::query("SELECT id FROM conversations WHERE customer_id = $1 ORDER BY id")
            .bind(customer_id)
            .fetch_all(self.db.pool())
            .await?;
        rows.iter()
            .map(|r| r.try_get::<String, _>(0).map_err(DbError::from))
            .collect()
    }

    /// Up to `limit` ids in ascending order, skipping `offset`. One query.
    pub async fn list_ids(&self, limit: u32, offset: u32) -> Result<Vec<String>, DbError> {
        self.db.tick();
        let rows = sqlx::query("SELECT id FROM conversations ORDER BY id LIMIT $1 OFFSET $2")
            .bind(i64::from(limit))
            .bind(i64::from(offset))
            .fetch_all(self.db.pool())
            .await?;
        rows.iter()
            .map(|r| r.try_get::<String, _>(0).map_err(DbError::from))
            .collect()
    }

    async fn insert_messages(
        &self,
        tx: &mut sqlx::Transaction<'_, Any>,
        id: &str,
        messages: &[Message],
    ) -> Result<(), DbError> {
        // 5 binds per row; 500 rows stays far below both engines' limits.
        for (chunk_no, chunk) in messages.chunks(500).enumerate() {
            self.db.tick();
            let sql = format!(
                "INSERT INTO messages (conversation_id, seq, role, content, sent_at) VALUES {}",
                sql::values(chunk.len(), 5)
            );
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for (i, m) in chunk.iter().enumerate() {
                let seq =
                    i64::try_from(chunk_no * 500 + i).map_err(|e| DbError::corrupt(ENTITY, e))?;
                query = query
                    .bind(id)
                    .bind(seq)
                    .bind(m.role.as_str())
                    .bind(m.content.as_str())
                    .bind(m.timestamp);
            }
            query.execute(&mut **tx).await?;
        }
        Ok(())
    }
}

/// The error of an append to a conversation at its limits.
fn full(limits: crate::domain::ConversationLimits) -> DbError {
    DbError::Invalid(crate::domain::ValidationError::new(
        "messages",
        format!(
            "the conversation is full: it holds at most {} messages and {} bytes of text",
            limits.max_messages, limits.max_bytes
        ),
    ))
}

/// The `message_revision` of a conversation row.
fn revision_of(row: &AnyRow) -> Result<u64, DbError> {
    let revision: i64 = row.try_get("message_revision")?;
    u64::try_from(revision).map_err(|e| DbError::corrupt(ENTITY, e))
}

/// The message count as the `message_revision` of a new list.
fn message_count(state: &ConversationState) -> i64 {
    i64::try_from(state.messages.len()).unwrap_or(i64::MAX)
}

/// An append's row update (arguments as bound by
/// `ConversationRepo::append_query`): moves `updated_at` forward, adds 1 to
/// the revision and returns the row, unless the conversation is missing or
/// already holds its limit of messages or bytes. `bytes` is the backend's
/// byte length of `content`.
fn append_update(bytes: &str) -> String {
    format!(
        "UPDATE conversations
         SET updated_at = CASE WHEN updated_at > $2 THEN updated_at ELSE $2 END,
             message_revision = message_revision + 1
         WHERE id = $1
           AND (SELECT COUNT(*) FROM messages WHERE conversation_id = $1) < $5
           AND (SELECT COALESCE(SUM({bytes}), 0) FROM messages WHERE conversation_id = $1)
               + $6 <= $7
         RETURNING {COLUMNS}, message_revision"
    )
}

/// An append's message insert at the next sequence number, without its
/// condition (`FROM appended` on PostgreSQL, `WHERE changes() = 1` on
/// SQLite).
const APPEND_INSERT: &str = "INSERT INTO messages (conversation_id, seq, role, content, sent_at)
     SELECT $1,
            (SELECT COALESCE(MAX(seq) + 1, 0) FROM messages WHERE conversation_id = $1),
            $3, $4, $2";

/// The state after appending `message` to `base`, when `row` (the
/// conversation row as the append left it) proves `base` current: the
/// revision before the append equals `base`'s message count, and `base`
/// has the row's fields. `None` when it does not.
fn appended_to(
    base: &ConversationState,
    row: &AnyRow,
    message: &Message,
) -> Result<Option<ConversationState>, DbError> {
    let revision: i64 = row.try_get("message_revision")?;
    if i64::try_from(base.messages.len()).ok() != revision.checked_sub(1) {
        return Ok(None);
    }
    let mut state = state_from_row(row, Vec::new())?;
    let same_row = state.conversation_id == base.conversation_id
        && state.customer == base.customer
        && state.context == base.context
        && state.lead_score.to_bits() == base.lead_score.to_bits()
        && state.intent == base.intent
        && state.human_transfer_needed == base.human_transfer_needed
        && state.program_type == base.program_type
        && state.tier_detected == base.tier_detected
        && state.tier_confidence.map(f64::to_bits) == base.tier_confidence.map(f64::to_bits)
        && state.phase == base.phase
        && state.updated_at == base.updated_at.max(message.timestamp);
    if !same_row {
        return Ok(None);
    }
    let mut messages = Vec::with_capacity(base.messages.len() + 1);
    messages.extend_from_slice(&base.messages);
    messages.push(message.clone());
    state.messages = messages;
    Ok(Some(state))
}

/// Binds the 16 conversation columns in [`COLUMNS`] order.
fn bind_state<'q>(query: AnyQuery<'q>, s: &'q ConversationState) -> Result<AnyQuery<'q>, DbError> {
    Ok(query
        .bind(s.conversation_id.as_str())
        .bind(s.customer.id.as_str())
        .bind(s.customer.name.as_str())
        .bind(s.customer.email.as_str())
        .bind(s.customer.phone.clone())
        .bind(s.customer.age.map(i64::from))
        .bind(s.customer.initial_message.clone())
        .bind(json::encode(ENTITY, &s.context)?)
        .bind(s.lead_score)
        .bind(s.intent.clone())
        .bind(i64::from(s.human_transfer_needed))
        .bind(s.program_type.as_str())
        .bind(s.tier_detected.map(Tier::as_str))
        .bind(s.tier_confidence)
        .bind(s.phase.as_str())
        .bind(s.updated_at))
}

fn message_from_row(row: &AnyRow) -> Result<Message, DbError> {
    let role: String = row.try_get("role")?;
    Ok(Message {
        role: Role::parse(&role).map_err(|e| DbError::corrupt(ENTITY, e))?,
        content: row.try_get("content")?,
        timestamp: row.try_get("sent_at")?,
    })
}

fn state_from_row(row: &AnyRow, messages: Vec<Message>) -> Result<ConversationState, DbError> {
    let corrupt = |e| DbError::corrupt(ENTITY, e);
    let context: String = row.try_get("context")?;
    let context: BTreeMap<String, serde_json::Value> = json::decode(ENTITY, &context)?;
    let program: String = row.try_get("program_type")?;
    let tier: Option<String> = row.try_get("tier_detected")?;
    let phase: String = row.try_get("phase")?;
    let transfer: i64 = row.try_get("human_transfer_needed")?;
    Ok(ConversationState {
        conversation_id: row.try_get("id")?,
        customer: CustomerInfo {
            id: row.try_get("customer_id")?,
            name: row.try_get("customer_name")?,
            email: row.try_get("customer_email")?,
            phone: row.try_get("customer_phone")?,
            age: json::age(ENTITY, row.try_get("customer_age")?)?,
            initial_message: row.try_get("initial_message")?,
        },
        messages,
        context,
        lead_score: row.try_get("lead_score")?,
        intent: row.try_get("intent")?,
        human_transfer_needed: transfer != 0,
        program_type: ProgramType::parse(&program).map_err(corrupt)?,
        tier_detected: tier
            .as_deref()
            .map(Tier::parse)
            .transpose()
            .map_err(corrupt)?,
        tier_confidence: row.try_get("tier_confidence")?,
        phase: ConversationPhase::parse(&phase).map_err(corrupt)?,
        updated_at: row.try_get("updated_at")?,
    })
}
