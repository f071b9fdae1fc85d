//! What one client can make the service spend: a conversation is bounded
//! (422 beyond, and what is accepted stays cacheable), and unknown ids are
//! remembered as "not found" for a short time instead of costing a full
//! miss on every request.

#[path = "../../ngx-cache/tests/support/server.rs"]
#[allow(dead_code, unreachable_pub)]
mod server;

mod http_support;

use axum::http::StatusCode;
use http_support::{TestApp, assert_error};
use serde_json::json;

fn queries(stats: &serde_json::Value) -> u64 {
    stats["db_queries"].as_u64().unwrap()
}

#[tokio::test]
async fn a_conversation_is_bounded_and_reads_stay_cached() {
    let t = TestApp::new().await;
    let (status, _) = t
        .call(
            "POST",
            "/conversations",
            Some(json!({"conversation_id": "big-1", "customer_id": "cust-00001"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let text = "x".repeat(16 * 1024);
    let (mut accepted, mut refused) = (0, 0);
    for _ in 0..100 {
        let got = t
            .call(
                "POST",
                "/conversations/big-1/messages",
                Some(json!({"content": text})),
            )
            .await;
        if got.0 == StatusCode::OK {
            accepted += 1;
        } else {
            assert_error(&got, StatusCode::UNPROCESSABLE_ENTITY, "validation_error");
            assert!(
                got.1["detail"].as_str().unwrap().contains("full"),
                "{}",
                got.1
            );
            refused += 1;
        }
    }
    assert!(accepted > 0 && refused > 0, "{accepted} accepted");
    let (status, first) = t.call("GET", "/conversations/big-1", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(first["messages"].as_array().unwrap().len(), accepted);
    let before = queries(&t.stats().await);
    for _ in 0..20 {
        let (status, _) = t.call("GET", "/conversations/big-1", None).await;
        assert_eq!(status, StatusCode::OK);
    }
    let after = queries(&t.stats().await);
    assert_eq!(
        after, before,
        "reads of a full conversation hit the database"
    );
}

#[tokio::test]
async fn unknown_ids_are_cached_as_not_found_until_created() {
    let t = TestApp::new().await;
    for uri in [
        "/customers/cust-99999",
        "/conversations/conv-new-1",
        "/knowledge/no-such-topic",
        "/config/agent?name=no-such-config",
    ] {
        let got = t.call("GET", uri, None).await;
        assert_error(&got, StatusCode::NOT_FOUND, "not_found");
        let before = queries(&t.stats().await);
        for _ in 0..20 {
            let got = t.call("GET", uri, None).await;
            assert_error(&got, StatusCode::NOT_FOUND, "not_found");
        }
        let after = queries(&t.stats().await);
        assert_eq!(after, before, "{uri}: every 404 went to the database");
    }
    // Creating the id ends the negative entry at once.
    let (status, created) = t
        .call(
            "POST",
            "/conversations",
            Some(json!({"conversation_id": "conv-new-1", "customer_id": "cust-00002"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let (status, read) = t.call("GET", "/conversations/conv-new-1", None).await;
    assert_eq!(status, StatusCode::OK, "{read}");
    assert_eq!(read["conversation_id"], "conv-new-1");
    // An unknown customer cannot start a conversation, cached or not.
    let got = t
        .call(
            "POST",
            "/conversations",
            Some(json!({"customer_id": "cust-99999"})),
        )
        .await;
    assert_error(&got, StatusCode::NOT_FOUND, "not_found");
}
