//! What the layers report: rate-limit waits and refusals, retries, give-ups, shared pauses and
//! timeouts, delivered to an [`Observer`].
//!
//! Each layer takes an observer at construction (through its builder; there are no globals).
//! With none, reporting costs one branch. [`Metrics`](crate::metrics::Metrics) is one observer,
//! [`TracingObserver`] (feature `tracing`) another; a tuple `(A, B)` reports to both.
//!
//! ```
//! use std::sync::atomic::{AtomicU64, Ordering};
//! use pacer::events::{Event, Observer};
//! use pacer::rate_limit::RateLimiter;
//!
//! #[derive(Default)]
//! struct CountRefusals(AtomicU64);
//!
//! impl Observer for CountRefusals {
//!     fn observe(&self, event: &Event<'_>) {
//!         if let Event::RateLimitRefused { .. } = event {
//!             self.0.fetch_add(1, Ordering::Relaxed);
//!         }
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let limiter = RateLimiter::builder().observer(CountRefusals::default()).build()?;
//! # Ok(()) }
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::Method;

use crate::Namespace;
use crate::rate_limit::level::Level;

/// Receives the events the layers report. Called inline on the request's task: keep it cheap
/// and never block.
pub trait Observer: Send + Sync + 'static {
    /// One event happened.
    fn observe(&self, event: &Event<'_>);
}

impl<O: Observer + ?Sized> Observer for Arc<O> {
    fn observe(&self, event: &Event<'_>) {
        (**self).observe(event);
    }
}

impl<A: Observer, B: Observer> Observer for (A, B) {
    fn observe(&self, event: &Event<'_>) {
        self.0.observe(event);
        self.1.observe(event);
    }
}

/// Something worth counting that a layer saw.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Event<'a> {
    /// A request waited for a rate-limit slot (reported for waits above zero only).
    RateLimitWait {
        /// The namespace the request was made for.
        namespace: &'a Namespace,
        /// The bucket it waited for.
        level: Level,
        /// How long it waited.
        waited: Duration,
    },
    /// A request was refused by the rate limiter (wait beyond `max_wait`, or reject mode).
    RateLimitRefused {
        /// The namespace the request was made for.
        namespace: &'a Namespace,
        /// The bucket that refused it.
        level: Level,
        /// How long until that bucket has a slot.
        retry_after: Duration,
    },
    /// The shared rate-limit store (Redis) could not decide, and the failure policy did: by the
    /// local fallback limiter (`local`) or by refusing.
    StoreFallback {
        /// The namespace the request was made for.
        namespace: &'a Namespace,
        /// Whether the local fallback decided (otherwise the request was refused).
        local: bool,
    },
    /// A request is about to be sent again after `delay`.
    Retry {
        /// The request.
        request: RequestInfo<'a>,
        /// The attempt that failed, from 1.
        attempt: u32,
        /// Why it is retried.
        reason: RetryReason,
        /// How long it waits before the next attempt.
        delay: Duration,
        /// Whether `delay` is what the server asked for (`Retry-After` and kin) rather than the
        /// computed backoff.
        from_server: bool,
    },
    /// A request failed and will not be retried because its retries ran out (`max_retries`
    /// or the deadline); the last outcome is returned.
    RetriesExhausted {
        /// The request.
        request: RequestInfo<'a>,
        /// How many times it was sent.
        attempts: u32,
    },
    /// A retry was skipped because the retry budget was empty.
    RetryBudgetExhausted {
        /// The request.
        request: RequestInfo<'a>,
    },
    /// An upstream asked for a pause (a `429`/`503` with `Retry-After`, or a proactive
    /// source); requests to it wait until it ends. Reported when a response opens a pause, and
    /// again (`extended`) when a later response pushes its end back by at least a second;
    /// shorter extensions (many concurrent `429`s for the same pause) are applied silently.
    PauseStarted {
        /// The upstream: `scheme://host:port` of the request URI (never user info, path or
        /// query), empty for a relative URI.
        upstream: &'a str,
        /// How long from now the pause lasts.
        delay: Duration,
        /// Whether the pause was already running for this observer (its end moved back)
        /// rather than opened now. Every pause an observer saw open (`extended: false`) is
        /// followed by exactly one [`Event::PauseEnded`].
        extended: bool,
    },
    /// A pause ended: new requests to the upstream go at once, and the ones it held are being
    /// released over the gate's release window. Reported once per pause, at its end (or when
    /// the gate drops it early to make room for another upstream).
    PauseEnded {
        /// The upstream, as in [`Event::PauseStarted`].
        upstream: &'a str,
    },
    /// An attempt timed out.
    Timeout {
        /// The request.
        request: RequestInfo<'a>,
        /// The per-attempt timeout that elapsed, when the reporting layer knows it (the retry
        /// layer sees only the timeout error).
        after: Option<Duration>,
    },
}

