//! `pacer::retry` over hyper-util's legacy client and a real hyper server on loopback.
//!
//! Real sockets, so real time: the tests assert counts, never durations, and every request is
//! bounded by the retry policy.
#![allow(clippy::unwrap_used)]

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body::Frame;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use pacer::retry::{Backoff, Jitter, RetryInfo, RetryLayer, RetryPolicy, is_connect_error};
use tower::{Layer, ServiceBuilder, ServiceExt};

fn policy() -> RetryPolicy {
    RetryPolicy::new()
        .max_retries(2)
        .backoff(
            Backoff::new(Duration::from_millis(200), Duration::from_millis(200))
                .jitter(Jitter::None),
        )
        .without_budget()
}

/// Counts the requests that reach the client.
fn counted(
    client: Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
    sends: Arc<AtomicU32>,
) -> impl tower::Service<
    Request<Full<Bytes>>,
    Response = Response<hyper::body::Incoming>,
    Error = hyper_util::client::legacy::Error,
    Future = impl Send,
> + Clone {
    ServiceBuilder::new()
        .map_request(move |req| {
            sends.fetch_add(1, Ordering::SeqCst);
            req
        })
        .service(client)
}

#[tokio::test]
async fn post_retried_when_hyper_util_cannot_connect() {
    // A port nobody listens on any more.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let sends = Arc::new(AtomicU32::new(0));
    let client = Client::builder(TokioExecutor::new()).build_http();
    let svc = RetryLayer::new(policy()).layer(counted(client, Arc::clone(&sends)));
    let req = Request::post(format!("http://127.0.0.1:{port}/orders"))
        .body(Full::from("{}"))
        .unwrap();
    let err = svc.oneshot(req).await.unwrap_err();
    assert!(is_connect_error(&*err), "{err:?}");
    assert!(
        err.downcast_ref::<hyper_util::client::legacy::Error>()
            .unwrap()
            .is_connect()
    );
    assert_eq!(
        sends.load(Ordering::SeqCst),
        3,
        "a POST that never left is retried"
    );
}

/// A body of `len` bytes sent in two halves 20 ms apart, so that it spans several reads and
/// hyper's own one-read drain cannot swallow it: only a real drain keeps the connection.
fn slow_body(len: usize) -> BoxBody<Bytes, Infallible> {
    let half = len / 2;
    let chunks = futures_util::stream::unfold(0u8, move |step| async move {
        let chunk = match step {
            0 => vec![b'x'; half],
            1 => {
                tokio::time::sleep(Duration::from_millis(20)).await;
                vec![b'x'; len - half]
            }
            _ => return None,
        };
        Some((Ok(Frame::data(Bytes::from(chunk))), step + 1))
    });
    StreamBody::new(chunks).boxed()
}

/// Serves `first` failed answers with a body of `fail_len` bytes, then `200`; counts connections.
async fn server(fail_len: usize, first: u32) -> (u16, Arc<AtomicU32>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let conns = Arc::new(AtomicU32::new(0));
    let requests = Arc::new(AtomicU32::new(0));
    let c = Arc::clone(&conns);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            c.fetch_add(1, Ordering::SeqCst);
            let requests = Arc::clone(&requests);
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                    let n = requests.fetch_add(1, Ordering::SeqCst);
                    async move {
                        let _ = req.into_body().collect().await;
                        let res = if n < first {
                            Response::builder()
                                .status(503)
                                .header("content-length", fail_len)
                                .body(slow_body(fail_len))
                        } else {
                            Response::builder().body(Full::new(Bytes::from_static(b"ok")).boxed())
                        };
                        Ok::<_, Infallible>(res.unwrap())
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (port, conns)
}

async fn get(port: u16) -> (Response<hyper::body::Incoming>, u32) {
    let sends = Arc::new(AtomicU32::new(0));
    let client = Client::builder(TokioExecutor::new()).build_http();
    let svc = RetryLayer::new(policy()).layer(counted(client, Arc::clone(&sends)));
    let req = Request::get(format!("http://127.0.0.1:{port}/items"))
        .body(Full::default())
        .unwrap();
    let res = svc.oneshot(req).await.unwrap();
    (res, sends.load(Ordering::SeqCst))
}

#[tokio::test]
async fn small_failed_body_is_drained_so_the_connection_is_reused() {
    let (port, conns) = server(48 * 1024, 1).await;
    let (res, sends) = get(port).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.extensions().get::<RetryInfo>().unwrap().attempts, 2);
    assert_eq!(sends, 2);
    assert_eq!(
        conns.load(Ordering::SeqCst),
        1,
        "the retry reused the drained connection"
    );
}

#[tokio::test]
async fn large_failed_body_is_dropped_and_a_new_connection_is_made() {
    let (port, conns) = server(256 * 1024, 1).await;
    let (res, sends) = get(port).await;
    assert_eq!(res.status(), 200);
    assert_eq!(sends, 2);
    assert_eq!(
        conns.load(Ordering::SeqCst),
        2,
        "an unread body cannot share its connection"
    );
}

#[tokio::test]
async fn exhausted_retries_return_the_real_last_response() {
    let (port, _) = server(16, u32::MAX).await;
    let (res, sends) = get(port).await;
    assert_eq!(res.status(), 503);
    assert_eq!(sends, 3);
    assert_eq!(res.extensions().get::<RetryInfo>().unwrap().attempts, 3);
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, vec![b'x'; 16], "the last body is untouched");
}
