//! [`BearerAuthLayer`], [`BearerAuth`] and [`ResponseFuture`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http::header::AUTHORIZATION;
use http::{Request, Response, StatusCode, request};
use http_body::Body;
use pin_project_lite::pin_project;
use tokio::time::Instant;
use tower_layer::Layer;
use tower_service::Service;

use super::cache::{self, Cache, Decision, Issued, Timing, Waiter};
use super::flight;
use super::shared::{
    DEFAULT_MAX_TOKEN_RESPONSE_BYTES, DEFAULT_RENEW_MARGIN, DEFAULT_RENEW_RETRY_INTERVAL,
    DEFAULT_TOKEN_NAMESPACE, DEFAULT_TOKEN_TIMEOUT, Settings, Shared,
};
use super::source::TokenSource;
use crate::BoxError;
use crate::body::TryCloneBody;
use crate::namespace::Namespace;

/// Puts a bearer token from a [`TokenSource`] on every request; see the
/// [module docs](super). `Clone`: clones share one token cache.
#[derive(Clone)]
pub struct BearerAuthLayer {
    shared: Arc<Shared>,
}

impl fmt::Debug for BearerAuthLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.shared, f)
    }
}

impl BearerAuthLayer {
    /// A layer over `source` with the default settings.
    pub fn new(source: impl TokenSource) -> BearerAuthLayer {
        Self::builder(source).build()
    }

    /// A builder to change the settings.
    pub fn builder<T: TokenSource>(source: T) -> BearerAuthBuilder {
        BearerAuthBuilder {
            source: Box::new(source),
            source_type: std::any::type_name::<T>(),
            settings: Settings {
                namespace: Namespace::new(DEFAULT_TOKEN_NAMESPACE),
                token_timeout: DEFAULT_TOKEN_TIMEOUT,
                max_response_bytes: DEFAULT_MAX_TOKEN_RESPONSE_BYTES,
                timing: Timing {
                    margin: DEFAULT_RENEW_MARGIN,
                    retry_interval: DEFAULT_RENEW_RETRY_INTERVAL,
                },
            },
        }
    }

    /// The namespace token requests are made for.
    pub fn token_namespace(&self) -> &Namespace {
        &self.shared.settings.namespace
    }
}

/// Builds a [`BearerAuthLayer`]; see [`BearerAuthLayer::builder`].
pub struct BearerAuthBuilder {
    source: Box<dyn TokenSource>,
    source_type: &'static str,
    settings: Settings,
}

impl fmt::Debug for BearerAuthBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BearerAuthBuilder")
            .field("source", &self.source_type)
            .field("settings", &self.settings)
            .finish()
    }
}

impl BearerAuthBuilder {
    /// The namespace token requests are made for (rate limit, metrics), instead of
    /// [`DEFAULT_TOKEN_NAMESPACE`]. Give the token endpoint its own: every tenant waits for
    /// a renewal, so it must not share a bucket with any one of them.
    pub fn namespace(mut self, namespace: Namespace) -> Self {
        self.settings.namespace = namespace;
        self
    }

    /// Renews a token this long before it expires (default [`DEFAULT_RENEW_MARGIN`]; at
    /// most half the token's lifetime, so short-lived tokens are not renewed at every call).
    pub fn renew_margin(mut self, margin: Duration) -> Self {
        self.settings.timing.margin = margin;
        self
    }

    /// Bounds each token request, all its exchanges (a refresh, then the credentials) and
    /// answer bodies included (default [`DEFAULT_TOKEN_TIMEOUT`]). Callers waiting for it
    /// fail with [`AuthError::TimedOut`](super::AuthError::TimedOut) when it runs out.
    pub fn token_timeout(mut self, timeout: Duration) -> Self {
        self.settings.token_timeout = timeout;
        self
    }

    /// The longest token answer read (default [`DEFAULT_MAX_TOKEN_RESPONSE_BYTES`]); a
    /// longer one is an [`AuthError::InvalidAnswer`](super::AuthError::InvalidAnswer).
    pub fn max_response_bytes(mut self, limit: usize) -> Self {
        self.settings.max_response_bytes = limit;
        self
    }

    /// After a renewal started inside the margin fails, callers keep the still-valid token
    /// and no new renewal starts for this long (default [`DEFAULT_RENEW_RETRY_INTERVAL`]),
    /// so a failing endpoint is not asked once per call.
    pub fn renew_retry_interval(mut self, interval: Duration) -> Self {
        self.settings.timing.retry_interval = interval;
        self
    }

    /// The layer.
    pub fn build(self) -> BearerAuthLayer {
        BearerAuthLayer {
            shared: Arc::new(Shared {
                source: self.source,
                source_type: self.source_type,
                settings: self.settings,
                cache: Cache::default(),
            }),
        }
    }
}