/// The parts of a request an event names. Only the method, the URI path (never the query, which
/// may carry credentials) and the namespace: no headers, no bodies.
#[derive(Clone, Copy)]
pub struct RequestInfo<'a> {
    /// The method.
    pub method: &'a Method,
    /// The URI path.
    pub path: &'a str,
    /// The namespace.
    pub namespace: &'a Namespace,
}

impl fmt::Debug for RequestInfo<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} ({})", self.method, self.path, self.namespace)
    }
}

/// Why a request is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RetryReason {
    /// The server refused it for load (429, or 503 with a delay).
    Throttled,
    /// A server error (408, 500, 502, 503, 504).
    ServerError,
    /// The attempt timed out.
    Timeout,
    /// The connection failed.
    Transport,
}

impl RetryReason {
    /// `throttled`, `server_error`, `timeout` or `transport`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Throttled => "throttled",
            Self::ServerError => "server_error",
            Self::Timeout => "timeout",
            Self::Transport => "transport",
        }
    }
}

impl fmt::Display for RetryReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a layer sends its events: no observer (the default, one branch per event) or a shared
/// one. Cheap to clone.
#[derive(Clone, Default)]
pub struct Events(Option<Arc<dyn Observer>>);

impl Events {
    /// Reports nothing.
    pub fn none() -> Self {
        Self(None)
    }

    /// Reports to `observer`.
    pub fn new(observer: impl Observer) -> Self {
        Self(Some(Arc::new(observer)))
    }

    /// Whether an observer is attached.
    #[inline]
    pub fn is_enabled(&self) -> bool {
        self.0.is_some()
    }

    /// Reports the event `make` builds, building it only when someone listens.
    #[inline]
    pub fn emit<'a>(&self, make: impl FnOnce() -> Event<'a>) {
        if let Some(observer) = &self.0 {
            observer.observe(&make());
        }
    }
}

impl fmt::Debug for Events {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "Events(observer)"
        } else {
            "Events(none)"
        })
    }
}

impl<O: Observer> From<O> for Events {
    fn from(observer: O) -> Self {
        Self::new(observer)
    }
}

/// Logs events with `tracing` (target `pacer::events`). Requests are named by method, URL path
/// and namespace only: never headers, queries or bodies.
///
/// | event | level |
/// |---|---|
/// | [`Event::Retry`] with [`RetryReason::Throttled`] | WARN, one line per retry: method, path, namespace, attempt, delay, `from_server` |
/// | [`Event::RetriesExhausted`], [`Event::RetryBudgetExhausted`], [`Event::StoreFallback`] | WARN |
/// | other [`Event::Retry`], [`Event::RateLimitRefused`], [`Event::Timeout`], [`Event::PauseStarted`] | INFO |
/// | [`Event::RateLimitWait`], [`Event::PauseEnded`] | DEBUG |
///
/// Combine it with metrics as a pair: `RetryPolicy::new().observer((metrics.clone(), TracingObserver))`.
#[cfg(feature = "tracing")]
#[derive(Debug, Clone, Copy, Default)]
pub struct TracingObserver;

#[cfg(feature = "tracing")]
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
                reason: RetryReason::Throttled,
                delay,
                from_server,
            } => warn!(
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
                ..
            } => info!(
                method = %request.method,
                path = request.path,
                namespace = %request.namespace,
                attempt,
                %reason,
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
