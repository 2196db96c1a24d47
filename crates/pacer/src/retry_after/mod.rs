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
//! # async fn main() -> Result<(), std::convert::Infallible> {
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
mod gate;
pub(crate) mod parse;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::{Duration, SystemTime};

use http::uri::Authority;
use http::{Extensions, Request, Response, StatusCode, Uri};
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};
use tower_layer::Layer;
use tower_service::Service;

use crate::events::observer::Events;

pub use cap::{RetryAfterExceeded, RetryAfterMode};
pub use gate::{
    DEFAULT_MAX_UPSTREAMS, DEFAULT_RELEASE_WINDOW, PauseGate, PauseGateBuilder, PauseKey,
};
pub use parse::{
    ResetHeader, parse_retry_after, rate_limit_reset, retry_after, x_rate_limit_reset,
};

/// Default cap on a server-given delay.
pub const DEFAULT_MAX_DELAY: Duration = Duration::from_secs(60);

type CustomKeyFn = dyn Fn(&Uri, &Extensions) -> PauseKey + Send + Sync;

/// How a request is mapped to its [`PauseKey`].
#[derive(Clone)]
enum KeyFn {
    Authority,
    Custom(Arc<CustomKeyFn>),
}

impl KeyFn {
    #[inline]
    fn key(&self, uri: &Uri, extensions: &Extensions) -> PauseKey {
        match self {
            KeyFn::Authority => authority_key(uri),
            KeyFn::Custom(f) => f(uri, extensions),
        }
    }
}

impl fmt::Debug for KeyFn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyFn::Authority => f.write_str("Authority"),
            KeyFn::Custom(_) => f.write_str("Custom(..)"),
        }
    }
}

/// The default key: the URI's authority (empty for relative URIs).
fn authority_key(uri: &Uri) -> PauseKey {
    PauseKey::authority(uri.authority().map_or("", |a| a.as_str()))
}

/// The upstream a request went to, kept for naming it in events: the URI's scheme (when it is
/// `http` or `https`) and authority. Cloning an authority only bumps a reference count.
#[derive(Clone, Debug)]
struct Upstream {
    scheme: Option<&'static str>,
    authority: Option<Authority>,
}

impl Upstream {
    fn of(uri: &Uri) -> Self {
        let scheme = match uri.scheme_str() {
            Some(s) if s.eq_ignore_ascii_case("https") => Some("https"),
            Some(s) if s.eq_ignore_ascii_case("http") => Some("http"),
            _ => None,
        };
        Self {
            scheme,
            authority: uri.authority().cloned(),
        }
    }

    /// `scheme://host:port`: never the user info an authority may carry (it can hold a
    /// password), empty for a relative URI.
    fn label(&self) -> String {
        let Some(authority) = &self.authority else {
            return String::new();
        };
        let mut label = String::new();
        if let Some(scheme) = self.scheme {
            label.push_str(scheme);
            label.push_str("://");
        }
        label.push_str(authority.host());
        if let Some(port) = authority.port() {
            label.push(':');
            label.push_str(port.as_str());
        }
        label
    }
}

/// The settings a response future needs: all `Copy`, so nothing is allocated per request.
#[derive(Clone, Copy, Debug)]
struct Settings {
    max_delay: Duration,
    rate_limit_header: bool,
    x_rate_limit_reset: Option<ResetHeader>,
    wall_clock: fn() -> SystemTime,
}

impl Settings {
    /// The pause a response asks for, capped; `None` for no pause.
    fn delay_for(&self, status: StatusCode, headers: &http::HeaderMap) -> Option<Duration> {
        let throttled =
            status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE;
        if !throttled && !self.rate_limit_header && self.x_rate_limit_reset.is_none() {
            return None;
        }
        let now = (self.wall_clock)();
        let mut delay = None;
        if throttled {
            delay = retry_after(headers, now);
        }
        if delay.is_none() && self.rate_limit_header {
            delay = rate_limit_reset(headers);
        }
        if delay.is_none() {
            if let Some(mode) = self.x_rate_limit_reset {
                delay = if throttled {
                    // The status already says the quota is used up.
                    parse::x_rate_limit_reset_value(headers, mode, now)
                } else {
                    x_rate_limit_reset(headers, mode, now)
                };
            }
        }
        delay
            .filter(|d| !d.is_zero())
            .map(|d| d.min(self.max_delay))
    }
}

