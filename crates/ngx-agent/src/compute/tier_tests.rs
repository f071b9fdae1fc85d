//! Unit tests of tier detection.

use super::*;
use crate::domain::IncomeBand;

pub(super) fn profile(age: u32, occupation: &str, band: IncomeBand) -> CustomerProfile {
    CustomerProfile {
        id: "cust-1".into(),
        name: "Ana".into(),
        email: "ana@example.com".into(),
        phone: None,
        age: Some(age),
        occupation: Some(occupation.into()),
        income_band: band,
        goals: vec!["more energy".into()],
        created_at: 0,
        updated_at: 0,
    }
}

fn msg(role: Role, text: &str) -> Message {
    Message::new(role, text, 1).unwrap()
}

#[test]
fn budget_language_from_a_student_gives_essential() {
    let p = profile(22, "student", IncomeBand::Low);
    let history = [msg(Role::User, "How much is it? I'm on a tight budget")];
    let r = detect_tier(&TierInput {
        message: "Just the basics for now, I can't afford much",
        profile: &p,
        history: &history,
    })
    .unwrap();
    assert_eq!(r.tier, Tier::Essential, "{r:?}");
    assert!(r.confidence > 0.5, "{r:?}");
    assert!(
        r.reasons.iter().any(|x| x.contains("price sensitivity")),
        "{r:?}"
    );
    assert_eq!(r.program_type, ProgramType::Prime);
}

#[test]
fn executive_asking_for_a_personal_coach_gives_premium() {
    let p = profile(47, "founder", IncomeBand::High);
    let history = [
        msg(Role::User, "I run a company and travel every week"),
        msg(Role::Assistant, "Many founders feel that way"),
    ];
    let r = detect_tier(&TierInput {
        message: "I want a dedicated personal coach, whatever it takes",
        profile: &p,
        history: &history,
    })
    .unwrap();
    assert_eq!(r.tier, Tier::Premium, "{r:?}");
    assert!(
        r.reasons.iter().any(|x| x.contains("\"personal coach\"")),
        "{r:?}"
    );
    // The phrase is counted once, not again as "personal" and "coach".
    assert!(
        !r.reasons.iter().any(|x| x.contains("(\"coach\")")),
        "{r:?}"
    );
    assert!(r.reasons.len() <= 5);
}

#[test]
fn typos_still_match_and_older_segments_weigh_less() {
    let p = profile(40, "teacher", IncomeBand::Unknown);
    let r = detect_tier(&TierInput {
        message: "I need acountability and weekly coatching",
        profile: &p,
        history: &[],
    })
    .unwrap();
    assert_eq!(r.tier, Tier::Elite, "{r:?}");
    assert!(
        r.reasons.iter().any(|x| x.contains("acountability")),
        "{r:?}"
    );
}

#[test]
fn longevity_vocabulary_and_age_pick_longevity() {
    let mut p = profile(63, "retired", IncomeBand::Middle);
    p.goals = vec!["stay mobile and independent, bone density".into()];
    let r = detect_tier(&TierInput {
        message: "I want to keep up with my grandchildren",
        profile: &p,
        history: &[],
    })
    .unwrap();
    assert_eq!(r.program_type, ProgramType::Longevity);
}

#[test]
fn deterministic_and_well_formed() {
    let p = profile(35, "software engineer", IncomeBand::Middle);
    let history: Vec<Message> = (0..30)
        .map(|i| {
            msg(
                if i % 2 == 0 {
                    Role::User
                } else {
                    Role::Assistant
                },
                "I track my data with a wearable watch",
            )
        })
        .collect();
    let input = TierInput {
        message: "What does Pro include?",
        profile: &p,
        history: &history,
    };
    let a = detect_tier(&input).unwrap();
    let b = detect_tier(&input).unwrap();
    assert_eq!(a, b);
    assert_eq!(a.tier, Tier::Pro, "{a:?}");
    assert_eq!(a.scores.len(), 4);
    assert!((0.25..=1.0).contains(&a.confidence));
}

#[test]
fn bad_input_is_an_error() {
    let p = profile(35, "x", IncomeBand::Middle);
    let err = detect_tier(&TierInput {
        message: " ",
        profile: &p,
        history: &[],
    })
    .unwrap_err();
    assert!(matches!(err, ComputeError::Invalid(ref e) if e.field == "message"));
    let mut bad = p.clone();
    bad.email = "x".into();
    let err = detect_tier(&TierInput {
        message: "hi",
        profile: &bad,
        history: &[],
    })
    .unwrap_err();
    assert!(matches!(err, ComputeError::Invalid(ref e) if e.field == "email"));
}

/// Prints the cost figure quoted in the module docs. Run with
/// `cargo test --release -p ngx-agent tier::tests::cost -- --nocapture`.
#[test]
fn cost() {
    let p = profile(47, "founder", IncomeBand::High);
    let lines = [
        "I'm always tired by 3pm and my productivity is dropping, can you help me?",
        "Many executives we work with felt exactly that. PRIME targets energy and focus.",
        "That sounds expensive, I'm not sure I can afford it right now with my budget.",
        "I understand. Let's look at the return: most clients regain several hours a week.",
    ];
    for n in [4_usize, 40, 200] {
        let history: Vec<Message> = (0..n)
            .map(|i| {
                msg(
                    if i % 2 == 0 {
                        Role::User
                    } else {
                        Role::Assistant
                    },
                    lines[i % 4],
                )
            })
            .collect();
        let input = TierInput {
            message: "I want a personal coach",
            profile: &p,
            history: &history,
        };
        let rounds = 10;
        let start = std::time::Instant::now();
        for _ in 0..rounds {
            std::hint::black_box(detect_tier(std::hint::black_box(&input)).unwrap());
        }
        println!(
            "tier detection, {n} messages: {:?} per call",
            start.elapsed() / rounds
        );
    }
}
