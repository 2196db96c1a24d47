//! The response side of the ready stack: [`ResponseBody`], and [`read_to_end`] and
//! [`collect_responses`], which read responses whole within a bound.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, Limited};
use tower::ServiceExt;
use tower_service::Service;

use super::buffer_body::BufferBody;
use crate::BoxError;

/// The largest response body [`read_to_end`] and [`collect_responses`] are usually given: big
/// enough for a realm export or a schema, small enough that a faulty or hostile server cannot
/// make the client buffer without bound.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// Reads a response's body to the end, refusing (with an error) a body longer than
/// `max_bytes`.
pub async fn read_to_end<B>(
    response: Response<B>,
    max_bytes: usize,
) -> Result<Response<Bytes>, BoxError>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let (parts, body) = response.into_parts();
    let bytes = Limited::new(body, max_bytes).collect().await?.to_bytes();
    Ok(Response::from_parts(parts, bytes))
}

/// `service` with every response body read to the end by [`read_to_end`], for clients that
/// decode whole bodies (JSON, GraphQL) and so deal in `Response<Bytes>`.
///
/// Each request carries the [`BufferBody`] extension: when `service` is a
/// [`Client`](super::Client), the body is read inside the attempt, so the per-attempt timeout,
/// the retries and the total deadline cover it (a stalled or dripping body ends with a
/// timeout error, a truncated one may be retried). Over a service of your own, bound the body
/// read yourself (the extension is ignored and the body is read here, without a time bound).
pub fn collect_responses<S, B>(
    service: S,
    max_bytes: usize,
) -> impl Service<
    Request<Full<Bytes>>,
    Response = Response<Bytes>,
    Error = BoxError,
    Future = impl Future<Output = Result<Response<Bytes>, BoxError>> + Send,
> + Clone
+ Send
+ Sync
+ 'static
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>> + Clone + Send + Sync + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    service
        .map_request(move |mut request: Request<Full<Bytes>>| {
            request.extensions_mut().insert(BufferBody::new(max_bytes));
            request
        })
        .map_err(Into::into)
        .and_then(move |response: Response<B>| read_to_end(response, max_bytes))
}

/// The response body of [`Client`](super::Client): the connection's body, measured by the
/// metrics layer until it ends. `Body<Data = Bytes, Error = BoxError> + Send + 'static`.
///
/// Read it with [`http_body_util::BodyExt::collect`]; drop it to give up on the rest (the
/// connection is then closed rather than reused).
pub struct ResponseBody {
    inner: UnsyncBoxBody<Bytes, BoxError>,
}

impl ResponseBody {
    /// Wraps any body with `Bytes` chunks, e.g. for a test double of a [`Client`](super::Client)
    /// or a service passed to [`Client::from_layers`](super::Client::from_layers).
    pub fn new<B>(body: B) -> Self
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        Self {
            inner: body.map_err(Into::into).boxed_unsync(),
        }
    }

    /// An empty body.
    pub fn empty() -> Self {
        Self::new(http_body_util::Empty::<Bytes>::new())
    }
}

impl Default for ResponseBody {
    fn default() -> Self {
        Self::empty()
    }
}

impl From<Bytes> for ResponseBody {
    fn from(bytes: Bytes) -> Self {
        Self::new(http_body_util::Full::new(bytes))
    }
}

impl From<String> for ResponseBody {
    fn from(text: String) -> Self {
        Self::from(Bytes::from(text))
    }
}

impl From<&'static str> for ResponseBody {
    fn from(text: &'static str) -> Self {
        Self::from(Bytes::from_static(text.as_bytes()))
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl fmt::Debug for ResponseBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseBody")
            .field("size_hint", &self.inner.size_hint())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[tokio::test]
    async fn read_to_end_refuses_a_body_over_the_limit() {
        let response = |len: usize| Response::new(Full::new(Bytes::from(vec![b'x'; len])));
        let read = read_to_end(response(16), 16).await.unwrap();
        assert_eq!(read.into_body().len(), 16);
        let error = read_to_end(response(17), 16).await.unwrap_err();
        assert!(error.to_string().contains("length limit"), "{error}");
    }

    #[tokio::test]
    async fn collect_responses_reads_every_body() {
        let upstream = tower::service_fn(|req: Request<Full<Bytes>>| async move {
            Ok::<_, std::convert::Infallible>(Response::new(req.into_body()))
        });
        let service = collect_responses(upstream, 1024);
        let request = Request::new(Full::new(Bytes::from_static(b"echo")));
        let response = service.oneshot(request).await.unwrap();
        assert_eq!(response.into_body(), "echo");
    }
}
