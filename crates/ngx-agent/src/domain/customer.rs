//! The customer profile held in the system of record.

use serde::{Deserialize, Serialize};

use super::conversation::{validate_age, validate_email, validate_phone};
use super::error::{check_millis, check_text};
use super::{CustomerInfo, ValidationError, validate_id};

/// Most goals a profile may list.
pub const MAX_GOALS: usize = 32;

/// Declared yearly household income, in coarse bands.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum IncomeBand {
    /// Not disclosed.
    Unknown,
    /// Under 40k USD.
    Low,
    /// 40k to 100k USD.
    Middle,
    /// 100k to 250k USD.
    UpperMiddle,
    /// Over 250k USD.
    High,
}

impl IncomeBand {
    /// Every band, lowest first, `Unknown` first of all.
    pub const ALL: [IncomeBand; 5] = [
        Self::Unknown,
        Self::Low,
        Self::Middle,
        Self::UpperMiddle,
        Self::High,
    ];

    /// The snake_case name used in JSON and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Low => "low",
            Self::Middle => "middle",
            Self::UpperMiddle => "upper_middle",
            Self::High => "high",
        }
    }

    /// Parses the name written by [`IncomeBand::as_str`].
    pub fn parse(value: &str) -> Result<Self, ValidationError> {
        Self::ALL
            .into_iter()
            .find(|b| b.as_str() == value)
            .ok_or_else(|| {
                ValidationError::new("income_band", format!("unknown income band {value:?}"))
            })
    }
}

/// A customer as stored in the database, cached under `ngx:cust:v1:{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CustomerProfile {
    /// The customer's id (see [`validate_id`]).
    pub id: String,
    /// Display name.
    pub name: String,
    /// E-mail address.
    pub email: String,
    /// Phone number, when given.
    pub phone: Option<String>,
    /// Age in years (18..=120), when given.
    pub age: Option<u32>,
    /// Occupation in free text, when given ("surgeon", "founder", ...).
    pub occupation: Option<String>,
    /// Declared income band.
    pub income_band: IncomeBand,
    /// What the customer wants to achieve, in free text.
    pub goals: Vec<String>,
    /// Creation time, unix milliseconds.
    pub created_at: i64,
    /// Last change, unix milliseconds.
    pub updated_at: i64,
}

impl CustomerProfile {
    /// Checks every field.
    pub fn validate(&self) -> Result<(), ValidationError> {
        validate_id("id", &self.id)?;
        check_text("name", &self.name, 256)?;
        validate_email("email", &self.email)?;
        if let Some(phone) = &self.phone {
            validate_phone("phone", phone)?;
        }
        if let Some(age) = self.age {
            validate_age("age", age)?;
        }
        if let Some(occupation) = &self.occupation {
            check_text("occupation", occupation, 128)?;
        }
        if self.goals.len() > MAX_GOALS {
            return Err(ValidationError::new(
                "goals",
                format!("has {} entries, the limit is {MAX_GOALS}", self.goals.len()),
            ));
        }
        for goal in &self.goals {
            check_text("goals", goal, 256)?;
        }
        check_millis("created_at", self.created_at)?;
        check_millis("updated_at", self.updated_at)?;
        if self.updated_at < self.created_at {
            return Err(ValidationError::new("updated_at", "is before created_at"));
        }
        Ok(())
    }

    /// The snapshot a new conversation carries.
    pub fn to_info(&self, initial_message: Option<String>) -> CustomerInfo {
        CustomerInfo {
            id: self.id.clone(),
            name: self.name.clone(),
            email: self.email.clone(),
            phone: self.phone.clone(),
            age: self.age,
            initial_message,
        }
    }
}
