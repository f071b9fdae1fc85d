//! Consultant ROI: what a tier's price returns in regained billable hours.
//!
//! # Formula
//! ```text
//! gain            = productivity_gain(tier)       (ESSENTIAL 3%, PRO 5%, ELITE 8%, PREMIUM 12%)
//! hours_per_year  = billable_hours_per_week × weeks_per_year × gain
//! annual_value    = hours_per_year × hourly_rate
//! annual_cost     = monthly_price × 12
//! net_benefit     = annual_value − annual_cost
//! roi_percent     = net_benefit / annual_cost × 100
//! payback_months  = annual_cost / (annual_value / 12)     (None when annual_value is 0)
//! ```
//! Money is in US dollars; the monthly price comes from the catalog (cents).

use super::ComputeError;
use crate::domain::{Program, RoiCalculation, RoiInput, Tier};

/// The assumed share of billable hours regained with each tier.
pub fn productivity_gain(tier: Tier) -> f64 {
    match tier {
        Tier::Essential => 0.03,
        Tier::Pro => 0.05,
        Tier::Elite => 0.08,
        Tier::Premium => 0.12,
    }
}

/// Applies the formula above to `input`, pricing the tier from `catalog`.
pub fn consultant_roi(
    input: &RoiInput,
    catalog: &[Program],
) -> Result<RoiCalculation, ComputeError> {
    input.validate()?;
    if catalog.is_empty() {
        return Err(ComputeError::EmptyCatalog);
    }
    let missing = ComputeError::MissingTier {
        program: input.program_type,
        tier: input.tier,
    };
    let tier = catalog
        .iter()
        .find(|p| p.program_type == input.program_type)
        .and_then(|p| p.tier(input.tier))
        .ok_or(missing)?;
    let monthly = cents_to_dollars(tier.monthly_price_cents);
    let gain = productivity_gain(input.tier);
    let hours = input.billable_hours_per_week * input.weeks_per_year * gain;
    let annual_value = hours * input.hourly_rate;
    let annual_cost = monthly * 12.0;
    let net_benefit = annual_value - annual_cost;
    Ok(RoiCalculation {
        program_type: input.program_type,
        tier: input.tier,
        productivity_gain: gain,
        hours_gained_per_year: hours,
        annual_value,
        annual_cost,
        net_benefit,
        roi_percent: net_benefit / annual_cost * 100.0,
        payback_months: (annual_value > 0.0).then(|| annual_cost / (annual_value / 12.0)),
    })
}

/// Cents to dollars; catalog prices are far below 2^53 cents.
fn cents_to_dollars(cents: i64) -> f64 {
    // i64 -> f64 has no lossless `From`; prices are validated > 0 and small.
    cents as f64 / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ProgramTier, ProgramType};

    fn catalog() -> Vec<Program> {
        vec![Program {
            program_type: ProgramType::Prime,
            name: "PRIME".into(),
            description: "d".into(),
            min_age: 25,
            max_age: 50,
            tiers: vec![ProgramTier {
                tier: Tier::Elite,
                name: "Elite".into(),
                monthly_price_cents: 19_900,
                features: vec![],
            }],
        }]
    }

    fn input() -> RoiInput {
        RoiInput {
            profession: "consultant".into(),
            hourly_rate: 200.0,
            billable_hours_per_week: 30.0,
            weeks_per_year: 46.0,
            program_type: ProgramType::Prime,
            tier: Tier::Elite,
        }
    }

    #[test]
    fn applies_the_documented_formula() {
        let r = consultant_roi(&input(), &catalog()).unwrap();
        // 30 h × 46 weeks × 8% = 110.4 h; × 200 = 22,080; cost 199 × 12 = 2,388.
        assert!((r.hours_gained_per_year - 110.4).abs() < 1e-9);
        assert!((r.annual_value - 22_080.0).abs() < 1e-6);
        assert!((r.annual_cost - 2_388.0).abs() < 1e-9);
        assert!((r.net_benefit - 19_692.0).abs() < 1e-6);
        assert!((r.roi_percent - 19_692.0 / 2_388.0 * 100.0).abs() < 1e-9);
        assert!((r.payback_months.unwrap() - 2_388.0 / 1_840.0).abs() < 1e-9);
    }

    #[test]
    fn missing_tier_and_bad_input_are_errors() {
        let mut i = input();
        i.tier = Tier::Premium;
        assert_eq!(
            consultant_roi(&i, &catalog()),
            Err(ComputeError::MissingTier {
                program: ProgramType::Prime,
                tier: Tier::Premium
            })
        );
        assert_eq!(
            consultant_roi(&input(), &[]),
            Err(ComputeError::EmptyCatalog)
        );
        let mut bad = input();
        bad.weeks_per_year = 60.0;
        assert!(
            matches!(consultant_roi(&bad, &catalog()), Err(ComputeError::Invalid(e)) if e.field == "weeks_per_year")
        );
    }
}
