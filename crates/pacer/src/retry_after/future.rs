//! The response future of [`RetryAfter`](super::RetryAfter): holds a request while its
//! upstream is paused, then pauses the upstream as the response asks.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use http::{Request, Response};
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};
use tower_service::Service;

use super::cap::RetryAfterExceeded;
use super::gate::{PauseGate, PauseKey};
use super::key::Upstream;
use super::settings::Settings;
use super::shared::{Lookup, SharedPause};
use crate::BoxError;
use crate::events::observer::Events;
use crate::rate_limit::StoreFuture;

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
        // Only when the layer shares its pauses: the store, this upstream's store key, and
        // where store errors are reported.
        shared: Option<Box<(SharedPause, String, Events)>>,
    }
}

pin_project! {
    #[project = StateProj]
    pub(super) enum State<S, ReqBody>
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
        // Refused at the gate: the pause ends later than the hold bound allows.
        Refused {
            error: Option<RetryAfterExceeded>,
        },
    }
}

pin_project! {
    /// A request held until its upstream's pause ends, with a clone of the service to call
    /// then.
    #[project = WaitingProj]
    pub(super) struct Waiting<S, ReqBody> {
        // The store's pause, asked before the request goes (shared pauses only).
        pub(super) lookup: Option<StoreFuture<Option<Instant>>>,
        #[pin]
        pub(super) sleep: Sleep,
        pub(super) end: Instant,
        // When the request started waiting: the total hold is bounded from here.
        pub(super) held_since: Instant,
        pub(super) service: Option<S>,
        pub(super) request: Option<Request<ReqBody>>,
    }
}

impl<S, ReqBody> ResponseFuture<S, ReqBody>
where
    S: Service<Request<ReqBody>>,
{
    /// The future of a request in `state`, pausing `key` on `gate` as the response asks.
    #[inline]
    pub(super) fn new(
        state: State<S, ReqBody>,
        gate: PauseGate,
        key: PauseKey,
        settings: Settings,
        observer: Option<(Events, Upstream)>,
        shared: Option<Box<(SharedPause, String, Events)>>,
    ) -> Self {
        Self {
            state,
            gate,
            key,
            settings,
            observer,
            shared,
        }
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
            State::Refused { .. } => "Refused".to_owned(),
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
    S::Error: Into<BoxError>,
{
    type Output = Result<Response<ResBody>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Waiting { waiting } => {
                    let WaitingProj {
                        lookup,
                        mut sleep,
                        end,
                        held_since,
                        service,
                        request,
                    } = waiting.as_mut().project();
                    if let Some(pending) = lookup.as_mut() {
                        let answer = ready!(pending.as_mut().poll(cx));
                        *lookup = None;
                        if let Some(shared) = this.shared.as_ref() {
                            Lookup::apply(answer, this.gate, *this.key, &shared.2);
                        }
                    }
                    ready!(sleep.as_mut().poll(cx));
                    // The pause may have been extended while we slept.
                    if let Some((new_end, release)) = this.gate.release_at(*this.key) {
                        if new_end > *end {
                            // Extended again and again, a pause must not hold a request past
                            // the cap in total: refuse it as a too-long `Retry-After`.
                            let max_delay = this.settings.max_delay;
                            if exceeds_hold(*held_since, new_end, max_delay) {
                                return Poll::Ready(Err(Box::new(RetryAfterExceeded::new(
                                    new_end.saturating_duration_since(*held_since),
                                    max_delay,
                                    0,
                                ))));
                            }
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
                        return Poll::Ready(Err(e.into()));
                    }
                    let (Some(mut svc), Some(req)) = (service.take(), request.take()) else {
                        return Poll::Pending;
                    };
                    let future = svc.call(req);
                    this.state.set(State::Calling { future });
                }
                StateProj::Calling { future } => {
                    let res = ready!(future.poll(cx)).map_err(Into::into)?;
                    if let Some(delay) = this.settings.delay_for(res.status(), res.headers()) {
                        if let Some(shared) = this.shared.as_ref() {
                            let now = Instant::now();
                            if let Some(until) = now.checked_add(delay) {
                                shared.0.record(&shared.1, until, &shared.2);
                            }
                        }
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
                StateProj::Refused { error } => {
                    return match error.take() {
                        Some(error) => Poll::Ready(Err(Box::new(error))),
                        // Polled again after it answered.
                        None => Poll::Pending,
                    };
                }
            }
        }
    }
}

/// Whether a pause ending at `end` would hold a request waiting since `held_since` longer than
/// `max_delay` in total (the release window's jitter comes on top). An instant past the
/// clock's range counts as too long.
pub(super) fn exceeds_hold(held_since: Instant, end: Instant, max_delay: Duration) -> bool {
    held_since
        .checked_add(max_delay)
        .is_none_or(|bound| end > bound)
}
