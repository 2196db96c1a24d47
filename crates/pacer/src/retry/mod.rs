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
use crate::events::{Event, RequestInfo, RetryReason as EventReason};
mod budget;
mod classify;

pub use backoff::{Backoff, Jitter};
pub use budget::{RetryBudget, RetryBudgetBuilder};
pub use classify::{
    Classify, Decision, DefaultClassifier, Idempotent, RetryReason, is_connect_error,
    is_idempotent, is_timeout,
};

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use http::{HeaderMap, Request, Response, request};
use http_body::Body;
use pin_project_lite::pin_project;
use rand::SeedableRng;
use rand::rngs::SmallRng;
use tokio::time::{Instant, Sleep};
use tower_layer::Layer;
use tower_service::Service;

#[cfg(doc)]
use crate::body::ReplayBody;
use crate::body::TryCloneBody;

/// The error type of [`Retry`]: the inner service's error, boxed, or a [`RetryAfterExceeded`].
/// The crate's one [`BoxError`](crate::BoxError), re-exported under its old path.
pub use crate::BoxError;

/// What to do when a server asks for a `Retry-After` longer than the cap.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum RetryAfterMode {
    /// Wait the cap instead (the default).
    #[default]
    Clamp,
    /// Give up at once with a [`RetryAfterExceeded`] error carrying the requested delay.
    FailFast,
}

/// The error returned in [`RetryAfterMode::FailFast`] when the server asks for a delay above the
/// cap.
///
/// ```
/// # use pacer::BoxError;
/// # use pacer::retry::RetryAfterExceeded;
/// fn requested_delay(err: &BoxError) -> Option<std::time::Duration> {
///     err.downcast_ref::<RetryAfterExceeded>().map(|e| e.requested())
/// }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryAfterExceeded {
    requested: Duration,
    cap: Duration,
    attempts: u32,
}

impl RetryAfterExceeded {
    /// The delay the server asked for.
    pub fn requested(&self) -> Duration {
        self.requested
    }

    /// The configured cap it exceeds.
    pub fn cap(&self) -> Duration {
        self.cap
    }

    /// Attempts made, including the one that got this answer.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }
}

impl fmt::Display for RetryAfterExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "server asked to retry after {:?}, more than the cap of {:?}",
            self.requested, self.cap
        )
    }
}

impl StdError for RetryAfterExceeded {}

/// The error returned when the total [deadline](RetryPolicy::deadline) passes while an attempt
/// is in flight or waits for the inner service to be ready (e.g. for a rate-limit token). The
/// attempt is dropped (cancelled).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeadlineExceeded {
    deadline: Duration,
    attempts: u32,
}

impl DeadlineExceeded {
    /// The configured total deadline.
    pub fn deadline(&self) -> Duration {
        self.deadline
    }

    /// Attempts started, including the one cut short.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }
}

impl fmt::Display for DeadlineExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "retry deadline of {:?} exceeded during attempt {}",
            self.deadline, self.attempts
        )
    }
}

impl StdError for DeadlineExceeded {}

/// Retry facts, inserted into the extensions of a response that needed more than one attempt or
/// that is a transient failure the layer gave up on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryInfo {
    /// Attempts made (sends), including the one that produced this response.
    pub attempts: u32,
    /// The last delay a server asked for with `Retry-After`, as asked (before any cap).
    pub last_retry_after: Option<Duration>,
}

/// What to retry and how: caps, backoff, `Retry-After`, budget and classifier.
///
/// Cloning is cheap, and clones share the [`RetryBudget`].
#[derive(Clone)]
pub struct RetryPolicy {
    max_retries: u32,
    backoff: Backoff,
    deadline: Option<Duration>,
    budget: Option<RetryBudget>,
    classifier: Arc<dyn Classify>,
    events: crate::events::Events,
    retry_after_cap: Duration,
    retry_after_mode: RetryAfterMode,
    drain_limit: u64,
    seed: Option<(u64, Arc<AtomicU64>)>,
}

impl fmt::Debug for RetryPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryPolicy")
            .field("max_retries", &self.max_retries)
            .field("backoff", &self.backoff)
            .field("deadline", &self.deadline)
            .field("budget", &self.budget)
            .field("retry_after_cap", &self.retry_after_cap)
            .field("retry_after_mode", &self.retry_after_mode)
            .field("drain_limit", &self.drain_limit)
            .field("seed", &self.seed.as_ref().map(|(s, _)| s))
            .finish_non_exhaustive()
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self::new()
    }
}

