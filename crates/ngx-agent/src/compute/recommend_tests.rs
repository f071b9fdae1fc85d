//! Unit tests of program recommendation.

use super::*;
use crate::db::seed_catalog::programs;

fn profile(
    age: Option<u32>,
    occupation: &str,
    band: IncomeBand,
    goals: &[&str],
) -> CustomerProfile {
    CustomerProfile {
        id: "cust-1".into(),
        name: "Ana".into(),
        email: "ana@example.com".into(),
        phone: None,
        age,
        occupation: Some(occupation.into()),
        income_band: band,
        goals: goals.iter().map(|g| (*g).to_owned()).collect(),
        created_at: 0,
        updated_at: 0,
    }
}

#[test]
fn young_professional_gets_prime_at_the_income_tier() {
    let p = profile(
        Some(34),
        "software engineer",
        IncomeBand::Middle,
        &["improve focus"],
    );
    let r = recommend_program(&p, &programs()).unwrap();
    assert_eq!((r.program_type, r.tier), (ProgramType::Prime, Tier::Pro));
    assert_eq!(r.monthly_price_cents, 14_900);
    assert_eq!(r.alternative.map(|a| a.0), Some(ProgramType::Longevity));
    assert!(r.score > r.alternative.unwrap().1);
}

#[test]
fn older_customer_with_longevity_goals_gets_longevity() {
    let p = profile(
        Some(66),
        "retired",
        IncomeBand::UpperMiddle,
        &["stay mobile", "bone density"],
    );
    let r = recommend_program(&p, &programs()).unwrap();
    assert_eq!(
        (r.program_type, r.tier),
        (ProgramType::Longevity, Tier::Elite)
    );
}

#[test]
fn occupation_moves_the_tier_and_missing_tiers_fall_back() {
    let ceo = profile(Some(45), "ceo", IncomeBand::UpperMiddle, &[]);
    assert_eq!(
        recommend_program(&ceo, &programs()).unwrap().tier,
        Tier::Premium
    );
    let student = profile(Some(23), "student", IncomeBand::Low, &[]);
    assert_eq!(
        recommend_program(&student, &programs()).unwrap().tier,
        Tier::Essential
    );

    let mut catalog = programs();
    for p in &mut catalog {
        p.tiers.retain(|t| t.tier != Tier::Premium);
    }
    let rich = profile(Some(40), "founder", IncomeBand::High, &[]);
    assert_eq!(
        recommend_program(&rich, &catalog).unwrap().tier,
        Tier::Elite
    );
}

#[test]
fn empty_catalog_and_invalid_profile_are_errors() {
    let p = profile(None, "x", IncomeBand::Unknown, &[]);
    assert_eq!(recommend_program(&p, &[]), Err(ComputeError::EmptyCatalog));
    let mut bad = p.clone();
    bad.id = String::new();
    assert!(matches!(
        recommend_program(&bad, &programs()),
        Err(ComputeError::Invalid(_))
    ));
    // Unknown age is fine.
    assert!(recommend_program(&p, &programs()).is_ok());
}