/// Layer that pauses an upstream after it asks for a delay; see the [module docs](self).
///
/// Defaults: a fresh [`PauseGate`] (1024 upstreams, 1 s release window), delays capped at
/// [`DEFAULT_MAX_DELAY`] (clamped), only `Retry-After` on 429/503 as a source, keyed by URI
/// authority, `SystemTime::now` as the wall clock for HTTP-dates.
#[derive(Clone, Debug)]
pub struct RetryAfterLayer {
    gate: PauseGate,
    key: KeyFn,
    settings: Settings,
    events: Events,
}

impl Default for RetryAfterLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl RetryAfterLayer {
    /// A layer with the defaults and its own gate.
    pub fn new() -> Self {
        Self {
            gate: PauseGate::new(),
            key: KeyFn::Authority,
            settings: Settings {
                max_delay: DEFAULT_MAX_DELAY,
                rate_limit_header: false,
                x_rate_limit_reset: None,
                wall_clock: SystemTime::now,
            },
            events: Events::none(),
        }
    }

    /// Reports the pauses this layer sets to `observer` (see [`crate::events`]):
    /// [`Event::PauseStarted`](crate::events::Event::PauseStarted) when a response opens a
    /// pause or pushes one back by a second or more, and
    /// [`Event::PauseEnded`](crate::events::Event::PauseEnded) once when it ends. Default:
    /// none (then nothing is spent on events).
    ///
    /// ```
    /// # #[cfg(feature = "metrics")] {
    /// use pacer::metrics::Metrics;
    /// use pacer::retry_after::RetryAfterLayer;
    ///
    /// let mut registry = prometheus_client::registry::Registry::default();
    /// let metrics = Metrics::new(&mut registry);
    /// let layer = RetryAfterLayer::new().observer(metrics.clone());
    /// # }
    /// ```
    pub fn observer(mut self, observer: impl Into<Events>) -> Self {
        self.events = observer.into();
        self
    }

    /// Uses `gate` for the pauses, e.g. one shared with other layers or stacks.
    pub fn with_gate(mut self, gate: PauseGate) -> Self {
        self.gate = gate;
        self
    }

    /// The gate this layer pauses and waits on.
    pub fn gate(&self) -> &PauseGate {
        &self.gate
    }

    /// Caps a server-given delay (default [`DEFAULT_MAX_DELAY`]); longer delays are clamped.
    pub fn max_delay(mut self, max: Duration) -> Self {
        self.settings.max_delay = max;
        self
    }

    /// Also pauses on the IETF `RateLimit` field (see [`rate_limit_reset`]) of any response
    /// whose quota is exhausted (default off).
    pub fn rate_limit_header(mut self, enabled: bool) -> Self {
        self.settings.rate_limit_header = enabled;
        self
    }

    /// Also pauses on `X-RateLimit-Reset`, read as `mode` says, when `X-RateLimit-Remaining`
    /// is 0 or the status is 429/503 (default off: the header's meaning differs between
    /// servers and is never guessed).
    pub fn x_rate_limit_reset(mut self, mode: ResetHeader) -> Self {
        self.settings.x_rate_limit_reset = Some(mode);
        self
    }

    /// Replaces the function mapping a request (its URI and extensions) to the key its
    /// pauses are shared under. The default is [`PauseKey::authority`] of the URI's
    /// authority. To key by tenant as well, read the namespace from the extensions (with
    /// pacer's own `Namespace` extension it is the same line with `ext.get::<Namespace>()`):
    ///
    /// ```
    /// # use pacer::retry_after::{PauseKey, RetryAfterLayer};
    /// #[derive(Clone)]
    /// struct Tenant(String);
    ///
    /// let layer = RetryAfterLayer::new().key_fn(|uri, ext| {
    ///     let authority = uri.authority().map_or("", |a| a.as_str());
    ///     PauseKey::new(authority, ext.get::<Tenant>().map(|t| t.0.as_str()))
    /// });
    /// ```
    pub fn key_fn<F>(mut self, f: F) -> Self
    where
        F: Fn(&Uri, &Extensions) -> PauseKey + Send + Sync + 'static,
    {
        self.key = KeyFn::Custom(Arc::new(f));
        self
    }

    /// Replaces the wall clock HTTP-dates and epoch resets are compared with (default
    /// [`SystemTime::now`]); for tests.
    pub fn wall_clock(mut self, now: fn() -> SystemTime) -> Self {
        self.settings.wall_clock = now;
        self
    }
}

impl<S> Layer<S> for RetryAfterLayer {
    type Service = RetryAfter<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RetryAfter {
            inner,
            gate: self.gate.clone(),
            key: self.key.clone(),
            settings: self.settings,
            events: self.events.clone(),
        }
    }
}

