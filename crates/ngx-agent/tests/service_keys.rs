//! The key layout and TTLs the services leave in Redis, checked with raw
//! commands (`EXISTS`, `GET`, `PTTL`, `SCAN`) against a real server.

mod db_support;
mod support;

use std::time::Duration;

use ngx_agent::cache::{DomainCacheSettings, KeySpace, NgxCacheManager};
use ngx_agent::compute::TierInput;
use ngx_agent::domain::{ModelKind, ProgramType, RoiInput, Tier};
use ngx_agent::service::{Services, prediction_input_hash};
use ngx_cache::stable_hash;
use serde_json::Value;
use support::{
    RedisServer, cache_with, config, eventually, exists, get_text, pttl, scan, seeded_db, services,
};

const CONV: &str = "conv-00002";
const MESSAGE: &str = "I run a clinic and want the premium option";

fn roi_input() -> RoiInput {
    RoiInput {
        profession: "consultant".into(),
        hourly_rate: 250.0,
        billable_hours_per_week: 32.0,
        weeks_per_year: 44.0,
        program_type: ProgramType::Longevity,
        tier: Tier::Elite,
    }
}

/// Runs every read once and returns each key it must have written, with
/// its key space, built here from the design's layout, once every write
/// has landed (computed values reach Redis after their caller has them).
async fn populate(
    s: &Services,
    db: &ngx_agent::db::Database,
    redis: &RedisServer,
) -> Vec<(KeySpace, String)> {
    let state = s.conversations.get(CONV).await.unwrap();
    let cust = state.customer.id.clone();
    let profile = s.customers.get(&cust).await.unwrap();
    s.tiers.detect(&cust, MESSAGE, Some(CONV)).await.unwrap();
    s.predictions
        .predict(ModelKind::Objection, CONV)
        .await
        .unwrap();
    s.programs.recommend(&cust).await.unwrap();
    s.programs.roi(roi_input()).await.unwrap();
    s.content.agent_config("default").await.unwrap();
    let topic = db.knowledge().list_topics().await.unwrap().remove(0);
    s.content.knowledge(&topic).await.unwrap();

    let tier_hash = stable_hash(&TierInput {
        message: MESSAGE,
        profile: &profile,
        history: &state.messages,
    });
    let pred_hash = prediction_input_hash(&serde_json::to_vec(&state).unwrap());
    let expected = vec![
        (KeySpace::Conversation, format!("ngx:conv:v1:{CONV}")),
        (KeySpace::Customer, format!("ngx:cust:v1:{cust}")),
        (KeySpace::Tier, format!("ngx:tier:v1:{cust}:{tier_hash}")),
        (
            KeySpace::Prediction,
            format!("ngx:pred:v1:objection:{pred_hash}"),
        ),
        (
            KeySpace::ProgramRecommendation,
            format!("ngx:prog:rec:v1:{}", stable_hash(&profile)),
        ),
        (
            KeySpace::Roi,
            format!("ngx:roi:consultant:v1:{}", stable_hash(&roi_input())),
        ),
        (KeySpace::AgentConfig, "ngx:conf:agent:v1:default".into()),
        (KeySpace::Knowledge, format!("ngx:know:v1:{topic}")),
        (KeySpace::ProgramCatalog, "ngx:prog:catalog:v1:all".into()),
    ];
    let landed = eventually(Duration::from_secs(5), || async {
        expected.iter().all(|(_, key)| exists(redis, key))
            && scan(redis, "ngx:__lease:*").is_empty()
    })
    .await;
    assert!(
        landed,
        "expected {expected:?}; Redis holds {:?}",
        scan(redis, "*")
    );
    expected
}

/// The JSON value stored under `key`: the plain value, or the `v` of the
/// metadata envelope (`{"ngx":1,...,"v":value}`) when the entry has tags or
/// a fail-safe window.
fn stored_json(redis: &RedisServer, key: &str) -> Value {
    let text = get_text(redis, key).unwrap_or_else(|| panic!("{key} is missing"));
    let json: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{key} is not plain JSON ({e}): {text}"));
    match json.get("ngx") {
        Some(_) => json["v"].clone(),
        None => json,
    }
}