impl RetryPolicy {
    /// The defaults: 5 retries, [`Backoff::default`] (0.5 s to 60 s, full jitter), no deadline,
    /// a [`RetryBudget::default`], the [`DefaultClassifier`], `Retry-After` capped at 60 s and
    /// clamped, failed response bodies up to 64 KiB drained.
    pub fn new() -> Self {
        Self {
            max_retries: 5,
            backoff: Backoff::default(),
            deadline: None,
            budget: Some(RetryBudget::default()),
            classifier: Arc::new(DefaultClassifier),
            events: crate::events::Events::none(),
            retry_after_cap: Duration::from_secs(60),
            retry_after_mode: RetryAfterMode::Clamp,
            drain_limit: 64 * 1024,
            seed: None,
        }
    }

    /// Retries after the first attempt (default 5; 0 disables retries).
    #[must_use]
    pub fn max_retries(mut self, n: u32) -> Self {
        self.max_retries = n;
        self
    }

    /// The backoff used when the server gives no `Retry-After`.
    #[must_use]
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// A total deadline for the logical request, counted from the call, covering attempts,
    /// waits for the inner service to be ready and sleeps.
    ///
    /// No sleep is started unless it ends before the deadline; otherwise the last outcome is
    /// returned as is. If the deadline passes while an attempt is in flight (or waiting to be
    /// sent), the attempt is cancelled and the error is a [`DeadlineExceeded`]. Needs a tokio
    /// runtime with the time driver (as any sleep does).
    #[must_use]
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// The retry budget (shared by every clone of this policy).
    #[must_use]
    pub fn budget(mut self, budget: RetryBudget) -> Self {
        self.budget = Some(budget);
        self
    }

    /// Disables the retry budget: only `max_retries` and the deadline limit retries.
    #[must_use]
    pub fn without_budget(mut self) -> Self {
        self.budget = None;
        self
    }

    /// Replaces the [`DefaultClassifier`].
    #[must_use]
    pub fn classifier(mut self, classifier: impl Classify) -> Self {
        self.classifier = Arc::new(classifier);
        self
    }

    /// The longest server-requested delay honoured as is (default 60 s).
    #[must_use]
    pub fn retry_after_cap(mut self, cap: Duration) -> Self {
        self.retry_after_cap = cap;
        self
    }

    /// What to do with a server-requested delay above the cap (default [`RetryAfterMode::Clamp`]).
    #[must_use]
    pub fn retry_after_mode(mut self, mode: RetryAfterMode) -> Self {
        self.retry_after_mode = mode;
        self
    }

    /// The largest failed response body (known length, in bytes) read and discarded before a
    /// retry so its connection can be reused (default 64 KiB; 0 disables draining).
    #[must_use]
    pub fn drain_limit(mut self, bytes: u64) -> Self {
        self.drain_limit = bytes;
        self
    }

    /// Makes the jitter deterministic: each logical request draws from a generator seeded with
    /// `seed` and its sequence number. For tests; by default each request seeds from the
    /// thread-local generator.
    #[must_use]
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some((seed, Arc::new(AtomicU64::new(0))));
        self
    }

    /// Reports retries, give-ups, empty-budget skips and timeouts to `observer` (see
    /// [`crate::events`]).
    pub fn observer(mut self, observer: impl Into<crate::events::Events>) -> Self {
        self.events = observer.into();
        self
    }

    /// The budget, if any, e.g. to read its balance.
    pub fn retry_budget(&self) -> Option<&RetryBudget> {
        self.budget.as_ref()
    }

    fn rng(&self) -> SmallRng {
        match &self.seed {
            Some((seed, seq)) => {
                let n = seq.fetch_add(1, Ordering::Relaxed);
                SmallRng::seed_from_u64(seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15))
            }
            None => SmallRng::from_rng(&mut rand::rng()),
        }
    }
}

/// How long a drain of a failed response body may delay the next attempt past its backoff.
const DRAIN_GRACE: Duration = Duration::from_secs(1);

/// The server-requested delay of a response, if any: `Retry-After` as delay-seconds or any of
/// the three HTTP-date forms (see [`crate::retry_after::retry_after`]).
fn server_delay(headers: &HeaderMap) -> Option<Duration> {
    crate::retry_after::retry_after(headers, std::time::SystemTime::now())
}

