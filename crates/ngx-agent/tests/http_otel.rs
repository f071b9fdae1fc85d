//! OpenTelemetry export against a real OTLP/HTTP receiver started here: a
//! request that misses the cache produces the span tree
//! request → cache.lookup → cache.load → db.query, posted as protobuf to
//! `/v1/traces`.

#[path = "../../ngx-cache/tests/support/server.rs"]
#[allow(dead_code, unreachable_pub)]
mod server;

mod http_support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::{Request, StatusCode};
use ngx_agent::otel::{self, OtelConfig};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message as _;
use tower::ServiceExt;
use tracing_subscriber::prelude::*;

/// A received span: name, trace id, span id, parent span id.
#[derive(Debug, Clone)]
struct Received {
    name: String,
    trace: Vec<u8>,
    id: Vec<u8>,
    parent: Vec<u8>,
    service: String,
}

type Spans = Arc<Mutex<Vec<Received>>>;

/// An OTLP/HTTP receiver on its own thread and runtime (the exporter posts
/// from a blocking thread of its own); returns its base URL and the spans.
fn receiver() -> (String, Spans) {
    let spans: Spans = Arc::default();
    let sink = spans.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let app = axum::Router::new().route(
                "/v1/traces",
                axum::routing::post(move |body: Bytes| {
                    let sink = sink.clone();
                    async move {
                        let Ok(req) = ExportTraceServiceRequest::decode(body) else {
                            return StatusCode::BAD_REQUEST;
                        };
                        let mut out = sink.lock().unwrap();
                        for rs in req.resource_spans {
                            let service = rs
                                .resource
                                .iter()
                                .flat_map(|r| &r.attributes)
                                .find(|kv| kv.key == "service.name")
                                .and_then(|kv| kv.value.as_ref())
                                .map(|v| format!("{:?}", v.value))
                                .unwrap_or_default();
                            for ss in rs.scope_spans {
                                for s in ss.spans {
                                    out.push(Received {
                                        name: s.name,
                                        trace: s.trace_id,
                                        id: s.span_id,
                                        parent: s.parent_span_id,
                                        service: service.clone(),
                                    });
                                }
                            }
                        }
                        StatusCode::OK
                    }
                }),
            );
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    let addr = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    (format!("http://{addr}"), spans)
}

fn child_of<'a>(spans: &'a [Received], parent: &Received, name: &str) -> Option<&'a Received> {
    spans
        .iter()
        .find(|s| s.name == name && s.parent == parent.id && s.trace == parent.trace)
}

#[tokio::test]
async fn a_cache_miss_exports_request_lookup_loader_database() {
    let (endpoint, spans) = receiver();
    let config = OtelConfig::from_lookup(|name| match name {
        "OTEL_EXPORTER_OTLP_ENDPOINT" => Some(endpoint.clone()),
        "OTEL_SERVICE_NAME" => Some("ngx-agent-test".into()),
        _ => None,
    })
    .unwrap();
    let (layer, guard) = otel::layer(&config).unwrap().expect("endpoint set");
    tracing_subscriber::registry().with(layer).init();

    let t = http_support::TestApp::new().await;
    let req = Request::get("/customers/cust-00007")
        .body(Body::empty())
        .unwrap();
    let resp = t.app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    // The request span ends with the response body.
    axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();

    let guard = Arc::new(guard);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let g = guard.clone();
        tokio::task::spawn_blocking(move || g.flush())
            .await
            .unwrap();
        let got = spans.lock().unwrap().clone();
        let tree = got
            .iter()
            .find(|s| s.name == "GET /customers/{id}" && s.parent.is_empty())
            .and_then(|req| {
                let lookup = child_of(&got, req, "cache.lookup")?;
                let load = child_of(&got, lookup, "cache.load")?;
                let db = child_of(&got, load, "db.query")?;
                Some((req.clone(), db.clone()))
            });
        if let Some((req, _db)) = tree {
            assert!(req.service.contains("ngx-agent-test"), "{}", req.service);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no request → cache.lookup → cache.load → db.query tree in {:#?}",
            got.iter()
                .map(|s| (&s.name, hex(&s.id), hex(&s.parent)))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
