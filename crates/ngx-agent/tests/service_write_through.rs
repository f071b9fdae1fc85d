//! Message appends write the new conversation state through to the cache
//! (real database, real `redis-server`): the append itself loads nothing,
//! the next read on this or another instance is a hit on the new state,
//! and concurrent appends from two instances leave the last committed
//! state cached, whatever order their write-throughs arrive in. An append
//! over a cached state builds the new state from it (without reading the
//! messages) only while the conversation row proves it current; a replaced
//! message list is read back. Runs on SQLite, or PostgreSQL when
//! `TEST_DATABASE_URL` is set.

mod db_support;
mod support;

use std::time::Duration;

use ngx_agent::compute::{extract_features, predict};
use ngx_agent::db::Backend;
use ngx_agent::domain::{Message, ModelKind, Role};
use support::{RedisServer, cache_with, config, eventually, get_text, seeded_db, services};

const CONV: &str = "conv-00002";
const POLL: Duration = Duration::from_secs(3);

#[tokio::test]
async fn an_append_caches_the_new_state_without_a_load() {
    let redis = RedisServer::start();
    let t = seeded_db().await;
    let (s, m) = support::services_on(&redis, &t.db).await;
    let before = s.conversations.get(CONV).await.unwrap();
    let loads = m.cache().stats().loads;
    let misses = m.cache().stats().misses;

    let msg = Message::new(Role::User, "Write me through", before.updated_at + 1).unwrap();
    let appended = s.conversations.append_message(CONV, &msg).await.unwrap();
    assert_eq!(appended.messages.last(), Some(&msg));
    // Redis holds the new state right away.
    let stored = get_text(&redis, &format!("ngx:conv:v1:{CONV}")).expect("cached");
    assert!(stored.contains("Write me through"), "{stored}");

    // The next read is a hit on the new state: no query, no load, no miss.
    let q = t.db.query_count();
    assert_eq!(s.conversations.get(CONV).await.unwrap(), appended);
    assert_eq!(t.db.query_count(), q, "the read after an append queried");
    let stats = m.cache().stats();
    assert_eq!(
        (stats.loads, stats.misses),
        (loads, misses),
        "the append or the read after it missed the cache"
    );
    t.finish().await;
}

