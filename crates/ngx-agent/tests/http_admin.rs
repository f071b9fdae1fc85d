//! The admin endpoints through `app(state).oneshot(..)`: the bearer token
//! (401 without, 403 wrong or unset) and invalidation by key, type and tag.

#[path = "../../ngx-cache/tests/support/server.rs"]
#[allow(dead_code, unreachable_pub)]
mod server;

mod http_support;

use axum::http::StatusCode;
use http_support::{TOKEN, TestApp, assert_error};
use serde_json::{Value, json};

#[tokio::test]
async fn admin_endpoints_require_the_token() {
    let t = TestApp::with_admin().await;
    let body = json!({"type": "knowledge"});
    let none = t
        .call("POST", "/cache/invalidate", Some(body.clone()))
        .await;
    assert_error(&none, StatusCode::UNAUTHORIZED, "unauthorized");
    let basic = t
        .call_with(
            "POST",
            "/cache/invalidate",
            Some(body.clone()),
            Some("Basic abc"),
        )
        .await;
    assert_error(&basic, StatusCode::UNAUTHORIZED, "unauthorized");
    let wrong = t
        .call_with(
            "POST",
            "/cache/invalidate",
            Some(body.clone()),
            Some("Bearer nope"),
        )
        .await;
    assert_error(&wrong, StatusCode::FORBIDDEN, "forbidden");
    let near = format!("Bearer {}x", TOKEN);
    let near = t
        .call_with("POST", "/cache/invalidate", Some(body.clone()), Some(&near))
        .await;
    assert_error(&near, StatusCode::FORBIDDEN, "forbidden");
    let bearer = format!("Bearer {TOKEN}");
    let (status, ok) = t
        .call_with("POST", "/cache/invalidate", Some(body), Some(&bearer))
        .await;
    assert_eq!(status, StatusCode::OK, "{ok}");
    assert_eq!(ok["target"], "type");

    assert_error(
        &t.call("POST", "/cache/warm", None).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    assert_error(
        &t.call_with("POST", "/cache/warm", None, Some("Bearer nope"))
            .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    let (status, warm) = t
        .call_with("POST", "/cache/warm", None, Some(&bearer))
        .await;
    assert_eq!(status, StatusCode::OK, "{warm}");
    assert!(warm["done"].as_u64().unwrap() >= 30, "{warm}");
    assert_eq!(warm["failed"], 0);

    // Exactly one target; known types only.
    let two = json!({"key": "conv:v1:conv-00001", "tag": "customer:cust-00001"});
    assert_error(
        &t.call_with("POST", "/cache/invalidate", Some(two), Some(&bearer))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_error",
    );
    assert_error(
        &t.call_with("POST", "/cache/invalidate", Some(json!({})), Some(&bearer))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_error",
    );
    assert_error(
        &t.call_with(
            "POST",
            "/cache/invalidate",
            Some(json!({"type": "everything"})),
            Some(&bearer),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_error",
    );
    assert_error(
        &t.call_with(
            "POST",
            "/cache/invalidate",
            Some(json!({"key": "bad\nkey"})),
            Some(&bearer),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_error",
    );
}

#[tokio::test]
async fn admin_endpoints_are_disabled_without_a_configured_token() {
    let t = TestApp::new().await;
    for auth in [None, Some("Bearer anything"), Some("Bearer ")] {
        let r = t
            .call_with(
                "POST",
                "/cache/invalidate",
                Some(json!({"type": "all"})),
                auth,
            )
            .await;
        assert_error(&r, StatusCode::FORBIDDEN, "forbidden");
        let r = t.call_with("POST", "/cache/warm", None, auth).await;
        assert_error(&r, StatusCode::FORBIDDEN, "forbidden");
    }
}

/// The admin invalidation really drops cached data: a row changed behind
/// the cache's back is served stale until invalidated by key, type or tag.
#[tokio::test]
async fn invalidation_by_key_type_and_tag() {
    let t = TestApp::with_admin().await;
    let bearer = format!("Bearer {TOKEN}");
    let count = |v: &Value| v["messages"].as_array().unwrap().len();
    let (_, cached) = t.call("GET", "/conversations/conv-00005", None).await;
    let n = count(&cached);

    let sneaky = |text: &'static str| {
        let db = t.db.clone();
        async move {
            let msg =
                ngx_agent::domain::Message::new(ngx_agent::domain::Role::User, text, 1).unwrap();
            db.conversations()
                .append_message("conv-00005", &msg)
                .await
                .unwrap();
        }
    };
    sneaky("behind the cache 1").await;
    let (_, stale) = t.call("GET", "/conversations/conv-00005", None).await;
    assert_eq!(count(&stale), n, "served from cache");
    let (status, r) = t
        .call_with(
            "POST",
            "/cache/invalidate",
            Some(json!({"key": "conv:v1:conv-00005"})),
            Some(&bearer),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert_eq!(r["removed"], 1);
    let (_, fresh) = t.call("GET", "/conversations/conv-00005", None).await;
    assert_eq!(count(&fresh), n + 1);

    sneaky("behind the cache 2").await;
    let (status, r) = t
        .call_with(
            "POST",
            "/cache/invalidate",
            Some(json!({"type": "conversation"})),
            Some(&bearer),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert!(r["removed"].as_u64().unwrap() >= 1);
    let (_, fresh) = t.call("GET", "/conversations/conv-00005", None).await;
    assert_eq!(count(&fresh), n + 2);

    let (status, r) = t
        .call_with(
            "POST",
            "/cache/invalidate",
            Some(json!({"tag": "customer:cust-00001"})),
            Some(&bearer),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert_eq!(r["target"], "tag");
}
