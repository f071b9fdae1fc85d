//! Migration and seed-loader tests against a real database (SQLite, or
//! PostgreSQL when `TEST_DATABASE_URL` is set).

mod db_support;

use std::time::{Duration, Instant};

use db_support::TestDb;
use ngx_agent::db::SeedSpec;
use ngx_agent::domain::{ProgramType, Tier};

#[tokio::test]
async fn migrations_apply_once_and_are_idempotent() {
    let t = TestDb::unmigrated().await;
    assert_eq!(t.db.migrate().await.unwrap(), 3);
    assert_eq!(t.db.applied_migrations().await.unwrap(), [1, 2, 3]);
    assert_eq!(t.db.migrate().await.unwrap(), 0);
    // A second process starting on the same database applies nothing.
    let other = t.reopen().await;
    assert_eq!(other.migrate().await.unwrap(), 0);
    other.close().await;
    assert_eq!(t.db.customers().count().await.unwrap(), 0);
    t.finish().await;
}

#[tokio::test]
async fn default_seed_is_fast_complete_and_idempotent() {
    let t = TestDb::new().await;
    let started = Instant::now();
    let report = t.db.seed().await.unwrap();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "seeding took {took:?}");
    assert_eq!(report.customers, 3_000);
    assert_eq!(report.conversations, 1_000);
    assert!((3_000..=6_000).contains(&report.messages), "{report:?}");
    assert_eq!(report.programs, 2);
    assert!(report.knowledge_entries >= 30, "{report:?}");
    assert_eq!(report.agent_configs, 2);
    assert!(report.seeded_anything());

    let again = t.db.seed().await.unwrap();
    assert!(!again.seeded_anything(), "{again:?}");
    assert_eq!(again.messages, 0);
    assert_eq!(t.db.customers().count().await.unwrap(), 3_000);

    // Seeded rows decode and validate through the repositories.
    let ids = t.db.customers().list_ids(3, 0).await.unwrap();
    assert_eq!(ids, ["cust-00001", "cust-00002", "cust-00003"]);
    t.db.customers().get("cust-03000").await.unwrap();
    let conv = t.db.conversations().get("conv-00001").await.unwrap();
    assert!((3..=6).contains(&conv.messages.len()));
    assert!(
        conv.messages
            .windows(2)
            .all(|w| w[0].timestamp < w[1].timestamp)
    );
    t.db.conversations().get("conv-01000").await.unwrap();

    let programs = t.db.programs().list().await.unwrap();
    let kinds: Vec<_> = programs.iter().map(|p| p.program_type).collect();
    assert_eq!(kinds, [ProgramType::Prime, ProgramType::Longevity]);
    for p in &programs {
        let tiers: Vec<_> = p.tiers.iter().map(|t| t.tier).collect();
        assert_eq!(tiers, Tier::ALL);
        assert!(
            p.tiers
                .windows(2)
                .all(|w| w[0].monthly_price_cents < w[1].monthly_price_cents)
        );
    }
    let prime = t.db.programs().get(ProgramType::Prime).await.unwrap();
    assert_eq!(prime, programs[0]);

    let topics = t.db.knowledge().list_topics().await.unwrap();
    assert!(topics.iter().any(|t| t == "pricing"));
    assert!(topics.iter().any(|t| t.starts_with("objection.")));
    assert!(
        t.db.knowledge()
            .get("pricing")
            .await
            .unwrap()
            .content
            .contains("79")
    );
    assert_eq!(
        t.db.agent_configs().get("default").await.unwrap().name,
        "default"
    );
    t.finish().await;
}

#[tokio::test]
async fn seed_is_deterministic() {
    let a = TestDb::new().await;
    let b = TestDb::new().await;
    a.db.seed_with(SeedSpec::new(50, 20)).await.unwrap();
    b.db.seed_with(SeedSpec::new(50, 20)).await.unwrap();
    for id in ["cust-00001", "cust-00025", "cust-00050"] {
        assert_eq!(
            a.db.customers().get(id).await.unwrap(),
            b.db.customers().get(id).await.unwrap()
        );
    }
    for id in ["conv-00001", "conv-00020"] {
        assert_eq!(
            a.db.conversations().get(id).await.unwrap(),
            b.db.conversations().get(id).await.unwrap()
        );
    }
    a.finish().await;
    b.finish().await;
}

#[tokio::test]
async fn seed_leaves_existing_groups_alone() {
    let t = TestDb::new().await;
    let catalog_only = t.db.seed_with(SeedSpec::new(0, 0)).await.unwrap();
    assert_eq!(catalog_only.customers, 0);
    assert_eq!(catalog_only.programs, 2);
    // Customers are still empty, so they get seeded now; the catalog is not
    // inserted twice.
    let people = t.db.seed_with(SeedSpec::new(10, 5)).await.unwrap();
    assert_eq!(
        (people.customers, people.conversations, people.programs),
        (10, 5, 0)
    );
    assert_eq!(t.db.programs().list().await.unwrap().len(), 2);
    t.finish().await;
}

#[tokio::test]
async fn seed_counts_its_queries() {
    let t = TestDb::new().await;
    let before = t.db.query_count();
    t.db.seed_with(SeedSpec::new(400, 10)).await.unwrap();
    let used = t.db.query_count() - before;
    // 5 emptiness checks, 2 customer batches, 1 conversation batch, message
    // batches, catalog rows, knowledge rows, configs: batched, not per row.
    assert!(used > 10 && used < 100, "seed used {used} queries");
    t.finish().await;
}