#[tokio::test]
async fn an_append_through_a_is_read_through_b() {
    let redis = RedisServer::start();
    let t = seeded_db().await;
    let (a, _) = support::services_on(&redis, &t.db).await;
    let db_b = t.reopen().await;
    let (b, bm) = services(
        &db_b,
        cache_with(config(&redis)).await,
        support::no_fail_safe(),
    );
    let db_c = t.reopen().await;
    let (c, cm) = services(
        &db_c,
        cache_with(config(&redis)).await,
        support::no_fail_safe(),
    );

    // B holds the old state in its L1; C has never read it.
    let state = a.conversations.get(CONV).await.unwrap();
    assert_eq!(b.conversations.get(CONV).await.unwrap(), state);

    let msg = Message::new(Role::User, "Seen everywhere", state.updated_at + 1).unwrap();
    let appended = a.conversations.append_message(CONV, &msg).await.unwrap();

    // C reads right after the append: the new state, from Redis.
    let q = db_c.query_count();
    assert_eq!(c.conversations.get(CONV).await.unwrap(), appended);
    assert_eq!(db_c.query_count(), q, "C loaded from the database");
    assert_eq!(cm.cache().stats().loads, 0);

    // B drops its L1 copy on A's message and reads the new state as a hit.
    let loads = bm.cache().stats().loads;
    assert!(
        eventually(POLL, || async {
            b.conversations.get(CONV).await.unwrap() == appended
        })
        .await,
        "instance B kept the state from before A's append"
    );
    assert_eq!(
        bm.cache().stats().loads,
        loads,
        "B loaded from the database"
    );
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_from_two_instances_leave_the_last_state_cached() {
    let redis = RedisServer::start();
    let t = seeded_db().await;
    let (a, _) = support::services_on(&redis, &t.db).await;
    let db_b = t.reopen().await;
    let (b, _) = services(
        &db_b,
        cache_with(config(&redis)).await,
        support::no_fail_safe(),
    );
    let start = a.conversations.get(CONV).await.unwrap();
    let at = start.updated_at;

    for round in 0..8i64 {
        let ma = Message::new(Role::User, format!("a{round}"), at + 1 + round).unwrap();
        let mb = Message::new(Role::Assistant, format!("b{round}"), at + 1 + round).unwrap();
        let (ra, rb) = tokio::join!(
            a.conversations.append_message(CONV, &ma),
            b.conversations.append_message(CONV, &mb),
        );
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        // The committed state is the one with both messages.
        let committed = t.db.conversations().get(CONV).await.unwrap();
        let last = if ra.messages.len() > rb.messages.len() {
            ra
        } else {
            rb
        };
        assert_eq!(last, committed, "round {round}");
        // A fresh reader (no L1) finds the committed state in Redis.
        let db_c = t.reopen().await;
        let (c, _) = services(
            &db_c,
            cache_with(config(&redis)).await,
            support::no_fail_safe(),
        );
        assert_eq!(
            c.conversations.get(CONV).await.unwrap(),
            committed,
            "round {round}: Redis kept an older state than the last commit"
        );
    }
    t.finish().await;
}

/// Two instances' appends commit in one order and write through in the
/// other (each writes after its commit, without the row lock): the late,
/// older state never replaces the newer one, also after a delete.
#[tokio::test]
async fn a_late_write_through_of_an_older_state_never_replaces_a_newer_one() {
    let redis = RedisServer::start();
    let t = seeded_db().await;
    let (a, am) = support::services_on(&redis, &t.db).await;
    let db_b = t.reopen().await;
    let (_, bm) = services(
        &db_b,
        cache_with(config(&redis)).await,
        support::no_fail_safe(),
    );
    let at = a.conversations.get(CONV).await.unwrap().updated_at;
    let repo = t.db.conversations();
    let first = Message::new(Role::User, "first", at + 1).unwrap();
    let (older, older_rev) = repo.append_message_state(CONV, &first, None).await.unwrap();
    let second = Message::new(Role::User, "second", at + 2).unwrap();
    let (newer, newer_rev) = repo
        .append_message_state(CONV, &second, None)
        .await
        .unwrap();
    assert!(newer_rev > older_rev);

    assert!(bm.write_through_conversation(CONV, &newer, newer_rev).await);
    assert!(!am.write_through_conversation(CONV, &older, older_rev).await);
    assert_eq!(a.conversations.get(CONV).await.unwrap(), newer);
    assert!(am.delete_conversation(CONV).await);
    assert!(!am.write_through_conversation(CONV, &older, older_rev).await);
    assert_eq!(a.conversations.get(CONV).await.unwrap(), newer);
    let stored = get_text(&redis, &format!("ngx:conv:v1:{CONV}")).expect("cached");
    assert!(stored.contains("second"), "{stored}");
    t.finish().await;
}

#[tokio::test]
async fn an_append_over_the_cached_state_reads_no_messages() {
    let redis = RedisServer::start();
    let t = seeded_db().await;
    let (s, _) = support::services_on(&redis, &t.db).await;
    // The update and the insert: one statement on PostgreSQL, two on SQLite.
    let statements = match t.db.backend() {
        Backend::Postgres => 1,
        Backend::Sqlite => 2,
    };
    let before = s.conversations.get(CONV).await.unwrap();
    for round in 0..3i64 {
        let msg = Message::new(Role::User, format!("two {round}"), before.updated_at + 1).unwrap();
        let q = t.db.query_count();
        let appended = s.conversations.append_message(CONV, &msg).await.unwrap();
        assert_eq!(t.db.query_count() - q, statements, "round {round}");
        let committed = t.db.conversations().get(CONV).await.unwrap();
        assert_eq!(appended, committed, "round {round}");
        assert_eq!(s.conversations.get(CONV).await.unwrap(), committed);
    }
    t.finish().await;
}

#[tokio::test]
async fn an_append_without_a_cached_state_reads_the_messages() {
    let redis = RedisServer::start();
    let t = seeded_db().await;
    let (s, _) = support::services_on(&redis, &t.db).await;
    let before = t.db.conversations().get(CONV).await.unwrap();
    let msg = Message::new(Role::User, "cold", before.updated_at + 1).unwrap();
    let q = t.db.query_count();
    let appended = s.conversations.append_message(CONV, &msg).await.unwrap();
    assert_eq!(t.db.query_count() - q, 3);
    assert_eq!(appended, t.db.conversations().get(CONV).await.unwrap());
    let stored = get_text(&redis, &format!("ngx:conv:v1:{CONV}")).expect("cached");
    assert!(stored.contains("cold"), "{stored}");
    t.finish().await;
}

#[tokio::test]
async fn a_stale_cached_state_is_never_the_base_of_an_append() {
    let redis = RedisServer::start();
    let t = seeded_db().await;
    let (s, _) = support::services_on(&redis, &t.db).await;
    // Cached: the seeded state. Then the message list is replaced behind
    // the cache's back by one of the same length, and with the same row
    // fields: nothing but the revision tells the cached state is stale.
    let cached = s.conversations.get(CONV).await.unwrap();
    let mut replaced = cached.clone();
    for (i, m) in replaced.messages.iter_mut().enumerate() {
        m.content = format!("rewritten {i}");
    }
    t.db.conversations().save(&replaced).await.unwrap();
    assert_eq!(
        s.conversations.get(CONV).await.unwrap(),
        cached,
        "still cached"
    );

    for round in 0..2i64 {
        let msg = Message::new(Role::User, format!("after {round}"), cached.updated_at).unwrap();
        let q = t.db.query_count();
        let appended = s.conversations.append_message(CONV, &msg).await.unwrap();
        let used = t.db.query_count() - q;
        let committed = t.db.conversations().get(CONV).await.unwrap();
        assert_eq!(appended, committed, "round {round}");
        assert!(committed.messages[0].content.starts_with("rewritten"));
        assert_eq!(s.conversations.get(CONV).await.unwrap(), committed);
        // A replaced list is read back on every append from then on.
        assert_eq!(used, 3, "round {round}");
    }
    t.finish().await;
}

#[tokio::test]
async fn refreshed_predictions_of_an_appended_state_are_hits() {
    let redis = RedisServer::start();
    let t = seeded_db().await;
    let (s, m) = support::services_on(&redis, &t.db).await;
    let before = s.conversations.get(CONV).await.unwrap();
    let msg = Message::new(Role::User, "What does it cost?", before.updated_at + 1).unwrap();
    let appended = s.conversations.append_message(CONV, &msg).await.unwrap();
    assert_eq!(
        s.predictions.refresh(appended.clone()).await,
        ModelKind::ALL.len()
    );
    let stats = m.cache().stats();
    for model in ModelKind::ALL {
        let cached = s.predictions.predict(model, CONV).await.unwrap();
        // What a load of the new state computes.
        let computed = predict(model, &extract_features(&appended));
        assert_eq!(cached, computed, "{model:?}");
    }
    let after = m.cache().stats();
    assert_eq!(
        (after.loads, after.misses),
        (stats.loads, stats.misses),
        "a prediction of the appended state missed"
    );
    t.finish().await;
}

/// Writes given up at every point of their work (as the request deadline
/// drops a handler's future) never leave the cache behind the database: a
/// write that committed also updates or clears its cache entry, so a read
/// right after (on this instance, from its L1 or Redis) is the committed
/// state. Appends, whole-state saves and profile updates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_given_up_midway_leave_the_cache_as_the_database() {
    let redis = RedisServer::start();
    let t = seeded_db().await;
    let (s, _) = support::services_on(&redis, &t.db).await;
    let mut state = s.conversations.get(CONV).await.unwrap();
    let customer = state.customer.id.clone();
    let mut profile = s.customers.get(&customer).await.unwrap();
    let mut given_up = 0;
    for i in 0..150_i64 {
        let budget = Duration::from_micros(u64::try_from(i % 50).unwrap() * 20);
        let done = match i % 3 {
            0 => {
                let m = Message::new(Role::User, format!("m{i}"), state.updated_at + i).unwrap();
                tokio::time::timeout(budget, s.conversations.append_message(CONV, &m))
                    .await
                    .map(|r| r.map(drop))
            }
            1 => {
                state.messages.truncate(3);
                state.lead_score = (i as f64) / 1000.0;
                tokio::time::timeout(budget, s.conversations.save(&state)).await
            }
            _ => {
                profile.occupation = Some(format!("occupation {i}"));
                tokio::time::timeout(budget, s.customers.update(&profile))
                    .await
                    .map(|r| r.map(drop))
            }
        };
        match done {
            Ok(result) => result.unwrap_or_else(|e| panic!("write {i} failed: {e:?}")),
            Err(_) => given_up += 1,
        }
        let db = t.db.clone();
        let consistent = eventually(POLL, || async {
            let cached = s.conversations.get(CONV).await.unwrap();
            let committed = db.conversations().get(CONV).await.unwrap();
            let cached_profile = s.customers.get(&customer).await.unwrap();
            let committed_profile = db.customers().get(&customer).await.unwrap();
            cached == committed && cached_profile == committed_profile
        })
        .await;
        assert!(
            consistent,
            "after write {i}, the cache kept a state the database left"
        );
    }
    assert!(
        given_up > 0,
        "no write was given up; the test shows nothing"
    );
    t.finish().await;
}
