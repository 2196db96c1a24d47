//! Retry-After pauses in the metrics: traffic through the whole stack (metrics, retry,
//! Retry-After, rate limit) over a scripted upstream, in paused time, checked against the
//! exact values of the encoded OpenMetrics text while the pause runs and after it ended.
#![allow(clippy::unwrap_used)]

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use pacer::Namespace;
use pacer::metrics::{Metrics, MetricsLayer};
use pacer::rate_limit::{Quota, RateLimitLayer, RateLimiter};
use pacer::retry::{RetryLayer, RetryPolicy};
use pacer::retry_after::{PauseGate, RetryAfterLayer};
use prometheus_client::registry::Registry;
use tokio::time::Instant;
use tower::{ServiceBuilder, ServiceExt, service_fn};

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

fn get(path: &str) -> Request<String> {
    let mut request = Request::get(format!("http://kc.test{path}"))
        .body(String::new())
        .unwrap();
    request.extensions_mut().insert(Namespace::new("team-a"));
    request
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_pause_is_counted_while_it_runs_and_after_it_ends() {
    let mut registry = Registry::default();
    let metrics = Metrics::new(&mut registry);
    let limiter = RateLimiter::builder()
        .global(Quota::per_second(1_000).unwrap().with_burst(1_000).unwrap())
        .per_namespace(Quota::per_second(1_000).unwrap().with_burst(1_000).unwrap())
        .observer(metrics.clone())
        .build()
        .unwrap();
    metrics.observe_limiter(&limiter);
    // The first request to reach the upstream is answered 429 with `Retry-After: 3`.
    let calls = Arc::new(AtomicU32::new(0));
    let upstream = {
        let calls = Arc::clone(&calls);
        service_fn(move |_req: Request<String>| {
            let first = calls.fetch_add(1, Ordering::SeqCst) == 0;
            async move {
                let mut response = Response::new(String::from("ok"));
                if first {
                    *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
                    response
                        .headers_mut()
                        .insert("retry-after", http::HeaderValue::from_static("3"));
                }
                Ok::<_, Infallible>(response)
            }
        })
    };
    let client = ServiceBuilder::new()
        .layer(MetricsLayer::new(metrics.clone()))
        .layer(RetryLayer::new(
            RetryPolicy::new()
                .without_budget()
                .seed(1)
                .observer(metrics.clone()),
        ))
        .layer(
            RetryAfterLayer::new()
                .with_gate(PauseGate::builder().seed(1).build())
                .observer(metrics.clone()),
        )
        .layer(RateLimitLayer::new(limiter))
        .service(upstream);

    let t0 = Instant::now();
    let throttled = tokio::spawn(client.clone().oneshot(get("/admin/realms/a/users")));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let held = tokio::spawn(client.clone().oneshot(get("/admin/realms/b/users")));
    tokio::time::sleep(Duration::from_millis(500)).await;

    // 1.5 s in: the pause runs, both requests are in flight.
    let text = encode(&registry);
    assert_eq!(sample(&text, "pacer_pauses_total"), Some(1.0));
    assert_eq!(sample(&text, "pacer_paused_upstreams"), Some(1.0));
    assert_eq!(sample(&text, "pacer_pause_seconds_count"), Some(1.0));
    assert_eq!(sample(&text, "pacer_pause_seconds_sum"), Some(3.0));
    assert_eq!(
        sample(&text, r#"pacer_pause_seconds_bucket{le="2.0"}"#),
        Some(0.0)
    );
    assert_eq!(
        sample(&text, r#"pacer_pause_seconds_bucket{le="5.0"}"#),
        Some(1.0)
    );
    assert_eq!(sample(&text, "pacer_in_flight_requests"), Some(2.0));
    assert_eq!(
        sample(&text, r#"pacer_retries_total{reason="throttled"}"#),
        Some(1.0)
    );

    for request in [throttled, held] {
        let response = request.await.unwrap().unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.into_body().collect().await.unwrap();
    }
    // The retry honoured the 3 s; the held request was released in [3 s, 4 s).
    let elapsed = t0.elapsed();
    assert!(
        elapsed >= Duration::from_secs(3) && elapsed < Duration::from_secs(4),
        "{elapsed:?}"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 3);

    let text = encode(&registry);
    assert_eq!(sample(&text, "pacer_pauses_total"), Some(1.0));
    assert_eq!(sample(&text, "pacer_paused_upstreams"), Some(0.0));
    assert_eq!(sample(&text, "pacer_pause_seconds_count"), Some(1.0));
    assert_eq!(sample(&text, "pacer_retry_after_seconds_count"), Some(1.0));
    assert_eq!(sample(&text, "pacer_retry_after_seconds_sum"), Some(3.0));
    assert_eq!(
        sample(&text, r#"pacer_retries_total{reason="throttled"}"#),
        Some(1.0)
    );
    assert_eq!(sample(&text, "pacer_retries_exhausted_total"), Some(0.0));
    assert_eq!(
        sample(
            &text,
            r#"pacer_requests_total{method="GET",status_class="2xx",namespace="team-a"}"#
        ),
        Some(2.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"pacer_request_duration_seconds_count{method="GET",status_class="2xx"}"#
        ),
        Some(2.0)
    );
    assert_eq!(sample(&text, "pacer_in_flight_requests"), Some(0.0));
    // Three attempts took a slot each, none had to wait.
    assert!(!text.contains("pacer_rate_limit_wait_seconds_count"));
}
