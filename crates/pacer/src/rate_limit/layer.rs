//! [`RateLimitLayer`] and its service [`RateLimit`], with the wait mode (clients) and its
//! [`ResponseFuture`]; the reject mode (servers) is in `reject.rs`.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::{Request, Response};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use super::acquire::Acquire;
use super::extract::{ExtractNamespace, FromExtension};
use super::level::RateLimited;
use super::limiter::RateLimiter;
use crate::BoxError;

/// Wait mode (clients): a request waits for its slots, at most the limiter's `max_wait`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Wait;

/// Reject mode (servers): a request without a free slot is answered `429 Too Many Requests`
/// at once, never queued.
#[derive(Debug, Clone, Copy, Default)]
pub struct Reject;

/// Applies a [`RateLimiter`] to every request, keyed by the request's namespace.
///
/// `M` is the mode: [`Wait`] for clients ([`RateLimitLayer::new`]) or [`Reject`] for servers
/// ([`RateLimitLayer::reject`]). `E` finds the namespace ([`FromExtension`] by default).
#[derive(Debug, Clone)]
pub struct RateLimitLayer<M = Wait, E = FromExtension> {
    limiter: RateLimiter,
    mode: M,
    extractor: E,
}

impl RateLimitLayer {
    /// Wait mode: requests wait for their slots (at most `max_wait`), then go; a request that
    /// would wait longer fails with [`RateLimited`] (boxed) without being sent.
    pub fn new(limiter: RateLimiter) -> Self {
        Self {
            limiter,
            mode: Wait,
            extractor: FromExtension,
        }
    }
}

impl RateLimitLayer<Reject> {
    /// Reject mode: a request without a free slot gets `429 Too Many Requests` with
    /// `Retry-After` and the IETF `RateLimit-Policy` and `RateLimit` fields.
    pub fn reject(limiter: RateLimiter) -> Self {
        Self {
            limiter,
            mode: Reject,
            extractor: FromExtension,
        }
    }
}

impl<M, E> RateLimitLayer<M, E> {
    /// Finds each request's namespace with `extractor` instead.
    pub fn with_extractor<E2>(self, extractor: E2) -> RateLimitLayer<M, E2> {
        RateLimitLayer {
            limiter: self.limiter,
            mode: self.mode,
            extractor,
        }
    }

    /// The limiter this layer applies.
    pub fn limiter(&self) -> &RateLimiter {
        &self.limiter
    }
}

impl<S, M: Clone, E: Clone> Layer<S> for RateLimitLayer<M, E> {
    type Service = RateLimit<S, M, E>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimit {
            inner,
            limiter: self.limiter.clone(),
            _mode: self.mode.clone(),
            extractor: self.extractor.clone(),
        }
    }
}

/// The service [`RateLimitLayer`] produces.
#[derive(Debug, Clone)]
pub struct RateLimit<S, M = Wait, E = FromExtension> {
    pub(super) inner: S,
    pub(super) limiter: RateLimiter,
    pub(super) _mode: M,
    pub(super) extractor: E,
}

impl<S, M, E> RateLimit<S, M, E> {
    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, E, ReqBody, ResBody> Service<Request<ReqBody>> for RateLimit<S, Wait, E>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
    S::Error: Into<BoxError>,
    E: ExtractNamespace<ReqBody>,
{
    type Response = Response<ResBody>;
    type Error = BoxError;
    type Future = ResponseFuture<S, Request<ReqBody>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let namespace = self.extractor.extract(&request);
        let state = match self.limiter.begin(namespace) {
            // The common case decides synchronously and calls the service that was made ready.
            Ok(None) => State::Calling {
                future: self.inner.call(request),
            },
            // Waiting: the ready service stays here for the next call; a clone is made ready
            // once the slot comes, so no readiness is held while waiting.
            Ok(Some(acquire)) => State::Waiting {
                waiting: Box::new(Waiting {
                    acquire: Some(acquire),
                    service: self.inner.clone(),
                    request: Some(request),
                }),
            },
            Err(refused) => State::Refused {
                error: Some(Box::new(refused)),
            },
        };
        ResponseFuture { state }
    }
}

pin_project! {
    /// The response future of [`RateLimit`] in wait mode.
    pub struct ResponseFuture<S, Req>
    where
        S: Service<Req>,
    {
        #[pin]
        state: State<S, Req>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, Req>
    where
        S: Service<Req>,
    {
        // Boxed, like `Refused`: the happy path never waits, and a small future is cheaper to
        // build and move through every layer above.
        Waiting {
            waiting: Box<Waiting<S, Req>>,
        },
        Calling {
            #[pin]
            future: S::Future,
        },
        Refused {
            error: Option<Box<RateLimited>>,
        },
    }
}

/// A request waiting for its slot, with a clone of the service to call once it comes.
struct Waiting<S, Req> {
    acquire: Option<Acquire>,
    service: S,
    request: Option<Req>,
}

impl<S, Req, Res> Future for ResponseFuture<S, Req>
where
    S: Service<Req, Response = Res>,
    S::Error: Into<BoxError>,
{
    type Output = Result<Res, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        loop {
            match state.as_mut().project() {
                StateProj::Waiting { waiting } => {
                    let Waiting {
                        acquire,
                        service,
                        request,
                    } = &mut **waiting;
                    if let Some(pending) = acquire {
                        let acquired = ready!(Pin::new(pending).poll(cx));
                        *acquire = None;
                        acquired?;
                    }
                    ready!(service.poll_ready(cx)).map_err(Into::into)?;
                    let Some(request) = request.take() else {
                        return Poll::Ready(
                            Err("rate limit future polled after completion".into()),
                        );
                    };
                    let future = service.call(request);
                    state.set(State::Calling { future });
                }
                StateProj::Calling { future } => {
                    return future.poll(cx).map_err(Into::into);
                }
                StateProj::Refused { error } => {
                    return Poll::Ready(Err(match error.take() {
                        Some(refused) => refused as BoxError,
                        None => "rate limit future polled after completion".into(),
                    }));
                }
            }
        }
    }
}

impl<S: Service<Req>, Req> fmt::Debug for ResponseFuture<S, Req> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
