//! The HTTP/1.1 server loop: hyper's connection builder with a timer, so
//! slow or silent clients cannot hold connections.
//!
//! - **Header timeout**: a connection must send a request's headers within
//!   [`HttpLimits::header_timeout`] of being ready for one (hyper's
//!   `header_read_timeout`), or it is closed.
//! - **Idle timeout**: a keep-alive connection with no bytes in either
//!   direction for [`HttpLimits::idle_timeout`] is shut down gracefully.
//! - **Connection cap**: at most [`HttpLimits::max_connections`] are open;
//!   the loop stops accepting until one closes, and further clients wait in
//!   the kernel's listen backlog.
//! - **Shutdown**: stop accepting, let every connection finish its request
//!   in flight (idle ones close at once), give up after the drain time.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;
use tower::Service;

use crate::config::HttpLimits;

/// Serves `app` on `listener` until `shutdown` resolves; then waits up to
/// `drain` for the connections to finish. Returns whether they all did.
pub(crate) async fn run(
    listener: TcpListener,
    app: Router,
    limits: HttpLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
    drain: Duration,
) -> bool {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    let builder = Arc::new(builder);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: back off a little
                    // instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let builder = builder.clone();
        let app = app.clone();
        let stop = stop_rx.clone();
        let idle = limits.idle_timeout;
        tokio::spawn(async move {
            connection(&builder, stream, app, idle, stop).await;
            drop(slot);
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    // Every connection holds a slot until it is done.
    let all = u32::try_from(limits.max_connections.max(1)).unwrap_or(u32::MAX);
    tokio::time::timeout(drain, slots.acquire_many(all))
        .await
        .is_ok()
}

/// Serves one connection until the client closes it, it times out, or the
/// server stops.
async fn connection(
    builder: &hyper::server::conn::http1::Builder,
    stream: tokio::net::TcpStream,
    app: Router,
    idle: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let last = Arc::new(AtomicU64::new(0));
    let origin = Instant::now();
    let io = TokioIo::new(Tracked {
        inner: stream,
        last: last.clone(),
        origin,
    });
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let mut app = app.clone();
        async move { app.call(req).await }
    });
    let conn = builder.serve_connection(io, service);
    let mut conn = std::pin::pin!(conn);
    let mut closing = false;
    loop {
        let quiet_since = origin + Duration::from_millis(last.load(Ordering::Relaxed));
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            () = tokio::time::sleep_until(quiet_since + idle), if !closing => {
                let quiet_since = origin + Duration::from_millis(last.load(Ordering::Relaxed));
                if quiet_since + idle <= Instant::now() {
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
            changed = stop.changed(), if !closing => {
                if changed.is_err() || *stop.borrow() {
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// A stream that records when bytes last moved, for the idle timeout.
struct Tracked<S> {
    inner: S,
    /// Milliseconds after `origin` of the last read or write.
    last: Arc<AtomicU64>,
    origin: Instant,
}

impl<S> Tracked<S> {
    fn touch(&self) {
        let ms = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(ms, Ordering::Relaxed);
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(poll, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.touch();
        }
        poll
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(poll, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        poll
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
