//! Without a cache, every service returns what it returns with one: with no
//! manager, with `CACHE_ENABLED=false`, and with Redis killed mid-test
//! (reads come from the database, writes still commit).

mod db_support;
mod support;

use std::time::{Duration, Instant};

use ngx_agent::cache::{DomainCacheSettings, NgxCacheManager};
use ngx_agent::domain::{ConversationState, Message, ModelKind, ProgramType, RoiInput, Role, Tier};
use ngx_agent::service::Services;
use ngx_cache::{BreakerConfig, Cache, CacheConfig};
use serde::Serialize;
use serde_json::Value;
use support::{RedisServer, cache_with, config, eventually, exists, seeded_db, services};

const CONV: &str = "conv-00003";
const MESSAGE: &str = "Is the longevity program worth it for a founder like me?";

fn json(v: impl Serialize) -> Value {
    serde_json::to_value(v).unwrap()
}

/// Every read, then every write, then the reads a write affects. Returns
/// each result (errors as their message) in order.
async fn exercise(s: &Services, db: &ngx_agent::db::Database) -> Vec<Value> {
    let mut out = Vec::new();
    let state = s.conversations.get(CONV).await.unwrap();
    let cust = state.customer.id.clone();
    let topic = db.knowledge().list_topics().await.unwrap().remove(3);
    let roi = RoiInput {
        profession: "founder".into(),
        hourly_rate: 400.0,
        billable_hours_per_week: 45.0,
        weeks_per_year: 48.0,
        program_type: ProgramType::Prime,
        tier: Tier::Elite,
    };
    out.push(json(&state));
    let profile = s.customers.get(&cust).await.unwrap();
    out.push(json(&profile));
    out.push(json(
        s.tiers.detect(&cust, MESSAGE, Some(CONV)).await.unwrap(),
    ));
    out.push(json(s.tiers.detect(&cust, MESSAGE, None).await.unwrap()));
    for model in ModelKind::ALL {
        out.push(json(s.predictions.predict(model, CONV).await.unwrap()));
    }
    out.push(json(s.programs.catalog().await.unwrap()));
    out.push(json(s.programs.recommend(&cust).await.unwrap()));
    out.push(json(s.programs.roi(roi.clone()).await.unwrap()));
    out.push(json(s.content.knowledge(&topic).await.unwrap()));
    out.push(json(s.content.agent_config("default").await.unwrap()));
    out.push(json(
        s.conversations
            .get("conv-missing")
            .await
            .unwrap_err()
            .to_string(),
    ));
    out.push(json(
        s.customers
            .get("cust-missing")
            .await
            .unwrap_err()
            .to_string(),
    ));
    out.push(json(
        s.content
            .knowledge("no-such-topic")
            .await
            .unwrap_err()
            .to_string(),
    ));

    // Writes, each followed by the read that must see it.
    let msg = Message::new(Role::User, "Sign me up", state.updated_at + 1).unwrap();
    out.push(json(
        s.conversations.append_message(CONV, &msg).await.unwrap(),
    ));
    let mut saved = s.conversations.get(CONV).await.unwrap();
    saved.lead_score = 0.5;
    saved.tier_detected = Some(Tier::Elite);
    s.conversations.save(&saved).await.unwrap();
    out.push(json(s.conversations.get(CONV).await.unwrap()));
    let fresh =
        ConversationState::new("conv-new", profile.to_info(None), ProgramType::Longevity, 7)
            .unwrap();
    s.conversations.create(&fresh).await.unwrap();
    out.push(json(s.conversations.get("conv-new").await.unwrap()));
    let mut changed = profile.clone();
    changed.occupation = Some("founder".into());
    changed.updated_at += 1;
    out.push(json(s.customers.update(&changed).await.unwrap()));
    out.push(json(s.customers.get(&cust).await.unwrap()));

    // Derived data over the new state.
    out.push(json(
        s.tiers.detect(&cust, MESSAGE, Some(CONV)).await.unwrap(),
    ));
    for model in ModelKind::ALL {
        out.push(json(s.predictions.predict(model, CONV).await.unwrap()));
    }
    out.push(json(s.programs.recommend(&cust).await.unwrap()));
    out
}

/// The results with no cache at all, on a fresh database.
async fn reference() -> Vec<Value> {
    let t = seeded_db().await;
    let out = exercise(&Services::new(t.db.clone(), None), &t.db).await;
    t.finish().await;
    out
}