/// Applies [`Retry`] to a service. `Clone + Debug`; clones share the policy (and its budget).
#[derive(Clone, Debug, Default)]
pub struct RetryLayer {
    policy: Arc<RetryPolicy>,
}

impl RetryLayer {
    /// A layer retrying with `policy`.
    pub fn new(policy: RetryPolicy) -> Self {
        Self {
            policy: Arc::new(policy),
        }
    }
}

impl<S: Clone> Layer<S> for RetryLayer {
    type Service = Retry<S>;

    fn layer(&self, inner: S) -> Retry<S> {
        Retry {
            spare: Arc::new(Mutex::new(inner.clone())),
            inner,
            policy: Arc::clone(&self.policy),
        }
    }
}

/// Retries failed requests according to a [`RetryPolicy`]; see the [module docs](self).
///
/// The first attempt calls the inner service that `poll_ready` made ready. Retries call a
/// clone of the service as it was when the `Retry` was built (made ready in turn), so a
/// request that needs no retry clones no service.
#[derive(Clone, Debug)]
pub struct Retry<S> {
    inner: S,
    // Cloned only when a request is retried: cloning a whole client stack per request (a
    // handful of reference counts) is most of what a retry layer costs on the happy path.
    // The mutex keeps the future `Send` for services that are `Send` but not `Sync` (such as
    // tower's `BoxCloneService`); it is only locked to clone, on a retry.
    spare: Arc<Mutex<S>>,
    policy: Arc<RetryPolicy>,
}

impl<S: Clone> Retry<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, policy: RetryPolicy) -> Self {
        Self {
            spare: Arc::new(Mutex::new(inner.clone())),
            inner,
            policy: Arc::new(policy),
        }
    }
}

impl<S> Retry<S> {
    /// A [`RetryLayer`] with `policy`.
    pub fn layer(policy: RetryPolicy) -> RetryLayer {
        RetryLayer::new(policy)
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }

    /// The policy.
    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Retry<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
    S::Error: Into<BoxError>,
    ReqBody: TryCloneBody,
    ResBody: Body,
{
    type Response = Response<ResBody>;
    type Error = BoxError;
    type Future = ResponseFuture<S, ReqBody, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let (parts, body) = req.into_parts();
        let (send, template) = match body.try_clone_body() {
            Some(copy) => (copy, Some(body)),
            None => (body, None),
        };
        // The service that `poll_ready` made ready takes the first attempt.
        let future = self.inner.call(Request::from_parts(parts.clone(), send));
        ResponseFuture {
            state: State::Calling { future },
            spare: Arc::clone(&self.spare),
            service: None,
            deadline: None,
            attempt: Attempt {
                started: self.policy.deadline.map(|_| Instant::now()),
                policy: Arc::clone(&self.policy),
                parts,
                template,
                next: None,
                attempts: 0,
                prev_delay: Duration::ZERO,
                last_retry_after: None,
                rng: None,
            },
        }
    }
}

pin_project! {
    /// The response future of [`Retry`]. Dropping it stops retrying at once.
    pub struct ResponseFuture<S, ReqBody, ResBody>
    where
        S: Service<Request<ReqBody>>,
    {
        #[pin]
        state: State<S::Future, ResBody>,
        spare: Arc<Mutex<S>>,
        // The service retries call: a clone of `spare`, made at the first retry (boxed, so
        // that the future a request without retries builds and moves stays small).
        service: Option<Box<S>>,
        // Fires at the end of the total deadline; armed the first time an attempt is pending.
        deadline: Option<Pin<Box<Sleep>>>,
        attempt: Attempt<ReqBody>,
    }
}

impl<S, ReqBody, ResBody> fmt::Debug for ResponseFuture<S, ReqBody, ResBody>
where
    S: Service<Request<ReqBody>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("attempts", &self.attempt.attempts)
            .field("method", &self.attempt.parts.method)
            .field("uri", &self.attempt.parts.uri)
            .finish_non_exhaustive()
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, ResBody> {
        Calling { #[pin] future: F },
        Waiting {
            // Boxed: keeps the future small on the happy path, which never sleeps.
            sleep: Pin<Box<Sleep>>,
            drain: Option<Pin<Box<ResBody>>>,
            // When the next attempt may be sent.
            wake: Instant,
            // How long an unfinished drain may hold the next attempt back.
            drain_until: Instant,
        },
        Ready,
        Done,
    }
}

