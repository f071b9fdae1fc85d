//! Conversations, cache-aside: reads try the cache and fall back to the
//! database; whole-state writes commit to the database first, then
//! invalidate; appends write the new state through to the cache (under the
//! row lock on PostgreSQL, after the commit on SQLite).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use ngx_cache::Shared;

use crate::cache::NgxCacheManager;
use crate::db::{Backend, Database};
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
        self.db.conversations().create(state).await?;
        self.cache.delete_conversation(&state.conversation_id).await;
        Ok(())
    }

    /// Stores the whole state (insert or update).
    pub async fn save(&self, state: &ConversationState) -> Result<(), ServiceError> {
        state.validate()?;
        self.db.conversations().save(state).await?;
        self.cache.delete_conversation(&state.conversation_id).await;
        Ok(())
    }

    /// Appends a message and returns the new state.
    pub async fn append_message(
        &self,
        id: &str,
        message: &Message,
    ) -> Result<ConversationState, ServiceError> {
        crate::domain::validate_id("conversation_id", id)?;
        message.validate()?;
        // The cached state, if any, is the base the new state is built
        // from: the repository uses it only when the conversation row
        // proves it current, and reads the messages otherwise.
        let base = self.cache.get_conversation_shared(id).await;
        if self.db.backend() == Backend::Sqlite {
            return self.append_then_write_through(id, message, base).await;
        }
        // Write-through: the new state is cached while the append's
        // transaction still holds the conversation's row lock, so
        // concurrent appends store their states in commit order and the
        // next read on any instance is a hit on the newest one.
        let published = AtomicBool::new(false);
        let result = self
            .db
            .conversations()
            .append_message_then(id, message, base.as_deref(), |state| {
                let published = &published;
                async move {
                    published.store(true, Ordering::Release);
                    self.cache.write_through_conversation(id, &state).await;
                }
            })
            .await;
        if result.is_err() && published.load(Ordering::Acquire) {
            // The commit failed after the cache was written: that state
            // never happened.
            self.cache.delete_conversation(id).await;
        }
        Ok(result?)
    }

    /// The SQLite append: SQLite has one writer for the whole database, so
    /// the Redis write happens after the commit instead of under the write
    /// lock, where its round trip would hold back every other write. The
    /// order of the cached states is kept by a per-conversation turn held
    /// from before the transaction to after the write: this process's
    /// appends to one conversation commit and write through one after the
    /// other. (Processes sharing one SQLite file do not share turns; the
    /// multi-instance database is PostgreSQL, written through under its row
    /// lock.)
    async fn append_then_write_through(
        &self,
        id: &str,
        message: &Message,
        base: Option<Shared<ConversationState>>,
    ) -> Result<ConversationState, ServiceError> {
        let _turn = append_turn(id).lock().await;
        let state = self
            .db
            .conversations()
            .append_message_then(id, message, base.as_deref(), |_| async {})
            .await?;
        self.cache.write_through_conversation(id, &state).await;
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
