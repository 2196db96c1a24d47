//! The response futures keep what only a wait or a retry needs (a clone of the service, the
//! held request, a timer) behind a box, so that a request which neither waits nor is retried
//! builds and moves small futures. Every layer's future contains the one below it and is
//! moved as the stack builds and polls it, so bytes saved here are saved once per layer above
//! (README, *Benchmarks*).
#![allow(clippy::unwrap_used)]

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::mem::size_of_val;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use pacer::rate_limit::{Quota, RateLimitLayer, RateLimiter};
use pacer::retry::{RetryLayer, RetryPolicy};
use pacer::retry_after::RetryAfterLayer;
use tower::{Layer, Service};

/// A service as large as a big client stack, answering at once.
#[derive(Clone)]
struct Heavy {
    _state: [u8; 4096],
}

const HEAVY: Heavy = Heavy { _state: [0; 4096] };

impl<B> Service<Request<B>> for Heavy {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<B>) -> Self::Future {
        ready(Ok(Response::new(Full::new(Bytes::new()))))
    }
}

/// A request whose body is as large as the service.
fn heavy_request() -> Request<[u8; 4096]> {
    Request::new([0; 4096])
}

fn open_limiter() -> RateLimiter {
    RateLimiter::builder()
        .per_namespace(Quota::per_second(1000).unwrap())
        .build()
        .unwrap()
}

/// Well under the service's and the heavy request's size: neither is held inline.
const SMALL: usize = 1024;

fn assert_small<F>(future: &F) {
    let size = size_of_val(future);
    assert!(size < SMALL, "{size} bytes");
}

#[test]
fn rate_limit_future_holds_neither_service_nor_request_inline() {
    let mut service = RateLimitLayer::new(open_limiter()).layer(HEAVY);
    assert_small(&service.call(heavy_request()));
}

#[test]
fn reject_mode_future_holds_neither_service_nor_request_inline() {
    let mut service = RateLimitLayer::reject(open_limiter()).layer(HEAVY);
    assert_small(&service.call(heavy_request()));
}

#[tokio::test]
async fn retry_after_future_holds_neither_service_nor_request_inline() {
    let mut service = RetryAfterLayer::new().layer(HEAVY);
    assert_small(&service.call(heavy_request()));
}

#[test]
fn retry_future_holds_no_service_inline() {
    let mut service = RetryLayer::new(RetryPolicy::new()).layer(HEAVY);
    assert_small(&service.call(Request::new(Full::new(Bytes::from_static(b"{}")))));
}