#[tokio::test]
async fn key_layout_is_literal_and_values_are_plain_json() {
    let redis = RedisServer::start();
    let t = seeded_db().await;
    let (s, m) = support::services_on(&redis, &t.db).await;

    let expected = populate(&s, &t.db, &redis).await;
    let mut keys: Vec<String> = expected.iter().map(|(_, k)| k.clone()).collect();
    for key in &keys {
        assert!(
            exists(&redis, key),
            "{key} missing; Redis holds {:?}",
            scan(&redis, "*")
        );
    }
    // Nothing else: no lease left behind, no stray layout.
    keys.sort();
    assert_eq!(scan(&redis, "*"), keys);

    // Untagged entries without fail-safe are the value's JSON, as written.
    let state = s.conversations.get(CONV).await.unwrap();
    let text = get_text(&redis, &format!("ngx:conv:v1:{CONV}")).unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap(),
        serde_json::to_value(&state).unwrap()
    );

    // The typed getters find what the services stored, by the same hashes.
    let cust = state.customer.id.clone();
    let profile = s.customers.get(&cust).await.unwrap();
    let tier_hash = stable_hash(&TierInput {
        message: MESSAGE,
        profile: &profile,
        history: &state.messages,
    });
    let tier = m
        .get_tier_detection(&cust, &tier_hash)
        .await
        .expect("tier by context hash");
    assert_eq!(
        serde_json::to_value(&tier).unwrap(),
        stored_json(&redis, &expected[2].1)
    );
    let pred_hash = prediction_input_hash(&serde_json::to_vec(&state).unwrap());
    let pred = m
        .get_prediction(ModelKind::Objection, &pred_hash)
        .await
        .expect("prediction");
    assert_eq!(
        serde_json::to_value(&pred).unwrap(),
        stored_json(&redis, &expected[3].1)
    );
    assert!(m.get_recommendation(&stable_hash(&profile)).await.is_some());
    assert!(m.get_roi(&stable_hash(&roi_input())).await.is_some());
    assert_eq!(
        serde_json::to_value(s.programs.catalog().await.unwrap()).unwrap(),
        stored_json(&redis, "ngx:prog:catalog:v1:all")
    );

    // The typed setters write the documented keys.
    m.set_conversation("abc", &state).await.unwrap();
    assert!(exists(&redis, "ngx:conv:v1:abc"));
    assert_eq!(
        stored_json(&redis, "ngx:conv:v1:abc"),
        serde_json::to_value(&state).unwrap()
    );
    m.set_customer("c-1", &profile).await.unwrap();
    assert!(exists(&redis, "ngx:cust:v1:c-1"));
    m.set_prediction(ModelKind::Needs, "h1", Some(&cust), &pred)
        .await
        .unwrap();
    assert!(exists(&redis, "ngx:pred:v1:needs:h1"));
    m.set_tier_detection(&cust, "h2", &tier).await.unwrap();
    assert!(exists(&redis, &format!("ngx:tier:v1:{cust}:h2")));
    let config = s.content.agent_config("default").await.unwrap();
    m.set_agent_config("night", &config).await.unwrap();
    assert!(exists(&redis, "ngx:conf:agent:v1:night"));
    let entry = s
        .content
        .knowledge(&t.db.knowledge().list_topics().await.unwrap()[0])
        .await
        .unwrap();
    m.set_knowledge("faq", &entry).await.unwrap();
    assert_eq!(
        stored_json(&redis, "ngx:know:v1:faq"),
        serde_json::to_value(&entry).unwrap()
    );
    m.increment_metric("calls", "answered").await;
    assert!(exists(&redis, "ngx:metric:calls:answered"));

    // Deletes remove exactly those keys; a customer's tag is a counter.
    assert!(m.delete_conversation("abc").await);
    assert!(!exists(&redis, "ngx:conv:v1:abc"));
    assert!(m.invalidate_customer(&cust).await);
    assert_eq!(
        get_text(&redis, &format!("ngx:__tag:customer:{cust}")).as_deref(),
        Some("1")
    );
    assert!(
        m.get_tier_detection(&cust, &tier_hash).await.is_none(),
        "tagged entry survived"
    );
    t.finish().await;
}

