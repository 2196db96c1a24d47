#![allow(clippy::unwrap_used)]

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{HeaderMap, Request, Response};
use tower_layer::Layer;
use tower_service::Service;

use super::future::server_delay;
use super::*;

fn delay_of(value: &[u8]) -> Option<Duration> {
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::RETRY_AFTER,
        http::HeaderValue::from_bytes(value).unwrap(),
    );
    server_delay(&headers)
}

#[test]
fn delay_seconds() {
    let secs = |s| Some(Duration::from_secs(s));
    assert_eq!(delay_of(b"5"), secs(5));
    assert_eq!(delay_of(b"0"), secs(0));
    assert_eq!(delay_of(b" 120\t"), secs(120));
    assert_eq!(delay_of(b"007"), secs(7));
    assert_eq!(delay_of(b"99999999999999999999999999"), secs(u64::MAX));
    for bad in [
        &b""[..],
        b" ",
        b"-1",
        b"+1",
        b"1.5",
        b"1e3",
        b"5 s",
        b"soon",
        b"\xff\xfe",
    ] {
        assert_eq!(delay_of(bad), None, "{bad:?}");
    }
    assert_eq!(server_delay(&HeaderMap::new()), None);
}

#[test]
fn types_are_clone_debug_send_sync() {
    fn check<T: Clone + fmt::Debug + Send + Sync + 'static>() {}
    check::<RetryLayer>();
    check::<RetryPolicy>();
    check::<RetryBudget>();
    check::<Retry<tower::timeout::Timeout<()>>>();
    check::<RetryInfo>();
    check::<RetryAfterExceeded>();
}

#[test]
fn send_but_not_sync_services_keep_the_future_send() {
    fn check<T: Send>(_: &T) {}
    let svc = tower::util::BoxCloneService::new(tower::service_fn(|_: Request<String>| async {
        Ok::<_, std::convert::Infallible>(Response::new(String::new()))
    }));
    let mut retry = Retry::new(svc, RetryPolicy::new());
    check(&retry);
    let fut = retry.call(Request::new(String::from("x")));
    check(&fut);
}

#[test]
fn response_future_is_send() {
    fn check<T: Send>(_: &T) {}
    let svc = tower::service_fn(|_: Request<String>| async {
        Ok::<_, std::convert::Infallible>(Response::new(String::new()))
    });
    let mut retry = Retry::new(svc, RetryPolicy::new());
    let fut = retry.call(Request::new(String::from("x")));
    check(&fut);
}

/// Answers `/flaky` with a `429` (`Retry-After: 0`) the first time, everything else with
/// `200`, and counts its clones.
struct CountingService {
    clones: Arc<std::sync::atomic::AtomicUsize>,
    flaked: Arc<std::sync::atomic::AtomicBool>,
}

impl Clone for CountingService {
    fn clone(&self) -> Self {
        self.clones.fetch_add(1, Ordering::SeqCst);
        Self {
            clones: Arc::clone(&self.clones),
            flaked: Arc::clone(&self.flaked),
        }
    }
}

impl Service<Request<String>> for CountingService {
    type Response = Response<String>;
    type Error = std::convert::Infallible;
    type Future = std::future::Ready<Result<Response<String>, Self::Error>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<String>) -> Self::Future {
        let mut res = Response::new(String::new());
        if req.uri().path() == "/flaky" && !self.flaked.swap(true, Ordering::SeqCst) {
            *res.status_mut() = http::StatusCode::TOO_MANY_REQUESTS;
            res.headers_mut().insert(
                http::header::RETRY_AFTER,
                http::HeaderValue::from_static("0"),
            );
        }
        std::future::ready(Ok(res))
    }
}

#[tokio::test]
async fn only_a_retry_clones_the_inner_service() {
    use tower::ServiceExt;
    let clones = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let svc = CountingService {
        clones: Arc::clone(&clones),
        flaked: Arc::default(),
    };
    let mut retry = RetryLayer::new(RetryPolicy::new()).layer(svc);
    let built = clones.load(Ordering::SeqCst);
    for _ in 0..10 {
        let req = Request::get("/ok").body(String::new()).unwrap();
        let res = retry.ready().await.unwrap().call(req).await.unwrap();
        assert_eq!(res.status(), 200);
        assert!(res.extensions().get::<RetryInfo>().is_none());
    }
    assert_eq!(
        clones.load(Ordering::SeqCst),
        built,
        "a success clones nothing"
    );

    let req = Request::get("/flaky").body(String::new()).unwrap();
    let res = retry.ready().await.unwrap().call(req).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.extensions().get::<RetryInfo>().unwrap().attempts, 2);
    assert_eq!(
        clones.load(Ordering::SeqCst),
        built + 1,
        "the retry called one clone"
    );
}