/// Per logical request bookkeeping.
struct Attempt<ReqBody> {
    policy: Arc<RetryPolicy>,
    parts: request::Parts,
    /// The body kept to make copies from; `None` if it cannot be copied.
    template: Option<ReqBody>,
    /// The body of the next attempt.
    next: Option<ReqBody>,
    attempts: u32,
    started: Option<Instant>,
    prev_delay: Duration,
    last_retry_after: Option<Duration>,
    rng: Option<Box<SmallRng>>,
}

/// What an event may say of a request: method, path (no query) and namespace.
fn request_info(parts: &request::Parts) -> RequestInfo<'_> {
    RequestInfo {
        method: &parts.method,
        path: parts.uri.path(),
        namespace: parts
            .extensions
            .get::<crate::Namespace>()
            .unwrap_or_else(|| default_namespace()),
    }
}

fn default_namespace() -> &'static crate::Namespace {
    static DEFAULT: std::sync::OnceLock<crate::Namespace> = std::sync::OnceLock::new();
    DEFAULT.get_or_init(crate::Namespace::default)
}

/// The events' coarser reason: a server asking for a delay is throttling whatever the status.
fn event_reason(reason: RetryReason, server_delay: bool) -> EventReason {
    match reason {
        RetryReason::TooManyRequests => EventReason::Throttled,
        RetryReason::Status(_) if server_delay => EventReason::Throttled,
        RetryReason::Status(_) => EventReason::ServerError,
        RetryReason::Timeout => EventReason::Timeout,
        RetryReason::Connect | RetryReason::Transport => EventReason::Transport,
    }
}

enum Next<ResBody> {
    Return(Result<Response<ResBody>, BoxError>),
    Wait {
        delay: Duration,
        drain: Option<Pin<Box<ResBody>>>,
    },
}

impl<ReqBody> Attempt<ReqBody> {
    fn exhausted(&self) {
        let attempts = self.attempts;
        self.policy.events.emit(|| Event::RetriesExhausted {
            request: request_info(&self.parts),
            attempts,
        });
    }
}

impl<ReqBody: TryCloneBody> Attempt<ReqBody> {
    fn on_outcome<ResBody: Body>(
        &mut self,
        outcome: Result<Response<ResBody>, BoxError>,
    ) -> Next<ResBody> {
        self.attempts = self.attempts.saturating_add(1);
        let policy = &*self.policy;
        let decision = match &outcome {
            Ok(res) => {
                policy
                    .classifier
                    .classify_response(&self.parts, res.status(), res.headers())
            }
            Err(e) => policy.classifier.classify_error(&self.parts, &**e),
        };
        if decision == Decision::Success {
            if let Some(budget) = &policy.budget {
                budget.deposit();
            }
            let retried = self.attempts > 1;
            return Next::Return(self.finish(outcome, retried));
        }
        self.on_failure(outcome, decision)
    }

