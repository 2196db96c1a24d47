//! Shared by the `metrics` and `stack` benches: the request, the bare upstream, one poll.
#![allow(dead_code)]

use std::convert::Infallible;
use std::future::{Future, Ready, ready};
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use pacer::Namespace;
use tower::{Service, ServiceExt};

/// Polls a future that must complete on its first poll.
pub(crate) fn now<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("the happy path must not wait"),
    }
}

/// A realistic API call: POST, five headers (a bearer token among them), a 150-byte JSON
/// body, a query, and the tenant's namespace.
pub(crate) fn request() -> Request<Full<Bytes>> {
    let mut request = Request::post(
        "https://keycloak.example.invalid/admin/realms/tenant-a/users?briefRepresentation=true",
    )
    .header("content-type", "application/json")
    .header("accept", "application/json")
    .header(
        "authorization",
        "Bearer eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.e30.c2lnbmF0dXJl",
    )
    .header("user-agent", "pacer-bench/0.1")
    .header("x-request-id", "4bf92f35-77b3-4da6-a3ce-929d0e0e4736")
    .body(Full::new(Bytes::from_static(
        br#"{"username":"alice","email":"alice@example.invalid","enabled":true,"firstName":"Alice","lastName":"Liddell","attributes":{"tenant":["a"]}}"#,
    )))
    .expect("valid request");
    request.extensions_mut().insert(Namespace::new("tenant-a"));
    request
}

/// The bare upstream: a ready `200` with a small body, at once.
pub(crate) fn ok(req: Request<Full<Bytes>>) -> Ready<Result<Response<Full<Bytes>>, Infallible>> {
    black_box(req);
    ready(Ok(Response::new(Full::new(Bytes::from_static(b"{}")))))
}

/// One request through `svc`: made ready, called, its future polled once. The response (and
/// with it any metrics guard in its body) is dropped inside the measurement.
pub(crate) fn call_once<S, B>(svc: &mut S, req: Request<Full<Bytes>>)
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>>,
    S::Error: std::fmt::Debug,
{
    let ready = now(svc.ready()).expect("ready");
    let response = now(ready.call(req)).expect("response");
    black_box(response.status());
    drop(black_box(response));
}
