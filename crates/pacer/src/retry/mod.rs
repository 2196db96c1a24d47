//! Retries with capped exponential backoff, jitter, `Retry-After`, a deadline and a budget.
//!
//! [`RetryLayer`] wraps an HTTP client service (`http::Request<B>` to `http::Response<ResBody>`)
//! and sends a request again when the [classifier](Classify) says the outcome is a transient
//! failure and the [`RetryPolicy`]'s caps allow it:
//!
//! - at most [`max_retries`](RetryPolicy::max_retries) retries (default 5, so at most 6 sends);
//! - between attempts, the delay the server asked for with `Retry-After` (capped at 60 s by
//!   default; above the cap, either clamped or failed fast with [`RetryAfterExceeded`], see
//!   [`RetryAfterMode`]), or else a [`Backoff`] delay (default base 0.5 s, max 60 s, full jitter);
//! - an optional total [`deadline`](RetryPolicy::deadline) for the logical request: a sleep that
//!   could not end before it is never started, the last outcome is returned instead, and an
//!   attempt still running when it passes is cancelled with [`DeadlineExceeded`];
//! - a [`RetryBudget`] shared by all clones of the policy, so that a broad outage adds a small
//!   share of retries to the load instead of multiplying it.
//!
//! The [`DefaultClassifier`] retries `429` for every method, `408`/`5xx` gateway-ish statuses,
//! timeouts and transport errors only for idempotent requests, and connection failures (the
//! request never left) for every method: a `POST` that may have reached the server is never sent
//! twice unless it is marked [`Idempotent`] or carries an `Idempotency-Key` header.
//!
//! # Bodies
//!
//! Each attempt gets its own copy of the request body through
//! [`TryCloneBody`]: bodies that are `Clone` (such as
//! `http_body_util::Full<Bytes>`) are cloned, other bodies can be wrapped in
//! [`ReplayBody`], which buffers up to a limit; a request whose body
//! cannot be copied is sent once and not retried. The body of a failed response that is small
//! (known length at most [`drain_limit`](RetryPolicy::drain_limit), 64 KiB by default) is read and
//! discarded while the backoff sleep runs, so the connection can be reused; a larger one is
//! dropped. A drain that has not finished when the sleep ends may hold the next attempt back
//! until one second after the failure (never past the deadline); then it is dropped too.
//!
//! # Outcome
//!
//! When the layer gives up (retries exhausted, deadline, budget, a non-retryable transient
//! failure, or a body that cannot be replayed), the last response or error is returned
//! unchanged. A response that went through more than one attempt, or that is a transient failure,
//! carries a [`RetryInfo`] extension. A first-attempt success is returned untouched. Errors are
//! boxed ([`BoxError`]); a fail-fast `Retry-After` is a [`RetryAfterExceeded`] you can
//! downcast to.
//!
//! Dropping the response future stops everything at once: no task is spawned.
//!
//! # Layer order
//!
//! In pacer's stack the retry layer sits outside the rate limiter and the per-attempt timeout
//! (`Metrics -> Retry -> RetryAfter -> RateLimit -> Timeout -> client`), so every attempt pays a
//! rate-limit token and times out on its own, and the deadline covers everything.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use bytes::Bytes;
//! use http::{Request, Response, StatusCode};
//! use http_body_util::Full;
//! use pacer::retry::{Backoff, Jitter, RetryInfo, RetryLayer, RetryPolicy};
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
//! let policy = RetryPolicy::new()
//!     .max_retries(3)
//!     .backoff(Backoff::new(Duration::from_millis(100), Duration::from_secs(10)).jitter(Jitter::Equal))
//!     .deadline(Duration::from_secs(30));
//!
//! // A server that sheds load once, asking for two seconds of patience.
//! let calls = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
//! let server = tower::service_fn(move |_req: Request<Full<Bytes>>| {
//!     let n = calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
//!     async move {
//!         let res = if n == 0 {
//!             Response::builder().status(429).header("retry-after", "2").body(Full::new(Bytes::new()))
//!         } else {
//!             Response::builder().body(Full::from("ok"))
//!         };
//!         Ok::<_, std::convert::Infallible>(res.unwrap())
//!     }
//! });
//!
//! let client = ServiceBuilder::new().layer(RetryLayer::new(policy)).service(server);
//! let started = tokio::time::Instant::now();
//! let res = client
//!     .oneshot(Request::post("http://api.invalid/items").body(Full::from("{}")).unwrap())
//!     .await
//!     .unwrap();
//! assert_eq!(res.status(), StatusCode::OK);
//! assert_eq!(started.elapsed(), Duration::from_secs(2)); // waited what the server asked
//! let info = res.extensions().get::<RetryInfo>().unwrap();
//! assert_eq!((info.attempts, info.last_retry_after), (2, Some(Duration::from_secs(2))));
//! # }
//! ```

mod backoff;
mod budget;
pub(crate) mod classify;
mod future;
mod info;
mod layer;
mod policy;
pub(crate) mod reason;

pub use backoff::{Backoff, Jitter};
pub use budget::{RetryBudget, RetryBudgetBuilder};
pub use classify::{
    Classify, Decision, DefaultClassifier, Idempotent, is_connect_error, is_idempotent, is_timeout,
};
pub use future::ResponseFuture;
pub use info::{DeadlineExceeded, RetryInfo};
pub use layer::{Retry, RetryLayer};
pub use policy::RetryPolicy;
pub use reason::RetryReason;

/// The error type of [`Retry`]: the inner service's error, boxed, or a [`RetryAfterExceeded`].
/// The crate's one [`BoxError`], re-exported under its old path.
pub use crate::BoxError;
/// Defined with the `Retry-After` parsing they are about; re-exported here, where the retry
/// policy uses them.
pub use crate::retry_after::cap::{RetryAfterExceeded, RetryAfterMode};

#[cfg(doc)]
use crate::body::ReplayBody;
#[cfg(doc)]
use crate::body::TryCloneBody;

#[cfg(test)]
mod tests;
