//! Cache-aside services against a real database and a real `redis-server`:
//! hits, misses, invalidation on write (also seen by a second instance),
//! tag invalidation of a customer's derived data, queries per request,
//! metric counters and warming. Runs on SQLite, or PostgreSQL when
//! `TEST_DATABASE_URL` is set.

mod db_support;
mod support;

use std::sync::Arc;
use std::time::Duration;

use ngx_agent::domain::{ConversationState, Message, ModelKind, ProgramType, RoiInput, Role, Tier};
use ngx_agent::service::ServiceError;
use support::{RedisServer, cache_with, config, eventually, exists, seeded_db, services};
use tokio::sync::Notify;

const CONV: &str = "conv-00001";
const POLL: Duration = Duration::from_secs(3);

fn roi_input() -> RoiInput {
    RoiInput {
        profession: "lawyer".into(),
        hourly_rate: 300.0,
        billable_hours_per_week: 30.0,
        weeks_per_year: 46.0,
        program_type: ProgramType::Prime,
        tier: Tier::Pro,
    }
}

#[tokio::test]
async fn conversations_hit_miss_and_no_stale_state_after_writes() {
    let redis = RedisServer::start();
    let t = seeded_db().await;
    let (s, m) = support::services_on(&redis, &t.db).await;

    // Miss: two queries (row + messages), one load, then cached in Redis.
    let q = t.db.query_count();
    let first = s.conversations.get(CONV).await.unwrap();
    assert_eq!(t.db.query_count() - q, 2);
    assert_eq!(m.cache().stats().loads, 1);
    assert!(exists(&redis, &format!("ngx:conv:v1:{CONV}")));

    // Hit: no query, no load, same state.
    let q = t.db.query_count();
    assert_eq!(s.conversations.get(CONV).await.unwrap(), first);
    assert_eq!(t.db.query_count(), q);
    assert_eq!(m.cache().stats().loads, 1);

    // append_message: the returned state and the next read carry the message.
    let msg = Message::new(
        Role::User,
        "How much is the elite tier?",
        first.updated_at + 1,
    )
    .unwrap();
    let appended = s.conversations.append_message(CONV, &msg).await.unwrap();
    assert_eq!(appended.messages.len(), first.messages.len() + 1);
    assert_eq!(appended.messages.last(), Some(&msg));
    assert_eq!(s.conversations.get(CONV).await.unwrap(), appended);

    // save: a changed field is visible at once.
    let mut saved = appended.clone();
    saved.lead_score = 0.875;
    saved.intent = Some("pricing".into());
    s.conversations.save(&saved).await.unwrap();
    assert_eq!(s.conversations.get(CONV).await.unwrap(), saved);
    // ... and is what Redis now holds (read again by a cold reader).
    let loads = m.cache().stats().loads;
    let q = t.db.query_count();
    assert_eq!(s.conversations.get(CONV).await.unwrap(), saved);
    assert_eq!((t.db.query_count(), m.cache().stats().loads), (q, loads));

    // create: a miss for an unknown id is not cached, so the new
    // conversation is visible right after it is created.
    let err = s.conversations.get("conv-new").await.unwrap_err();
    assert!(matches!(err, ServiceError::NotFound { .. }), "{err:?}");
    let mut fresh =
        ConversationState::new("conv-new", first.customer.clone(), ProgramType::Prime, 5).unwrap();
    fresh
        .messages
        .push(Message::new(Role::User, "Hi", 6).unwrap());
    s.conversations.create(&fresh).await.unwrap();
    assert_eq!(s.conversations.get("conv-new").await.unwrap(), fresh);
    let err = s.conversations.create(&fresh).await.unwrap_err();
    assert!(matches!(err, ServiceError::Conflict(_)), "{err:?}");
    t.finish().await;
}

