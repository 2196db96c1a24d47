use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use http::header::{HeaderName, HeaderValue, RETRY_AFTER};
use http::{Request, Response, StatusCode};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use super::limiter::{Acquire, Level, RateLimited, RateLimiter};
use crate::{BoxError, Namespace};

/// Finds the namespace a request is made for.
///
/// Implemented for [`FromExtension`] (the default: the [`Namespace`] extension), [`FromHeader`]
/// (servers keying on a tenant header) and any `Fn(&Request<B>) -> Namespace` closure (for
/// example a path segment).
pub trait ExtractNamespace<B> {
    /// The namespace of `request`.
    fn extract(&self, request: &Request<B>) -> Namespace;
}

/// Reads the [`Namespace`] request extension; requests without one use the default namespace.
#[derive(Debug, Clone, Copy, Default)]
pub struct FromExtension;

impl<B> ExtractNamespace<B> for FromExtension {
    #[inline]
    fn extract(&self, request: &Request<B>) -> Namespace {
        Namespace::of(request)
    }
}

/// Reads the namespace from a request header, as a server keying on a tenant header does.
///
/// Header values are untrusted: a missing value, or one that is not 1 to
/// [`Namespace::MAX_UNTRUSTED_LEN`] bytes of visible ASCII, is accounted to the default
/// namespace, so malformed names cannot escape the limit.
#[derive(Debug, Clone)]
pub struct FromHeader(HeaderName);

impl FromHeader {
    /// Keys requests on the value of `header`.
    pub fn new(header: HeaderName) -> Self {
        Self(header)
    }
}

impl<B> ExtractNamespace<B> for FromHeader {
    fn extract(&self, request: &Request<B>) -> Namespace {
        request
            .headers()
            .get(&self.0)
            .and_then(|value| Namespace::from_untrusted(value.as_bytes()))
            .unwrap_or_default()
    }
}

impl<B, F> ExtractNamespace<B> for F
where
    F: Fn(&Request<B>) -> Namespace,
{
    fn extract(&self, request: &Request<B>) -> Namespace {
        self(request)
    }
}

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
    inner: S,
    limiter: RateLimiter,
    _mode: M,
    extractor: E,
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

/// Reject mode. With the in-memory state the decision is synchronous, in `call`; with a shared
/// store it takes a round trip, so the future asks the store first (a clone of the service is
/// called once the slot is granted, hence `S: Clone`, as in wait mode).
impl<S, E, ReqBody, ResBody> Service<Request<ReqBody>> for RateLimit<S, Reject, E>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
    ResBody: Default,
    E: ExtractNamespace<ReqBody>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = RejectFuture<S, Request<ReqBody>, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let namespace = self.extractor.extract(&request);
        let kind = match self.limiter.begin_now(namespace) {
            Ok(None) => RejectKind::Inner {
                future: self.inner.call(request),
            },
            Ok(Some(acquire)) => RejectKind::Deciding {
                deciding: Box::new(Deciding {
                    acquire,
                    limiter: self.limiter.clone(),
                    service: self.inner.clone(),
                    request: Some(request),
                }),
            },
            Err(refused) => RejectKind::Rejected {
                response: Some(too_many_requests(&self.limiter, &refused)),
            },
        };
        RejectFuture { kind }
    }
}

pin_project! {
    /// The response future of [`RateLimit`] in reject mode.
    pub struct RejectFuture<S, Req, B>
    where
        S: Service<Req>,
    {
        #[pin]
        kind: RejectKind<S, Req, B>,
    }
}

pin_project! {
    #[project = RejectProj]
    enum RejectKind<S, Req, B>
    where
        S: Service<Req>,
    {
        // Boxed, as in wait mode: only a shared store's round trip needs it.
        Deciding {
            deciding: Box<Deciding<S, Req>>,
        },
        Inner {
            #[pin]
            future: S::Future,
        },
        Rejected {
            response: Option<Response<B>>,
        },
    }
}

/// A request whose slot a shared store is deciding, with what it needs once granted.
struct Deciding<S, Req> {
    acquire: Acquire,
    limiter: RateLimiter,
    service: S,
    request: Option<Req>,
}

