//! `pacer_retry_budget_exhausted_total` counts every retry the budget refused, exactly: a
//! retry layer with a budget over a scripted upstream, in paused time, checked against the
//! encoded metrics text after each step.
#![allow(clippy::unwrap_used)]

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use pacer::metrics::{Metrics, MetricsLayer};
use pacer::retry::{Backoff, Jitter, RetryBudget, RetryLayer, RetryPolicy};
use prometheus_client::registry::Registry;
use tower::util::BoxCloneService;
use tower::{ServiceBuilder, ServiceExt, service_fn};

/// The stack under test; answers with the final status only.
type Client = BoxCloneService<Request<Full<Bytes>>, StatusCode, pacer::BoxError>;

fn encode(registry: &Registry) -> String {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry).unwrap();
    text
}

/// The value of the sample `series` (name and labels exactly as encoded); 0 when absent.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

struct Counts {
    budget_exhausted: f64,
    retries: f64,
    retries_exhausted: f64,
    upstream_calls: u32,
}

/// A client whose upstream answers `/ok` with 200 and anything else with 503, with `budget`
/// and retries at once (no backoff), plus the registry its metrics are in and the count of
/// calls that reached the upstream.
fn client(budget: RetryBudget) -> (Client, Registry, Arc<AtomicU32>) {
    let mut registry = Registry::default();
    let metrics = Metrics::new(&mut registry);
    let calls = Arc::new(AtomicU32::new(0));
    let upstream = {
        let calls = Arc::clone(&calls);
        service_fn(move |req: Request<Full<Bytes>>| {
            calls.fetch_add(1, Ordering::SeqCst);
            let status = if req.uri().path() == "/ok" {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            async move {
                let mut response = Response::new(Full::new(Bytes::new()));
                *response.status_mut() = status;
                Ok::<_, Infallible>(response)
            }
        })
    };
    let policy = RetryPolicy::new()
        .max_retries(3)
        .backoff(Backoff::new(Duration::ZERO, Duration::ZERO).jitter(Jitter::None))
        .budget(budget)
        .seed(7)
        .observer(metrics.clone());
    let service = ServiceBuilder::new()
        .map_response(|response: Response<_>| response.status())
        .layer(MetricsLayer::new(metrics))
        .layer(RetryLayer::new(policy))
        .service(upstream);
    (BoxCloneService::new(service), registry, calls)
}

async fn send(client: &Client, path: &str) -> StatusCode {
    let request = Request::get(format!("http://api.test{path}"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    client.clone().oneshot(request).await.unwrap()
}

fn counts(registry: &Registry, calls: &AtomicU32) -> Counts {
    let text = encode(registry);
    Counts {
        budget_exhausted: sample(&text, "pacer_retry_budget_exhausted_total"),
        retries: sample(&text, r#"pacer_retries_total{reason="server_error"}"#),
        retries_exhausted: sample(&text, "pacer_retries_exhausted_total"),
        upstream_calls: calls.load(Ordering::SeqCst),
    }
}

#[tokio::test(start_paused = true)]
async fn budget_exhaustion_is_counted_once_per_refused_retry() {
    // Two successes pay for one retry (ratio 0.5); no per-second floor.
    let budget = RetryBudget::builder()
        .deposit_ratio(0.5)
        .min_retries_per_sec(0)
        .build();
    let (client, registry, calls) = client(budget);

    let before = counts(&registry, &calls);
    assert_eq!(before.budget_exhausted, 0.0);
    assert!(
        encode(&registry).contains("pacer_retry_budget_exhausted_total 0"),
        "the counter is exported before anything happened"
    );

    assert_eq!(send(&client, "/ok").await, StatusCode::OK);
    assert_eq!(send(&client, "/ok").await, StatusCode::OK);
    assert_eq!(counts(&registry, &calls).budget_exhausted, 0.0);

    // The first failure spends the banked token on one retry; the retry fails too and the
    // empty budget refuses a second one.
    assert_eq!(
        send(&client, "/fail").await,
        StatusCode::SERVICE_UNAVAILABLE
    );
    let after_first = counts(&registry, &calls);
    assert_eq!(after_first.budget_exhausted, 1.0);
    assert_eq!(after_first.retries, 1.0);
    assert_eq!(after_first.upstream_calls, 4);

    // Nothing is banked now: each failure is refused its first retry.
    for _ in 0..3 {
        assert_eq!(
            send(&client, "/fail").await,
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
    let after = counts(&registry, &calls);
    assert_eq!(after.budget_exhausted, 4.0);
    assert_eq!(after.retries, 1.0, "no retry without budget");
    assert_eq!(after.upstream_calls, 7, "one attempt per refused request");
    assert_eq!(
        after.retries_exhausted, 0.0,
        "a budget refusal is not counted as retries exhausted"
    );
}

#[tokio::test(start_paused = true)]
async fn the_floor_allows_its_retries_per_second_and_the_rest_count_as_exhausted() {
    // Nothing is ever banked; the floor allows 2 retries a second (a burst of 2).
    let budget = RetryBudget::builder()
        .deposit_ratio(0.0)
        .min_retries_per_sec(2)
        .build();
    let (client, registry, calls) = client(budget);

    // The first failing request gets the floor's two retries, then is refused a third; the
    // next four are refused their first.
    for _ in 0..5 {
        assert_eq!(
            send(&client, "/fail").await,
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
    let at_start = counts(&registry, &calls);
    assert_eq!(at_start.retries, 2.0);
    assert_eq!(at_start.budget_exhausted, 5.0);
    assert_eq!(at_start.upstream_calls, 3 + 4);

    // A second later the floor has refilled: two more retries, then refusals again.
    tokio::time::advance(Duration::from_secs(1)).await;
    for _ in 0..2 {
        assert_eq!(
            send(&client, "/fail").await,
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
    let later = counts(&registry, &calls);
    assert_eq!(later.retries, 4.0);
    assert_eq!(later.budget_exhausted, 7.0);
    assert_eq!(later.upstream_calls, 7 + 3 + 1);
}
