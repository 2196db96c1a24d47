//! Per-request cost of `MetricsLayer` and of the event path, against a bare service that
//! answers at once, all in one run.
//!
//! `flock /tmp/pacer-bench.lock cargo bench -p benches --bench metrics`
//!
//! - `per_request/*`: one request (POST, five headers, 150-byte body, a namespace) through a
//!   layer over the bare service; the response is dropped inside the measurement, so the
//!   metrics guard records there. `tower_http_trace` is what a user would reach for instead
//!   (tower-http's `TraceLayer`, with no subscriber installed, as in production with the level
//!   filtered out).
//! - `observer/*`: the happy path of the layers that report events, with no observer and with
//!   `Metrics` as the observer: nothing happens that is worth an event, so both should cost
//!   the same.
//! - `event/*`: one event delivered: to no observer (one branch), to `Metrics`, to `Metrics`
//!   and `TracingObserver` (no subscriber installed).
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use std::hint::black_box;
use std::time::Duration;

use common::{bench, calls, ok, open_limiter, paired, request};
use criterion::{Criterion, criterion_group, criterion_main};
use http::Method;
use pacer::Namespace;
use pacer::events::{Event, Events, RequestInfo, TracingObserver};
use pacer::metrics::{Metrics, MetricsLayer};
use pacer::rate_limit::{Level, RateLimitLayer};
use pacer::retry::RetryReason;
use pacer::retry::{RetryLayer, RetryPolicy};
use pacer::retry_after::RetryAfterLayer;
use prometheus_client::registry::Registry;
use tower::Layer;

fn metrics() -> (Registry, Metrics) {
    let mut registry = Registry::default();
    let metrics = Metrics::new(&mut registry);
    (registry, metrics)
}

fn per_request(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let _guard = rt.enter();
    let bare = tower::service_fn(ok);
    let (_registry, metrics) = metrics();

    // Paired comparisons first (same process, same load), then criterion's own figures.
    let template = request();
    let (rounds, batch) = (400, 1_000);
    let observed = Events::new(metrics.clone());
    let mut base = bare;
    let mut metrics_layer = MetricsLayer::new(metrics.clone()).layer(bare);
    let mut trace = tower_http::trace::TraceLayer::new_for_http().layer(bare);
    paired(
        "per_request/metrics_layer",
        rounds,
        batch,
        |n| calls(&mut base, &template, n),
        |n| calls(&mut metrics_layer, &template, n),
    );
    paired(
        "per_request/tower_http_trace",
        rounds,
        batch,
        |n| calls(&mut base, &template, n),
        |n| calls(&mut trace, &template, n),
    );
    let (mut a, mut b) = (
        RetryLayer::new(RetryPolicy::new()).layer(bare),
        RetryLayer::new(RetryPolicy::new().observer(observed.clone())).layer(bare),
    );
    paired(
        "observer/retry: none -> metrics",
        rounds,
        batch,
        |n| calls(&mut a, &template, n),
        |n| calls(&mut b, &template, n),
    );
    let (mut a, mut b) = (
        RetryAfterLayer::new().layer(bare),
        RetryAfterLayer::new()
            .observer(observed.clone())
            .layer(bare),
    );
    paired(
        "observer/retry_after: none -> metrics",
        rounds,
        batch,
        |n| calls(&mut a, &template, n),
        |n| calls(&mut b, &template, n),
    );
    let (mut a, mut b) = (
        RateLimitLayer::new(open_limiter(Events::none())).layer(bare),
        RateLimitLayer::new(open_limiter(observed.clone())).layer(bare),
    );
    paired(
        "observer/rate_limit: none -> metrics",
        rounds,
        batch,
        |n| calls(&mut a, &template, n),
        |n| calls(&mut b, &template, n),
    );

    let mut group = c.benchmark_group("per_request");
    bench(&mut group, "bare", bare);
    bench(
        &mut group,
        "metrics_layer",
        MetricsLayer::new(metrics.clone()).layer(bare),
    );
    bench(
        &mut group,
        "tower_http_trace",
        tower_http::trace::TraceLayer::new_for_http().layer(bare),
    );
    group.finish();

    let mut group = c.benchmark_group("observer");
    bench(&mut group, "bare", bare);
    bench(
        &mut group,
        "retry/none",
        RetryLayer::new(RetryPolicy::new()).layer(bare),
    );
    bench(
        &mut group,
        "retry/metrics",
        RetryLayer::new(RetryPolicy::new().observer(observed.clone())).layer(bare),
    );
    bench(
        &mut group,
        "retry_after/none",
        RetryAfterLayer::new().layer(bare),
    );
    bench(
        &mut group,
        "retry_after/metrics",
        RetryAfterLayer::new()
            .observer(observed.clone())
            .layer(bare),
    );
    bench(
        &mut group,
        "rate_limit/none",
        RateLimitLayer::new(open_limiter(Events::none())).layer(bare),
    );
    bench(
        &mut group,
        "rate_limit/metrics",
        RateLimitLayer::new(open_limiter(observed)).layer(bare),
    );
    group.finish();
}

fn events(c: &mut Criterion) {
    let (_registry, metrics) = metrics();
    let namespace = Namespace::new("tenant-a");
    let method = Method::POST;
    let info = RequestInfo {
        method: &method,
        path: "/admin/realms/tenant-a/users",
        namespace: &namespace,
    };
    let retry = |events: &Events| {
        events.emit(|| Event::Retry {
            request: info,
            attempt: 1,
            reason: RetryReason::TooManyRequests,
            delay: Duration::from_secs(2),
            from_server: true,
        })
    };
    let mut group = c.benchmark_group("event");
    for (name, events) in [
        ("retry/none", Events::none()),
        ("retry/metrics", Events::new(metrics.clone())),
        (
            "retry/metrics_and_tracing",
            Events::new((metrics.clone(), TracingObserver)),
        ),
    ] {
        group.bench_function(name, |b| b.iter(|| retry(black_box(&events))));
    }
    for (name, events) in [
        ("rate_limit_wait/none", Events::none()),
        ("rate_limit_wait/metrics", Events::new(metrics.clone())),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                black_box(&events).emit(|| Event::RateLimitWait {
                    namespace: &namespace,
                    level: Level::Namespace,
                    waited: Duration::from_millis(3),
                })
            })
        });
    }
    group.finish();
}

criterion_group!(benches, per_request, events);
criterion_main!(benches);