/// Every data key's `PTTL` lies in `[min, max]` where
/// `max = ttl + fail_safe` and `min = max - jitter * ttl - slack`.
async fn check_ttls(settings: DomainCacheSettings, jitter: f64) {
    let redis = RedisServer::start();
    let t = seeded_db().await;
    let fail_safe = settings.fail_safe.unwrap_or_default();
    let ttls: Vec<(KeySpace, Duration)> = KeySpace::ALL
        .iter()
        .map(|s| (*s, settings.ttl(*s)))
        .collect();
    let (s, _) = services(
        &t.db,
        cache_with(config(&redis).ttl_jitter(jitter)).await,
        settings,
    );
    let slack = Duration::from_secs(5);
    for (space, key) in populate(&s, &t.db, &redis).await {
        let ttl = ttls.iter().find(|(s, _)| *s == space).unwrap().1;
        let max = ttl + fail_safe;
        let min = (max - ttl.mul_f64(jitter)).saturating_sub(slack);
        let left = Duration::from_millis(u64::try_from(pttl(&redis, &key)).expect("has a TTL"));
        assert!(
            min <= left && left <= max,
            "{key}: PTTL {left:?} outside [{min:?}, {max:?}] (ttl {ttl:?}, fail-safe {fail_safe:?})"
        );
    }
    let m = NgxCacheManager::new(
        cache_with(config(&redis)).await,
        DomainCacheSettings::default(),
    );
    m.increment_metric("calls", "answered").await;
    assert_eq!(
        pttl(&redis, "ngx:metric:calls:answered"),
        -1,
        "metric counters never expire"
    );
    t.finish().await;
}

#[tokio::test]
async fn ttl_of_every_key_space_without_fail_safe() {
    check_ttls(support::no_fail_safe(), 0.1).await;
}

#[tokio::test]
async fn ttl_of_every_key_space_with_fail_safe_and_no_jitter() {
    let settings = DomainCacheSettings::default();
    assert_eq!(settings.fail_safe, Some(Duration::from_secs(3600)));
    check_ttls(settings, 0.0).await;
}

#[tokio::test]
async fn ttl_overrides_from_the_environment_reach_redis() {
    let env = [
        ("CACHE_TTL_CONVERSATION", "120"),
        ("CACHE_TTL_CUSTOMER", "7"),
        ("CACHE_TTL_TIER", "240"),
        ("CACHE_TTL_PREDICTION", "15"),
        ("CACHE_TTL_KNOWLEDGE", "600"),
        ("CACHE_FAIL_SAFE", "30"),
    ];
    let settings = DomainCacheSettings::from_lookup(|name| {
        env.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned())
    })
    .unwrap();
    assert_eq!(settings.ttl(KeySpace::Customer), Duration::from_secs(7));
    assert_eq!(settings.ttl(KeySpace::Roi), KeySpace::Roi.default_ttl());
    assert_eq!(settings.fail_safe, Some(Duration::from_secs(30)));
    check_ttls(settings.clone(), 0.1).await;

    // And literally, for one key: 120 s logical + 30 s fail-safe, no jitter.
    let redis = RedisServer::start();
    let t = seeded_db().await;
    let (s, _) = services(
        &t.db,
        cache_with(config(&redis).ttl_jitter(0.0)).await,
        settings,
    );
    s.conversations.get(CONV).await.unwrap();
    let left = pttl(&redis, &format!("ngx:conv:v1:{CONV}"));
    assert!((145_000..=150_000).contains(&left), "PTTL {left}");
    t.finish().await;
}
