//! Unit tests of validation and serde shapes across the domain models.

use serde_json::json;

use super::*;

fn info() -> CustomerInfo {
    CustomerInfo {
        id: "cust-1".into(),
        name: "Ana Ruiz".into(),
        email: "ana@example.com".into(),
        phone: Some("+34 600 123 456".into()),
        age: Some(41),
        initial_message: Some("Hola".into()),
    }
}

#[test]
fn program_type_serializes_uppercase() {
    assert_eq!(
        serde_json::to_value(ProgramType::Prime).unwrap(),
        json!("PRIME")
    );
    assert_eq!(
        serde_json::from_value::<ProgramType>(json!("LONGEVITY")).unwrap(),
        ProgramType::Longevity
    );
    assert!(serde_json::from_value::<ProgramType>(json!("prime")).is_err());
    assert_eq!(ProgramType::parse("PRIME").unwrap(), ProgramType::Prime);
}

#[test]
fn enums_round_trip_through_their_names() {
    for r in [Role::User, Role::Assistant, Role::System] {
        assert_eq!(Role::parse(r.as_str()).unwrap(), r);
        assert_eq!(serde_json::to_value(r).unwrap(), json!(r.as_str()));
    }
    for p in ConversationPhase::ALL {
        assert_eq!(ConversationPhase::parse(p.as_str()).unwrap(), p);
        assert_eq!(serde_json::to_value(p).unwrap(), json!(p.as_str()));
    }
    for b in IncomeBand::ALL {
        assert_eq!(IncomeBand::parse(b.as_str()).unwrap(), b);
        assert_eq!(serde_json::to_value(b).unwrap(), json!(b.as_str()));
    }
    for t in Tier::ALL {
        assert_eq!(Tier::parse(t.as_str()).unwrap(), t);
    }
    for m in ModelKind::ALL {
        assert_eq!(ModelKind::parse(m.as_str()).unwrap(), m);
    }
    assert_eq!(Role::parse("robot").unwrap_err().field, "role");
}

#[test]
fn conversation_validation_names_the_field() {
    let mut state = ConversationState::new("conv-1", info(), ProgramType::Prime, 1).unwrap();
    state.lead_score = 1.5;
    assert_eq!(state.validate().unwrap_err().field, "lead_score");
    state.lead_score = f64::NAN;
    assert_eq!(state.validate().unwrap_err().field, "lead_score");
    state.lead_score = 0.5;
    state.tier_confidence = Some(-0.1);
    assert_eq!(state.validate().unwrap_err().field, "tier_confidence");

    let mut bad = info();
    bad.email = "not-an-email".into();
    let err = ConversationState::new("conv-1", bad, ProgramType::Prime, 1).unwrap_err();
    assert_eq!(err.field, "customer.email");
    assert!(err.to_string().contains("customer.email"));

    let err = ConversationState::new("conv 1", info(), ProgramType::Prime, 1).unwrap_err();
    assert_eq!(err.field, "conversation_id");

    assert_eq!(
        Message::new(Role::User, "   ", 1).unwrap_err().field,
        "message.content"
    );
    assert_eq!(
        Message::new(Role::User, "hi", -1).unwrap_err().field,
        "message.timestamp"
    );
}

#[test]
fn conversation_json_has_the_documented_shape() {
    let mut state = ConversationState::new("conv-1", info(), ProgramType::Longevity, 7).unwrap();
    state
        .messages
        .push(Message::new(Role::User, "I want energy", 8).unwrap());
    let v = serde_json::to_value(&state).unwrap();
    assert_eq!(v["program_type"], json!("LONGEVITY"));
    assert_eq!(v["phase"], json!("greeting"));
    assert_eq!(v["messages"][0]["role"], json!("user"));
    assert_eq!(v["messages"][0]["timestamp"], json!(8));
    assert_eq!(v["customer"]["email"], json!("ana@example.com"));
    let back: ConversationState = serde_json::from_value(v).unwrap();
    assert_eq!(back, state);
}

#[test]
fn customer_profile_checks_age_phone_and_dates() {
    let mut p = CustomerProfile {
        id: "cust-1".into(),
        name: "Ana".into(),
        email: "ana@example.com".into(),
        phone: None,
        age: Some(17),
        occupation: None,
        income_band: IncomeBand::Middle,
        goals: vec![],
        created_at: 10,
        updated_at: 10,
    };
    assert_eq!(p.validate().unwrap_err().field, "age");
    p.age = Some(30);
    p.phone = Some("call me".into());
    assert_eq!(p.validate().unwrap_err().field, "phone");
    p.phone = None;
    p.updated_at = 5;
    assert_eq!(p.validate().unwrap_err().field, "updated_at");
    p.updated_at = 11;
    assert!(p.validate().is_ok());
}

#[test]
fn roi_input_rejects_out_of_range_metrics() {
    let input = RoiInput {
        profession: "lawyer".into(),
        hourly_rate: 0.0,
        billable_hours_per_week: 30.0,
        weeks_per_year: 46.0,
        program_type: ProgramType::Prime,
        tier: Tier::Pro,
    };
    assert_eq!(input.validate().unwrap_err().field, "hourly_rate");
}
