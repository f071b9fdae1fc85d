//! `GET /customers?ids=...` and `CustomerService::get_many` against a real
//! database and a real `redis-server`: one L1 pass, one MGET, one query for
//! what is missing; entries shared with single reads, "not found" included;
//! no stale read after a write; 400 for bad id lists; still one query with
//! the cache disabled. Runs on SQLite, or PostgreSQL when
//! `TEST_DATABASE_URL` is set.

mod db_support;
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use db_support::TestDb;
use ngx_agent::cache::NgxCacheManager;
use ngx_agent::db::SeedSpec;
use ngx_agent::http::{self, AppState};
use serde_json::{Value, json};
use support::{RedisServer, cache_with, config, no_fail_safe};
use tower::ServiceExt;

/// Customers seeded: more than one full batch.
const CUSTOMERS: usize = 120;

/// A migrated database with [`CUSTOMERS`] customers and no conversations.
async fn seeded() -> TestDb {
    let t = TestDb::new().await;
    t.db.seed_with(SeedSpec::new(CUSTOMERS, 0))
        .await
        .expect("seed");
    t
}

/// The id of the `n`th seeded customer (from 1).
fn cust(n: usize) -> String {
    format!("cust-{n:05}")
}

/// The API over `t` with a cache on `redis` (default namespace), or
/// without cache.
async fn app(t: &TestDb, redis: Option<&RedisServer>) -> (Router, Option<NgxCacheManager>) {
    http::install_metrics();
    let manager = match redis {
        Some(redis) => Some(NgxCacheManager::new(
            cache_with(config(redis)).await,
            no_fail_safe(),
        )),
        None => None,
    };
    let state = AppState::new(t.db.clone(), manager.clone());
    (http::app(state), manager)
}

/// `method uri` with an optional JSON body: status, `X-Cache`, body.
async fn call(
    app: &Router,
    method: &str,
    uri: &str,
    body: Option<Value>,
) -> (StatusCode, Option<String>, Value) {
    let req = Request::builder().method(method).uri(uri);
    let req = match body {
        Some(b) => req
            .header("content-type", "application/json")
            .body(Body::from(b.to_string())),
        None => req.body(Body::empty()),
    }
    .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let x_cache = resp
        .headers()
        .get("x-cache")
        .map(|v| v.to_str().unwrap().to_owned());
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, x_cache, body)
}

