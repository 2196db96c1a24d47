//! The response future of [`MetricsService`](super::MetricsService): notes the status class,
//! then hands the request's [`Guard`] to the response body.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::Response;
use http_body::Body;
use pin_project_lite::pin_project;

use super::guard::Guard;
use super::labels::status_class_index;
use super::recorded_body::MetricsBody;

pin_project! {
    /// The response future of [`MetricsService`].
    pub struct ResponseFuture<F> {
        #[pin]
        future: F,
        guard: Option<Guard>,
    }
}

impl<F> ResponseFuture<F> {
    /// The future of `future`, recording with `guard`.
    #[inline]
    pub(super) fn new(future: F, guard: Guard) -> Self {
        Self {
            future,
            guard: Some(guard),
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Body,
{
    type Output = Result<Response<MetricsBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.future.poll(cx));
        // The guard records when dropped: here for an error or an empty body, otherwise when
        // the body ends.
        let mut guard = this.guard.take();
        Poll::Ready(result.map(|response| {
            if let Some(guard) = &mut guard {
                guard.status_class = status_class_index(response.status().as_u16());
            }
            let guard = guard.filter(|_| !response.body().is_end_stream());
            response.map(|body| MetricsBody::new(body, guard))
        }))
    }
}

impl<F> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
