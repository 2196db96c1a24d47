//! The whole pacer stack on the happy path, in DESIGN.md's order
//! `Metrics -> Retry -> RetryAfter -> RateLimit -> Timeout -> service`, against the same
//! service bare, in one run:
//!
//! - `stack/*`: over a bare service that answers at once (a future polled once, no executor),
//!   so the difference is the stack's own cost per request. The limiter's quotas are so high
//!   that nobody ever waits. Also the stack without tower's `Timeout` (which arms a tokio
//!   timer per attempt) and `Timeout` alone, to show where the time goes.
//! - `loopback/*`: a real request with hyper-util's client to a hyper server on 127.0.0.1
//!   (its own thread and runtime, as another process would be), bare and through the four
//!   pacer layers (with and without tower's `Timeout`), each layer alone, tower's `Retry` and
//!   tower-http's `TraceLayer` alone (what a user would pick instead), and a control that
//!   compares the bare client with itself to show the noise floor. The layers cost several
//!   times more here than in `stack/*`: between two requests the kernel and hyper evict their
//!   code and data from the CPU caches, so each request runs them cold. Timing ranks single
//!   layers no finer than ±1.5 µs on a busy machine; `benches/instructions.sh` counts the
//!   instructions of the same requests instead.
//!
//! `flock /tmp/pacer-bench.lock cargo bench -p benches --bench stack`
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use std::time::Duration;

use common::{
    Clock, CloneOnly, bench, calls, loopback_calls, loopback_setup, ok, open_limiter, pacer_layers,
    paired, paired_on, request,
};
use criterion::{Criterion, criterion_group, criterion_main};
use http_body_util::BodyExt;
use pacer::events::Events;
use pacer::metrics::{Metrics, MetricsLayer};
use pacer::rate_limit::RateLimitLayer;
use pacer::retry::{RetryLayer, RetryPolicy};
use pacer::retry_after::RetryAfterLayer;
use prometheus_client::registry::Registry;
use tower::timeout::TimeoutLayer;
use tower::{Layer, ServiceExt};

const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

fn happy_path(c: &mut Criterion) {
    // tower's Timeout arms a tokio timer: run inside a runtime context, as users do.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let _guard = rt.enter();
    let bare = tower::service_fn(ok);
    let mut registry = Registry::default();
    let metrics = Metrics::new(&mut registry);

    // Paired comparisons first (same process, same load), then criterion's own figures.
    let template = request();
    let mut base = bare;
    let mut full = pacer_layers(&metrics, true)
        .layer(TimeoutLayer::new(ATTEMPT_TIMEOUT))
        .service(bare);
    let mut no_observers = pacer_layers(&metrics, false)
        .layer(TimeoutLayer::new(ATTEMPT_TIMEOUT))
        .service(bare);
    let mut without_timeout = pacer_layers(&metrics, true).service(bare);
    let mut timeout = TimeoutLayer::new(ATTEMPT_TIMEOUT).layer(bare);
    let mut metrics_only = MetricsLayer::new(metrics.clone()).layer(bare);
    let mut retry_only = RetryLayer::new(RetryPolicy::new()).layer(bare);
    let mut retry_after_only = RetryAfterLayer::new().observer(metrics.clone()).layer(bare);
    let mut rate_limit_only = RateLimitLayer::new(open_limiter(Events::none())).layer(bare);
    let (rounds, batch) = (400, 1_000);
    let mut run = |name: &str, svc: &mut dyn FnMut(usize)| {
        paired(name, rounds, batch, |n| calls(&mut base, &template, n), svc);
    };
    run("stack/full", &mut |n| calls(&mut full, &template, n));
    run("stack/full_no_observers", &mut |n| {
        calls(&mut no_observers, &template, n)
    });
    run("stack/pacer_layers_without_timeout", &mut |n| {
        calls(&mut without_timeout, &template, n)
    });
    run("stack/tower_timeout_alone", &mut |n| {
        calls(&mut timeout, &template, n)
    });
    run("stack/metrics_alone", &mut |n| {
        calls(&mut metrics_only, &template, n)
    });
    run("stack/retry_alone", &mut |n| {
        calls(&mut retry_only, &template, n)
    });
    run("stack/retry_after_alone", &mut |n| {
        calls(&mut retry_after_only, &template, n)
    });
    run("stack/rate_limit_alone", &mut |n| {
        calls(&mut rate_limit_only, &template, n)
    });

    let mut group = c.benchmark_group("stack");
    bench(&mut group, "bare", bare);
    bench(
        &mut group,
        "full",
        pacer_layers(&metrics, true)
            .layer(TimeoutLayer::new(ATTEMPT_TIMEOUT))
            .service(bare),
    );
    bench(
        &mut group,
        "full_no_observers",
        pacer_layers(&metrics, false)
            .layer(TimeoutLayer::new(ATTEMPT_TIMEOUT))
            .service(bare),
    );
    bench(
        &mut group,
        "pacer_layers_without_timeout",
        pacer_layers(&metrics, true).service(bare),
    );
    bench(
        &mut group,
        "tower_timeout_alone",
        TimeoutLayer::new(ATTEMPT_TIMEOUT).layer(bare),
    );
    group.finish();
}

