//! Repository tests against a real database (SQLite, or PostgreSQL when
//! `TEST_DATABASE_URL` is set).

mod db_support;

use std::collections::BTreeMap;

use db_support::TestDb;
use ngx_agent::db::{Backend, DbError, DbOptions};
use ngx_agent::domain::{
    AgentConfig, ConversationLimits, ConversationPhase, ConversationState, CustomerProfile,
    IncomeBand, KnowledgeEntry, Message, ProgramType, Role, Tier,
};

fn profile(id: &str) -> CustomerProfile {
    CustomerProfile {
        id: id.into(),
        name: "Ana Ruiz".into(),
        email: "ana@example.com".into(),
        phone: Some("+34 600 000 000".into()),
        age: Some(44),
        occupation: Some("surgeon".into()),
        income_band: IncomeBand::High,
        goals: vec!["more energy".into(), "sleep better".into()],
        created_at: 1_000,
        updated_at: 2_000,
    }
}

fn conversation(id: &str) -> ConversationState {
    let mut state = ConversationState::new(
        id,
        profile("cust-a").to_info(Some("Hello".into())),
        ProgramType::Prime,
        10,
    )
    .unwrap();
    state.messages = vec![
        Message::new(Role::User, "I am always tired", 11).unwrap(),
        Message::new(Role::Assistant, "Tell me more", 12).unwrap(),
    ];
    state
        .context
        .insert("channel".into(), serde_json::json!("voice"));
    state
        .context
        .insert("nested".into(), serde_json::json!({"a": [1, 2.5, null]}));
    state.lead_score = 0.625;
    state.intent = Some("pricing_inquiry".into());
    state.tier_detected = Some(Tier::Elite);
    state.tier_confidence = Some(0.8);
    state.phase = ConversationPhase::Discovery;
    state
}

#[tokio::test]
async fn customers_create_get_update_list() {
    let t = TestDb::new().await;
    let repo = t.db.customers();
    let mut p = profile("cust-a");
    repo.create(&p).await.unwrap();
    assert_eq!(repo.get("cust-a").await.unwrap(), p);
    assert!(repo.create(&p).await.unwrap_err().is_conflict());

    p.occupation = None;
    p.phone = None;
    p.age = None;
    p.income_band = IncomeBand::Unknown;
    p.goals.clear();
    p.updated_at = 3_000;
    repo.update(&p).await.unwrap();
    assert_eq!(repo.get("cust-a").await.unwrap(), p);

    let missing = profile("cust-zz");
    assert!(repo.update(&missing).await.unwrap_err().is_not_found());
    assert!(repo.get("cust-zz").await.unwrap_err().is_not_found());
    assert!(repo.get("bad id").await.unwrap_err().is_invalid());

    repo.create(&profile("cust-b")).await.unwrap();
    repo.create(&profile("cust-c")).await.unwrap();
    assert_eq!(repo.list_ids(2, 0).await.unwrap(), ["cust-a", "cust-b"]);
    assert_eq!(repo.list_ids(10, 2).await.unwrap(), ["cust-c"]);
    assert_eq!(repo.count().await.unwrap(), 3);
    t.finish().await;
}

#[tokio::test]
async fn customers_get_many_is_one_query_for_all_ids() {
    let t = TestDb::new().await;
    let repo = t.db.customers();
    for id in ["cust-a", "cust-b", "cust-c"] {
        repo.create(&profile(id)).await.unwrap();
    }
    let ids: Vec<String> = ["cust-c", "cust-zz", "cust-a"].map(String::from).to_vec();
    let before = t.db.query_count();
    let mut got = repo.get_many(&ids).await.unwrap();
    assert_eq!(t.db.query_count() - before, 1);
    got.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(got, [profile("cust-a"), profile("cust-c")]);

    // Many ids still take one query (one bind each).
    let many: Vec<String> = (0..100).map(|i| format!("cust-{i}")).chain(ids).collect();
    let before = t.db.query_count();
    assert_eq!(repo.get_many(&many).await.unwrap().len(), 2);
    assert_eq!(t.db.query_count() - before, 1);

    // No ids: no query. An invalid id: refused before the query.
    let before = t.db.query_count();
    assert!(repo.get_many(&[]).await.unwrap().is_empty());
    let bad = ["cust-a".to_owned(), "bad id".to_owned()];
    assert!(repo.get_many(&bad).await.unwrap_err().is_invalid());
    assert_eq!(t.db.query_count(), before);
    t.finish().await;
}

