//! A sales conversation: who is talking, what was said, and what the agent
//! concluded so far.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::error::{check_millis, check_range, check_text};
use super::{ProgramType, Tier, ValidationError, validate_id};

/// Longest message content accepted, in characters.
pub const MAX_MESSAGE_LEN: usize = 16 * 1024;

/// Bounds of one conversation, so a single conversation cannot grow past
/// what the cache stores and every read would go to the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConversationLimits {
    /// Messages at most (`CONVERSATION_MAX_MESSAGES`).
    pub max_messages: usize,
    /// Bytes of message text at most (`CONVERSATION_MAX_BYTES`).
    pub max_bytes: usize,
}

impl Default for ConversationLimits {
    fn default() -> Self {
        Self {
            max_messages: 500,
            max_bytes: 256 * 1024,
        }
    }
}

impl ConversationLimits {
    /// Limits of `max_messages` messages and `max_bytes` bytes of text.
    pub fn new(max_messages: usize, max_bytes: usize) -> Self {
        Self {
            max_messages,
            max_bytes,
        }
    }
}

/// Most entries a conversation context may hold.
pub const MAX_CONTEXT_ENTRIES: usize = 256;

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The prospect.
    User,
    /// The sales agent.
    Assistant,
    /// Instructions injected by the platform.
    System,
}

impl Role {
    /// The lowercase name used in JSON and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::System => "system",
        }
    }

    /// Parses the lowercase name written by [`Role::as_str`].
    pub fn parse(value: &str) -> Result<Self, ValidationError> {
        match value {
            "user" => Ok(Role::User),
            "assistant" => Ok(Role::Assistant),
            "system" => Ok(Role::System),
            other => Err(ValidationError::new(
                "role",
                format!("unknown role {other:?}"),
            )),
        }
    }
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Message {
    /// Who wrote it.
    pub role: Role,
    /// The text, at most [`MAX_MESSAGE_LEN`] characters.
    pub content: String,
    /// When it was written, unix milliseconds.
    pub timestamp: i64,
}

impl Message {
    /// Builds a validated message.
    pub fn new(
        role: Role,
        content: impl Into<String>,
        timestamp: i64,
    ) -> Result<Self, ValidationError> {
        let message = Self {
            role,
            content: content.into(),
            timestamp,
        };
        message.validate()?;
        Ok(message)
    }

    /// Checks the content length and the timestamp.
    pub fn validate(&self) -> Result<(), ValidationError> {
        check_text("message.content", &self.content, MAX_MESSAGE_LEN)?;
        check_millis("message.timestamp", self.timestamp)
    }
}

/// The customer as seen from inside a conversation: a snapshot taken when
/// the conversation started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CustomerInfo {
    /// The customer's id (see [`validate_id`]).
    pub id: String,
    /// Display name.
    pub name: String,
    /// E-mail address.
    pub email: String,
    /// Phone number, when given.
    pub phone: Option<String>,
    /// Age in years, when given (18..=120).
    pub age: Option<u32>,
    /// The first thing the customer said, when known.
    pub initial_message: Option<String>,
}

impl CustomerInfo {
    /// Checks every field; errors name it as `customer.<field>`.
    pub fn validate(&self) -> Result<(), ValidationError> {
        validate_id("customer.id", &self.id)?;
        check_text("customer.name", &self.name, 256)?;
        validate_email("customer.email", &self.email)?;
        if let Some(phone) = &self.phone {
            validate_phone("customer.phone", phone)?;
        }
        if let Some(age) = self.age {
            validate_age("customer.age", age)?;
        }
        if let Some(initial) = &self.initial_message {
            check_text("customer.initial_message", initial, MAX_MESSAGE_LEN)?;
        }
        Ok(())
    }
}

/// Where the conversation stands in the sales funnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConversationPhase {
    /// Opening and rapport.
    Greeting,
    /// Learning about the customer's goals and situation.
    Discovery,
    /// Presenting a program.
    Presentation,
    /// Answering doubts about price, time or fit.
    ObjectionHandling,
    /// Asking for the decision.
    Closing,
    /// The conversation ended.
    Completed,
}

impl ConversationPhase {
    /// Every phase, in funnel order.
    pub const ALL: [ConversationPhase; 6] = [
        Self::Greeting,
        Self::Discovery,
        Self::Presentation,
        Self::ObjectionHandling,
        Self::Closing,
        Self::Completed,
    ];

