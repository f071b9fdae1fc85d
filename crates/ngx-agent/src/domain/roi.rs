//! Consultant ROI: input metrics and the calculated return.

use serde::{Deserialize, Serialize};

use super::error::{check_range, check_text};
use super::{ProgramType, Tier, ValidationError};

/// What a consultant tells the agent about their work. The stable hash of
/// this struct is the `{metrics_hash}` of `ngx:roi:consultant:{metrics_hash}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RoiInput {
    /// Profession in free text ("lawyer", "consultant", ...).
    pub profession: String,
    /// Billed rate in US dollars per hour (0 < rate <= 10,000).
    pub hourly_rate: f64,
    /// Billable hours per week (0 < hours <= 100).
    pub billable_hours_per_week: f64,
    /// Working weeks per year (1..=52).
    pub weeks_per_year: f64,
    /// The program considered.
    pub program_type: ProgramType,
    /// The tier considered.
    pub tier: Tier,
}

impl RoiInput {
    /// Checks every range; errors name the field.
    pub fn validate(&self) -> Result<(), ValidationError> {
        check_text("profession", &self.profession, 128)?;
        check_range("hourly_rate", self.hourly_rate, 0.01, 10_000.0)?;
        check_range(
            "billable_hours_per_week",
            self.billable_hours_per_week,
            0.1,
            100.0,
        )?;
        check_range("weeks_per_year", self.weeks_per_year, 1.0, 52.0)
    }
}

/// The return on the program's price, see `compute::roi` for the formula.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RoiCalculation {
    /// The program priced.
    pub program_type: ProgramType,
    /// The tier priced.
    pub tier: Tier,
    /// Assumed productivity gain, as a fraction of billable hours.
    pub productivity_gain: f64,
    /// Billable hours regained per year.
    pub hours_gained_per_year: f64,
    /// Value of those hours, US dollars per year.
    pub annual_value: f64,
    /// Price of the program, US dollars per year.
    pub annual_cost: f64,
    /// `annual_value - annual_cost`.
    pub net_benefit: f64,
    /// `net_benefit / annual_cost * 100`.
    pub roi_percent: f64,
    /// Months until the value covers a year's cost; `None` when the value
    /// is zero.
    pub payback_months: Option<f64>,
}