fn loopback(c: &mut Criterion) {
    let (rt, client, template) = loopback_setup();
    let _guard = rt.enter();
    let mut registry = Registry::default();
    let metrics = Metrics::new(&mut registry);
    let layers = pacer_layers(&metrics, true).service(client.clone());
    let with_timeout = pacer_layers(&metrics, true)
        .layer(TimeoutLayer::new(ATTEMPT_TIMEOUT))
        .service(client.clone());

    // Each variant against the bare client in its own paired run: 200 rounds of 50 requests.
    let compare = |clock: Clock, name: &str, with: &mut dyn FnMut(usize)| {
        paired_on(
            clock,
            name,
            200,
            50,
            |n| loopback_calls(&rt, &client, &template, n),
            with,
        );
    };
    for clock in [Clock::Wall, Clock::ThreadCpu] {
        // The control: the bare client against itself shows the noise floor.
        let same = client.clone();
        compare(clock, "loopback/control_bare_vs_bare", &mut |n| {
            loopback_calls(&rt, &same, &template, n)
        });
        compare(clock, "loopback/pacer_layers", &mut |n| {
            loopback_calls(&rt, &layers, &template, n)
        });
        compare(clock, "loopback/pacer_layers_and_timeout", &mut |n| {
            loopback_calls(&rt, &with_timeout, &template, n)
        });
    }
    // Where the time goes: each layer alone over the same client (client thread CPU).
    let alone = |name: &str, with: &mut dyn FnMut(usize)| compare(Clock::ThreadCpu, name, with);
    let svc = MetricsLayer::new(metrics.clone()).layer(client.clone());
    alone("loopback/metrics_alone", &mut |n| {
        loopback_calls(&rt, &svc, &template, n)
    });
    let svc = RetryLayer::new(RetryPolicy::new()).layer(client.clone());
    alone("loopback/retry_alone", &mut |n| {
        loopback_calls(&rt, &svc, &template, n)
    });
    let svc = RetryAfterLayer::new()
        .observer(metrics.clone())
        .layer(client.clone());
    alone("loopback/retry_after_alone", &mut |n| {
        loopback_calls(&rt, &svc, &template, n)
    });
    let svc = RateLimitLayer::new(open_limiter(Events::none())).layer(client.clone());
    alone("loopback/rate_limit_alone", &mut |n| {
        loopback_calls(&rt, &svc, &template, n)
    });
    let svc = TimeoutLayer::new(ATTEMPT_TIMEOUT).layer(client.clone());
    alone("loopback/tower_timeout_alone", &mut |n| {
        loopback_calls(&rt, &svc, &template, n)
    });
    // What a user would pick instead of pacer's retry and metrics layers, for scale.
    let svc = tower::retry::RetryLayer::new(CloneOnly).layer(client.clone());
    alone("loopback/tower_retry_alone", &mut |n| {
        loopback_calls(&rt, &svc, &template, n)
    });
    let svc = tower_http::trace::TraceLayer::new_for_http().layer(client.clone());
    alone("loopback/tower_http_trace_alone", &mut |n| {
        loopback_calls(&rt, &svc, &template, n)
    });

    let mut group = c.benchmark_group("loopback");
    group.bench_function("bare_hyper_client", |b| {
        b.to_async(&rt).iter(|| {
            let client = client.clone();
            let req = template.clone();
            async move {
                let response = client.oneshot(req).await.unwrap();
                response.into_body().collect().await.unwrap();
            }
        });
    });
    group.bench_function("pacer_layers", |b| {
        b.to_async(&rt).iter(|| {
            let stack = layers.clone();
            let req = template.clone();
            async move {
                let response = stack.oneshot(req).await.unwrap();
                response.into_body().collect().await.unwrap();
            }
        });
    });
    group.finish();
}

criterion_group!(benches, happy_path, loopback);
criterion_main!(benches);
