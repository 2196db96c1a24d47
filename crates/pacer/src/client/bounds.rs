//! The innermost service of the ready stack: it bounds response bodies in time.
//!
//! [`BodyBounds`] sits inside the per-attempt timeout, right over the HTTP client:
//!
//! - every response body gets an **idle-read timeout** (`read_timeout_secs`): a body that
//!   stays silent longer than that between two frames ends with a [`ReadTimeout`] error;
//! - a request carrying the [`BufferBody`] extension (what [`collect_responses`] and the
//!   blocking client send) has its response body **read whole inside the attempt**: the
//!   per-attempt timeout and the total deadline cover the body as well as the head, and a
//!   truncated, reset or slow body is a failure of the attempt, which the retry policy may
//!   retry (idempotent requests only, by default). A body longer than the extension's cap is
//!   not a failure of the attempt (sending again would not make it shorter): the response is
//!   answered with a body that fails with the length-limit error when it is read.
//!
//! [`collect_responses`]: super::collect_responses

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use tokio::time::{Instant, Sleep};
use tower_service::Service;

use super::buffer_body::BufferBody;
use super::response::ResponseBody;
use crate::BoxError;

/// A response body stayed silent between two frames for longer than the read timeout
/// (`read_timeout_secs`). Its [`source`](std::error::Error::source) is an [`io::Error`] of
/// kind `TimedOut`, so [`is_timeout`](crate::retry::is_timeout) recognises it.
#[derive(Debug)]
pub struct ReadTimeout {
    timeout: Duration,
    io: io::Error,
}

impl ReadTimeout {
    fn new(timeout: Duration) -> Self {
        Self {
            timeout,
            io: io::Error::new(io::ErrorKind::TimedOut, "response body read timed out"),
        }
    }

    /// The read timeout that passed.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}

impl fmt::Display for ReadTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the response body sent nothing for longer than the read timeout of {:?}",
            self.timeout
        )
    }
}

impl std::error::Error for ReadTimeout {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.io)
    }
}

/// See the [module docs](self).
#[derive(Clone, Debug)]
pub(super) struct BodyBounds<S> {
    inner: S,
    read_timeout: Option<Duration>,
}

impl<S> BodyBounds<S> {
    pub(super) fn new(inner: S, read_timeout: Option<Duration>) -> Self {
        Self {
            inner,
            read_timeout,
        }
    }
}

type BoundedFuture = Pin<Box<dyn Future<Output = Result<Response<ResponseBody>, BoxError>> + Send>>;

impl<S, ReqBody, B> Service<Request<ReqBody>> for BodyBounds<S>
where
    S: Service<Request<ReqBody>, Response = Response<B>>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<ResponseBody>;
    type Error = BoxError;
    type Future = BoundedFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<ReqBody>) -> BoundedFuture {
        let buffer = request.extensions().get::<BufferBody>().copied();
        let read_timeout = self.read_timeout;
        let future = self.inner.call(request);
        Box::pin(async move {
            let (parts, body) = future.await.map_err(Into::into)?.into_parts();
            let body = IdleTimeout::new(body, read_timeout);
            let Some(buffer) = buffer else {
                return Ok(Response::from_parts(parts, ResponseBody::new(body)));
            };
            match Limited::new(body, buffer.max_bytes()).collect().await {
                Ok(collected) => Ok(Response::from_parts(
                    parts,
                    ResponseBody::from(collected.to_bytes()),
                )),
                // Not the attempt's failure: the caller's read reports it.
                Err(e) if e.is::<LengthLimitError>() => Ok(Response::from_parts(
                    parts,
                    ResponseBody::new(Failed(Some(e))),
                )),
                Err(e) => Err(e),
            }
        })
    }
}

/// A body that fails with its error at the first read.
struct Failed(Option<BoxError>);

impl Body for Failed {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Poll::Ready(self.0.take().map(Err))
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_none()
    }
}

pin_project_lite::pin_project! {
    /// `inner` with an idle-read timeout: fails with [`ReadTimeout`] when no frame arrives
    /// within `timeout` of the previous one (or of the head).
    struct IdleTimeout<B> {
        #[pin]
        inner: B,
        timeout: Option<Duration>,
        sleep: Option<Pin<Box<Sleep>>>,
        done: bool,
    }
}

