//! Honour server-given delays: `Retry-After`, the IETF `RateLimit` field and
//! `X-RateLimit-Reset`, shared by every request to the same upstream.
//!
//! Two parts:
//!
//! - **Parsing** ([`parse_retry_after`], [`retry_after`], [`rate_limit_reset`],
//!   [`x_rate_limit_reset`]): pure functions of the header values and a `now`, never
//!   panicking, never allocating. Anything that is not valid syntax is `None`, so the caller
//!   falls back to its own backoff.
//! - **Pausing** ([`RetryAfterLayer`], [`PauseGate`]): after a `429 Too Many Requests` or
//!   `503 Service Unavailable` that carries a delay, *every* later request to the same
//!   upstream waits until the pause ends, not only the one being retried. Held requests are
//!   released spread uniformly over a short window (default 1 s) instead of all at once. The
//!   delay is capped (default 60 s, [`DEFAULT_MAX_DELAY`]); a longer server delay is clamped
//!   (failing fast on long delays is the retry policy's business, not this layer's).
//!
//! # The total hold is bounded
//!
//! A request is never held longer than the cap in total, however often the pause is pushed
//! back while it waits (a server answering every probe with a fresh `Retry-After`, or another
//! layer sharing the gate): when the pause's end moves past `held since + max_delay`, the
//! request fails with [`RetryAfterExceeded`], the error a retry layer in
//! [`RetryAfterMode::FailFast`] gives for a too-long `Retry-After`, and pacer's default retry
//! classifier does not retry it. A request arriving while a pause runs longer than the cap
//! (one set on a shared gate by someone else) fails the same way at once. So a request spends
//! at most `max_delay` plus the release window at the gate. The retry layer's total deadline
//! covers the wait as well (it ends it with its own `DeadlineExceeded`). The service's error
//! is the inner error boxed ([`BoxError`](crate::BoxError)), as the other layers' are.
//!
//! The upstream is the request URI's authority (case-insensitive); requests with a relative
//! URI share one key. [`RetryAfterLayer::key_fn`] replaces the key, e.g. to add the tenant's
//! namespace from a request extension so that one tenant's 429 does not hold the others.
//!
//! Optional proactive sources ([`RetryAfterLayer::rate_limit_header`],
//! [`RetryAfterLayer::x_rate_limit_reset`]) pause the upstream as soon as *any* response says
//! the quota is used up (`RateLimit: "default";r=0;t=30`, or `X-RateLimit-Remaining: 0` with
//! `X-RateLimit-Reset`), before a 429 happens. On a 429/503 they are also used when
//! `Retry-After` is absent. `X-RateLimit-Reset` is delta or epoch seconds depending on the
//! server, so it must be configured explicitly with a [`ResetHeader`].
//!
//! This layer does not retry: put a retry layer outside it (the order in pacer's stack is
//! `Retry -> RetryAfter -> RateLimit -> ...`), and the retried request waits at the gate like
//! every other one.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use http::{Request, Response, StatusCode};
//! use pacer::retry_after::RetryAfterLayer;
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), pacer::BoxError> {
//! // An upstream that is busy on `/busy` and asks for 5 seconds of quiet.
//! let upstream = service_fn(|req: Request<()>| async move {
//!     let res = if req.uri().path() == "/busy" {
//!         Response::builder().status(StatusCode::TOO_MANY_REQUESTS).header("retry-after", "5")
//!     } else {
//!         Response::builder().status(StatusCode::OK)
//!     };
//!     Ok::<_, std::convert::Infallible>(res.body(()).unwrap())
//! });
//! let layer = RetryAfterLayer::new().max_delay(Duration::from_secs(30));
//! let svc = ServiceBuilder::new().layer(layer).service(upstream);
//!
//! let start = tokio::time::Instant::now();
//! let res = svc.clone().oneshot(Request::get("http://api.example/busy").body(()).unwrap()).await?;
//! assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
//!
//! // Another request to the same upstream waits for the pause (5 s, released within 1 s more).
//! let res = svc.oneshot(Request::get("http://api.example/b").body(()).unwrap()).await?;
//! assert_eq!(res.status(), StatusCode::OK);
//! let waited = start.elapsed();
//! assert!(waited >= Duration::from_secs(5) && waited < Duration::from_secs(6));
//! # Ok(())
//! # }
//! ```

pub(crate) mod cap;
mod future;
mod gate;
mod key;
mod layer;
pub(crate) mod parse;
mod settings;
mod shared;

pub use cap::{RetryAfterExceeded, RetryAfterMode};
pub use future::ResponseFuture;
pub use gate::{
    DEFAULT_MAX_UPSTREAMS, DEFAULT_RELEASE_WINDOW, PauseGate, PauseGateBuilder, PauseKey,
};
pub use layer::{RetryAfter, RetryAfterLayer};
pub use parse::{
    ResetHeader, parse_retry_after, rate_limit_reset, retry_after, x_rate_limit_reset,
};
pub use shared::{DEFAULT_SHARED_REFRESH, SharedPause};

pub use cap::DEFAULT_MAX_DELAY;

#[cfg(test)]
mod tests;
