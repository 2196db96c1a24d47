//! [`Event`]: what a layer reports, and the parts of a request an event may name.

use std::fmt;
use std::time::Duration;

use http::Method;

use crate::namespace::Namespace;
use crate::rate_limit::level::Level;
use crate::rate_limit::store_error::StoreError;
use crate::retry::reason::RetryReason;

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
    /// A call to the shared rate-limit store (Redis) failed: an error or a timeout. The failure
    /// policy then applies (for the limiter, see [`Event::StoreFallback`]; for a shared pause,
    /// the local gate alone decides).
    StoreError {
        /// The store operation that failed: `decide`, `reserve_global`, `refund`,
        /// `pause_upstream` or `paused_until`.
        operation: &'static str,
        /// The kind of failure, also the metric's label: `timeout`, `backend`, `protocol` or
        /// `unsupported` ([`StoreError::kind`]).
        kind: &'static str,
        /// The failure itself (never carries credentials: the store's errors name no URL).
        error: &'a StoreError,
    },
    /// A request is about to be sent again after `delay`.
    Retry {
        /// The request.
        request: RequestInfo<'a>,
        /// The attempt that failed, from 1.
        attempt: u32,
        /// Why it is retried; with `from_server`, also the metric's label
        /// ([`RetryReason::label`]).
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