    /// A transient failure: retry it (and say how long to wait) or give up. Kept out of line
    /// so that the success path above stays small: cold code costs cache misses on every
    /// request of a real client, not only on failing ones.
    #[cold]
    #[inline(never)]
    fn on_failure<ResBody: Body>(
        &mut self,
        outcome: Result<Response<ResBody>, BoxError>,
        decision: Decision,
    ) -> Next<ResBody> {
        let policy = &*self.policy;
        let reason = match decision {
            Decision::Retry(reason) | Decision::Failure(reason) => Some(reason),
            Decision::Success => None,
        };
        if reason == Some(RetryReason::Timeout) {
            policy.events.emit(|| Event::Timeout {
                request: request_info(&self.parts),
                after: None,
            });
        }
        let requested = outcome
            .as_ref()
            .ok()
            .and_then(|res| server_delay(res.headers()));
        if requested.is_some() {
            self.last_retry_after = requested;
        }
        if matches!(decision, Decision::Failure(_)) {
            return Next::Return(self.finish(outcome, true));
        }
        if self.attempts > policy.max_retries {
            self.exhausted();
            return Next::Return(self.finish(outcome, true));
        }
        let Some(next) = self
            .template
            .as_ref()
            .and_then(TryCloneBody::try_clone_body)
        else {
            return Next::Return(self.finish(outcome, true));
        };
        let delay = match requested {
            Some(d) if d > policy.retry_after_cap => match policy.retry_after_mode {
                RetryAfterMode::Clamp => policy.retry_after_cap,
                RetryAfterMode::FailFast => {
                    return Next::Return(Err(Box::new(RetryAfterExceeded {
                        requested: d,
                        cap: policy.retry_after_cap,
                        attempts: self.attempts,
                    })));
                }
            },
            Some(d) => d,
            None => {
                let rng = self.rng.get_or_insert_with(|| Box::new(policy.rng()));
                policy
                    .backoff
                    .delay(self.attempts - 1, self.prev_delay, rng)
            }
        };
        if policy.deadline.is_some() {
            let fits = Instant::now()
                .checked_add(delay)
                .zip(self.deadline_end())
                .is_some_and(|(wake, end)| wake < end);
            if !fits {
                self.exhausted();
                return Next::Return(self.finish(outcome, true));
            }
        }
        if let Some(budget) = &policy.budget {
            if !budget.withdraw() {
                policy.events.emit(|| Event::RetryBudgetExhausted {
                    request: request_info(&self.parts),
                });
                return Next::Return(self.finish(outcome, true));
            }
        }
        if let Some(reason) = reason {
            let attempt = self.attempts;
            policy.events.emit(|| Event::Retry {
                request: request_info(&self.parts),
                attempt,
                reason: event_reason(reason, requested.is_some()),
                delay,
                from_server: requested.is_some(),
            });
        }
        self.prev_delay = delay;
        self.next = Some(next);
        let drain = outcome.ok().and_then(|res| {
            let (parts, body) = res.into_parts();
            let len = body.size_hint().upper().or_else(|| {
                parts
                    .headers
                    .get(http::header::CONTENT_LENGTH)?
                    .to_str()
                    .ok()?
                    .parse()
                    .ok()
            })?;
            (len <= policy.drain_limit && !body.is_end_stream()).then(|| Box::pin(body))
        });
        Next::Wait { delay, drain }
    }

    /// Pending until the total deadline passes, then the [`DeadlineExceeded`] error.
    fn poll_deadline(
        &self,
        deadline: &mut Option<Pin<Box<Sleep>>>,
        cx: &mut Context<'_>,
    ) -> Poll<BoxError> {
        if deadline.is_none() {
            match self.deadline_end() {
                Some(end) => *deadline = Some(Box::pin(tokio::time::sleep_until(end))),
                None => return Poll::Pending,
            }
        }
        let Some(sleep) = deadline else {
            return Poll::Pending;
        };
        ready!(sleep.as_mut().poll(cx));
        Poll::Ready(Box::new(DeadlineExceeded {
            deadline: self.policy.deadline.unwrap_or_default(),
            attempts: self.attempts.saturating_add(1),
        }))
    }

    fn deadline_end(&self) -> Option<Instant> {
        self.started?.checked_add(self.policy.deadline?)
    }

    fn finish<ResBody>(
        &self,
        outcome: Result<Response<ResBody>, BoxError>,
        attach: bool,
    ) -> Result<Response<ResBody>, BoxError> {
        outcome.map(|mut res| {
            if attach {
                res.extensions_mut().insert(RetryInfo {
                    attempts: self.attempts,
                    last_retry_after: self.last_retry_after,
                });
            }
            res
        })
    }
}

/// Reads and discards frames until the body ends, fails or is pending.
fn poll_drain<B: Body>(mut body: Pin<&mut B>, cx: &mut Context<'_>) -> Poll<()> {
    loop {
        match ready!(body.as_mut().poll_frame(cx)) {
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return Poll::Ready(()),
        }
    }
}

/// The state that waits `delay` (draining `drain` meanwhile) before the next attempt.
#[cold]
fn waiting<F, ReqBody: TryCloneBody, ResBody>(
    attempt: &Attempt<ReqBody>,
    delay: Duration,
    drain: Option<Pin<Box<ResBody>>>,
) -> State<F, ResBody> {
    if delay.is_zero() && drain.is_none() {
        return State::Ready;
    }
    let now = Instant::now();
    // Like tokio's `sleep`, an unrepresentable instant becomes ~30 years.
    let wake = now
        .checked_add(delay)
        .unwrap_or_else(|| now + Duration::from_secs(86_400 * 365 * 30));
    let mut drain_until = now + DRAIN_GRACE;
    if let Some(end) = attempt.deadline_end() {
        drain_until = drain_until.min(end);
    }
    let drain_until = drain_until.max(wake);
    State::Waiting {
        sleep: Box::pin(tokio::time::sleep_until(wake)),
        drain,
        wake,
        drain_until,
    }
}

