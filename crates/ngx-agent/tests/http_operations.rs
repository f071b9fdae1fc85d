//! Operations endpoints through `app(state).oneshot(..)`: liveness,
//! readiness (status only without the admin token, details with it, checks
//! cached for about a second), statistics, metrics and the OpenAPI document.

#[path = "../../ngx-cache/tests/support/server.rs"]
#[allow(dead_code, unreachable_pub)]
mod server;

mod http_support;

use std::time::Duration;

use axum::http::StatusCode;
use http_support::{TOKEN, TestApp};
use serde_json::json;

#[tokio::test]
async fn operations_endpoints() {
    let t = TestApp::with_admin().await;
    let (status, h) = t.call("GET", "/health", None).await;
    assert_eq!((status, h), (StatusCode::OK, json!({"status": "ok"})));

    let bearer = format!("Bearer {TOKEN}");
    let (status, r) = t
        .call_with("GET", "/health/ready", None, Some(&bearer))
        .await;
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
        "ngx_cache_pending_deletes 0",
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

/// `INFO commandstats` calls of `INFO` on the test server so far.
fn info_calls(t: &TestApp) -> u64 {
    let text: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut t.redis.as_ref().unwrap().conn())
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("cmdstat_info:calls="))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |n| n.parse().unwrap())
}

#[tokio::test]
async fn readiness_shows_only_its_status_without_the_admin_token() {
    let t = TestApp::with_admin().await;
    for auth in [None, Some("Bearer wrong-token"), Some("Basic abc")] {
        let (status, r) = t.call_with("GET", "/health/ready", None, auth).await;
        assert_eq!(status, StatusCode::OK, "{r}");
        assert_eq!(r, json!({"status": "ready"}), "auth {auth:?}");
    }
    let (_, live) = t.call("GET", "/health", None).await;
    assert_eq!(live, json!({"status": "ok"}));
    let bearer = format!("Bearer {TOKEN}");
    let (status, r) = t
        .call_with("GET", "/health/ready", None, Some(&bearer))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(r["database"]["healthy"], true, "{r}");
    assert!(r["cache"]["version"].is_string(), "{r}");
}

#[tokio::test]
async fn readiness_details_can_be_made_public() {
    let t = TestApp::with_admin().await;
    let state = t.state.clone().health_details_public(true);
    let app = ngx_agent::http::app(state);
    let resp = tower::ServiceExt::oneshot(
        app,
        axum::http::Request::get("/health/ready")
            .body(axum::body::Body::empty())
            .unwrap(),
    )
    .await
    .unwrap();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    let r: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(r["database"]["healthy"], true, "{r}");
}

#[tokio::test]
async fn readiness_checks_are_cached_for_about_a_second() {
    let t = TestApp::with_admin().await;
    let before = info_calls(&t);
    for _ in 0..50 {
        let (status, _) = t.call("GET", "/health/ready", None).await;
        assert_eq!(status, StatusCode::OK);
    }
    // At most one real check (plus the INFO of this measurement).
    let after = info_calls(&t);
    assert!(
        after - before <= 3,
        "{} INFO calls for 50 probes",
        after - before
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    t.call("GET", "/health/ready", None).await;
    assert!(info_calls(&t) > after + 1, "the check never runs again");
}

#[tokio::test]
async fn the_openapi_document_states_what_the_handlers_enforce() {
    let t = TestApp::new().await;
    let (status, doc) = t.call("GET", "/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    let id_pattern = "^[A-Za-z0-9_.-]{1,128}$";
    for (path, method) in [
        ("/conversations/{id}", "get"),
        ("/conversations/{id}/messages", "post"),
        ("/customers/{id}", "put"),
        ("/knowledge/{topic}", "get"),
        ("/config/agent", "get"),
    ] {
        let params = doc["paths"][path][method]["parameters"].as_array().unwrap();
        assert!(
            params.iter().all(|p| p["schema"]["pattern"] == id_pattern),
            "{method} {path}: {params:?}"
        );
    }
    let model = &doc["paths"]["/predictions/{model}"]["post"]["parameters"][0]["schema"];
    assert_eq!(model["enum"], json!(["objection", "needs", "conversion"]));
    // Every body operation declares the errors its extractors produce.
    for (path, method) in [
        ("/conversations", "post"),
        ("/conversations/{id}/messages", "post"),
        ("/customers/{id}", "put"),
        ("/tier-detection", "post"),
        ("/predictions/{model}", "post"),
        ("/programs/recommendations", "post"),
        ("/roi", "post"),
        ("/cache/invalidate", "post"),
    ] {
        let responses = &doc["paths"][path][method]["responses"];
        for code in ["400", "413", "415", "422", "503"] {
            assert_eq!(
                responses[code]["content"]["application/json"]["schema"]["$ref"],
                "#/components/schemas/ErrorBody",
                "{method} {path} does not declare {code}"
            );
        }
    }
    for code in ["401", "403"] {
        assert!(doc["paths"]["/cache/warm"]["post"]["responses"][code].is_object());
    }
    let schemas = &doc["components"]["schemas"];
    let target = &schemas["InvalidateTarget"]["oneOf"];
    assert_eq!(target.as_array().map(Vec::len), Some(3), "{target}");
    for one in ["InvalidateKey", "InvalidateTag", "InvalidateType"] {
        assert_eq!(schemas[one]["additionalProperties"], false, "{one}");
        assert_eq!(schemas[one]["required"].as_array().map(Vec::len), Some(1));
    }
    let create = &schemas["CreateConversation"]["properties"];
    assert_eq!(create["customer_id"]["pattern"], id_pattern);
    assert_eq!(create["initial_message"]["maxLength"], 16384);
    assert_eq!(
        schemas["AppendMessage"]["properties"]["content"]["minLength"],
        1
    );
    assert_eq!(
        schemas["UpdateCustomer"]["properties"]["age"]["minimum"],
        18
    );
    assert_eq!(
        schemas["UpdateCustomer"]["properties"]["goals"]["maxItems"],
        32
    );
    let links = &doc["paths"]["/conversations"]["post"]["responses"]["201"]["links"];
    assert_eq!(links["GetConversation"]["operationId"], "get_conversation");
    assert_eq!(links["AppendMessage"]["operationId"], "append_message");
}
