//! The request pipeline's own layers: request ids, the request deadline
//! and the panic guard.

use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower_http::request_id::{MakeRequestId, RequestId};

use super::AppError;

/// Random 64-bit request ids, hex. Clients may send their own
/// `x-request-id`, which is kept.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RandomRequestId;

impl MakeRequestId for RandomRequestId {
    fn make_request_id<B>(&mut self, _request: &axum::http::Request<B>) -> Option<RequestId> {
        let id = format!("{:016x}", rand::random::<u64>());
        HeaderValue::from_str(&id).ok().map(RequestId::new)
    }
}

/// Ends a request that runs past the deadline with 503 `{error, detail}`.
/// The handler's future is dropped; a write the services started still
/// runs to its end, cache update included (they run writes in tasks of
/// their own).
pub(crate) async fn deadline(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => AppError::Unavailable(format!("request exceeded {limit:?}")).into_response(),
    }
}

/// The response to a panic: a generic 500, the payload only logged.
pub(crate) fn panic_response(err: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let msg = err
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| err.downcast_ref::<&str>().copied())
        .unwrap_or("non-string panic");
    AppError::Internal(format!("handler panicked: {msg}")).into_response()
}