    /// The snake_case name used in JSON and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Greeting => "greeting",
            Self::Discovery => "discovery",
            Self::Presentation => "presentation",
            Self::ObjectionHandling => "objection_handling",
            Self::Closing => "closing",
            Self::Completed => "completed",
        }
    }

    /// Parses the name written by [`ConversationPhase::as_str`].
    pub fn parse(value: &str) -> Result<Self, ValidationError> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str() == value)
            .ok_or_else(|| ValidationError::new("phase", format!("unknown phase {value:?}")))
    }
}

/// The full state of a conversation, as cached under `ngx:conv:v1:{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ConversationState {
    /// The conversation's id (see [`validate_id`]).
    pub conversation_id: String,
    /// The customer snapshot.
    pub customer: CustomerInfo,
    /// Messages in the order they were written.
    pub messages: Vec<Message>,
    /// Free-form facts the agent collected; a `BTreeMap` so the encoding is
    /// canonical.
    pub context: BTreeMap<String, serde_json::Value>,
    /// Likelihood to buy, 0..=1.
    pub lead_score: f64,
    /// The detected intent, if any.
    pub intent: Option<String>,
    /// The agent asked for a human.
    pub human_transfer_needed: bool,
    /// The program being discussed.
    pub program_type: ProgramType,
    /// The tier the detector chose, if it ran.
    pub tier_detected: Option<Tier>,
    /// The detector's confidence, 0..=1, if it ran.
    pub tier_confidence: Option<f64>,
    /// The funnel phase.
    pub phase: ConversationPhase,
    /// Last change, unix milliseconds.
    pub updated_at: i64,
}

impl ConversationState {
    /// Starts a conversation with no messages, in the greeting phase.
    pub fn new(
        conversation_id: impl Into<String>,
        customer: CustomerInfo,
        program_type: ProgramType,
        now_ms: i64,
    ) -> Result<Self, ValidationError> {
        let state = Self {
            conversation_id: conversation_id.into(),
            customer,
            messages: Vec::new(),
            context: BTreeMap::new(),
            lead_score: 0.0,
            intent: None,
            human_transfer_needed: false,
            program_type,
            tier_detected: None,
            tier_confidence: None,
            phase: ConversationPhase::Greeting,
            updated_at: now_ms,
        };
        state.validate()?;
        Ok(state)
    }

    /// Checks every field, including each message and the customer.
    pub fn validate(&self) -> Result<(), ValidationError> {
        validate_id("conversation_id", &self.conversation_id)?;
        self.customer.validate()?;
        for message in &self.messages {
            message.validate()?;
        }
        if self.context.len() > MAX_CONTEXT_ENTRIES {
            return Err(ValidationError::new(
                "context",
                format!(
                    "has {} entries, the limit is {MAX_CONTEXT_ENTRIES}",
                    self.context.len()
                ),
            ));
        }
        if let Some(key) = self.context.keys().find(|k| k.is_empty() || k.len() > 128) {
            return Err(ValidationError::new(
                "context",
                format!("key {key:?} must be 1..=128 bytes"),
            ));
        }
        check_range("lead_score", self.lead_score, 0.0, 1.0)?;
        if let Some(intent) = &self.intent {
            check_text("intent", intent, 128)?;
        }
        if let Some(confidence) = self.tier_confidence {
            check_range("tier_confidence", confidence, 0.0, 1.0)?;
        }
        check_millis("updated_at", self.updated_at)
    }

    /// The messages written by the customer, oldest first.
    pub fn user_messages(&self) -> impl Iterator<Item = &Message> {
        self.messages.iter().filter(|m| m.role == Role::User)
    }
}

/// Checks a simple `local@domain` address of at most 254 characters.
pub(crate) fn validate_email(field: &'static str, email: &str) -> Result<(), ValidationError> {
    check_text(field, email, 254)?;
    match email.split_once('@') {
        Some((local, domain))
            if !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@')
                && !email.chars().any(|c| c.is_whitespace() || c.is_control()) =>
        {
            Ok(())
        }
        _ => Err(ValidationError::new(field, "is not an e-mail address")),
    }
}

/// Checks a phone number: digits, spaces and `+-()`, 6..=32 bytes.
pub(crate) fn validate_phone(field: &'static str, phone: &str) -> Result<(), ValidationError> {
    let digits = phone.chars().filter(char::is_ascii_digit).count();
    let charset_ok = phone
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '+' | '-' | '(' | ')'));
    if !charset_ok || digits < 6 || phone.len() > 32 {
        return Err(ValidationError::new(field, "is not a phone number"));
    }
    Ok(())
}

/// Checks an age in years (18..=120).
pub(crate) fn validate_age(field: &'static str, age: u32) -> Result<(), ValidationError> {
    if !(18..=120).contains(&age) {
        return Err(ValidationError::new(
            field,
            format!("{age} is outside 18..=120"),
        ));
    }
    Ok(())
}