impl<S, Req, B> Future for RejectFuture<S, Req, B>
where
    S: Service<Req, Response = Response<B>>,
    B: Default,
{
    type Output = Result<Response<B>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut kind = self.project().kind;
        loop {
            match kind.as_mut().project() {
                RejectProj::Deciding { deciding } => {
                    let Deciding {
                        acquire,
                        limiter,
                        service,
                        request,
                    } = &mut **deciding;
                    let next = match ready!(Pin::new(acquire).poll(cx)) {
                        Err(refused) => RejectKind::Rejected {
                            response: Some(too_many_requests(limiter, &refused)),
                        },
                        Ok(()) => {
                            ready!(service.poll_ready(cx))?;
                            match request.take() {
                                Some(request) => RejectKind::Inner {
                                    future: service.call(request),
                                },
                                None => RejectKind::Rejected { response: None },
                            }
                        }
                    };
                    kind.set(next);
                }
                RejectProj::Inner { future } => return future.poll(cx),
                // Polled again after completion: answer another 429 rather than panic.
                RejectProj::Rejected { response } => {
                    return Poll::Ready(Ok(response
                        .take()
                        .unwrap_or_else(|| status_only(StatusCode::TOO_MANY_REQUESTS))));
                }
            }
        }
    }
}

impl<S: Service<Req>, Req, B> fmt::Debug for RejectFuture<S, Req, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.kind {
            RejectKind::Deciding { .. } => "RejectFuture::Deciding",
            RejectKind::Inner { .. } => "RejectFuture::Inner",
            RejectKind::Rejected { .. } => "RejectFuture::Rejected",
        })
    }
}

/// `RateLimit-Policy` (draft-ietf-httpapi-ratelimit-headers).
pub const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
/// `RateLimit` (draft-ietf-httpapi-ratelimit-headers).
pub const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

fn status_only<B: Default>(status: StatusCode) -> Response<B> {
    let mut response = Response::new(B::default());
    *response.status_mut() = status;
    response
}

/// Whole seconds, rounded up, at least 1: what a client can wait and then find a free slot.
fn whole_seconds(delay: Duration) -> u64 {
    let secs = delay.as_secs() + u64::from(delay.subsec_nanos() > 0);
    secs.max(1)
}

/// The `429` reject mode answers: `Retry-After`, both buckets' policies, and the state of the
/// bucket that refused. A refusal because the shared store is out ([`Level::Store`], fail
/// closed) is not a rate limit: it answers `503 Service Unavailable` with `Retry-After` only.
pub(crate) fn too_many_requests<B: Default>(
    limiter: &RateLimiter,
    refused: &RateLimited,
) -> Response<B> {
    let wait = whole_seconds(refused.retry_after);
    if refused.level == Level::Store {
        let mut response = status_only(StatusCode::SERVICE_UNAVAILABLE);
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(wait));
        return response;
    }
    let mut response = status_only(StatusCode::TOO_MANY_REQUESTS);
    let namespace = limiter.namespace_quota(&refused.namespace);
    let global = limiter.global_quota();
    let policy = format!(
        "\"namespace\";q={};w={}, \"global\";q={};w={}",
        namespace.burst(),
        whole_seconds(namespace.refill_time()),
        global.burst(),
        whole_seconds(global.refill_time()),
    );
    let state = format!("\"{}\";r=0;t={wait}", refused.level.as_str());
    let headers = response.headers_mut();
    headers.insert(RETRY_AFTER, HeaderValue::from(wait));
    // Built from numbers and fixed names only: always a valid header value.
    if let Ok(value) = HeaderValue::from_str(&policy) {
        headers.insert(RATELIMIT_POLICY, value);
    }
    if let Ok(value) = HeaderValue::from_str(&state) {
        headers.insert(RATELIMIT, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rate_limit::Level;

    #[test]
    fn whole_seconds_round_up_and_are_at_least_one() {
        assert_eq!(whole_seconds(Duration::ZERO), 1);
        assert_eq!(whole_seconds(Duration::from_millis(1)), 1);
        assert_eq!(whole_seconds(Duration::from_secs(1)), 1);
        assert_eq!(whole_seconds(Duration::from_millis(1001)), 2);
        assert_eq!(whole_seconds(Duration::from_secs(59)), 59);
    }

    #[test]
    fn level_names_are_the_policy_names() {
        assert_eq!(Level::Global.as_str(), "global");
        assert_eq!(Level::Namespace.as_str(), "namespace");
    }
}