#[tokio::test]
async fn redis_hits_without_l1_do_no_queries() {
    let redis = RedisServer::start();
    let t = seeded_db().await;
    let (s, m) = services(
        &t.db,
        cache_with(config(&redis).l1(false)).await,
        support::no_fail_safe(),
    );
    let customer = s.conversations.get(CONV).await.unwrap().customer.id;
    let topic = t.db.knowledge().list_topics().await.unwrap().remove(0);

    // One pass fills the cache, the second must not touch the database.
    for pass in 0..2 {
        let q = t.db.query_count();
        let loads = m.cache().stats().loads;
        s.conversations.get(CONV).await.unwrap();
        s.customers.get(&customer).await.unwrap();
        s.tiers
            .detect(&customer, "I want the best", Some(CONV))
            .await
            .unwrap();
        for model in ModelKind::ALL {
            s.predictions.predict(model, CONV).await.unwrap();
        }
        s.programs.catalog().await.unwrap();
        s.programs.recommend(&customer).await.unwrap();
        s.programs.roi(roi_input()).await.unwrap();
        s.content.knowledge(&topic).await.unwrap();
        s.content.agent_config("default").await.unwrap();
        if pass == 1 {
            assert_eq!(
                t.db.query_count(),
                q,
                "a warm pass must not query the database"
            );
            assert_eq!(m.cache().stats().loads, loads, "a warm pass must not load");
        }
    }
    let stats = m.cache().stats();
    assert_eq!(stats.l1_hits, 0);
    assert!(stats.l2_hits >= 12, "{stats:?}");
    t.finish().await;
}

#[tokio::test]
async fn customer_update_invalidates_profile_and_derived_data() {
    let redis = RedisServer::start();
    let t = seeded_db().await;
    let (s, m) = support::services_on(&redis, &t.db).await;
    let customer = s.conversations.get(CONV).await.unwrap().customer.id;
    let loads = || m.cache().stats().loads;

    let derive = || async {
        (
            s.tiers
                .detect(&customer, "What does elite include?", Some(CONV))
                .await
                .unwrap(),
            s.predictions
                .predict(ModelKind::Conversion, CONV)
                .await
                .unwrap(),
            s.programs.recommend(&customer).await.unwrap(),
        )
    };
    let profile = s.customers.get(&customer).await.unwrap();
    let before = derive().await;
    let warm = loads();
    let q = t.db.query_count();
    assert_eq!(derive().await, before);
    assert_eq!(
        (loads(), t.db.query_count()),
        (warm, q),
        "derived data is cached"
    );

    // An update that leaves the profile as it was keeps every hash (and so
    // every key): only the `customer:{id}` tag can make these misses.
    assert_eq!(s.customers.update(&profile).await.unwrap(), profile);
    let after_update = loads();
    assert_eq!(after_update, warm + 1, "the profile itself was reloaded");
    assert_eq!(derive().await, before);
    assert_eq!(
        loads(),
        after_update + 3,
        "tier detection, prediction and recommendation were loaded again"
    );

    // A real change is visible in the profile and in what derives from it.
    let mut changed = profile.clone();
    changed.occupation = Some("cardiac surgeon".into());
    changed.income_band = ngx_agent::domain::IncomeBand::High;
    changed.updated_at += 1;
    assert_eq!(s.customers.update(&changed).await.unwrap(), changed);
    assert_eq!(s.customers.get(&customer).await.unwrap(), changed);
    let uncached = ngx_agent::service::Services::new(t.db.clone(), None);
    let (tier, _, rec) = derive().await;
    assert_eq!(
        tier,
        uncached
            .tiers
            .detect(&customer, "What does elite include?", Some(CONV))
            .await
            .unwrap()
    );
    assert_eq!(rec, uncached.programs.recommend(&customer).await.unwrap());
    t.finish().await;
}

#[tokio::test]
async fn a_second_instance_sees_every_write() {
    let redis = RedisServer::start();
    let t = seeded_db().await;
    let (a, am) = support::services_on(&redis, &t.db).await;
    let db_b = t.reopen().await;
    let (b, _) = services(
        &db_b,
        cache_with(config(&redis)).await,
        support::no_fail_safe(),
    );

    // Both instances hold the conversation (A in its L1).
    let state = a.conversations.get(CONV).await.unwrap();
    assert_eq!(b.conversations.get(CONV).await.unwrap(), state);
    let customer = state.customer.id.clone();

    let msg = Message::new(Role::User, "Book me in", state.updated_at + 1).unwrap();
    let appended = b.conversations.append_message(CONV, &msg).await.unwrap();
    assert!(
        eventually(POLL, || async {
            a.conversations.get(CONV).await.unwrap() == appended
        })
        .await,
        "instance A kept a stale conversation after B appended a message"
    );

    let mut saved = appended.clone();
    saved.human_transfer_needed = true;
    b.conversations.save(&saved).await.unwrap();
    assert!(
        eventually(POLL, || async {
            a.conversations.get(CONV).await.unwrap() == saved
        })
        .await,
        "instance A kept a stale conversation after B saved it"
    );

    // Customer profile and the tag of its derived data.
    a.predictions.predict(ModelKind::Needs, CONV).await.unwrap();
    let mut profile = a.customers.get(&customer).await.unwrap();
    profile.name = "Renamed Customer".into();
    b.customers.update(&profile).await.unwrap();
    assert!(
        eventually(POLL, || async {
            a.customers.get(&customer).await.unwrap() == profile
        })
        .await,
        "instance A kept a stale profile after B updated it"
    );
    let loads = am.cache().stats().loads;
    assert!(
        eventually(POLL, || async {
            a.predictions.predict(ModelKind::Needs, CONV).await.unwrap();
            am.cache().stats().loads > loads
        })
        .await,
        "instance A kept serving a prediction of a customer B updated"
    );
    t.finish().await;
}

