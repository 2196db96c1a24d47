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

use std::convert::Infallible;
use std::future::{Future, Ready, ready};
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http::{Request, Response};
use http_body_util::Full;
use pacer::retry::{Backoff, RetryLayer, RetryPolicy};
use rand::SeedableRng;
use tower::{Layer, Service, ServiceExt};

/// Polls a future that must complete on its first poll.
fn now<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("the happy path must not wait"),
    }
}

fn request() -> Request<Full<Bytes>> {
    Request::post("https://keycloak.example.invalid/admin/realms/tenant-a/users?briefRepresentation=true")
        .header("content-type", "application/json")
        .header("accept", "application/json")
        .header("authorization", "Bearer eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.e30.c2lnbmF0dXJl")
        .header("user-agent", "pacer-bench/0.1")
        .header("x-request-id", "4bf92f35-77b3-4da6-a3ce-929d0e0e4736")
        .body(Full::new(Bytes::from_static(
            br#"{"username":"alice","email":"alice@example.invalid","enabled":true,"firstName":"Alice","lastName":"Liddell","attributes":{"tenant":["a"]}}"#,
        )))
        .unwrap()
}

fn ok(req: Request<Full<Bytes>>) -> Ready<Result<Response<Full<Bytes>>, Infallible>> {
    black_box(req);
    ready(Ok(Response::new(Full::new(Bytes::from_static(b"{}")))))
}

/// tower's retry with the simplest policy that can retry: clone the request, never retry.
#[derive(Clone)]
struct Trivial;

impl<E> tower::retry::Policy<Request<Full<Bytes>>, Response<Full<Bytes>>, E> for Trivial {
    type Future = Ready<()>;

    fn retry(
        &mut self,
        _: &mut Request<Full<Bytes>>,
        _: &mut Result<Response<Full<Bytes>>, E>,
    ) -> Option<Self::Future> {
        None
    }

    fn clone_request(&mut self, req: &Request<Full<Bytes>>) -> Option<Request<Full<Bytes>>> {
        Some(req.clone())
    }
}

fn bench<S>(c: &mut Criterion, name: &str, svc: S)
where
    S: Service<Request<Full<Bytes>>, Response = Response<Full<Bytes>>> + Clone,
    S::Error: std::fmt::Debug,
{
    let template = request();
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
        tower::retry::RetryLayer::new(Trivial).layer(bare),
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
