//! Every endpoint through `app(state).oneshot(..)` against real Redis and a
//! seeded SQLite file: happy paths, 400/404/409/413/415/422, admin auth, and
//! no stale read after a write.

#[path = "../../ngx-cache/tests/support/server.rs"]
#[allow(dead_code, unreachable_pub)]
mod server;

mod http_support;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_support::{TOKEN, TestApp, assert_error};
use serde_json::{Value, json};

fn roi_body() -> Value {
    json!({
        "profession": "lawyer",
        "hourly_rate": 250.0,
        "billable_hours_per_week": 30.0,
        "weeks_per_year": 46.0,
        "program_type": "PRIME",
        "tier": "PRO"
    })
}

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

#[tokio::test]
async fn operations_endpoints() {
    let t = TestApp::new().await;
    let (status, h) = t.call("GET", "/health", None).await;
    assert_eq!((status, h), (StatusCode::OK, json!({"status": "ok"})));

    let (status, r) = t.call("GET", "/health/ready", None).await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert_eq!(r["status"], "ready");
    assert_eq!(r["database"]["healthy"], true);
    for field in [
        "status",
        "healthy",
        "latency_ms",
        "version",
        "used_memory",
        "connected_clients",
        "hits",
        "misses",
    ] {
        assert!(
            r["cache"].get(field).is_some(),
            "cache.{field} missing: {r}"
        );
    }
    assert!(!r.to_string().contains("redis://"), "no URL in health: {r}");

    t.call("GET", "/conversations/conv-00001", None).await;
    t.call("GET", "/conversations/conv-00001", None).await;
    let s = t.stats().await;
    assert_eq!(s["enabled"], true);
    assert!(s["hits"].as_u64().unwrap() >= 1, "{s}");
    assert!(s["db_queries"].as_u64().unwrap() > 0);
    for field in [
        "misses",
        "errors",
        "hit_rate",
        "total_requests",
        "circuit_breaker_open",
        "failure_count",
        "l1_hits",
        "stale_served",
    ] {
        assert!(s.get(field).is_some(), "{field} missing: {s}");
    }

    let (status, m) = t.call("GET", "/metrics", None).await;
    assert_eq!(status, StatusCode::OK);
    let text = m.as_str().unwrap();
    for series in [
        "ngx_cache_hits_total",
        "ngx_cache_misses_total",
        "ngx_cache_hits_total{tier=\"l1\"",
        "ngx_cache_stale_served_total",
        "ngx_cache_circuit_breaker_state{state=\"closed\"} 1",
        "ngx_cache_owed_deletes 0",
        "ngx_db_queries_total",
        "http_requests_total",
        "http_request_duration_seconds_bucket",
    ] {
        assert!(text.contains(series), "{series} missing from /metrics");
    }

    let (status, doc) = t.call("GET", "/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    for path in [
        "/conversations",
        "/conversations/{id}",
        "/conversations/{id}/messages",
        "/customers/{id}",
        "/tier-detection",
        "/predictions/{model}",
        "/programs/recommendations",
        "/roi",
        "/config/agent",
        "/knowledge/{topic}",
        "/health",
        "/health/ready",
        "/cache/stats",
        "/cache/invalidate",
        "/cache/warm",
        "/metrics",
    ] {
        assert!(
            doc["paths"].get(path).is_some(),
            "{path} missing from OpenAPI"
        );
    }
    assert!(doc["components"]["securitySchemes"]["admin_token"].is_object());
    // Response bodies are typed: the schema names the fields a client gets.
    let ok = &doc["paths"]["/conversations/{id}"]["get"]["responses"]["200"];
    assert_eq!(
        ok["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/ConversationState",
        "{ok}"
    );
    let schemas = &doc["components"]["schemas"];
    for (schema, field) in [
        ("ConversationState", "messages"),
        ("Message", "role"),
        ("CustomerProfile", "email"),
        ("TierDetectionResult", "confidence"),
        ("Prediction", "features"),
        ("ProgramRecommendation", "tier"),
        ("RoiCalculation", "roi_percent"),
        ("KnowledgeEntry", "topic"),
        ("AgentConfig", "features"),
    ] {
        assert!(
            schemas[schema]["properties"][field].is_object(),
            "{schema}.{field} missing from the OpenAPI components"
        );
    }
    let (status, html) = t.call("GET", "/docs/", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.as_str().unwrap().contains("swagger"),
        "Swagger UI page"
    );
}

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