/// `GET /customers?ids=` of `ids`, expecting 200: the ids of the
/// customers returned, and `missing`.
async fn batch(app: &Router, ids: &[String]) -> (Vec<String>, Vec<String>) {
    let (status, _, body) = call(
        app,
        "GET",
        &format!("/customers?ids={}", ids.join(",")),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let customers = body["customers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect();
    let missing = serde_json::from_value(body["missing"].clone()).unwrap();
    (customers, missing)
}

#[tokio::test]
async fn a_batch_queries_the_database_once_for_what_is_not_cached() {
    let redis = RedisServer::start();
    let t = seeded().await;
    let (app, m) = app(&t, Some(&redis)).await;
    let m = m.unwrap();
    let ids: Vec<String> = (1..=100).map(cust).collect();
    // 90 cached by single reads; every tenth id is not.
    let uncached: Vec<String> = (1..=10).map(|i| cust(i * 10)).collect();
    for id in ids.iter().filter(|id| !uncached.contains(id)) {
        let (status, _, _) = call(&app, "GET", &format!("/customers/{id}"), None).await;
        assert_eq!(status, StatusCode::OK);
    }

    let (q, loads) = (t.db.query_count(), m.cache().stats().loads);
    let (status, x_cache, body) = call(
        &app,
        "GET",
        &format!("/customers?ids={}", ids.join(",")),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(t.db.query_count() - q, 1, "one query for the 10 missing");
    assert_eq!(m.cache().stats().loads - loads, 10, "the 10 missing keys");
    let got: Vec<&str> = body["customers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(got, ids, "every profile, in request order");
    assert_eq!(body["missing"], json!([]));
    assert_eq!(x_cache, None, "a batch sets no X-Cache");

    // The batch filled the shared entries: a single read is a hit.
    let q = t.db.query_count();
    let (status, x_cache, one) =
        call(&app, "GET", &format!("/customers/{}", uncached[3]), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(x_cache.as_deref(), Some("HIT-L1"));
    assert_eq!(one["id"], uncached[3].as_str());
    assert_eq!(t.db.query_count(), q);

    // A batch of cached ids only: no query, no load.
    let (q, loads) = (t.db.query_count(), m.cache().stats().loads);
    assert_eq!(batch(&app, &ids).await.0, ids);
    assert_eq!(
        (t.db.query_count(), m.cache().stats().loads),
        (q, loads),
        "a warm batch must not load"
    );
    t.finish().await;
}

#[tokio::test]
async fn the_loader_runs_once_with_only_the_missing_ids_in_order() {
    let redis = RedisServer::start();
    let t = seeded().await;
    let m = NgxCacheManager::new(cache_with(config(&redis)).await, no_fail_safe());
    let ids: Vec<String> = (1..=100).map(cust).collect();
    let uncached: Vec<String> = (1..=10).map(|i| cust(i * 10)).collect();
    let warm: Vec<String> = ids
        .iter()
        .filter(|id| !uncached.contains(id))
        .cloned()
        .collect();
    let db = t.db.clone();
    m.get_or_load_customers(&warm, move |missing| async move {
        db.customers().get_many(&missing).await
    })
    .await
    .unwrap();

    let calls = Arc::new(AtomicUsize::new(0));
    let asked = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (db, c, a) = (t.db.clone(), Arc::clone(&calls), Arc::clone(&asked));
    let q = t.db.query_count();
    let got = m
        .get_or_load_customers(&ids, move |missing| async move {
            c.fetch_add(1, Ordering::SeqCst);
            a.lock().unwrap().extend(missing.iter().cloned());
            db.customers().get_many(&missing).await
        })
        .await
        .unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(*asked.lock().unwrap(), uncached);
    assert_eq!(t.db.query_count() - q, 1);
    let got: Vec<String> = got.into_iter().map(|p| p.unwrap().id).collect();
    assert_eq!(got, ids);
    t.finish().await;
}

#[tokio::test]
async fn unknown_ids_are_missing_and_cached_as_not_found() {
    let redis = RedisServer::start();
    let t = seeded().await;
    let (app, _) = app(&t, Some(&redis)).await;
    let ids: Vec<String> = ["cust-00001", "nope-1", "cust-00002", "nope-2", "nope-1"]
        .map(String::from)
        .to_vec();

    let q = t.db.query_count();
    let (customers, missing) = batch(&app, &ids).await;
    assert_eq!(customers, ["cust-00001", "cust-00002"]);
    assert_eq!(
        missing,
        ["nope-1", "nope-2"],
        "each id once, first-seen order"
    );
    assert_eq!(t.db.query_count() - q, 1);

    // The second batch and a single read take "not found" from the cache.
    let q = t.db.query_count();
    assert_eq!(batch(&app, &ids).await.1, ["nope-1", "nope-2"]);
    assert_eq!(t.db.query_count(), q, "the second batch must not query");
    let (status, x_cache, body) = call(&app, "GET", "/customers/nope-2", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(x_cache.as_deref(), Some("HIT-L1"));
    assert_eq!(t.db.query_count(), q, "negative entries spare the database");
    t.finish().await;
}

#[tokio::test]
async fn an_update_is_seen_by_the_next_batch() {
    let redis = RedisServer::start();
    let t = seeded().await;
    let (app, _) = app(&t, Some(&redis)).await;
    let uri = "/customers?ids=cust-00001,cust-00002";
    let (status, _, before) = call(&app, "GET", uri, None).await;
    assert_eq!(status, StatusCode::OK);
    let before = before["customers"][0].clone();
    assert_ne!(before["name"], "Renamed Customer");

    let (status, _, updated) = call(
        &app,
        "PUT",
        "/customers/cust-00001",
        Some(json!({
            "name": "Renamed Customer",
            "email": before["email"],
            "goals": ["sleep better"],
        })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{updated}");

    let (status, _, after) = call(&app, "GET", uri, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        after["customers"][0], updated,
        "no stale read after a write"
    );
    assert_eq!(after["customers"][0]["name"], "Renamed Customer");
    assert_eq!(after["customers"][1]["id"], "cust-00002");
    t.finish().await;
}

/// A request without a readable `ids` parameter is malformed (400); a list
/// that is empty, too long or holds an invalid id is invalid input (422,
/// as an invalid id is on `GET /customers/{id}`). Neither reaches the
/// database.
#[tokio::test]
async fn bad_id_lists_are_4xx_json_before_any_query() {
    let t = seeded().await;
    let (app, _) = app(&t, None).await;
    let hundred: Vec<String> = (1..=100).map(cust).collect();
    let q = t.db.query_count();
    let malformed = ["/customers".to_owned(), "/customers?ids=a&ids=b".to_owned()];
    let invalid = [
        "/customers?ids=".to_owned(),
        "/customers?ids=%20,%20".to_owned(),
        "/customers?ids=cust-00001,,cust-00002".to_owned(),
        "/customers?ids=cust-00001,bad%20id".to_owned(),
        "/customers?ids=cust-00001,a%2Fb".to_owned(),
        format!("/customers?ids={},cust-00101", hundred.join(",")),
    ];
    let cases = malformed
        .iter()
        .map(|uri| (uri, StatusCode::BAD_REQUEST, "bad_request"))
        .chain(
            invalid
                .iter()
                .map(|uri| (uri, StatusCode::UNPROCESSABLE_ENTITY, "validation_error")),
        );
    for (uri, want, code) in cases {
        let (status, _, body) = call(&app, "GET", uri, None).await;
        assert_eq!(status, want, "{uri}: {body}");
        assert_eq!(body["error"], code, "{uri}: {body}");
        assert!(body["detail"].is_string(), "{uri}: {body}");
    }
    // The same id is refused alike by the single route.
    let (status, _, body) = call(&app, "GET", "/customers/bad%20id", None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(t.db.query_count(), q);
    // 100 ids, whitespace around them: accepted.
    let (status, _, body) = call(
        &app,
        "GET",
        &format!("/customers?ids=%20{}%20", hundred.join("%20,%20")),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["customers"].as_array().unwrap().len(), 100);
    t.finish().await;
}

/// An invalid id in the list is named by the parameter and its place in
/// the list, so the caller can tell which of 100 ids to fix.
#[tokio::test]
async fn an_invalid_id_is_named_by_its_place_in_ids() {
    let t = seeded().await;
    let (app, _) = app(&t, None).await;
    let cases = [
        (
            "/customers?ids=cust-00001,,cust-00002",
            "id 2 of 3 must not be empty",
        ),
        (
            "/customers?ids=cust-00001,bad%20id",
            "id 2 of 2 contains ' '",
        ),
    ];
    for (uri, want) in cases {
        let (status, _, body) = call(&app, "GET", uri, None).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{uri}: {body}");
        let detail = body["detail"].as_str().unwrap_or_default();
        assert!(detail.contains("`ids`"), "{uri}: {detail}");
        assert!(detail.contains(want), "{uri}: {detail}");
        assert!(!detail.contains("customer_id"), "{uri}: {detail}");
    }
    t.finish().await;
}

#[tokio::test]
async fn without_cache_a_batch_is_one_query() {
    let t = seeded().await;
    let (app, _) = app(&t, None).await;
    let ids: Vec<String> = vec![cust(3), "nope".into(), cust(1)];
    for _ in 0..2 {
        let q = t.db.query_count();
        let (customers, missing) = batch(&app, &ids).await;
        assert_eq!(customers, [cust(3), cust(1)]);
        assert_eq!(missing, ["nope"]);
        assert_eq!(t.db.query_count() - q, 1);
    }
    t.finish().await;
}

#[tokio::test]
async fn the_route_is_in_the_openapi_document() {
    let t = seeded().await;
    let (app, _) = app(&t, None).await;
    let (status, _, doc) = call(&app, "GET", "/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    let op = &doc["paths"]["/customers"]["get"];
    assert_eq!(op["operationId"], "get_customers", "{op}");
    let param = &op["parameters"][0];
    assert_eq!(
        (&param["name"], &param["in"]),
        (&json!("ids"), &json!("query"))
    );
    assert_eq!(param["required"], true);
    assert!(param["schema"]["pattern"].is_string(), "{param}");
    assert_eq!(
        op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/CustomersResponse"
    );
    assert!(
        op["responses"]["400"].is_object(),
        "a missing `ids` is a 400"
    );
    assert!(op["responses"]["422"].is_object(), "a bad id list is a 422");
    t.finish().await;
}

/// Prints the time of 100 ids with 10 missing: one `get_many` against 100
/// single `get`s, each on a fresh cache in which the same 90 are cached.
#[tokio::test]
async fn batch_and_single_reads_of_100_ids_with_10_missing() {
    let t = seeded().await;
    let ids: Vec<String> = (1..=100).map(cust).collect();
    let warm: Vec<String> = ids
        .iter()
        .enumerate()
        .filter(|(i, _)| (i + 1) % 10 != 0)
        .map(|(_, id)| id.clone())
        .collect();
    let mut timings = Vec::new();
    for batched in [true, false] {
        let redis = RedisServer::start();
        let (s, _) = support::services(&t.db, cache_with(config(&redis)).await, no_fail_safe());
        s.customers.get_many(&warm).await.unwrap();
        let q = t.db.query_count();
        let start = Instant::now();
        if batched {
            let got = s.customers.get_many(&ids).await.unwrap();
            assert_eq!(got.customers.len(), 100);
        } else {
            for id in &ids {
                s.customers.get(id).await.unwrap();
            }
        }
        let took = start.elapsed();
        let queries = t.db.query_count() - q;
        assert_eq!(queries, if batched { 1 } else { 10 });
        timings.push((batched, took, queries));
    }
    for (batched, took, queries) in timings {
        let how = if batched { "get_many" } else { "100 x get" };
        println!("{how}: {took:?}, {queries} database queries (100 ids, 10 not cached)");
    }
    t.finish().await;
}