#[tokio::test]
async fn invalid_profiles_are_refused_before_any_query() {
    let t = TestDb::new().await;
    let mut p = profile("cust-a");
    p.email = "nope".into();
    let before = t.db.query_count();
    let err = t.db.customers().create(&p).await.unwrap_err();
    assert!(
        matches!(err, DbError::Invalid(ref v) if v.field == "email"),
        "{err:?}"
    );
    assert_eq!(t.db.query_count(), before);
    t.finish().await;
}

#[tokio::test]
async fn conversations_round_trip_with_messages_and_context() {
    let t = TestDb::new().await;
    let repo = t.db.conversations();
    let state = conversation("conv-1");
    repo.create(&state).await.unwrap();
    assert_eq!(repo.get("conv-1").await.unwrap(), state);
    assert!(repo.create(&state).await.unwrap_err().is_conflict());
    assert!(repo.get("conv-404").await.unwrap_err().is_not_found());
    assert_eq!(repo.ids_for_customer("cust-a").await.unwrap(), ["conv-1"]);
    assert_eq!(repo.list_ids(10, 0).await.unwrap(), ["conv-1"]);
    t.finish().await;
}

#[tokio::test]
async fn save_replaces_state_and_messages_or_creates() {
    let t = TestDb::new().await;
    let repo = t.db.conversations();
    let mut state = conversation("conv-1");
    repo.save(&state).await.unwrap();
    assert_eq!(repo.get("conv-1").await.unwrap(), state);

    state.messages.truncate(1);
    state
        .messages
        .push(Message::new(Role::System, "escalate", 20).unwrap());
    state.human_transfer_needed = true;
    state.tier_detected = None;
    state.tier_confidence = None;
    state.intent = None;
    state.program_type = ProgramType::Longevity;
    state.context.clear();
    state.updated_at = 20;
    repo.save(&state).await.unwrap();
    assert_eq!(repo.get("conv-1").await.unwrap(), state);
    t.finish().await;
}

#[tokio::test]
async fn append_message_keeps_order_and_advances_updated_at() {
    let t = TestDb::new().await;
    let repo = t.db.conversations();
    let mut state = conversation("conv-1");
    state.messages.clear();
    repo.create(&state).await.unwrap();
    for (i, text) in ["one", "two", "three"].iter().enumerate() {
        let m = Message::new(Role::User, *text, 100 + i as i64).unwrap();
        repo.append_message("conv-1", &m).await.unwrap();
    }
    let got = repo.get("conv-1").await.unwrap();
    let texts: Vec<_> = got.messages.iter().map(|m| m.content.as_str()).collect();
    assert_eq!(texts, ["one", "two", "three"]);
    assert_eq!(got.updated_at, 102);

    // An older timestamp does not move updated_at backwards.
    let old = Message::new(Role::Assistant, "late", 50).unwrap();
    repo.append_message("conv-1", &old).await.unwrap();
    let got = repo.get("conv-1").await.unwrap();
    assert_eq!(got.updated_at, 102);
    assert_eq!(got.messages.len(), 4);

    let err = repo.append_message("conv-404", &old).await.unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
    t.finish().await;
}

