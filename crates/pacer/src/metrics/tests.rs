#![allow(clippy::unwrap_used)]

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response};
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tower::{ServiceBuilder, ServiceExt, service_fn};

use super::*;
use crate::namespace::Namespace;
use crate::rate_limit::{Quota, RateLimitLayer, RateLimiter};

fn encode(registry: &Registry) -> String {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry).unwrap();
    text
}

/// The value of the sample `series` (name and labels exactly as encoded).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let value = line.strip_prefix(series)?.strip_prefix(' ')?;
        value.parse().ok()
    })
}

fn request(method: Method, namespace: &str) -> Request<String> {
    let mut request = Request::builder()
        .method(method)
        .body(String::new())
        .unwrap();
    request.extensions_mut().insert(Namespace::new(namespace));
    request
}

#[tokio::test(start_paused = true)]
async fn counts_requests_by_method_status_class_and_namespace() {
    let mut registry = Registry::default();
    let metrics = Metrics::new(&mut registry);
    let service = ServiceBuilder::new()
        .layer(MetricsLayer::new(metrics))
        .service(service_fn(|req: Request<String>| async move {
            let status = if req.method() == Method::POST {
                201
            } else {
                503
            };
            let mut response = Response::new(String::from("body"));
            *response.status_mut() = http::StatusCode::from_u16(status).unwrap();
            Ok::<_, Infallible>(response)
        }));
    for _ in 0..3 {
        let response = service
            .clone()
            .oneshot(request(Method::POST, "a"))
            .await
            .unwrap();
        response.into_body().collect().await.unwrap();
    }
    let response = service
        .clone()
        .oneshot(request(Method::GET, "b"))
        .await
        .unwrap();
    drop(response); // a dropped body still ends the request
    let method = Method::from_bytes(b"BREW").unwrap();
    service.clone().oneshot(request(method, "b")).await.unwrap();

    let text = encode(&registry);
    let requests = |labels: &str| sample(&text, &format!("pacer_requests_total{{{labels}}}"));
    assert_eq!(
        requests(r#"method="POST",status_class="2xx",namespace="a""#),
        Some(3.0)
    );
    assert_eq!(
        requests(r#"method="GET",status_class="5xx",namespace="b""#),
        Some(1.0)
    );
    assert_eq!(
        requests(r#"method="OTHER",status_class="5xx",namespace="b""#),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"pacer_request_duration_seconds_count{method="POST",status_class="2xx"}"#
        ),
        Some(3.0)
    );
    assert_eq!(sample(&text, "pacer_in_flight_requests"), Some(0.0));
}

#[tokio::test(start_paused = true)]
async fn duration_runs_until_the_body_ends() {
    let mut registry = Registry::default();
    let metrics = Metrics::new(&mut registry);
    let (sender, receiver) = mpsc::channel::<Result<Frame<Bytes>, Infallible>>(1);
    let receiver = std::sync::Mutex::new(Some(receiver));
    let service = ServiceBuilder::new()
        .layer(MetricsLayer::new(metrics))
        .service(service_fn(move |_req: Request<String>| {
            let receiver = receiver.lock().unwrap().take().unwrap();
            async move {
                let stream = tokio_stream_from(receiver);
                Ok::<_, Infallible>(Response::new(StreamBody::new(stream)))
            }
        }));
    tokio::time::advance(Duration::from_millis(1)).await;
    let response = service.oneshot(request(Method::GET, "a")).await.unwrap();
    assert_eq!(
        sample(&encode(&registry), "pacer_in_flight_requests"),
        Some(1.0)
    );
    let mut body = response.into_body();
    sender
        .send(Ok(Frame::data(Bytes::from("x"))))
        .await
        .unwrap();
    body.frame().await.unwrap().unwrap();
    tokio::time::advance(Duration::from_secs(2)).await;
    drop(sender);
    assert!(body.frame().await.is_none());

    let text = encode(&registry);
    assert_eq!(
        sample(
            &text,
            r#"pacer_request_duration_seconds_sum{method="GET",status_class="2xx"}"#
        ),
        Some(2.0)
    );
    assert_eq!(sample(&text, "pacer_in_flight_requests"), Some(0.0));
}

/// A `Stream` over an mpsc receiver, without pulling in tokio-stream.
fn tokio_stream_from<T>(
    mut receiver: mpsc::Receiver<T>,
) -> impl futures_core_stream::Stream<Item = T> {
    futures_core_stream::poll_fn(move |cx| receiver.poll_recv(cx))
}

mod futures_core_stream {
    pub(super) use futures_util::stream::{Stream, poll_fn};
}

#[tokio::test(start_paused = true)]
async fn rate_limit_waits_and_refusals_are_observed() {
    let mut registry = Registry::default();
    let metrics = Metrics::new(&mut registry);
    let limiter = RateLimiter::builder()
        .per_namespace(Quota::per_second(1).unwrap().with_burst(1).unwrap())
        .max_wait(Duration::from_millis(2500))
        .observer(metrics.clone())
        .build()
        .unwrap();
    metrics.observe_limiter(&limiter);
    let service = ServiceBuilder::new()
        .layer(MetricsLayer::new(metrics))
        .layer(RateLimitLayer::new(limiter))
        .service(service_fn(|_req: Request<String>| async {
            Ok::<_, Infallible>(Response::new(String::new()))
        }));
    let calls: Vec<_> = (0..4)
        .map(|_| tokio::spawn(service.clone().oneshot(request(Method::GET, "team-a"))))
        .collect();
    let mut failures = 0;
    for call in calls {
        if call.await.unwrap().is_err() {
            failures += 1;
        }
    }
    assert_eq!(failures, 1); // the fourth would wait 3 s > 2.5 s

    let text = encode(&registry);
    let wait = |suffix: &str| {
        sample(
            &text,
            &format!(
                r#"pacer_rate_limit_wait_seconds_{suffix}{{namespace="team-a",level="namespace"}}"#
            ),
        )
    };
    assert_eq!(wait("count"), Some(2.0));
    assert_eq!(wait("sum"), Some(3.0)); // 1 s + 2 s
    assert_eq!(
        sample(
            &text,
            r#"pacer_rate_limit_refusals_total{namespace="team-a",level="namespace"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"pacer_requests_total{method="GET",status_class="error",namespace="team-a"}"#
        ),
        Some(1.0)
    );
    assert_eq!(sample(&text, "pacer_rate_limit_namespaces"), Some(1.0));
    // Three requests at 0, 1 and 2 s; at 50 req/s only the last one has not come back.
    assert_eq!(sample(&text, "pacer_rate_limit_global_tokens"), Some(99.0));
}

#[tokio::test(start_paused = true)]
async fn retries_by_reason_exhaustion_and_honoured_retry_after_are_counted() {
    use std::sync::atomic::{AtomicU32, Ordering};

    use crate::retry::{RetryLayer, RetryPolicy};

    let mut registry = Registry::default();
    let metrics = Metrics::new(&mut registry);
    let calls = Arc::new(AtomicU32::new(0));
    let seen = Arc::clone(&calls);
    // Per logical request: 429 with Retry-After 2, then 503, then 200. POSTs stop at the 503.
    let service = ServiceBuilder::new()
        .layer(MetricsLayer::new(metrics.clone()))
        .layer(RetryLayer::new(
            RetryPolicy::new()
                .max_retries(2)
                .without_budget()
                .seed(1)
                .observer(metrics.clone()),
        ))
        .service(service_fn(move |_req: Request<String>| {
            let n = seen.fetch_add(1, Ordering::SeqCst);
            async move {
                let mut response = Response::new(String::new());
                match n % 3 {
                    0 => {
                        *response.status_mut() = http::StatusCode::TOO_MANY_REQUESTS;
                        response
                            .headers_mut()
                            .insert("retry-after", http::HeaderValue::from_static("2"));
                    }
                    1 => *response.status_mut() = http::StatusCode::SERVICE_UNAVAILABLE,
                    _ => {}
                }
                Ok::<_, Infallible>(response)
            }
        }));
    let start = Instant::now();
    let ok = service
        .clone()
        .oneshot(request(Method::GET, "a"))
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert!(start.elapsed() >= Duration::from_secs(2));
    let post = service
        .clone()
        .oneshot(request(Method::POST, "a"))
        .await
        .unwrap();
    assert_eq!(post.status(), 503); // a POST is not retried on 503
    calls.store(0, Ordering::SeqCst);
    let limited = RetryPolicy::new()
        .max_retries(1)
        .without_budget()
        .observer(metrics.clone());
    let exhausted = ServiceBuilder::new()
        .layer(RetryLayer::new(limited))
        .service(service_fn(|_req: Request<String>| async {
            let mut response = Response::new(String::new());
            *response.status_mut() = http::StatusCode::BAD_GATEWAY;
            Ok::<_, Infallible>(response)
        }));
    let last = exhausted.oneshot(request(Method::GET, "a")).await.unwrap();
    assert_eq!(last.status(), 502);

    let text = encode(&registry);
    assert_eq!(
        sample(&text, r#"pacer_retries_total{reason="throttled"}"#),
        Some(2.0)
    );
    assert_eq!(
        sample(&text, r#"pacer_retries_total{reason="server_error"}"#),
        Some(2.0)
    );
    assert_eq!(sample(&text, "pacer_retries_exhausted_total"), Some(1.0));
    assert_eq!(sample(&text, "pacer_retry_after_seconds_count"), Some(2.0));
    assert_eq!(sample(&text, "pacer_retry_after_seconds_sum"), Some(4.0));
}

#[tokio::test(start_paused = true)]
async fn namespace_labels_are_capped() {
    let mut registry = Registry::default();
    let metrics = Metrics::builder().prefix("svc").register(&mut registry);
    let service = ServiceBuilder::new()
        .layer(MetricsLayer::new(metrics))
        .service(service_fn(|_req: Request<String>| async {
            Ok::<_, Infallible>(Response::new(String::new()))
        }));
    for i in 0..10_000 {
        service
            .clone()
            .oneshot(request(Method::GET, &format!("tenant-{i}")))
            .await
            .unwrap();
    }
    let text = encode(&registry);
    let series = text
        .lines()
        .filter(|line| line.starts_with("svc_requests_total{"))
        .count();
    assert_eq!(series, 101);
    assert_eq!(
        sample(
            &text,
            r#"svc_requests_total{method="GET",status_class="2xx",namespace="other"}"#
        ),
        Some(9900.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"svc_requests_total{method="GET",status_class="2xx",namespace="tenant-99"}"#
        ),
        Some(1.0)
    );
}

#[tokio::test(start_paused = true)]
async fn paused_upstreams_gauge_returns_to_zero_when_the_gate_is_dropped_mid_pause() {
    use crate::retry_after::RetryAfterLayer;
    let mut registry = Registry::default();
    let metrics = Metrics::builder().prefix("svc").register(&mut registry);
    let service = ServiceBuilder::new()
        .layer(RetryAfterLayer::new().observer(metrics.clone()))
        .service(service_fn(|req: Request<String>| async move {
            let status = if req.uri().path() == "/throttle" {
                429
            } else {
                200
            };
            Ok::<_, Infallible>(
                Response::builder()
                    .status(status)
                    .header("retry-after", "30")
                    .body(String::new())
                    .unwrap(),
            )
        }));
    let throttle = Request::get("http://api.test/throttle")
        .body(String::new())
        .unwrap();
    let _ = service.clone().oneshot(throttle).await.unwrap();
    assert_eq!(
        sample(&encode(&registry), "svc_paused_upstreams"),
        Some(1.0)
    );

    // A request held by the pause, dropped mid-pause, together with the gate.
    let held = Request::get("http://api.test/ok")
        .body(String::new())
        .unwrap();
    let waiter = tokio::spawn(service.clone().oneshot(held));
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(!waiter.is_finished());
    waiter.abort();
    let _ = waiter.await;
    drop(service);
    tokio::task::yield_now().await;
    assert_eq!(
        sample(&encode(&registry), "svc_paused_upstreams"),
        Some(0.0)
    );

    // Nothing is decremented twice later.
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(
        sample(&encode(&registry), "svc_paused_upstreams"),
        Some(0.0)
    );
}