impl<S: Clone> Layer<S> for BearerAuthLayer {
    type Service = BearerAuth<S>;

    fn layer(&self, inner: S) -> BearerAuth<S> {
        BearerAuth {
            spare: Arc::new(Mutex::new(inner.clone())),
            inner,
            shared: Arc::clone(&self.shared),
        }
    }
}

/// The service [`BearerAuthLayer`] builds: the inner service with a bearer token on every
/// request. `Clone` when `S` is (clones share the token cache).
pub struct BearerAuth<S> {
    inner: S,
    // Replays after a 401 clone the service from here: a request that is not refused then
    // costs one reference count instead of a clone of the whole stack. Behind a mutex so a
    // Send-but-not-Sync service still gives a Sync `BearerAuth`.
    spare: Arc<Mutex<S>>,
    shared: Arc<Shared>,
}

impl<S: Clone> Clone for BearerAuth<S> {
    fn clone(&self) -> Self {
        BearerAuth {
            inner: self.inner.clone(),
            spare: Arc::clone(&self.spare),
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<S: fmt::Debug> fmt::Debug for BearerAuth<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BearerAuth")
            .field("auth", &self.shared)
            .field("inner", &self.inner)
            .finish()
    }
}

impl<S> BearerAuth<S> {
    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for BearerAuth<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    ReqBody: TryCloneBody + From<Bytes> + Send + 'static,
    ResBody: Body + Send + 'static,
    ResBody::Data: Send,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response<ResBody>;
    type Error = BoxError;
    type Future = ResponseFuture<S, ReqBody, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let issued = match token_or_wait(&self.shared, &self.inner, None) {
            Ok(issued) => issued,
            // No valid token: wait with a clone, made ready once the token is there, so no
            // readiness is held while waiting (the ready service stays for the next call).
            Err(waiter) => return self.slow(request, waiter),
        };
        let (request, replay) = authorize(request, &issued);
        ResponseFuture {
            state: State::Calling {
                future: self.inner.call(request),
            },
            replay,
            generation: issued.generation,
            shared: Arc::clone(&self.shared),
            spare: Arc::clone(&self.spare),
        }
    }
}

impl<S> BearerAuth<S> {
    fn slow<ReqBody, ResBody>(
        &self,
        request: Request<ReqBody>,
        waiter: Waiter,
    ) -> ResponseFuture<S, ReqBody, ResBody>
    where
        S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
        S::Future: Send + 'static,
        S::Error: Into<BoxError>,
        ReqBody: TryCloneBody + From<Bytes> + Send + 'static,
        ResBody: Body + Send + 'static,
        ResBody::Data: Send,
        ResBody::Error: Into<BoxError>,
    {
        let future = wait_then_send(
            Arc::clone(&self.shared),
            self.inner.clone(),
            request,
            waiter,
        );
        ResponseFuture {
            state: State::Slow {
                future: Box::pin(future),
            },
            replay: None,
            generation: 0,
            shared: Arc::clone(&self.shared),
            spare: Arc::clone(&self.spare),
        }
    }
}

/// A request kept for one replay after a `401`.
struct Replay<ReqBody> {
    parts: request::Parts,
    body: ReqBody,
}

/// `request` with the token, and a copy for a replay if its body can be copied.
fn authorize<ReqBody: TryCloneBody>(
    request: Request<ReqBody>,
    issued: &Issued,
) -> (Request<ReqBody>, Option<Box<Replay<ReqBody>>>) {
    let (mut parts, body) = request.into_parts();
    parts.headers.insert(AUTHORIZATION, issued.bearer.clone());
    match body.try_clone_body() {
        Some(copy) => {
            let replay = Box::new(Replay {
                parts: parts.clone(),
                body,
            });
            (Request::from_parts(parts, copy), Some(replay))
        }
        None => (Request::from_parts(parts, body), None),
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

pin_project! {
    /// The response future of [`BearerAuth`]. A request sent with a cached token polls the
    /// inner future directly; waiting for a token and replaying after a `401` are boxed
    /// `async` steps. Dropping it never cancels a token request others wait for.
    pub struct ResponseFuture<S, ReqBody, ResBody>
    where
        S: Service<Request<ReqBody>>,
    {
        #[pin]
        state: State<S::Future, ResBody>,
        replay: Option<Box<Replay<ReqBody>>>,
        generation: u64,
        shared: Arc<Shared>,
        spare: Arc<Mutex<S>>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, ResBody> {
        Calling { #[pin] future: F },
        Slow { future: BoxFuture<Result<Response<ResBody>, BoxError>> },
        Done,
    }
}

impl<S, ReqBody, ResBody> fmt::Debug for ResponseFuture<S, ReqBody, ResBody>
where
    S: Service<Request<ReqBody>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Calling { .. } => "calling",
            State::Slow { .. } => "authorizing",
            State::Done => "done",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .field("replayable", &self.replay.is_some())
            .finish_non_exhaustive()
    }
}

impl<S, ReqBody, ResBody> Future for ResponseFuture<S, ReqBody, ResBody>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    ReqBody: TryCloneBody + From<Bytes> + Send + 'static,
    ResBody: Body + Send + 'static,
    ResBody::Data: Send,
    ResBody::Error: Into<BoxError>,
{
    type Output = Result<Response<ResBody>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Calling { future } => {
                    let response = ready!(future.poll(cx)).map_err(Into::into)?;
                    if response.status() != StatusCode::UNAUTHORIZED {
                        this.state.set(State::Done);
                        return Poll::Ready(Ok(response));
                    }
                    let Some(replay) = this.replay.take() else {
                        // Not replayable: the caller gets the 401, the next one a new token.
                        this.shared.cache.reject(*this.generation);
                        this.state.set(State::Done);
                        return Poll::Ready(Ok(response));
                    };
                    let service = this
                        .spare
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .clone();
                    let future = renew_then_replay(
                        Arc::clone(this.shared),
                        service,
                        *replay,
                        *this.generation,
                    );
                    this.state.set(State::Slow {
                        future: Box::pin(future),
                    });
                }
                StateProj::Slow { future } => {
                    let output = ready!(future.as_mut().poll(cx));
                    this.state.set(State::Done);
                    return Poll::Ready(output);
                }
                StateProj::Done => {
                    return Poll::Ready(Err(
                        "pacer::auth::ResponseFuture polled after completion".into()
                    ));
                }
            }
        }
    }
}