#[tokio::test]
async fn concurrent_appends_all_land() {
    let t = TestDb::new().await;
    let mut state = conversation("conv-1");
    state.messages.clear();
    t.db.conversations().create(&state).await.unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let db = t.db.clone();
            tokio::spawn(async move {
                let m = Message::new(Role::User, format!("m{i}"), 1_000 + i).unwrap();
                db.conversations().append_message("conv-1", &m).await
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(
        t.db.conversations()
            .get("conv-1")
            .await
            .unwrap()
            .messages
            .len(),
        8
    );
    t.finish().await;
}

/// Appends racing on one conversation from several connections (on
/// PostgreSQL each is one statement, re-run when another append took its
/// sequence number): every one lands once, each returns a state of one
/// moment (with the revision of that moment) that holds its message, and
/// the message limit holds exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_appends_land_once_each_and_the_limit_holds() {
    let t = TestDb::new().await;
    let limited = t
        .reopen_with(DbOptions::default().conversation_limits(ConversationLimits::new(12, 1 << 20)))
        .await;
    let mut state = conversation("conv-1");
    state.messages.clear();
    limited.conversations().create(&state).await.unwrap();
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let db = limited.clone();
            tokio::spawn(async move {
                let m = Message::new(Role::User, format!("m{i}"), 1_000 + i).unwrap();
                let result = db
                    .conversations()
                    .append_message_state("conv-1", &m, None)
                    .await;
                (m, result)
            })
        })
        .collect();
    let (mut landed, mut refused) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            (m, Ok((state, revision))) => {
                assert_eq!(state.messages.len() as u64, revision);
                assert!(state.messages.contains(&m), "{m:?} not in its own state");
                landed += 1;
            }
            (_, Err(DbError::Invalid(e))) => {
                assert!(e.to_string().contains("full"), "{e}");
                refused += 1;
            }
            (_, Err(e)) => panic!("append failed: {e:?}"),
        }
    }
    assert_eq!((landed, refused), (12, 4));
    let got = limited.conversations().get("conv-1").await.unwrap();
    assert_eq!(got.messages.len(), 12);
    let mut texts: Vec<_> = got.messages.iter().map(|m| m.content.clone()).collect();
    texts.sort_unstable();
    texts.dedup();
    assert_eq!(texts.len(), 12, "a message landed twice");
    t.finish().await;
}

/// Appends given up at every point of their work (as a request timeout
/// drops a handler's future) each land whole or not at all, and leave no
/// pooled connection inside a transaction: every later append, save and
/// read works, and each state's revision is its message count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_given_up_midway_land_whole_or_not_at_all() {
    let t = TestDb::new().await;
    let db = t.reopen_with(DbOptions::default().max_connections(2)).await;
    let mut state = conversation("conv-1");
    state.messages.clear();
    db.conversations().create(&state).await.unwrap();
    let mut given_up = 0;
    for i in 0..300_i64 {
        let m = Message::new(Role::User, format!("m{i}"), 1_000 + i).unwrap();
        let repo = db.conversations();
        let append = repo.append_message_state("conv-1", &m, None);
        let budget = std::time::Duration::from_micros(u64::try_from(i % 60).unwrap() * 10);
        match tokio::time::timeout(budget, append).await {
            Ok(result) => {
                result.unwrap();
            }
            Err(_) => given_up += 1,
        }
    }
    assert!(
        given_up > 0,
        "no append was given up; the test shows nothing"
    );
    // Whatever was left running finishes: the next appends wait their turn.
    for i in 0..8_i64 {
        let m = Message::new(Role::Assistant, format!("after {i}"), 9_000 + i).unwrap();
        let (state, revision) = db
            .conversations()
            .append_message_state("conv-1", &m, None)
            .await
            .unwrap_or_else(|e| panic!("append {i} after the given-up ones failed: {e:?}"));
        assert_eq!(state.messages.len() as u64, revision);
        assert_eq!(state.messages.last(), Some(&m));
    }
    let got = db.conversations().get("conv-1").await.unwrap();
    let mut texts: Vec<_> = got.messages.iter().map(|m| m.content.clone()).collect();
    texts.sort_unstable();
    texts.dedup();
    assert_eq!(texts.len(), got.messages.len(), "a message landed twice");
    let mut saved = got.clone();
    saved.messages.truncate(2);
    db.conversations().save(&saved).await.unwrap();
    assert_eq!(db.conversations().get("conv-1").await.unwrap(), saved);
    t.finish().await;
}