fn assert_same(label: &str, got: &[Value], want: &[Value]) {
    assert_eq!(got.len(), want.len(), "{label}: result count");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g, w, "{label}: result #{i} differs");
    }
}

#[tokio::test]
async fn cached_and_uncached_services_agree() {
    let want = reference().await;
    let redis = RedisServer::start();
    let t = seeded_db().await;
    let (s, _) = services(
        &t.db,
        cache_with(config(&redis)).await,
        DomainCacheSettings::default(),
    );
    assert_same("with redis", &exercise(&s, &t.db).await, &want);
    t.finish().await;
}

#[tokio::test]
async fn cache_disabled_by_configuration_gives_the_same_results() {
    let want = reference().await;
    let config =
        CacheConfig::from_lookup(|name| (name == "CACHE_ENABLED").then(|| "false".to_owned()))
            .unwrap();
    let cache = Cache::connect(config).await.unwrap();
    assert!(!cache.is_enabled());
    let t = seeded_db().await;
    let manager = NgxCacheManager::new(cache, DomainCacheSettings::default());
    let s = Services::new(t.db.clone(), Some(manager.clone()));
    assert_same("CACHE_ENABLED=false", &exercise(&s, &t.db).await, &want);

    // Nothing is cached: a repeated read queries the database again.
    let q = t.db.query_count();
    s.conversations.get(CONV).await.unwrap();
    s.conversations.get(CONV).await.unwrap();
    assert_eq!(t.db.query_count() - q, 4);
    assert_eq!(manager.increment_metric("calls", "answered").await, None);
    assert_eq!(manager.get_metric("calls", "answered").await, 0);
    assert!(manager.get_conversation(CONV).await.is_none());
    t.finish().await;
}

#[tokio::test]
async fn no_cache_manager_gives_the_same_results() {
    let want = reference().await;
    let t = seeded_db().await;
    let s = Services::new(t.db.clone(), None);
    assert_same("Services::new(db, None)", &exercise(&s, &t.db).await, &want);
    let report = s.content.warm(&s.programs).await.unwrap();
    assert_eq!(report.failed, 0);
    t.finish().await;
}

#[tokio::test]
async fn redis_killed_mid_test_reads_from_the_database_and_writes_commit() {
    let want = reference().await;
    let mut redis = RedisServer::start();
    let t = seeded_db().await;
    let cache =
        cache_with(config(&redis).breaker(BreakerConfig::new(5, Duration::from_millis(300)))).await;
    let (s, m) = services(&t.db, cache, DomainCacheSettings::default());

    // Fill L1 and Redis, then kill the server.
    let warm = s.content.warm(&s.programs).await.unwrap();
    assert_eq!(warm.failed, 0);
    s.conversations.get(CONV).await.unwrap();
    assert!(exists(&redis, &format!("ngx:conv:v1:{CONV}")));
    redis.kill();

    let started = Instant::now();
    let got = exercise(&s, &t.db).await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "requests must not hang on a dead Redis: {:?}",
        started.elapsed()
    );
    assert_same("redis killed", &got, &want);

    // The writes are in the database, whatever the cache saw.
    let uncached = Services::new(t.db.clone(), None);
    let conv = uncached.conversations.get(CONV).await.unwrap();
    assert_eq!(conv.lead_score, 0.5);
    assert_eq!(conv.messages.last().unwrap().content, "Sign me up");
    assert!(uncached.conversations.get("conv-new").await.is_ok());
    let stats = m.cache().stats();
    assert!(
        stats.errors > 0 && !stats.connected || stats.circuit_breaker_open,
        "{stats:?}"
    );

    // Back up: the breaker lets a probe through and the cache heals. (Reads
    // of values loaded during the outage are L1 hits until L1 expires, so
    // the probe here is a write.)
    redis.restart();
    assert!(
        eventually(Duration::from_secs(5), || async {
            m.set_conversation("heal-probe", &conv).await.unwrap();
            exists(&redis, "ngx:conv:v1:heal-probe")
        })
        .await,
        "the cache did not come back after Redis restarted: {:?}",
        m.cache().stats()
    );
    let other = s.conversations.get("conv-00010").await.unwrap();
    assert!(exists(&redis, "ngx:conv:v1:conv-00010"));
    assert_eq!(m.get_conversation("conv-00010").await, Some(other));
    // Nothing from before the outage came back.
    assert_eq!(s.conversations.get(CONV).await.unwrap(), conv);
    assert!(m.get_conversation(CONV).await.is_none_or(|c| c == conv));
    t.finish().await;
}
