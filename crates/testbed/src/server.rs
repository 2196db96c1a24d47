//! The accept loop: hyper's HTTP/1 connection over each TCP stream, the fault and stats
//! wrapper around the axum router, graceful shutdown, and connection resets.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::response::Response;
use http::header::{CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderValue, Request, StatusCode};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tower_service::Service;

use crate::faults::{Action, Faults};
use crate::stats::Stats;

/// How long in-flight requests get to finish after shutdown was asked for.
const GRACE: Duration = Duration::from_secs(5);

/// Everything the per-request wrapper needs.
#[derive(Clone, Debug)]
pub(crate) struct Frontend {
    pub(crate) router: Router,
    pub(crate) faults: Faults,
    pub(crate) stats: Stats,
}

/// The error a request's service returns to make hyper drop the connection unanswered.
#[derive(Debug)]
struct ResetConnection;

impl fmt::Display for ResetConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("connection reset injected by the testbed")
    }
}

impl std::error::Error for ResetConnection {}

/// A TCP stream that, when asked to, is closed with a reset (`SO_LINGER` 0) on drop.
struct ResetOnDrop {
    stream: TcpStream,
    reset: Arc<AtomicBool>,
}

impl Drop for ResetOnDrop {
    fn drop(&mut self) {
        if self.reset.load(Ordering::Acquire) {
            // Best effort: without it the peer sees a plain close, still without a response.
            let _ = self.stream.set_zero_linger();
        }
    }
}

impl AsyncRead for ResetOnDrop {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for ResetOnDrop {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// Accepts connections until `shutdown` changes or its sender is dropped.
pub(crate) async fn serve(
    listener: TcpListener,
    frontend: Frontend,
    mut shutdown: watch::Receiver<()>,
) {
    loop {
        let accepted = tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => stream,
            // Out of descriptors and the like: back off briefly instead of spinning.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(connection(stream, frontend.clone(), shutdown.clone()));
    }
}

async fn connection(stream: TcpStream, frontend: Frontend, mut shutdown: watch::Receiver<()>) {
    let reset = Arc::new(AtomicBool::new(false));
    let io = TokioIo::new(ResetOnDrop {
        stream,
        reset: reset.clone(),
    });
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        handle(request, frontend.clone(), reset.clone())
    });
    let conn = http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30))
        .serve_connection(io, service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = shutdown.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(GRACE, conn).await;
        }
    }
}

async fn handle(
    request: Request<Incoming>,
    frontend: Frontend,
    reset: Arc<AtomicBool>,
) -> Result<Response, ResetConnection> {
    let path = request.uri().path().to_owned();
    let method = request.method().clone();
    let (action, latency) = frontend.faults.decide(&path);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let injected = match action {
        Action::Pass => None,
        Action::Reset => {
            frontend.stats.record_reset();
            frontend.stats.log_request(method.as_str(), &path, None);
            reset.store(true, Ordering::Release);
            return Err(ResetConnection);
        }
        Action::TooManyRequests(retry_after) => Some(fault_response(
            &path,
            StatusCode::TOO_MANY_REQUESTS,
            retry_after,
        )),
        Action::Unavailable(retry_after) => Some(fault_response(
            &path,
            StatusCode::SERVICE_UNAVAILABLE,
            retry_after,
        )),
    };
    if let Some(response) = injected {
        frontend
            .stats
            .record(&path, response.status().as_u16(), true);
        frontend
            .stats
            .log_request(method.as_str(), &path, Some(response.status().as_u16()));
        return Ok(response);
    }
    let mut router = frontend.router;
    let response = match router.call(request.map(Body::new)).await {
        Ok(response) => response,
        Err(infallible) => match infallible {},
    };
    frontend
        .stats
        .record(&path, response.status().as_u16(), false);
    frontend
        .stats
        .log_request(method.as_str(), &path, Some(response.status().as_u16()));
    Ok(response)
}

/// Whole seconds, rounded up.
fn retry_after_secs(delay: Duration) -> u64 {
    delay.as_secs() + u64::from(delay.subsec_nanos() > 0)
}

/// An injected 429 or 503: Infrahub paths answer the GraphQL-style error body its load
/// shedding sends, Keycloak paths a small JSON error.
fn fault_response(path: &str, status: StatusCode, retry_after: Option<Duration>) -> Response {
    let message = status.canonical_reason().unwrap_or("error");
    let body = if path.starts_with("/graphql") || path.starts_with("/api") {
        serde_json::json!({
            "data": null,
            "errors": [{"message": message, "extensions": {"code": status.as_u16()}}],
        })
    } else {
        serde_json::json!({"error": message})
    };
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(delay) = retry_after {
        headers.insert(RETRY_AFTER, HeaderValue::from(retry_after_secs(delay)));
    }
    response
}