impl<B> IdleTimeout<B> {
    fn new(inner: B, timeout: Option<Duration>) -> Self {
        // A timeout so long that the instant overflows is no timeout.
        let sleep = timeout
            .and_then(|t| Instant::now().checked_add(t))
            .map(|end| Box::pin(tokio::time::sleep_until(end)));
        Self {
            inner,
            timeout,
            sleep,
            done: false,
        }
    }
}

impl<B> Body for IdleTimeout<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.project();
        if *this.done {
            return Poll::Ready(None);
        }
        match this.inner.poll_frame(cx) {
            Poll::Ready(Some(frame)) => {
                if let (Some(sleep), Some(timeout)) = (this.sleep.as_mut(), *this.timeout) {
                    match Instant::now().checked_add(timeout) {
                        Some(end) => sleep.as_mut().reset(end),
                        None => *this.sleep = None,
                    }
                }
                Poll::Ready(Some(frame.map_err(Into::into)))
            }
            Poll::Ready(None) => {
                *this.done = true;
                Poll::Ready(None)
            }
            Poll::Pending => {
                let fired = this
                    .sleep
                    .as_mut()
                    .is_some_and(|sleep| sleep.as_mut().poll(cx).is_ready());
                match *this.timeout {
                    Some(timeout) if fired => {
                        *this.done = true;
                        Poll::Ready(Some(Err(ReadTimeout::new(timeout).into())))
                    }
                    _ => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use http_body_util::{Full, StreamBody};
    use tower::ServiceExt;

    /// A body that sends one byte, then one more after `gap`, then ends.
    fn gapped(gap: Duration) -> impl Body<Data = Bytes, Error = std::io::Error> + Send {
        let stream = futures_util::stream::unfold(0u8, move |n| async move {
            match n {
                0 => Some((Ok::<_, std::io::Error>(Frame::data(Bytes::from("a"))), 1)),
                1 => {
                    tokio::time::sleep(gap).await;
                    Some((Ok(Frame::data(Bytes::from("b"))), 2))
                }
                _ => None,
            }
        });
        StreamBody::new(stream)
    }

    fn service(
        gap: Duration,
    ) -> impl Service<
        Request<Full<Bytes>>,
        Response = Response<ResponseBody>,
        Error = BoxError,
        Future = BoundedFuture,
    > + Clone {
        let upstream = tower::service_fn(move |_req: Request<Full<Bytes>>| async move {
            Ok::<_, std::convert::Infallible>(Response::new(gapped(gap)))
        });
        BodyBounds::new(upstream, Some(Duration::from_secs(2)))
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_silent_past_the_read_timeout_fails_with_read_timeout() {
        let response = service(Duration::from_secs(3))
            .oneshot(Request::new(Full::default()))
            .await
            .unwrap();
        let error = response.into_body().collect().await.unwrap_err();
        let timeout = error.downcast_ref::<ReadTimeout>().unwrap();
        assert_eq!(timeout.timeout(), Duration::from_secs(2));
        assert!(crate::retry::is_timeout(&*error));
    }

    #[tokio::test(start_paused = true)]
    async fn each_frame_restarts_the_read_timeout() {
        let response = service(Duration::from_millis(1900))
            .oneshot(Request::new(Full::default()))
            .await
            .unwrap();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, "ab");
    }

    #[tokio::test(start_paused = true)]
    async fn buffered_bodies_are_read_inside_the_call() {
        let mut request = Request::new(Full::default());
        request.extensions_mut().insert(BufferBody::new(16));
        let error = service(Duration::from_secs(3))
            .oneshot(request)
            .await
            .unwrap_err();
        assert!(error.is::<ReadTimeout>(), "{error}");

        let mut request = Request::new(Full::default());
        request.extensions_mut().insert(BufferBody::new(16));
        let response = service(Duration::from_secs(1))
            .oneshot(request)
            .await
            .unwrap();
        assert_eq!(response.body().size_hint().exact(), Some(2));
    }

    #[tokio::test]
    async fn a_buffered_body_over_the_cap_fails_when_read_not_when_called() {
        let upstream = tower::service_fn(|_req: Request<Full<Bytes>>| async move {
            Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from(vec![0; 17]))))
        });
        let mut request = Request::new(Full::default());
        request.extensions_mut().insert(BufferBody::new(16));
        let response = BodyBounds::new(upstream, None)
            .oneshot(request)
            .await
            .unwrap();
        let error = response.into_body().collect().await.unwrap_err();
        assert!(error.is::<LengthLimitError>(), "{error}");
    }
}
