//! Malformed and hostile requests through `app(state).oneshot(..)`: every
//! one gets a JSON `{error, detail}` body with a 4xx status, never a 500.

#[path = "../../ngx-cache/tests/support/server.rs"]
#[allow(dead_code, unreachable_pub)]
mod server;

mod http_support;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_support::{TestApp, assert_error, roi_body};
use serde_json::{Value, json};

#[tokio::test]
async fn malformed_requests_get_json_errors() {
    let t = TestApp::new().await;
    let syntax = t
        .raw(
            Request::post("/conversations")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from("{not json"))
                .unwrap(),
        )
        .await;
    assert_error(&syntax, StatusCode::BAD_REQUEST, "bad_request");
    let no_type = t
        .raw(
            Request::post("/roi")
                .body(Body::from(roi_body().to_string()))
                .unwrap(),
        )
        .await;
    assert_error(
        &no_type,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );
    let unknown_field = t
        .call(
            "POST",
            "/programs/recommendations",
            Some(json!({"customer_id": "cust-00001", "extra": 1})),
        )
        .await;
    assert_error(
        &unknown_field,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_error",
    );
    let too_long_id = format!("/conversations/{}", "a".repeat(200));
    assert_error(
        &t.call("GET", &too_long_id, None).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_error",
    );
    assert_error(
        &t.call("GET", "/conversations/%FF%FE", None).await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    );
    assert_error(
        &t.call("GET", "/nowhere", None).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let (status, _) = t.call("DELETE", "/health", None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);

    // 413: over the 256 KiB default body limit, with and without a length.
    let big = json!({"customer_id": "cust-00001", "initial_message": "x".repeat(300 * 1024)});
    assert_error(
        &t.call("POST", "/conversations", Some(big.clone())).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    );
    let chunks: Vec<Result<String, std::io::Error>> = vec![
        Ok(big.to_string()[..200_000].to_owned()),
        Ok(big.to_string()[200_000..].to_owned()),
    ];
    let streamed = t
        .raw(
            Request::post("/conversations")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from_stream(futures::stream::iter(chunks)))
                .unwrap(),
        )
        .await;
    assert_error(
        &streamed,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    );
}

/// Odd inputs on every route never produce a 5xx.
#[tokio::test]
async fn no_input_causes_a_server_error() {
    let t = TestApp::new().await;
    let ids = [
        "",
        "%00",
        "..",
        "a%2Fb",
        "%E2%9C%93",
        "-",
        "cust-00001%0A",
        "x".repeat(5000).leak(),
    ];
    let bodies = [
        json!(null),
        json!([]),
        json!("text"),
        json!({"customer_id": 1}),
        json!({"customer_id": "cust-00001", "message": "x".repeat(20_000)}),
        json!({"conversation_id": "conv-00001", "content": "\u{0000}"}),
        json!({"hourly_rate": 1e308, "profession": "x", "billable_hours_per_week": -0.0, "weeks_per_year": 1, "program_type": "PRIME", "tier": "PRO"}),
        json!({"customer_id": "../../etc/passwd"}),
        json!({"name": "n", "email": "a@b.co", "goals": vec!["g"; 100]}),
    ];
    let routes = [
        ("GET", "/conversations/{}"),
        ("POST", "/conversations"),
        ("POST", "/conversations/{}/messages"),
        ("GET", "/customers/{}"),
        ("PUT", "/customers/{}"),
        ("POST", "/tier-detection"),
        ("POST", "/predictions/{}"),
        ("POST", "/programs/recommendations"),
        ("POST", "/roi"),
        ("GET", "/knowledge/{}"),
        ("GET", "/config/agent?name={}"),
    ];
    for (method, route) in routes {
        for id in ids {
            let uri = route.replace("{}", id);
            let bodies: Vec<Option<Value>> = if method == "GET" {
                vec![None]
            } else {
                bodies.iter().cloned().map(Some).collect()
            };
            for body in bodies {
                let (status, v) = t.call(method, &uri, body.clone()).await;
                assert!(
                    status.is_client_error() || status.is_success(),
                    "{method} {uri} {body:?} -> {status} {v}"
                );
                if !status.is_success() {
                    assert!(v["error"].is_string(), "{method} {uri} -> {v}");
                }
            }
        }
    }
}
