//! [`TracingObserver`]: the events as `tracing` log lines (feature `tracing`).

use super::event::Event;
use super::observer::Observer;

/// Logs events with `tracing` (target `pacer::events`). Requests are named by method, URL path
/// and namespace only: never headers, queries or bodies.
///
/// | event | level |
/// |---|---|
/// | [`Event::Retry`] throttled by the server ([`RetryReason::is_throttled`](crate::retry::RetryReason::is_throttled)) | WARN, one line per retry: method, path, namespace, attempt, delay, `from_server` |
/// | [`Event::RetriesExhausted`], [`Event::RetryBudgetExhausted`], [`Event::StoreFallback`], [`Event::StoreError`] | WARN |
/// | other [`Event::Retry`], [`Event::RateLimitRefused`], [`Event::Timeout`], [`Event::PauseStarted`] | INFO |
/// | [`Event::RateLimitWait`], [`Event::PauseEnded`] | DEBUG |
///
/// Combine it with metrics as a pair: `RetryPolicy::new().observer((metrics.clone(), TracingObserver))`.
#[derive(Debug, Clone, Copy, Default)]
pub struct TracingObserver;

impl Observer for TracingObserver {
    fn observe(&self, event: &Event<'_>) {
        use tracing::{debug, info, warn};
        match *event {
            Event::RateLimitWait {
                namespace,
                level,
                waited,
            } => debug!(%namespace, %level, ?waited, "rate limit wait"),
            Event::RateLimitRefused {
                namespace,
                level,
                retry_after,
            } => info!(%namespace, %level, ?retry_after, "rate limited"),
            Event::Retry {
                request,
                attempt,
                reason,
                delay,
                from_server,
            } if reason.is_throttled(from_server) => warn!(
                method = %request.method,
                path = request.path,
                namespace = %request.namespace,
                attempt,
                ?delay,
                from_server,
                "throttled by the server, retrying"
            ),
            Event::Retry {
                request,
                attempt,
                reason,
                delay,
                from_server,
            } => info!(
                method = %request.method,
                path = request.path,
                namespace = %request.namespace,
                attempt,
                // The metric's label: `server_error`, `timeout` or `transport`.
                reason = %reason.label(from_server),
                ?delay,
                "retrying"
            ),
            Event::RetriesExhausted { request, attempts } => warn!(
                method = %request.method,
                path = request.path,
                namespace = %request.namespace,
                attempts,
                "retries exhausted"
            ),
            Event::RetryBudgetExhausted { request } => warn!(
                method = %request.method,
                path = request.path,
                namespace = %request.namespace,
                "retry budget exhausted, not retrying"
            ),
            Event::PauseStarted {
                upstream,
                delay,
                extended,
            } => info!(upstream, ?delay, extended, "upstream asked for a pause"),
            Event::PauseEnded { upstream } => debug!(upstream, "pause ended"),
            Event::StoreFallback { namespace, local } => warn!(
                %namespace,
                local,
                "shared rate-limit store unavailable, failure policy applied"
            ),
            Event::StoreError {
                operation,
                kind,
                error,
            } => warn!(
                operation,
                kind,
                %error,
                "shared rate-limit store call failed"
            ),
            Event::Timeout { request, after } => info!(
                method = %request.method,
                path = request.path,
                namespace = %request.namespace,
                ?after,
                "attempt timed out"
            ),
        }
    }
}
