//! Conversations, cache-aside: reads try the cache and fall back to the
//! database; creates commit to the database first, then invalidate; saves
//! and appends write the new state through to the cache after the commit,
//! versioned by the conversation's revision.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use ngx_cache::Shared;

use crate::cache::NgxCacheManager;
use crate::db::Database;
use crate::domain::{ConversationState, Message};

use super::ServiceError;
use super::error::{found, optional};

/// Reads and writes conversation state.
#[derive(Debug, Clone)]
pub struct ConversationService {
    db: Database,
    cache: NgxCacheManager,
}

impl ConversationService {
    /// A service over `db`, caching through `cache`.
    pub fn new(db: Database, cache: NgxCacheManager) -> Self {
        Self { db, cache }
    }

    /// The conversation: from the cache, else from the database (then cached).
    pub async fn get(&self, id: &str) -> Result<ConversationState, ServiceError> {
        self.get_shared(id).await.map(Shared::into_inner)
    }

    /// [`get`](Self::get) without the copy: the cached value itself, with
    /// its JSON rendered at most once ([`Shared::json`]).
    pub async fn get_shared(&self, id: &str) -> Result<Shared<ConversationState>, ServiceError> {
        crate::domain::validate_id("conversation_id", id)?;
        let db = self.db.clone();
        let owned = id.to_owned();
        let conversation = self
            .cache
            .get_or_load_conversation_shared(id, move || async move {
                optional(db.conversations().get(&owned).await)
            })
            .await?;
        found(conversation, "conversation", id)
    }

    /// Stores a new conversation, ending any cached "not found" for its id.
    pub async fn create(&self, state: &ConversationState) -> Result<(), ServiceError> {
        state.validate()?;
        let (this, state) = (self.clone(), state.clone());
        super::to_completion(async move {
            this.db.conversations().create(&state).await?;
            this.cache.delete_conversation(&state.conversation_id).await;
            Ok(())
        })
        .await
    }

    /// Stores the whole state (insert or update), then writes it through
    /// to the cache with the conversation's revision after the write.
    ///
    /// The revision is past that of every state before, so an append that
    /// committed before this save but writes its state to the cache after
    /// it (on any instance) is refused, and the entry removed, instead of
    /// leaving the older state cached.
    pub async fn save(&self, state: &ConversationState) -> Result<(), ServiceError> {
        state.validate()?;
        let (this, state) = (self.clone(), state.clone());
        super::to_completion(async move {
            let revision = this.db.conversations().save(&state).await?;
            this.cache
                .write_through_conversation(&state.conversation_id, &state, revision)
                .await;
            Ok(())
        })
        .await
    }

    /// Appends a message and returns the new state, written through to the
    /// cache after the commit.
    ///
    /// The cached states stay in commit order on every instance: each write
    /// carries the conversation's revision after the append and the cache
    /// refuses one older than a state it already took
    /// ([`Cache::try_set_versioned`](ngx_cache::Cache::try_set_versioned)),
    /// so the database's row lock is released before the Redis round trip.
    /// Within the process, appends to one conversation also take turns from
    /// before the transaction to after the write: the next append finds the
    /// last one's state cached (and so does not read the messages back), and
    /// waits for its turn without holding a pooled database connection.
    pub async fn append_message(
        &self,
        id: &str,
        message: &Message,
    ) -> Result<ConversationState, ServiceError> {
        crate::domain::validate_id("conversation_id", id)?;
        message.validate()?;
        let (this, id, message) = (self.clone(), id.to_owned(), message.clone());
        super::to_completion(async move { this.append_in_turn(&id, &message).await }).await
    }

    /// The append of [`append_message`](Self::append_message), from its
    /// turn to its cache write.
    async fn append_in_turn(
        &self,
        id: &str,
        message: &Message,
    ) -> Result<ConversationState, ServiceError> {
        let started = Instant::now();
        let _turn = append_turn(id).lock().await;
        let turn = started.elapsed();
        // The cached state, if any, is the base the new state is built
        // from: the repository uses it only when the conversation row
        // proves it current, and reads the messages otherwise.
        let base = self.cache.get_conversation_shared(id).await;
        let based = started.elapsed();
        let (state, revision) = self
            .db
            .conversations()
            .append_message_state(id, message, base.as_deref())
            .await?;
        let committed = started.elapsed();
        let cached = self
            .cache
            .write_through_conversation(id, &state, revision)
            .await;
        // Where an append's time goes, for tail-latency work
        // (RUST_LOG=ngx_agent::service::conversation=debug).
        tracing::debug!(
            turn_us = micros(turn),
            base_us = micros(based - turn),
            database_us = micros(committed - based),
            cache_us = micros(started.elapsed() - committed),
            cached_base = base.is_some(),
            cached,
            "message appended"
        );
        Ok(state)
    }
}

/// The turn of appends to conversation `id` in this process: one of 64
/// locks shared by every `ConversationService` (and every database handle)
/// of the process, chosen by the id's hash.
fn append_turn(id: &str) -> &'static tokio::sync::Mutex<()> {
    static TURNS: OnceLock<Vec<tokio::sync::Mutex<()>>> = OnceLock::new();
    let turns = TURNS.get_or_init(|| (0..64).map(|_| tokio::sync::Mutex::new(())).collect());
    let slot = xxhash_rust::xxh3::xxh3_64(id.as_bytes()) % turns.len() as u64;
    &turns[usize::try_from(slot).unwrap_or(0)]
}

/// `d` in whole microseconds, for logs.
fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}
