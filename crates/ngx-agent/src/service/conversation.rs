//! Conversations, cache-aside: reads try the cache and fall back to the
//! database; whole-state writes commit to the database first, then
//! invalidate; appends write the new state through to the cache.

use std::sync::atomic::{AtomicBool, Ordering};

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
}
