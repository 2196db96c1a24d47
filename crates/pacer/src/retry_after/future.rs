//! The response future of [`RetryAfter`](super::RetryAfter): holds a request while its
//! upstream is paused, then pauses the upstream as the response asks.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::{Request, Response};
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};
use tower_service::Service;

use super::gate::{PauseGate, PauseKey};
use super::key::Upstream;
use super::settings::Settings;
use crate::events::observer::Events;

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
    }
}

pin_project! {
    /// A request held until its upstream's pause ends, with a clone of the service to call
    /// then.
    #[project = WaitingProj]
    pub(super) struct Waiting<S, ReqBody> {
        #[pin]
        pub(super) sleep: Sleep,
        pub(super) end: Instant,
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
    ) -> Self {
        Self {
            state,
            gate,
            key,
            settings,
            observer,
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
