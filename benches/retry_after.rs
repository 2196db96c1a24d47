//! Happy-path overhead of `RetryAfterLayer`: a realistic request through the layer over a
//! service that answers at once, against the same service bare.
//!
//! Run: `flock /tmp/pacer-bench.lock cargo bench -p benches --bench retry_after`

use std::convert::Infallible;
use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use http::{Request, Response, header};
use pacer::retry_after::{PauseKey, RetryAfterLayer};
use tower::{Layer, Service, service_fn};

fn request() -> Request<()> {
    Request::get("https://keycloak.example.com:8443/admin/realms/acme/clients?first=0&max=100")
        .header(header::ACCEPT, "application/json")
        .header(header::AUTHORIZATION, "Bearer eyJhbGciOiJSUzI1NiJ9.e30.sig")
        .header(header::USER_AGENT, "pacer-bench/0.1")
        .body(())
        .expect("valid request")
}

/// Calls `svc` once and polls the response future once: the upstream answers at once, so
/// this measures the middleware itself, without a runtime.
fn call_now<S>(svc: &mut S, req: Request<()>) -> Response<()>
where
    S: Service<Request<()>, Response = Response<()>>,
{
    let mut cx = Context::from_waker(Waker::noop());
    match svc.poll_ready(&mut cx) {
        Poll::Ready(Ok(())) => {}
        _ => unreachable!("upstream is always ready"),
    }
    let mut fut = pin!(svc.call(req));
    match fut.as_mut().poll(&mut cx) {
        Poll::Ready(Ok(res)) => res,
        _ => unreachable!("no pause is active for this upstream"),
    }
}

/// Times `iters` calls of `svc` on requests built beforehand (in batches of 1,000, untimed),
/// so the figure is the middleware plus the upstream, not request construction.
fn timed_calls<S>(svc: &mut S, iters: u64) -> Duration
where
    S: Service<Request<()>, Response = Response<()>>,
{
    let mut total = Duration::ZERO;
    let mut left = iters;
    let mut batch: Vec<Request<()>> = Vec::with_capacity(1_000);
    let mut out: Vec<Response<()>> = Vec::with_capacity(1_000);
    while left > 0 {
        let n = left.min(1_000);
        batch.extend((0..n).map(|_| request()));
        let start = Instant::now();
        for req in batch.drain(..) {
            out.push(call_now(svc, black_box(req)));
        }
        total += start.elapsed();
        out.clear();
        left -= n;
    }
    total
}

fn bench(c: &mut Criterion) {
    let upstream =
        service_fn(|_req: Request<()>| std::future::ready(Ok::<_, Infallible>(Response::new(()))));
    let mut group = c.benchmark_group("retry_after_happy_path");

    let mut bare = upstream;
    group.bench_function("bare_service", |b| {
        b.iter_custom(|iters| timed_calls(&mut bare, iters))
    });

    let mut layered = RetryAfterLayer::new().layer(upstream);
    group.bench_function("retry_after_no_pause", |b| {
        b.iter_custom(|iters| timed_calls(&mut layered, iters))
    });

    // Another upstream is paused: this request takes the slow check (clock read + lock +
    // lookup) but is not held.
    let layer = RetryAfterLayer::new();
    layer.gate().pause(
        PauseKey::authority("other.example.com"),
        Duration::from_secs(3600),
    );
    let mut layered_other = layer.layer(upstream);
    group.bench_function("retry_after_other_upstream_paused", |b| {
        b.iter_custom(|iters| timed_calls(&mut layered_other, iters))
    });
    group.finish();

    c.bench_function("pause_key_of_authority", |b| {
        b.iter(|| PauseKey::authority(black_box("keycloak.example.com:8443")))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
