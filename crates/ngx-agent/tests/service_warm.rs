//! Warming the customer tail against a real database and a real
//! `redis-server`: the profiles and program recommendations of the most
//! recently active customers, bounded by `CACHE_WARM_CUSTOMERS`, read back
//! without a query. Runs on SQLite, or PostgreSQL when `TEST_DATABASE_URL`
//! is set.

mod db_support;
mod support;

use std::collections::{BTreeMap, BTreeSet};

use ngx_agent::cache::DomainCacheSettings;
use ngx_agent::domain::{Message, Role};
use ngx_agent::service::Services;
use support::{RedisServer, cache_with, config, no_fail_safe, scan, seeded_db, services};

/// Settings warming at most `n` customers (no fail-safe).
fn settings(n: u32) -> DomainCacheSettings {
    let mut s = no_fail_safe();
    s.warm_customers = n;
    s
}

/// The customer ids whose profiles are in Redis.
fn warmed_customers(redis: &RedisServer) -> BTreeSet<String> {
    scan(redis, "ngx:cust:v1:*")
        .into_iter()
        .map(|k| k.trim_start_matches("ngx:cust:v1:").to_owned())
        .collect()
}

#[tokio::test]
async fn warmed_customers_and_recommendations_are_read_without_queries() {
    let redis = RedisServer::start();
    let t = seeded_db().await;
    let (s, _) = services(&t.db, cache_with(config(&redis)).await, settings(10_000));
    let topics = t.db.knowledge().list_topics().await.unwrap().len();
    let ids = t.db.customers().list_ids(1000, 0).await.unwrap();
    assert_eq!(ids.len(), 50);

    let report = s.content.warm(&s.programs).await.unwrap();
    assert_eq!(report.total, topics + 2 + 2 * ids.len());
    assert_eq!((report.done, report.failed), (report.total, 0));
    assert_eq!(warmed_customers(&redis).len(), ids.len());
    assert_eq!(scan(&redis, "ngx:prog:rec:v1:*").len(), ids.len());

    // What an uncached service answers.
    let uncached = Services::new(t.db.clone(), None);
    let mut want = Vec::new();
    for id in &ids {
        want.push((
            uncached.customers.get(id).await.unwrap(),
            uncached.programs.recommend(id).await.unwrap(),
        ));
    }

    // A fresh instance (empty L1) finds each profile and recommendation in
    // Redis: the same values, no query, no load, no miss.
    let (fresh, m) = services(&t.db, cache_with(config(&redis)).await, settings(10_000));
    let q = t.db.query_count();
    for (id, (profile, recommendation)) in ids.iter().zip(&want) {
        assert_eq!(&fresh.customers.get(id).await.unwrap(), profile);
        assert_eq!(&fresh.programs.recommend(id).await.unwrap(), recommendation);
    }
    assert_eq!(t.db.query_count(), q, "warmed reads must not query");
    let stats = m.cache().stats();
    assert_eq!((stats.loads, stats.misses), (0, 0), "{stats:?}");
    assert!(stats.hits >= 2 * ids.len() as u64, "{stats:?}");

    // The recommendation carries the customer's tag, as a loaded one does.
    m.invalidate_customer(&ids[0]).await;
    fresh.programs.recommend(&ids[0]).await.unwrap();
    assert_eq!(m.cache().stats().loads, 1, "the tag made it a miss");
    t.finish().await;
}

#[tokio::test]
async fn the_bound_picks_the_most_recently_active_customers() {
    let redis = RedisServer::start();
    let t = seeded_db().await;

    // Each customer's latest conversation update, and every profile.
    let mut active: BTreeMap<String, i64> = BTreeMap::new();
    for n in 1..=20 {
        let c =
            t.db.conversations()
                .get(&format!("conv-{n:05}"))
                .await
                .unwrap();
        let at = active.entry(c.customer.id.clone()).or_insert(c.updated_at);
        *at = (*at).max(c.updated_at);
    }
    let latest = active.values().copied().max().unwrap();
    let mut profiles = Vec::new();
    for id in t.db.customers().list_ids(1000, 0).await.unwrap() {
        profiles.push(t.db.customers().get(&id).await.unwrap());
    }

    // Three customers become the most recently active, the last one first.
    let mut recent = Vec::new();
    for n in 1..=20 {
        let c =
            t.db.conversations()
                .get(&format!("conv-{n:05}"))
                .await
                .unwrap();
        if recent.len() < 3 && !recent.contains(&c.customer.id) {
            let at = latest + 1000 * (recent.len() as i64 + 1);
            let msg = Message::new(Role::User, "still interested", at).unwrap();
            t.db.conversations()
                .append_message(&c.conversation_id, &msg)
                .await
                .unwrap();
            active.insert(c.customer.id.clone(), at);
            recent.push(c.customer.id);
        }
    }
    recent.reverse();

    // Expected order: by latest conversation, then the customers without
    // one by their last update, ties by id.
    profiles.sort_by(|a, b| {
        let key = |p: &ngx_agent::domain::CustomerProfile| match active.get(&p.id) {
            Some(at) => (0, -at, -p.updated_at, p.id.clone()),
            None => (1, 0, -p.updated_at, p.id.clone()),
        };
        key(a).cmp(&key(b))
    });
    let order: Vec<String> = profiles.into_iter().map(|p| p.id).collect();
    assert_eq!(order[..3], recent[..]);

    let with_conversation = active.len();
    for n in [3, with_conversation + 2] {
        let (s, m) = services(&t.db, cache_with(config(&redis)).await, settings(n as u32));
        m.cache().clear_namespace().await.unwrap();
        let report = s.content.warm(&s.programs).await.unwrap();
        assert_eq!(report.failed, 0);
        let want: BTreeSet<String> = order[..n].iter().cloned().collect();
        assert_eq!(warmed_customers(&redis), want, "first {n}");
        assert_eq!(scan(&redis, "ngx:prog:rec:v1:*").len(), n);
    }
    t.finish().await;
}

#[tokio::test]
async fn zero_warms_no_customer() {
    let redis = RedisServer::start();
    let t = seeded_db().await;
    let (s, _) = services(&t.db, cache_with(config(&redis)).await, settings(0));
    let topics = t.db.knowledge().list_topics().await.unwrap().len();
    let report = s.content.warm(&s.programs).await.unwrap();
    assert_eq!(report.total, topics + 2);
    assert_eq!((report.done, report.failed), (report.total, 0));
    assert!(warmed_customers(&redis).is_empty());
    assert!(scan(&redis, "ngx:prog:rec:v1:*").is_empty());
    assert!(!scan(&redis, "ngx:know:v1:*").is_empty());
    t.finish().await;
}

#[tokio::test]
async fn warming_keeps_a_profile_already_cached() {
    let redis = RedisServer::start();
    let t = seeded_db().await;
    let (s, m) = services(&t.db, cache_with(config(&redis)).await, settings(10_000));
    let id = t.db.customers().list_ids(1, 0).await.unwrap().remove(0);
    let mut newer = t.db.customers().get(&id).await.unwrap();
    newer.name = "Written After The Read".into();
    m.set_customer(&id, &newer).await.unwrap();

    let report = s.content.warm(&s.programs).await.unwrap();
    assert_eq!(report.failed, 0);
    let (fresh, _) = services(&t.db, cache_with(config(&redis)).await, settings(10_000));
    assert_eq!(fresh.customers.get(&id).await.unwrap(), newer);
    t.finish().await;
}