/// Service that holds requests while their upstream is paused and sets pauses from
/// responses; built by [`RetryAfterLayer`].
#[derive(Clone, Debug)]
pub struct RetryAfter<S> {
    inner: S,
    gate: PauseGate,
    key: KeyFn,
    settings: Settings,
    events: Events,
}

impl<S> RetryAfter<S> {
    /// The gate this service pauses and waits on.
    pub fn gate(&self) -> &PauseGate {
        &self.gate
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Consumes `self`, returning the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for RetryAfter<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let key = self.key.key(req.uri(), req.extensions());
        let upstream = self.events.is_enabled().then(|| Upstream::of(req.uri()));
        let state = match self.gate.release_at(key) {
            // Not paused: `self.inner` was made ready by `poll_ready`, call it now.
            None => State::Calling {
                future: self.inner.call(req),
            },
            // Paused: wait with a clone of the service (which must be made ready itself
            // after the wait); `self.inner` keeps its readiness for the next call.
            Some((end, release)) => State::Waiting {
                waiting: Box::pin(Waiting {
                    sleep: tokio::time::sleep_until(release),
                    end,
                    service: Some(self.inner.clone()),
                    request: Some(req),
                }),
            },
        };
        ResponseFuture {
            state,
            gate: self.gate.clone(),
            key,
            settings: self.settings,
            observer: upstream.map(|upstream| (self.events.clone(), upstream)),
        }
    }
}

pin_project! {
    /// Response future of [`RetryAfter`].
    pub struct ResponseFuture<S, ReqBody>
    where
        S: Service<Request<ReqBody>>,
    {
        #[pin]
        state: State<S, ReqBody>,
        gate: PauseGate,
        key: PauseKey,
        settings: Settings,
        // Only when the layer has an observer.
        observer: Option<(Events, Upstream)>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, ReqBody>
    where
        S: Service<Request<ReqBody>>,
    {
        // Boxed: requests to an upstream that is not paused never wait, and a small future
        // is cheaper to build and move through every layer above.
        Waiting {
            waiting: Pin<Box<Waiting<S, ReqBody>>>,
        },
        Calling {
            #[pin]
            future: S::Future,
        },
    }
}

pin_project! {
    /// A request held until its upstream's pause ends, with a clone of the service to call
    /// then.
    #[project = WaitingProj]
    struct Waiting<S, ReqBody> {
        #[pin]
        sleep: Sleep,
        end: Instant,
        service: Option<S>,
        request: Option<Request<ReqBody>>,
    }
}

impl<S, ReqBody> fmt::Debug for ResponseFuture<S, ReqBody>
where
    S: Service<Request<ReqBody>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Waiting { waiting } => format!("Waiting {{ end: {:?} }}", waiting.end),
            State::Calling { .. } => "Calling".to_owned(),
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .field("key", &self.key)
            .finish()
    }
}

impl<S, ReqBody, ResBody> Future for ResponseFuture<S, ReqBody>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Output = Result<Response<ResBody>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Waiting { waiting } => {
                    let WaitingProj {
                        mut sleep,
                        end,
                        service,
                        request,
                    } = waiting.as_mut().project();
                    ready!(sleep.as_mut().poll(cx));
                    // The pause may have been extended while we slept.
                    if let Some((new_end, release)) = this.gate.release_at(*this.key) {
                        if new_end > *end {
                            *end = new_end;
                            sleep.reset(release);
                            continue;
                        }
                    }
                    let Some(svc) = service.as_mut() else {
                        // Unreachable: the service is only taken together with the
                        // transition to `Calling`.
                        return Poll::Pending;
                    };
                    if let Err(e) = ready!(svc.poll_ready(cx)) {
                        return Poll::Ready(Err(e));
                    }
                    let (Some(mut svc), Some(req)) = (service.take(), request.take()) else {
                        return Poll::Pending;
                    };
                    let future = svc.call(req);
                    this.state.set(State::Calling { future });
                }
                StateProj::Calling { future } => {
                    let res = ready!(future.poll(cx))?;
                    if let Some(delay) = this.settings.delay_for(res.status(), res.headers()) {
                        match this.observer {
                            Some((events, upstream)) => this.gate.pause_observed(
                                *this.key,
                                delay,
                                events,
                                &upstream.label(),
                            ),
                            None => this.gate.pause(*this.key, delay),
                        }
                    }
                    return Poll::Ready(Ok(res));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
