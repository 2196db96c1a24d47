//! Metrics end to end: traffic through the pacer stack over a real hyper client to an axum
//! server, then a scrape of that server's `/metrics`, checked for exact values and validated
//! with `promtool check metrics`.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::header::{ACCEPT, CONTENT_TYPE};
use axum::routing::get;
use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use pacer::Namespace;
use pacer::metrics::{
    Metrics, MetricsLayer, OPENMETRICS_CONTENT_TYPE, PROMETHEUS_TEXT_CONTENT_TYPE,
};
use pacer::rate_limit::{Quota, RateLimitLayer, RateLimiter};
use prometheus_client::registry::Registry;
use tower::{ServiceBuilder, ServiceExt};

async fn serve_metrics(
    State(registry): State<Arc<Registry>>,
    headers: HeaderMap,
) -> ([(axum::http::HeaderName, &'static str); 1], String) {
    let (content_type, text) = pacer::metrics::render(&registry, headers.get(ACCEPT)).unwrap();
    ([(CONTENT_TYPE, content_type)], text)
}

async fn start(registry: Registry) -> SocketAddr {
    let app = Router::new()
        .route("/hello", get(|| async { "hello" }))
        .route("/metrics", get(serve_metrics))
        .with_state(Arc::new(registry));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

async fn scrape(addr: SocketAddr, accept: Option<&str>) -> (String, String) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let mut request = Request::get(format!("http://{addr}/metrics"));
    if let Some(accept) = accept {
        request = request.header(ACCEPT, accept);
    }
    let response = client
        .request(request.body(Empty::new()).unwrap())
        .await
        .unwrap();
    let content_type = response.headers()[CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_owned();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (content_type, String::from_utf8(body.to_vec()).unwrap())
}

fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn scraped_metrics_count_real_traffic_and_pass_promtool() {
    let mut registry = Registry::default();
    let metrics = Metrics::new(&mut registry);
    let limiter = RateLimiter::builder()
        .per_namespace(Quota::per_minute(3).unwrap().with_burst(3).unwrap())
        .max_wait(Duration::ZERO)
        .observer(metrics.clone())
        .build()
        .unwrap();
    metrics.observe_limiter(&limiter);
    let addr = start(registry).await;

    let client = ServiceBuilder::new()
        .layer(MetricsLayer::new(metrics))
        .layer(RateLimitLayer::new(limiter))
        .service(Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>());
    for (namespace, count) in [("team-a", 5), ("team-b", 2)] {
        for _ in 0..count {
            let mut request = Request::get(format!("http://{addr}/hello"))
                .body(Empty::new())
                .unwrap();
            request.extensions_mut().insert(Namespace::new(namespace));
            if let Ok(response) = client.clone().oneshot(request).await {
                response.into_body().collect().await.unwrap();
            }
        }
    }

    let (content_type, text) = scrape(addr, Some("application/openmetrics-text")).await;
    assert_eq!(content_type, OPENMETRICS_CONTENT_TYPE);
    assert!(text.ends_with("# EOF\n"));
    let requests = |labels: &str| sample(&text, &format!("pacer_requests_total{{{labels}}}"));
    assert_eq!(
        requests(r#"method="GET",status_class="2xx",namespace="team-a""#),
        Some(3.0)
    );
    assert_eq!(
        requests(r#"method="GET",status_class="error",namespace="team-a""#),
        Some(2.0)
    );
    assert_eq!(
        requests(r#"method="GET",status_class="2xx",namespace="team-b""#),
        Some(2.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"pacer_rate_limit_refusals_total{namespace="team-a",level="namespace"}"#
        ),
        Some(2.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"pacer_request_duration_seconds_count{method="GET",status_class="2xx"}"#
        ),
        Some(5.0)
    );
    assert_eq!(sample(&text, "pacer_in_flight_requests"), Some(0.0));
    assert_eq!(sample(&text, "pacer_rate_limit_namespaces"), Some(2.0));

    let (content_type, text) = scrape(addr, None).await;
    assert_eq!(content_type, PROMETHEUS_TEXT_CONTENT_TYPE);
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("this test needs promtool: apt-get install prometheus (.ci/run does)");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = promtool.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "promtool check metrics failed:\n{}{}\n--- metrics ---\n{text}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