/// A read that starts after a write must not be handed the result of a load
/// that began before the write (single-flight joining an old load).
#[tokio::test]
async fn a_read_after_delete_does_not_join_an_older_load() {
    let redis = RedisServer::start();
    let t = seeded_db().await;
    let (s, m) = support::services_on(&redis, &t.db).await;
    let old = s.conversations.get(CONV).await.unwrap();
    m.delete_conversation(CONV).await;

    let started = Arc::new(Notify::new());
    let release = Arc::new(Notify::new());
    let slow = {
        let (m, old, started, release) = (m.clone(), old.clone(), started.clone(), release.clone());
        tokio::spawn(async move {
            m.get_or_load_conversation(CONV, move || async move {
                started.notify_one();
                release.notified().await;
                Ok::<_, ServiceError>(Some(old))
            })
            .await
        })
    };
    started.notified().await;

    // The write: commit, then invalidate (what ConversationService does).
    let mut new = old.clone();
    new.lead_score = 0.99;
    t.db.conversations().save(&new).await.unwrap();
    m.delete_conversation(CONV).await;

    let reader = {
        let s = s.clone();
        tokio::spawn(async move { s.conversations.get(CONV).await })
    };
    // Let the reader either finish on its own load or join the old one.
    let joined = tokio::time::timeout(Duration::from_secs(3), async {
        while !reader.is_finished() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .is_err();
    release.notify_one();
    assert_eq!(
        slow.await.unwrap().unwrap(),
        Some(old),
        "the old load still answers its caller"
    );
    let read = reader.await.unwrap().unwrap();
    assert!(
        !joined,
        "the reader waited for the load that began before the write"
    );
    assert_eq!(read, new, "a read after the write returned the old state");
    // The old load did not put its value back.
    assert_eq!(s.conversations.get(CONV).await.unwrap(), new);
    t.finish().await;
}

#[tokio::test]
async fn metric_counters_live_in_redis_without_ttl() {
    let redis = RedisServer::start();
    let (_, m) = services(
        &seeded_db().await.db,
        cache_with(config(&redis)).await,
        support::no_fail_safe(),
    );
    assert_eq!(m.get_metric("calls", "answered").await, 0);
    for expected in 1..=3 {
        assert_eq!(
            m.increment_metric("calls", "answered").await,
            Some(expected)
        );
    }
    assert_eq!(m.increment_metric("calls", "dropped").await, Some(1));
    assert_eq!(m.get_metric("calls", "answered").await, 3);
    assert_eq!(m.get_metric("calls", "dropped").await, 1);
    assert_eq!(
        support::get_text(&redis, "ngx:metric:calls:answered").as_deref(),
        Some("3")
    );
    assert_eq!(support::pttl(&redis, "ngx:metric:calls:answered"), -1);

    // A second instance shares the counters.
    let (_, other) = services(
        &seeded_db().await.db,
        cache_with(config(&redis)).await,
        support::no_fail_safe(),
    );
    assert_eq!(other.increment_metric("calls", "answered").await, Some(4));
    assert_eq!(m.get_metric("calls", "answered").await, 4);
}

#[tokio::test]
async fn warming_caches_knowledge_config_and_catalog() {
    let redis = RedisServer::start();
    let t = seeded_db().await;
    let (s, m) = support::services_on(&redis, &t.db).await;
    let topics = t.db.knowledge().list_topics().await.unwrap();
    assert!(topics.len() >= 12, "a few dozen topics are seeded");

    let customers = t.db.customers().count().await.unwrap() as usize;
    let report = s.content.warm(&s.programs).await.unwrap();
    // Plus each customer's profile and recommendation (see service_warm.rs).
    assert_eq!(report.total, topics.len() + 2 + 2 * customers);
    assert_eq!((report.done, report.failed), (report.total, 0));
    for topic in &topics {
        assert!(
            exists(&redis, &format!("ngx:know:v1:{topic}")),
            "{topic} not warmed"
        );
    }
    assert!(exists(&redis, "ngx:conf:agent:v1:default"));
    assert!(exists(&redis, "ngx:prog:catalog:v1:all"));

    // Warm means no database work, here and on a fresh instance (Redis).
    let (fresh, _) = support::services_on(&redis, &t.db).await;
    let q = t.db.query_count();
    for svc in [&s, &fresh] {
        for topic in &topics {
            assert_eq!(&svc.content.knowledge(topic).await.unwrap().topic, topic);
        }
        svc.content.agent_config("default").await.unwrap();
        assert_eq!(svc.programs.catalog().await.unwrap().len(), 2);
    }
    assert_eq!(t.db.query_count(), q);

    // Warming again finds everything cached.
    let loads = m.cache().stats().loads;
    let again = s.content.warm(&s.programs).await.unwrap();
    assert_eq!(again, report);
    assert_eq!(m.cache().stats().loads, loads);
    t.finish().await;
}

/// Predictions are keyed by the conversation state (not by the features,
/// which are the expensive part): an append must give a prediction over
/// the new state, equal to what an uncached service computes.
#[tokio::test]
async fn a_message_append_gives_a_prediction_over_the_new_state() {
    let redis = RedisServer::start();
    let t = seeded_db().await;
    let (s, m) = support::services_on(&redis, &t.db).await;
    let uncached = ngx_agent::service::Services::new(t.db.clone(), None);
    let model = ModelKind::Objection;
    let before = s.predictions.predict(model, CONV).await.unwrap();
    let loads = m.cache().stats().loads;
    assert_eq!(s.predictions.predict(model, CONV).await.unwrap(), before);
    assert_eq!(m.cache().stats().loads, loads, "the second call is a hit");

    let state = s.conversations.get(CONV).await.unwrap();
    let msg = Message::new(
        Role::User,
        "That is too expensive, I need to think about it and ask my wife",
        state.updated_at + 1,
    )
    .unwrap();
    s.conversations.append_message(CONV, &msg).await.unwrap();
    let after = s.predictions.predict(model, CONV).await.unwrap();
    assert_ne!(
        after, before,
        "an objection changes the objection prediction"
    );
    assert_eq!(
        after,
        uncached.predictions.predict(model, CONV).await.unwrap()
    );
    assert!(
        m.cache().stats().loads > loads,
        "the new state was predicted, not served from the old key"
    );
    t.finish().await;
}

/// A tier detection answers what the detector computes from the same
/// inputs, both for a message alone (computed on the runtime's thread)
/// and with a conversation's history (long enough to be computed off it).
#[tokio::test]
async fn tier_detections_are_the_detectors_answer_in_place_or_off_the_runtime() {
    use ngx_agent::compute::{TierInput, detect_tier};

    let redis = RedisServer::start();
    let t = seeded_db().await;
    let (s, _) = support::services_on(&redis, &t.db).await;
    let mut conversation = s.conversations.get(CONV).await.unwrap();
    for i in 0..4 {
        let text = "I run a clinic and my evenings are gone; what would the coach do? ".repeat(5);
        let said = Message::new(Role::User, text, conversation.updated_at + 1 + i).unwrap();
        conversation = s.conversations.append_message(CONV, &said).await.unwrap();
    }
    let profile = s.customers.get(&conversation.customer.id).await.unwrap();
    let history_text: usize = conversation.messages.iter().map(|m| m.content.len()).sum();
    assert!(
        history_text > 1024,
        "the history ({history_text} bytes) is too short to be computed off the runtime"
    );
    let message = "I want a dedicated coach, money is not the issue";
    for history in [None, Some(CONV)] {
        let got = s.tiers.detect(&profile.id, message, history).await.unwrap();
        let messages = if history.is_some() {
            conversation.messages.as_slice()
        } else {
            &[]
        };
        let expected = detect_tier(&TierInput {
            message,
            profile: &profile,
            history: messages,
        })
        .unwrap();
        assert_eq!(got, expected, "history {history:?}");
    }
    t.finish().await;
}