#[tokio::test]
async fn knowledge_and_agent_config_save_and_get() {
    let t = TestDb::new().await;
    let mut entry = KnowledgeEntry {
        topic: "pricing".into(),
        title: "Pricing".into(),
        content: "From 79 USD".into(),
        tags: vec!["pricing".into()],
        updated_at: 5,
    };
    t.db.knowledge().save(&entry).await.unwrap();
    entry.content = "From 89 USD".into();
    t.db.knowledge().save(&entry).await.unwrap();
    assert_eq!(t.db.knowledge().get("pricing").await.unwrap(), entry);
    assert!(
        t.db.knowledge()
            .get("nothing")
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert_eq!(t.db.knowledge().list_topics().await.unwrap(), ["pricing"]);

    let config = AgentConfig {
        name: "default".into(),
        system_prompt: "Be helpful".into(),
        model: "m".into(),
        temperature: 0.5,
        max_tokens: 100,
        voice: "nova".into(),
        greeting: "Hi".into(),
        features: BTreeMap::from([("x".to_owned(), true)]),
        updated_at: 9,
    };
    t.db.agent_configs().save(&config).await.unwrap();
    assert_eq!(t.db.agent_configs().get("default").await.unwrap(), config);
    assert!(
        t.db.agent_configs()
            .get("other")
            .await
            .unwrap_err()
            .is_not_found()
    );
    t.finish().await;
}

#[tokio::test]
async fn query_counter_counts_each_statement_and_is_shared_by_clones() {
    let t = TestDb::new().await;
    t.db.customers().create(&profile("cust-a")).await.unwrap();
    t.db.conversations()
        .create(&conversation("conv-1"))
        .await
        .unwrap();
    let clone = t.db.clone();
    let start = t.db.query_count();
    t.db.customers().get("cust-a").await.unwrap();
    assert_eq!(t.db.query_count() - start, 1);
    clone.conversations().get("conv-1").await.unwrap();
    assert_eq!(
        t.db.query_count() - start,
        3,
        "conversation get is two queries"
    );
    let m = Message::new(Role::User, "hi", 99).unwrap();
    clone
        .conversations()
        .append_message("conv-1", &m)
        .await
        .unwrap();
    // One statement on PostgreSQL; an update and an insert on SQLite.
    let appended = match t.db.backend() {
        Backend::Postgres => 4,
        Backend::Sqlite => 5,
    };
    assert_eq!(t.db.query_count() - start, appended);
    // An independent handle has its own counter.
    let other = t.reopen().await;
    other.customers().get("cust-a").await.unwrap();
    assert_eq!(other.query_count(), 1);
    assert_eq!(t.db.query_count() - start, appended);
    other.close().await;
    t.finish().await;
}

#[tokio::test]
async fn optional_float_can_go_from_null_to_a_value_on_the_same_statement() {
    // sqlx 0.9.0's `Any` driver typed a NULL f64 as FLOAT4 on PostgreSQL,
    // and the statement cache then refused the next 8-byte value (fixed in
    // 0.9.1). One connection, so the statement cache is certainly reused.
    let t = TestDb::new().await;
    let single = t.reopen_with(DbOptions::default().max_connections(1)).await;
    let repo = single.conversations();
    let mut state = conversation("conv-1");
    for confidence in [None, Some(0.25), None, Some(0.75)] {
        state.tier_confidence = confidence;
        repo.save(&state).await.unwrap();
        assert_eq!(
            repo.get("conv-1").await.unwrap().tier_confidence,
            confidence
        );
    }
    t.finish().await;
}

#[tokio::test]
async fn recently_active_customers_come_by_latest_conversation_then_by_update() {
    let t = TestDb::new().await;
    // a and d have no conversation (d changed later); b's conversation is
    // older than c's latest; c also has an old one.
    for (id, updated_at) in [
        ("cust-a", 1_100),
        ("cust-b", 1_900),
        ("cust-c", 1_000),
        ("cust-d", 1_500),
    ] {
        let mut p = profile(id);
        p.updated_at = updated_at;
        t.db.customers().create(&p).await.unwrap();
    }
    for (conv, customer, at) in [
        ("conv-b", "cust-b", 50),
        ("conv-c1", "cust-c", 10),
        ("conv-c2", "cust-c", 70),
    ] {
        let state = ConversationState::new(
            conv,
            profile(customer).to_info(None),
            ProgramType::Prime,
            at,
        )
        .unwrap();
        t.db.conversations().create(&state).await.unwrap();
    }
    let ids = |profiles: Vec<CustomerProfile>| -> Vec<String> {
        profiles.into_iter().map(|p| p.id).collect()
    };
    let q = t.db.query_count();
    let all = t.db.customers().recently_active(10).await.unwrap();
    assert_eq!(t.db.query_count() - q, 1, "one query");
    assert_eq!(all[0], {
        let mut p = profile("cust-c");
        p.updated_at = 1_000;
        p
    });
    assert_eq!(ids(all), ["cust-c", "cust-b", "cust-d", "cust-a"]);
    assert_eq!(
        ids(t.db.customers().recently_active(2).await.unwrap()),
        ["cust-c", "cust-b"]
    );
    assert!(
        t.db.customers()
            .recently_active(0)
            .await
            .unwrap()
            .is_empty()
    );
    t.finish().await;
}
