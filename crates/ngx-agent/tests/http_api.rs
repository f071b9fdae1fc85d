//! The resource endpoints through `app(state).oneshot(..)` against real
//! Redis and a seeded SQLite file: happy paths, 404/409/422 and no stale
//! read after a write. Errors of malformed requests are in `http_errors.rs`,
//! operations and admin endpoints in `http_operations.rs` and `http_admin.rs`.

#[path = "../../ngx-cache/tests/support/server.rs"]
#[allow(dead_code, unreachable_pub)]
mod server;

mod http_support;

use axum::http::StatusCode;
use http_support::{TestApp, assert_error, roi_body};
use serde_json::json;

#[tokio::test]
async fn conversations_create_read_append() {
    let t = TestApp::new().await;
    let (status, created) = t
        .call(
            "POST",
            "/conversations",
            Some(json!({
                "conversation_id": "conv-http-1",
                "customer_id": "cust-00001",
                "initial_message": "I want more energy"
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["conversation_id"], "conv-http-1");
    assert_eq!(created["customer"]["id"], "cust-00001");
    assert_eq!(created["messages"].as_array().unwrap().len(), 1);

    let (status, read) = t.call("GET", "/conversations/conv-http-1", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(read, created);

    // A generated id when none is given.
    let (status, generated) = t
        .call(
            "POST",
            "/conversations",
            Some(json!({"customer_id": "cust-00002"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert!(
        generated["conversation_id"]
            .as_str()
            .unwrap()
            .starts_with("conv-")
    );

    // Duplicate id: 409.
    let dup = t
        .call(
            "POST",
            "/conversations",
            Some(json!({"conversation_id": "conv-http-1", "customer_id": "cust-00001"})),
        )
        .await;
    assert_error(&dup, StatusCode::CONFLICT, "conflict");

    // Unknown customer: 404.
    let missing = t
        .call(
            "POST",
            "/conversations",
            Some(json!({"customer_id": "cust-99999"})),
        )
        .await;
    assert_error(&missing, StatusCode::NOT_FOUND, "not_found");

    let (status, appended) = t
        .call(
            "POST",
            "/conversations/conv-http-1/messages",
            Some(json!({"role": "assistant", "content": "Tell me about your day"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{appended}");
    assert_eq!(appended["messages"][1]["role"], "assistant");

    let empty = t
        .call(
            "POST",
            "/conversations/conv-http-1/messages",
            Some(json!({"content": "   "})),
        )
        .await;
    assert_error(&empty, StatusCode::UNPROCESSABLE_ENTITY, "validation_error");
    let unknown = t
        .call(
            "POST",
            "/conversations/conv-nope/messages",
            Some(json!({"content": "hi"})),
        )
        .await;
    assert_error(&unknown, StatusCode::NOT_FOUND, "not_found");
    let bad_role = t
        .call(
            "POST",
            "/conversations/conv-http-1/messages",
            Some(json!({"role": "robot", "content": "hi"})),
        )
        .await;
    assert_error(
        &bad_role,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_error",
    );
}

#[tokio::test]
async fn no_stale_read_after_writes() {
    let t = TestApp::new().await;
    // Fill the cache first, so a missed invalidation would show.
    let (_, before) = t.call("GET", "/conversations/conv-00003", None).await;
    let mut expected = before["messages"].as_array().unwrap().len();
    for i in 0..10 {
        let (status, _) = t
            .call(
                "POST",
                "/conversations/conv-00003/messages",
                Some(json!({"content": format!("message {i}")})),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        expected += 1;
        let (_, now) = t.call("GET", "/conversations/conv-00003", None).await;
        let messages = now["messages"].as_array().unwrap();
        assert_eq!(messages.len(), expected, "stale read after append {i}");
        assert_eq!(messages.last().unwrap()["content"], format!("message {i}"));
    }

    let (_, customer) = t.call("GET", "/customers/cust-00004", None).await;
    let (_, rec_before) = t
        .call(
            "POST",
            "/programs/recommendations",
            Some(json!({"customer_id": "cust-00004"})),
        )
        .await;
    for age in [30, 70] {
        let (status, updated) = t
            .call(
                "PUT",
                "/customers/cust-00004",
                Some(json!({
                    "name": "Ana Updated",
                    "email": "ana.updated@example.com",
                    "age": age,
                    "occupation": "surgeon",
                    "income_band": "high",
                    "goals": ["sleep better"]
                })),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{updated}");
        assert_eq!(updated["created_at"], customer["created_at"]);
        let (_, read) = t.call("GET", "/customers/cust-00004", None).await;
        assert_eq!(read["age"], age, "stale customer read");
        assert_eq!(read["name"], "Ana Updated");
    }
    // The recommendation follows the new profile (age 70: LONGEVITY).
    let (_, rec_after) = t
        .call(
            "POST",
            "/programs/recommendations",
            Some(json!({"customer_id": "cust-00004"})),
        )
        .await;
    assert_eq!(
        rec_after["program_type"], "LONGEVITY",
        "{rec_before} -> {rec_after}"
    );
}

#[tokio::test]
async fn customers_read_and_update() {
    let t = TestApp::new().await;
    let (status, c) = t.call("GET", "/customers/cust-00002", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(c["id"], "cust-00002");

    assert_error(
        &t.call("GET", "/customers/cust-99999", None).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_error(
        &t.call("GET", "/customers/bad%20id", None).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_error",
    );
    let body = json!({"name": "X", "email": "x@example.com", "age": 500});
    assert_error(
        &t.call("PUT", "/customers/cust-00002", Some(body)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_error",
    );
    let body = json!({"name": "X", "email": "x@example.com"});
    assert_error(
        &t.call("PUT", "/customers/cust-99999", Some(body)).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let missing_field = json!({"name": "X"});
    assert_error(
        &t.call("PUT", "/customers/cust-00002", Some(missing_field))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_error",
    );
    let negative_age = json!({"name": "X", "email": "x@example.com", "age": -3});
    assert_error(
        &t.call("PUT", "/customers/cust-00002", Some(negative_age))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_error",
    );
}

#[tokio::test]
async fn computed_endpoints() {
    let t = TestApp::new().await;
    let (_, conv) = t.call("GET", "/conversations/conv-00001", None).await;
    let owner = conv["customer"]["id"].as_str().unwrap().to_owned();
    let (status, tier) = t
        .call(
            "POST",
            "/tier-detection",
            Some(json!({
                "customer_id": owner,
                "message": "I want a dedicated coach, money is not the issue",
                "conversation_id": "conv-00001"
            })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{tier}");
    assert!(["ESSENTIAL", "PRO", "ELITE", "PREMIUM"].contains(&tier["tier"].as_str().unwrap()));
    let (_, again) = t
        .call(
            "POST",
            "/tier-detection",
            Some(json!({
                "customer_id": owner,
                "message": "I want a dedicated coach, money is not the issue",
                "conversation_id": "conv-00001"
            })),
        )
        .await;
    assert_eq!(again, tier, "cached answer equals the computed one");
    // Another customer cannot borrow this conversation's history.
    let stranger = if owner == "cust-00002" {
        "cust-00003"
    } else {
        "cust-00002"
    };
    assert_error(
        &t.call(
            "POST",
            "/tier-detection",
            Some(json!({
                "customer_id": stranger,
                "message": "I want a dedicated coach, money is not the issue",
                "conversation_id": "conv-00001"
            })),
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_error(
        &t.call(
            "POST",
            "/tier-detection",
            Some(json!({"customer_id": "cust-99999", "message": "hi"})),
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_error(
        &t.call(
            "POST",
            "/tier-detection",
            Some(json!({"customer_id": "cust-00001", "message": ""})),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_error",
    );

    for model in ["objection", "needs", "conversion"] {
        let (status, p) = t
            .call(
                "POST",
                &format!("/predictions/{model}"),
                Some(json!({"conversation_id": "conv-00002"})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{p}");
        assert_eq!(p["model"], model);
        let score = p["score"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&score));
    }
    assert_error(
        &t.call(
            "POST",
            "/predictions/astrology",
            Some(json!({"conversation_id": "conv-00002"})),
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_error(
        &t.call(
            "POST",
            "/predictions/conversion",
            Some(json!({"conversation_id": "conv-99999"})),
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );

    let (status, rec) = t
        .call(
            "POST",
            "/programs/recommendations",
            Some(json!({"customer_id": "cust-00003"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{rec}");
    assert!(rec["monthly_price_cents"].as_i64().unwrap() > 0);

    let (status, roi) = t.call("POST", "/roi", Some(roi_body())).await;
    assert_eq!(status, StatusCode::OK, "{roi}");
    assert_eq!(roi["program_type"], "PRIME");
    assert!(roi["roi_percent"].is_number());
    let mut bad = roi_body();
    bad["weeks_per_year"] = json!(60);
    assert_error(
        &t.call("POST", "/roi", Some(bad)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_error",
    );
    let mut bad = roi_body();
    bad["tier"] = json!("GOLD");
    assert_error(
        &t.call("POST", "/roi", Some(bad)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_error",
    );
}

#[tokio::test]
async fn content_endpoints() {
    let t = TestApp::new().await;
    let (status, c) = t.call("GET", "/config/agent", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(c["name"], "default");
    let (status, c) = t.call("GET", "/config/agent?name=default", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(c["name"], "default");
    assert_error(
        &t.call("GET", "/config/agent?name=nope", None).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_error(
        &t.call("GET", "/config/agent?name=a*b", None).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_error",
    );
    let (status, k) = t.call("GET", "/knowledge/pricing", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(k["topic"], "pricing");
    assert_error(
        &t.call("GET", "/knowledge/unknown-topic", None).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
}
