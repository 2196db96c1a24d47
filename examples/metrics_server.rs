//! An axum app that calls an upstream through the pacer stack and serves its metrics.
//!
//! ```text
//! cargo run -p examples --example metrics_server            # listens on 127.0.0.1:9898
//! curl http://127.0.0.1:9898/metrics
//! curl -H 'Accept: application/openmetrics-text' http://127.0.0.1:9898/metrics
//! ```
//!
//! A background task sends requests for a few namespaces through `MetricsLayer` and
//! `RateLimitLayer` over a stand-in upstream; `/metrics` shows requests, rate-limit waits and
//! refusals, tracked namespaces and the global bucket's level in the OpenMetrics text format.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::header::{ACCEPT, CONTENT_TYPE};
use axum::response::IntoResponse;
use axum::routing::get;
use http::{Request, Response, StatusCode};
use pacer::Namespace;
use pacer::metrics::{Metrics, MetricsLayer};
use pacer::rate_limit::{Quota, RateLimitLayer, RateLimiter};
use prometheus_client::registry::Registry;
use tower::{ServiceBuilder, ServiceExt, service_fn};

/// OpenMetrics for scrapers that ask for it (Prometheus does), the classic text format otherwise.
async fn serve_metrics(
    State(registry): State<Arc<Registry>>,
    headers: HeaderMap,
) -> impl IntoResponse {
    match pacer::metrics::render(&registry, headers.get(ACCEPT)) {
        Ok((content_type, text)) => (StatusCode::OK, [(CONTENT_TYPE, content_type)], text),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(CONTENT_TYPE, "text/plain")],
            "encoding failed\n".to_owned(),
        ),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let listen = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9898".to_owned());
    let mut registry = Registry::default();
    let metrics = Metrics::new(&mut registry);
    let limiter = RateLimiter::builder()
        .global(Quota::per_second(20)?.with_burst(20)?)
        .per_namespace(Quota::per_second(2)?.with_burst(4)?)
        .max_wait(Duration::from_secs(1))
        .observer(metrics.clone())
        .build()?;
    metrics.observe_limiter(&limiter);

    let upstream = service_fn(|_request: Request<String>| async {
        Ok::<_, Infallible>(Response::new(String::from("ok")))
    });
    let client = ServiceBuilder::new()
        .layer(MetricsLayer::new(metrics))
        .layer(RateLimitLayer::new(limiter))
        .service(upstream);
    tokio::spawn(async move {
        let namespaces = ["team-a", "team-b", "team-c"];
        for n in 0usize.. {
            let mut request = Request::new(String::new());
            request
                .extensions_mut()
                .insert(Namespace::new(namespaces[n % namespaces.len()]));
            let client = client.clone();
            tokio::spawn(async move { client.oneshot(request).await });
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });

    let app = Router::new()
        .route("/metrics", get(serve_metrics))
        .with_state(Arc::new(registry));
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!("metrics on http://{}/metrics", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