impl<S, ReqBody, ResBody> Future for ResponseFuture<S, ReqBody, ResBody>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
    S::Error: Into<BoxError>,
    ReqBody: TryCloneBody,
    ResBody: Body,
{
    type Output = Result<Response<ResBody>, BoxError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // The common case, a first attempt that succeeds, never leaves `poll_attempt`.
        if let Some(out) = ready!(self.as_mut().poll_attempt(cx)) {
            return Poll::Ready(out);
        }
        self.poll_retrying(cx)
    }
}

impl<S, ReqBody, ResBody> ResponseFuture<S, ReqBody, ResBody>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
    S::Error: Into<BoxError>,
    ReqBody: TryCloneBody,
    ResBody: Body,
{
    /// Polls the attempt in flight, if any: `Ready(Some(_))` when the logical request is done,
    /// `Ready(None)` when there is no attempt in flight (a wait, a retry to send, or done).
    #[inline]
    fn poll_attempt(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Response<ResBody>, BoxError>>> {
        let mut this = self.project();
        let StateProj::Calling { future } = this.state.as_mut().project() else {
            return Poll::Ready(None);
        };
        let outcome = match future.poll(cx) {
            Poll::Ready(outcome) => outcome.map_err(Into::into),
            Poll::Pending => {
                let err = ready!(this.attempt.poll_deadline(this.deadline, cx));
                this.state.set(State::Done);
                return Poll::Ready(Some(Err(err)));
            }
        };
        match this.attempt.on_outcome(outcome) {
            Next::Return(out) => {
                this.state.set(State::Done);
                Poll::Ready(Some(out))
            }
            Next::Wait { delay, drain } => {
                this.state.set(waiting(this.attempt, delay, drain));
                Poll::Ready(None)
            }
        }
    }

    /// Everything after a failed attempt: waits, retries, and their attempts. Out of line (see
    /// [`Attempt::on_failure`]).
    #[cold]
    #[inline(never)]
    fn poll_retrying(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<<Self as Future>::Output> {
        loop {
            let mut this = self.as_mut().project();
            match this.state.as_mut().project() {
                StateProj::Calling { .. } => {
                    if let Some(out) = ready!(self.as_mut().poll_attempt(cx)) {
                        return Poll::Ready(out);
                    }
                }
                StateProj::Waiting {
                    sleep,
                    drain,
                    wake,
                    drain_until,
                } => {
                    if let Some(body) = drain {
                        if poll_drain(body.as_mut(), cx).is_ready() {
                            *drain = None;
                        }
                    }
                    if drain.is_none() && Instant::now() >= *wake {
                        this.state.set(State::Ready);
                        continue;
                    }
                    ready!(sleep.as_mut().poll(cx));
                    if drain.is_some() && sleep.deadline() < *drain_until {
                        // Give the drain a little longer, so the connection can be reused.
                        sleep.as_mut().reset(*drain_until);
                        continue;
                    }
                    this.state.set(State::Ready);
                }
                StateProj::Ready => {
                    let service = this.service.get_or_insert_with(|| {
                        Box::new(
                            this.spare
                                .lock()
                                .unwrap_or_else(PoisonError::into_inner)
                                .clone(),
                        )
                    });
                    let ready = match service.poll_ready(cx) {
                        Poll::Ready(ready) => ready,
                        Poll::Pending => {
                            let err = ready!(this.attempt.poll_deadline(this.deadline, cx));
                            this.state.set(State::Done);
                            return Poll::Ready(Err(err));
                        }
                    };
                    if let Err(e) = ready {
                        this.state.set(State::Done);
                        return Poll::Ready(Err(e.into()));
                    }
                    let Some(body) = this.attempt.next.take() else {
                        this.state.set(State::Done);
                        return Poll::Ready(Err("pacer retry: no request body to send".into()));
                    };
                    let req = Request::from_parts(this.attempt.parts.clone(), body);
                    let future = service.call(req);
                    this.state.set(State::Calling { future });
                }
                StateProj::Done => {
                    return Poll::Ready(Err(
                        "pacer retry: response future polled after completion".into(),
                    ));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn delay_of(value: &[u8]) -> Option<Duration> {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::RETRY_AFTER,
            http::HeaderValue::from_bytes(value).unwrap(),
        );
        server_delay(&headers)
    }

    #[test]
    fn delay_seconds() {
        let secs = |s| Some(Duration::from_secs(s));
        assert_eq!(delay_of(b"5"), secs(5));
        assert_eq!(delay_of(b"0"), secs(0));
        assert_eq!(delay_of(b" 120\t"), secs(120));
        assert_eq!(delay_of(b"007"), secs(7));
        assert_eq!(delay_of(b"99999999999999999999999999"), secs(u64::MAX));
        for bad in [
            &b""[..],
            b" ",
            b"-1",
            b"+1",
            b"1.5",
            b"1e3",
            b"5 s",
            b"soon",
            b"\xff\xfe",
        ] {
            assert_eq!(delay_of(bad), None, "{bad:?}");
        }
        assert_eq!(server_delay(&HeaderMap::new()), None);
    }

    #[test]
    fn types_are_clone_debug_send_sync() {
        fn check<T: Clone + fmt::Debug + Send + Sync + 'static>() {}
        check::<RetryLayer>();
        check::<RetryPolicy>();
        check::<RetryBudget>();
        check::<Retry<tower::timeout::Timeout<()>>>();
        check::<RetryInfo>();
        check::<RetryAfterExceeded>();
    }

    #[test]
    fn send_but_not_sync_services_keep_the_future_send() {
        fn check<T: Send>(_: &T) {}
        let svc =
            tower::util::BoxCloneService::new(tower::service_fn(|_: Request<String>| async {
                Ok::<_, std::convert::Infallible>(Response::new(String::new()))
            }));
        let mut retry = Retry::new(svc, RetryPolicy::new());
        check(&retry);
        let fut = retry.call(Request::new(String::from("x")));
        check(&fut);
    }

    #[test]
    fn response_future_is_send() {
        fn check<T: Send>(_: &T) {}
        let svc = tower::service_fn(|_: Request<String>| async {
            Ok::<_, std::convert::Infallible>(Response::new(String::new()))
        });
        let mut retry = Retry::new(svc, RetryPolicy::new());
        let fut = retry.call(Request::new(String::from("x")));
        check(&fut);
    }

    /// Answers `/flaky` with a `429` (`Retry-After: 0`) the first time, everything else with
    /// `200`, and counts its clones.
    struct CountingService {
        clones: Arc<std::sync::atomic::AtomicUsize>,
        flaked: Arc<std::sync::atomic::AtomicBool>,
    }

    impl Clone for CountingService {
        fn clone(&self) -> Self {
            self.clones.fetch_add(1, Ordering::SeqCst);
            Self {
                clones: Arc::clone(&self.clones),
                flaked: Arc::clone(&self.flaked),
            }
        }
    }

    impl Service<Request<String>> for CountingService {
        type Response = Response<String>;
        type Error = std::convert::Infallible;
        type Future = std::future::Ready<Result<Response<String>, Self::Error>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, req: Request<String>) -> Self::Future {
            let mut res = Response::new(String::new());
            if req.uri().path() == "/flaky" && !self.flaked.swap(true, Ordering::SeqCst) {
                *res.status_mut() = http::StatusCode::TOO_MANY_REQUESTS;
                res.headers_mut().insert(
                    http::header::RETRY_AFTER,
                    http::HeaderValue::from_static("0"),
                );
            }
            std::future::ready(Ok(res))
        }
    }

    #[tokio::test]
    async fn only_a_retry_clones_the_inner_service() {
        use tower::ServiceExt;
        let clones = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let svc = CountingService {
            clones: Arc::clone(&clones),
            flaked: Arc::default(),
        };
        let mut retry = RetryLayer::new(RetryPolicy::new()).layer(svc);
        let built = clones.load(Ordering::SeqCst);
        for _ in 0..10 {
            let req = Request::get("/ok").body(String::new()).unwrap();
            let res = retry.ready().await.unwrap().call(req).await.unwrap();
            assert_eq!(res.status(), 200);
            assert!(res.extensions().get::<RetryInfo>().is_none());
        }
        assert_eq!(
            clones.load(Ordering::SeqCst),
            built,
            "a success clones nothing"
        );

        let req = Request::get("/flaky").body(String::new()).unwrap();
        let res = retry.ready().await.unwrap().call(req).await.unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.extensions().get::<RetryInfo>().unwrap().attempts, 2);
        assert_eq!(
            clones.load(Ordering::SeqCst),
            built + 1,
            "the retry called one clone"
        );
    }
}
