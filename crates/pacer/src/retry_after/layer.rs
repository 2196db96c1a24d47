//! [`RetryAfterLayer`] and its service [`RetryAfter`].

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use http::{Extensions, Request, Response, Uri};
use tower_layer::Layer;
use tower_service::Service;

use super::cap::DEFAULT_MAX_DELAY;
use super::cap::RetryAfterExceeded;
use super::future::{ResponseFuture, State, Waiting, exceeds_hold};
use super::gate::{PauseGate, PauseKey};
use super::key::{KeyFn, Upstream};
use super::parse::ResetHeader;
use super::settings::Settings;
use super::shared::SharedPause;
use crate::BoxError;
use crate::events::observer::Events;

/// Layer that pauses an upstream after it asks for a delay; see the [module docs](super).
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
    shared: Option<SharedPause>,
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
            shared: None,
        }
    }

    /// Shares this layer's pauses with other replicas through a store (see [`SharedPause`]):
    /// a pause set here is written to the store, and the store's pause is consulted (at most
    /// once per refresh period per upstream) before a request goes. Default: none.
    pub fn shared(mut self, shared: SharedPause) -> Self {
        self.shared = Some(shared);
        self
    }

    /// The store this layer shares its pauses through, if any.
    pub fn shared_pause(&self) -> Option<&SharedPause> {
        self.shared.as_ref()
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

    /// Also pauses on the IETF `RateLimit` field (see [`rate_limit_reset`](super::rate_limit_reset)) of any response
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
            shared: self.shared.clone(),
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
    shared: Option<SharedPause>,
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
    S::Error: Into<BoxError>,
{
    type Response = Response<ResBody>;
    type Error = BoxError;
    type Future = ResponseFuture<S, ReqBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let key = self.key.key(req.uri(), req.extensions());
        let upstream = self.events.is_enabled().then(|| Upstream::of(req.uri()));
        let shared = self.shared.as_ref().map(|shared| {
            let store_key = shared.store_key(req.uri(), req.extensions());
            Box::new((shared.clone(), store_key, self.events.clone()))
        });
        let lookup = match (&shared, self.gate.release_at(key)) {
            (Some(shared), None) => shared.0.lookup(key, &shared.1),
            _ => None,
        };
        let state = match self.gate.release_at(key) {
            // Not paused locally, but the store is to be asked first: wait for its answer
            // (bounded by the store's timeout), then as for a local pause.
            None if lookup.is_some() => {
                let now = Instant::now();
                State::Waiting {
                    waiting: Box::pin(Waiting {
                        lookup: lookup.map(|lookup| lookup.future),
                        sleep: tokio::time::sleep_until(now),
                        end: now,
                        held_since: now,
                        service: Some(self.inner.clone()),
                        request: Some(req),
                    }),
                }
            }
            // Not paused: `self.inner` was made ready by `poll_ready`, call it now.
            None => State::Calling {
                future: self.inner.call(req),
            },
            // Paused: wait with a clone of the service (which must be made ready itself
            // after the wait); `self.inner` keeps its readiness for the next call.
            Some((end, release)) => {
                let now = Instant::now();
                if exceeds_hold(now, end, self.settings.max_delay) {
                    // Paused for longer than this layer ever waits (a pause set on a shared
                    // gate by someone else): refused as a too-long `Retry-After`.
                    State::Refused {
                        error: Some(RetryAfterExceeded::new(
                            end.saturating_duration_since(now),
                            self.settings.max_delay,
                            0,
                        )),
                    }
                } else {
                    State::Waiting {
                        waiting: Box::pin(Waiting {
                            lookup: None,
                            sleep: tokio::time::sleep_until(release),
                            end,
                            held_since: now,
                            service: Some(self.inner.clone()),
                            request: Some(req),
                        }),
                    }
                }
            }
        };
        ResponseFuture::new(
            state,
            self.gate.clone(),
            key,
            self.settings,
            upstream.map(|upstream| (self.events.clone(), upstream)),
            shared,
        )
    }
}
