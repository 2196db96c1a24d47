//! The response future of [`Retry`](super::Retry): the per-request state machine (attempt,
//! wait and drain, retry) and its bookkeeping, [`Attempt`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use http::{HeaderMap, Request, Response, request};
use http_body::Body;
use pin_project_lite::pin_project;
use rand::rngs::SmallRng;
use tokio::time::{Instant, Sleep};
use tower_service::Service;

use super::classify::Decision;
use super::info::{DeadlineExceeded, RetryInfo};
use super::policy::RetryPolicy;
use super::reason::RetryReason;
use crate::BoxError;
use crate::body::TryCloneBody;
use crate::events::event::{Event, RequestInfo};
use crate::namespace::Namespace;
use crate::retry_after::cap::{RetryAfterExceeded, RetryAfterMode};
use crate::retry_after::parse::retry_after;

/// How long a drain of a failed response body may delay the next attempt past its backoff.
const DRAIN_GRACE: Duration = Duration::from_secs(1);

/// The server-requested delay of a response, if any: `Retry-After` as delay-seconds or any of
/// the three HTTP-date forms (see [`crate::retry_after::retry_after`]).
pub(super) fn server_delay(headers: &HeaderMap) -> Option<Duration> {
    retry_after(headers, std::time::SystemTime::now())
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

impl<S, ReqBody, ResBody> ResponseFuture<S, ReqBody, ResBody>
where
    S: Service<Request<ReqBody>>,
{
    /// The future of a request whose first attempt, `future`, is in flight; `template` is the
    /// body to copy for retries (`None`: sent once).
    #[inline]
    pub(super) fn new(
        future: S::Future,
        spare: Arc<Mutex<S>>,
        policy: Arc<RetryPolicy>,
        parts: request::Parts,
        template: Option<ReqBody>,
    ) -> Self {
        ResponseFuture {
            state: State::Calling { future },
            spare,
            service: None,
            deadline: None,
            attempt: Attempt {
                started: policy.deadline.map(|_| Instant::now()),
                policy,
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

impl<S, ReqBody, ResBody> fmt::Debug for ResponseFuture<S, ReqBody, ResBody>
where
    S: Service<Request<ReqBody>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("attempts", &self.attempt.attempts)
            .field("method", &self.attempt.parts.method)
            .field("path", &self.attempt.parts.uri.path())
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
            .get::<Namespace>()
            .unwrap_or_else(|| default_namespace()),
    }
}

fn default_namespace() -> &'static Namespace {
    static DEFAULT: std::sync::OnceLock<Namespace> = std::sync::OnceLock::new();
    DEFAULT.get_or_init(Namespace::default)
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
                    return Next::Return(Err(Box::new(RetryAfterExceeded::new(
                        d,
                        policy.retry_after_cap,
                        self.attempts,
                    ))));
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
                reason,
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
        Poll::Ready(Box::new(DeadlineExceeded::new(
            self.policy.deadline.unwrap_or_default(),
            self.attempts.saturating_add(1),
        )))
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