/// The token for a caller whose `refused` token was answered `401` (or `None`): the cached
/// one if it is valid (and not that one), else the flight to wait for. Synchronous, so that
/// no reference to `service` is held across an await (`S` need not be `Sync`).
fn token_or_wait<S, ReqBody, ResBody>(
    shared: &Arc<Shared>,
    service: &S,
    refused: Option<u64>,
) -> Result<Issued, Waiter>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    ReqBody: From<Bytes> + Send + 'static,
    ResBody: Body + Send + 'static,
    ResBody::Data: Send,
    ResBody::Error: Into<BoxError>,
{
    match shared.cache.decide(Instant::now(), refused) {
        Decision::Use(issued) => Ok(issued),
        Decision::UseAndRenew(issued, start) => {
            flight::spawn(Arc::clone(shared), service.clone(), start);
            Ok(issued)
        }
        Decision::Wait(waiter) => Err(waiter),
        Decision::StartAndWait(start, waiter) => {
            flight::spawn(Arc::clone(shared), service.clone(), start);
            Err(waiter)
        }
    }
}

/// Sends `request` with `service` once the flight `waiter` watches has a token; replays
/// once after a `401`.
async fn wait_then_send<S, ReqBody, ResBody>(
    shared: Arc<Shared>,
    mut service: S,
    request: Request<ReqBody>,
    waiter: Waiter,
) -> Result<Response<ResBody>, BoxError>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    ReqBody: TryCloneBody + From<Bytes> + Send + 'static,
    ResBody: Body + Send + 'static,
    ResBody::Data: Send,
    ResBody::Error: Into<BoxError>,
{
    let issued = cache::wait(waiter).await?;
    let (request, replay) = authorize(request, &issued);
    std::future::poll_fn(|cx| service.poll_ready(cx))
        .await
        .map_err(Into::into)?;
    let response = service.call(request).await.map_err(Into::into)?;
    if response.status() != StatusCode::UNAUTHORIZED {
        return Ok(response);
    }
    match replay {
        Some(replay) => renew_then_replay(shared, service, *replay, issued.generation).await,
        None => {
            shared.cache.reject(issued.generation);
            Ok(response)
        }
    }
}

/// The replay after token `refused` was answered `401`: a new token (one renewal, shared
/// with every caller refused the same token), then one more send; its answer, `401` or not,
/// is returned as it is.
async fn renew_then_replay<S, ReqBody, ResBody>(
    shared: Arc<Shared>,
    mut service: S,
    replay: Replay<ReqBody>,
    refused: u64,
) -> Result<Response<ResBody>, BoxError>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    ReqBody: From<Bytes> + Send + 'static,
    ResBody: Body + Send + 'static,
    ResBody::Data: Send,
    ResBody::Error: Into<BoxError>,
{
    let issued = match token_or_wait(&shared, &service, Some(refused)) {
        Ok(issued) => issued,
        Err(waiter) => cache::wait(waiter).await?,
    };
    let mut request = Request::from_parts(replay.parts, replay.body);
    request.headers_mut().insert(AUTHORIZATION, issued.bearer);
    std::future::poll_fn(|cx| service.poll_ready(cx))
        .await
        .map_err(Into::into)?;
    service.call(request).await.map_err(Into::into)
}
