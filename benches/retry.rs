//! Happy-path overhead of `pacer::retry::RetryLayer` against a bare service and tower's own
//! `tower::retry::Retry` with a trivial policy, all in one run.
//!
//! `flock /tmp/pacer-bench.lock cargo bench -p benches --bench retry`
//!
//! The inner service answers `200` at once, so the figures are the layers' own cost per request:
//! splitting the request, keeping a copy of its parts and body for a retry, classifying the
//! response and depositing into the retry budget. Each future is polled once with a no-op waker
//! (it completes at once), so no executor overhead dilutes the comparison.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use std::hint::black_box;
use std::time::Duration;

use bytes::Bytes;
use common::{CloneOnly, now, ok, plain_request};
use criterion::{Criterion, criterion_group, criterion_main};
use http::{Request, Response};
use http_body_util::Full;
use pacer::retry::{Backoff, RetryLayer, RetryPolicy};
use rand::SeedableRng;
use tower::{Layer, Service, ServiceExt};

fn bench<S>(c: &mut Criterion, name: &str, svc: S)
where
    S: Service<Request<Full<Bytes>>, Response = Response<Full<Bytes>>> + Clone,
    S::Error: std::fmt::Debug,
{
    let template = plain_request();
    c.bench_function(name, |b| {
        b.iter(|| {
            let req = template.clone();
            let mut svc = svc.clone();
            let res = now(async move { svc.ready().await?.call(req).await });
            black_box(res.unwrap())
        });
    });
}

fn happy_path(c: &mut Criterion) {
    // The deadline variant arms a tokio timer, so run inside a runtime context, as users do.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let _guard = rt.enter();
    let bare = tower::service_fn(ok);
    bench(c, "retry/bare", bare);
    bench(
        c,
        "retry/pacer",
        RetryLayer::new(RetryPolicy::new()).layer(bare),
    );
    bench(
        c,
        "retry/pacer_no_budget",
        RetryLayer::new(RetryPolicy::new().without_budget()).layer(bare),
    );
    bench(
        c,
        "retry/pacer_deadline",
        RetryLayer::new(RetryPolicy::new().deadline(Duration::from_secs(30))).layer(bare),
    );
    bench(
        c,
        "retry/tower_retry",
        tower::retry::RetryLayer::new(CloneOnly).layer(bare),
    );
}

fn backoff(c: &mut Criterion) {
    let backoff = Backoff::default();
    let mut rng = rand::rngs::SmallRng::seed_from_u64(1);
    let mut n = 0u32;
    c.bench_function("retry/backoff_delay_full_jitter", |b| {
        b.iter(|| {
            n = n.wrapping_add(1) % 16;
            black_box(backoff.delay(black_box(n), Duration::ZERO, &mut rng))
        });
    });
}

criterion_group!(benches, happy_path, backoff);
criterion_main!(benches);
